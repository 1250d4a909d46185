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

/// The video codec a session description prefers among `ours` (the codecs this side offers):
/// the first payload type on its `m=video` line whose `a=rtpmap` names one of them. An offer lists its
/// preference first, and an answer the codec its side will send; duet sends the same one, so
/// both directions use one codec. `None` when there is no video section or no common codec.
#[must_use]
pub fn preferred_video_codec(sdp: &str, ours: &[media::VideoCodec]) -> Option<media::VideoCodec> {
    let mut lines = sdp.lines().map(str::trim_end);
    let order: Vec<&str> = loop {
        let line = lines.next()?;
        if let Some(rest) = line.strip_prefix("m=video ") {
            // m=video <port> <proto> <fmt> <fmt> ...
            break rest.split_whitespace().skip(2).collect();
        }
    };
    let mut names = std::collections::HashMap::new();
    for line in lines {
        if line.starts_with("m=") {
            break;
        }
        if let Some(rest) = line.strip_prefix("a=rtpmap:")
            && let Some((pt, encoding)) = rest.split_once(' ')
        {
            let name = encoding.split('/').next().unwrap_or_default();
            names.insert(pt, name);
        }
    }
    order
        .iter()
        .filter_map(|pt| names.get(pt))
        .filter_map(|name| media::VideoCodec::from_name(name))
        .find(|codec| ours.contains(codec))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIREFOX_OFFER: &str = "v=0\r\no=mozilla 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 109 0\r\na=rtpmap:109 opus/48000/2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 120 124 121 125 126 127 97 98\r\n\
        a=rtpmap:120 VP8/90000\r\na=rtpmap:124 rtx/90000\r\na=rtpmap:121 VP9/90000\r\n\
        a=rtpmap:126 H264/90000\r\na=rtpmap:97 H264/90000\r\n";

    #[test]
    fn the_first_video_codec_duet_speaks_wins() {
        use media::VideoCodec::{H264, Vp8};
        const ALL: [media::VideoCodec; 2] = media::VideoCodec::ALL;
        assert_eq!(preferred_video_codec(FIREFOX_OFFER, &ALL), Some(Vp8));
        // Only what this side offers counts: an H.264-only duet picks H.264 from the same
        // offer, a VP8-only one VP8 from an H.264-first offer.
        assert_eq!(preferred_video_codec(FIREFOX_OFFER, &[H264]), Some(H264));
        let h264_first =
            FIREFOX_OFFER.replace("SAVPF 120 124 121 125 126", "SAVPF 126 120 124 121 125");
        assert_eq!(preferred_video_codec(&h264_first, &ALL), Some(H264));
        assert_eq!(preferred_video_codec(&h264_first, &[Vp8]), Some(Vp8));
        // VP9 first (not spoken) is skipped; a codec name is matched case-insensitively.
        let vp9_first =
            "m=video 9 RTP/SAVPF 121 120\na=rtpmap:121 VP9/90000\na=rtpmap:120 vp8/90000\n";
        assert_eq!(preferred_video_codec(vp9_first, &ALL), Some(Vp8));
        // The audio section's rtpmaps do not count, nor do a later section's.
        let audio_only = "m=audio 9 RTP/SAVPF 96\na=rtpmap:96 VP8/90000\nm=video 9 RTP/SAVPF 97\nm=application 9 x 96\na=rtpmap:97 H264/90000\n";
        assert_eq!(preferred_video_codec(audio_only, &ALL), None);
        assert_eq!(
            preferred_video_codec("m=video 9 RTP/SAVPF 121\na=rtpmap:121 VP9/90000", &ALL),
            None
        );
        assert_eq!(preferred_video_codec("", &ALL), None);
        assert_eq!(preferred_video_codec("m=video", &ALL), None);
        assert_eq!(
            preferred_video_codec("m=video 9 RTP/SAVPF 120\na=rtpmap:120", &ALL),
            None
        );
    }

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
