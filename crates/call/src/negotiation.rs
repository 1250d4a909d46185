//! Glare-safe offer/answer ("perfect negotiation"), as a pure state machine.
//!
//! Roles: with duet's server, `ready.offerer` names the impolite side, which sends the offer;
//! the other side is polite and, on a collision, rolls its own offer back and answers.
//! With a seed server (no `offerer` flag) both sides offer on `ready`; on a collision the
//! roles are decided by comparing the SDP session ids of the two offers, which both sides
//! see the same way round, so exactly one of them backs down.

/// What to do with an incoming offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferAction {
    /// We are impolite and have our own offer out: ignore theirs (they will roll back).
    Ignore,
    /// Apply it and answer; roll our own pending offer back first if `rollback_first`.
    Accept {
        /// Whether a local offer must be rolled back before applying the remote one.
        rollback_first: bool,
    },
}

/// Negotiation roles and collision handling for one peer connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiator {
    /// `Some(true)`: we are polite; `Some(false)`: impolite; `None`: not known yet (seed
    /// server), decided on collision from the session ids.
    polite: Option<bool>,
    /// Session id of our last local offer (`o=` line), for the seed-server tie-break.
    local_session_id: Option<u64>,
    ignoring_offer: bool,
}

impl Negotiator {
    /// Roles from `ready.offerer`: the offerer is impolite; `None` when the server sent no flag.
    pub fn new(offerer: Option<bool>) -> Self {
        Self {
            polite: offerer.map(|o| !o),
            local_session_id: None,
            ignoring_offer: false,
        }
    }

    /// Whether this side should create an offer when the room becomes ready.
    pub fn should_offer_on_ready(&self) -> bool {
        // The polite side waits for the offer; with unknown roles both offer (seed behaviour).
        self.polite != Some(true)
    }

    /// Records our own offer's SDP (for the tie-break when roles are unknown).
    pub fn local_offer_made(&mut self, sdp: &str) {
        self.local_session_id = session_id(sdp);
    }

    /// Decides what to do with a remote offer. `have_local_offer`: our signalling state is
    /// have-local-offer.
    pub fn on_remote_offer(&mut self, remote_sdp: &str, have_local_offer: bool) -> OfferAction {
        if !have_local_offer {
            self.ignoring_offer = false;
            return OfferAction::Accept {
                rollback_first: false,
            };
        }
        let polite = match self.polite {
            Some(polite) => polite,
            None => {
                // Both offered (seed server). The larger session id backs down; equal ids are
                // astronomically unlikely, and then both back down, which still converges
                // because each answers the other's offer after rolling back.
                let polite = match (self.local_session_id, session_id(remote_sdp)) {
                    (Some(local), Some(remote)) => local >= remote,
                    _ => true,
                };
                self.polite = Some(polite);
                polite
            }
        };
        self.ignoring_offer = !polite;
        if polite {
            OfferAction::Accept {
                rollback_first: true,
            }
        } else {
            OfferAction::Ignore
        }
    }

    /// Whether the last remote offer was ignored (then failures to add its candidates are
    /// expected and not errors).
    pub fn ignoring_offer(&self) -> bool {
        self.ignoring_offer
    }

    /// The role, once known.
    pub fn polite(&self) -> Option<bool> {
        self.polite
    }
}

/// The session id from an SDP `o=` line (`o=- 4611731400430051336 2 IN IP4 127.0.0.1`).
pub fn session_id(sdp: &str) -> Option<u64> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("o="))
        .and_then(|o| o.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "v=0\r\no=- 100 2 IN IP4 127.0.0.1\r\n";
    const B: &str = "v=0\r\no=- 200 2 IN IP4 127.0.0.1\r\n";

    #[test]
    fn duet_roles() {
        let offerer = Negotiator::new(Some(true));
        let answerer = Negotiator::new(Some(false));
        assert!(offerer.should_offer_on_ready());
        assert!(!answerer.should_offer_on_ready());
    }

    #[test]
    fn impolite_ignores_polite_rolls_back() {
        let mut impolite = Negotiator::new(Some(true));
        let mut polite = Negotiator::new(Some(false));
        assert_eq!(impolite.on_remote_offer(B, true), OfferAction::Ignore);
        assert!(impolite.ignoring_offer());
        assert_eq!(
            polite.on_remote_offer(A, true),
            OfferAction::Accept {
                rollback_first: true
            }
        );
        assert_eq!(
            polite.on_remote_offer(A, false),
            OfferAction::Accept {
                rollback_first: false
            }
        );
    }

    #[test]
    fn seed_glare_picks_exactly_one_polite_side() {
        let mut a = Negotiator::new(None);
        let mut b = Negotiator::new(None);
        assert!(a.should_offer_on_ready() && b.should_offer_on_ready());
        a.local_offer_made(A);
        b.local_offer_made(B);
        let ra = a.on_remote_offer(B, true);
        let rb = b.on_remote_offer(A, true);
        assert_eq!(ra, OfferAction::Ignore);
        assert_eq!(
            rb,
            OfferAction::Accept {
                rollback_first: true
            }
        );
        assert_eq!(session_id(A), Some(100));
    }
}
