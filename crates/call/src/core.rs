//! `CallCore`: every rule of a call's signalling and negotiation, as a pure state machine.
//!
//! No tokio, no webrtc-rs, no clock: the owner feeds [`Input`]s with the current time through
//! [`CallCore::handle`] and carries out the [`Output`]s it takes from [`CallCore::poll`] — send a
//! signalling message, build or close the peer connection, create an offer or an answer, apply
//! a remote description, add a candidate, start media, tell the user, arm a timer. Results of
//! those operations come back as inputs (`local-offer`, `remote-applied`, ...). The session
//! (`session/`) is the shell that does this on webrtc-rs; the web page's
//! `assets/web/negotiation.js` implements the same rules, and both are run against the same
//! scenario table (`tests/scenarios/*.json`), so the two cannot drift.
//!
//! What the core decides:
//! - roles and glare ([`Negotiator`]): who offers on `ready`, who rolls back, who ignores;
//! - an offer that arrives before `ready` is accepted (the sender saw `ready` first), and a
//!   `ready` that arrives once negotiation has begun does not tear the call down;
//! - remote candidates are queued until the remote description is applied (at most
//!   [`MAX_PENDING_CANDIDATES`]); a malformed one is ignored with a warning;
//! - which server error codes end the call ([`ends_call`]), on signal's typed [`ErrorCode`];
//! - `ready` and `peer-left`: a new peer connection for a new person, back to waiting when
//!   they leave;
//! - the connection's health: `disconnected` for [`DISCONNECT_GRACE`] or `failed` makes the
//!   side that offered restart ICE (both show "reconnecting"); a restart that does not succeed
//!   within [`RESTART_TIMEOUT`] ends the call; a first connection that does not succeed within
//!   [`CONNECT_TIMEOUT`] ends it with a reason drawn from what ICE gathered;
//! - the signalling connection: when it drops the call goes on (media does not need it), the
//!   owner reconnects with backoff and joins again with the same session id (the server holds
//!   the seat), messages wait meanwhile, and an offer that may have been lost is sent again
//!   (also when the *other* side comes back: `peer-resumed`); after [`SIGNAL_GIVE_UP`] the
//!   call ends.

use std::collections::{BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use signal::protocol::{ClientMessage, IceServer};
use signal::{ErrorCode, ServerMessage};

use crate::error::CallError;
use crate::events::CallState;
use crate::negotiation::{Negotiator, OfferAction};
use crate::stats::{Rates, Totals};

/// Remote candidates kept while the remote description is not applied yet.
pub const MAX_PENDING_CANDIDATES: usize = 256;
/// How long a first connection may take before the call fails with a reason.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `disconnected` may last before the offerer restarts ICE.
pub const DISCONNECT_GRACE: Duration = Duration::from_secs(2);
/// How long a restart may take before the call ends.
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the signalling connection may stay lost (while reconnecting) before the call ends.
pub const SIGNAL_GIVE_UP: Duration = Duration::from_secs(30);
/// The longest wait between two reconnection attempts.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(4);
/// Signalling messages kept while the connection is being restored.
pub const MAX_OUTBOX: usize = 128;

/// A session description as browsers and webrtc-rs serialise it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// `offer` or `answer`.
    #[serde(rename = "type")]
    pub kind: SdpKind,
    /// The SDP text.
    pub sdp: String,
}

/// The kind of a [`Description`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpKind {
    Offer,
    Answer,
}

/// The peer connection's state, as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PcState {
    New,
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

/// The core's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timer {
    /// The first connection did not succeed in time.
    Connect,
    /// `disconnected` lasted long enough to restart.
    DisconnectGrace,
    /// A restart did not succeed in time.
    Restart,
    /// The signalling connection could not be restored in time.
    SignalGiveUp,
}

/// Something that happened, for [`CallCore::handle`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Input {
    /// The signalling connection is open and the join was sent.
    Joined,
    /// A message from the signal server.
    Signal(ServerMessage),
    /// The signalling connection closed, or an attempt to restore it failed.
    SignalLost {
        /// Why, for people.
        reason: String,
    },
    /// A new signalling connection is open and the join (with the session id) was sent.
    SignalRestored,
    /// The offer asked for was created and applied locally.
    LocalOffer(Description),
    /// The answer asked for was created and applied locally.
    LocalAnswer(Description),
    /// The remote description asked for was applied.
    RemoteApplied {
        /// Which.
        kind: SdpKind,
    },
    /// The remote description was refused by the WebRTC stack.
    RemoteRejected {
        /// Which.
        kind: SdpKind,
        /// The stack's reason.
        reason: String,
    },
    /// A local operation (creating the peer, an offer, an answer, a rollback) failed.
    OperationFailed {
        /// What was being done, e.g. "creating an offer".
        what: String,
        /// The stack's reason.
        reason: String,
    },
    /// The stack refused a remote candidate the core passed on.
    CandidateRejected {
        /// The stack's reason.
        reason: String,
    },
    /// A local ICE candidate (browser JSON: `candidate`, `sdpMid`, `sdpMLineIndex`).
    LocalCandidate(Value),
    /// Local gathering finished.
    GatheringComplete,
    /// The peer connection's state changed.
    PcState(PcState),
    /// The owner hangs up.
    HangUp,
    /// A timer armed by [`Output::ArmTimer`] fired.
    Timer(Timer),
}

/// Something the owner must do, from [`CallCore::poll`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Output {
    /// Send this to the signal server.
    Send(ClientMessage),
    /// Close any peer connection and build a new one (with local tracks) for a new person.
    NewPeer {
        /// The server's `offerer` flag, if it sent one.
        offerer: Option<bool>,
        /// STUN/TURN servers the signal server handed out with `ready` (used besides the ones
        /// configured locally).
        #[serde(default, rename = "iceServers", skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
    },
    /// Close the peer connection and stop its media.
    ClosePeer,
    /// Create an offer and apply it locally; answer with [`Input::LocalOffer`].
    CreateOffer {
        /// With new ICE credentials (an ICE restart).
        ice_restart: bool,
    },
    /// Roll the local offer back (glare: the other side's offer wins).
    Rollback,
    /// Apply this remote description; answer with [`Input::RemoteApplied`] or
    /// [`Input::RemoteRejected`].
    SetRemote(Description),
    /// Create an answer and apply it locally; answer with [`Input::LocalAnswer`].
    CreateAnswer,
    /// Add this remote candidate (browser JSON).
    AddCandidate(Value),
    /// The connection is up: start sending and receiving media.
    StartMedia,
    /// The call's state changed (a terminal state ends the session).
    State(CallState),
    /// A problem the user may want to know about that does not end the call.
    Warning(String),
    /// Feed [`Input::Timer`] after this long (re-arming replaces the previous deadline).
    ArmTimer {
        /// Which.
        timer: Timer,
        /// After how long, ms.
        in_ms: u64,
    },
    /// Forget this timer.
    CancelTimer(Timer),
    /// Ask the signalling connection for a sign of life now: the media path broke, and a
    /// network change that breaks it often breaks the signalling path too, silently. A
    /// connection that does not answer soon is then reported as [`Input::SignalLost`] (and
    /// restored, so the ICE restart can get through). Carried out where the transport can
    /// (the native client pings); a no-op elsewhere.
    ProbeSignal,
    /// Open a new signalling connection after this long and join again with the same session
    /// id; answer with [`Input::SignalRestored`] or [`Input::SignalLost`].
    ReconnectSignal {
        /// After how long, ms.
        in_ms: u64,
    },
}

/// Whether an error the server sent ends the call (`true`) or is only a warning.
///
/// Ending: the room cannot be joined (full, invalid name, needs a token, too many rooms) or
/// a message was too large (the server closes the connection after it). Not ending: a dropped
/// message (rate limit), not being in the room (a late message after leaving), a message the
/// server could not parse, and any code this version does not know.
#[must_use]
pub fn ends_call(code: Option<ErrorCode>) -> bool {
    matches!(
        code,
        Some(
            ErrorCode::RoomFull
                | ErrorCode::InvalidRoom
                | ErrorCode::Forbidden
                | ErrorCode::TooManyRooms
                | ErrorCode::TooLarge
        )
    )
}

/// What the core needs to know of the call's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreConfig {
    /// The room.
    pub room: String,
    /// Ignore remote candidates that are not loopback (both peers on one machine).
    #[serde(default)]
    pub loopback_only: bool,
    /// Whether a STUN server was configured.
    #[serde(default)]
    pub has_stun: bool,
    /// Whether a TURN server was configured.
    #[serde(default)]
    pub has_turn: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signaling {
    Stable,
    HaveLocalOffer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    /// Not connected yet.
    Connecting,
    Connected,
    /// Connected before, now disconnected or failed; maybe restarting.
    Reconnecting,
}

#[derive(Debug)]
struct Peer {
    negotiator: Negotiator,
    signaling: Signaling,
    /// A remote description has been applied (candidates can go straight in).
    has_remote: bool,
    /// The remote description being applied.
    applying: Option<SdpKind>,
    /// The answer to our offer is being applied: candidates wait for it too.
    pending_candidates: Vec<Value>,
    health: Health,
    /// Whether this side made the offer that set the call up (it restarts ICE).
    we_offered: bool,
    /// Local candidate types gathered ("host", "srflx", "relay"), for the failure reason.
    gathered: Vec<String>,
    /// A restart offer is wanted but an offer is already in flight.
    restart_wanted: bool,
    /// The media counters at the last stats tick of this peer connection.
    last_totals: Option<Totals>,
}

impl Peer {
    /// Whether negotiation has begun (an offer made or taken) or the call is up.
    fn negotiating(&self) -> bool {
        self.signaling != Signaling::Stable
            || self.has_remote
            || self.applying.is_some()
            || self.health != Health::Connecting
    }

    fn new(offerer: Option<bool>) -> Self {
        Self {
            negotiator: Negotiator::new(offerer),
            signaling: Signaling::Stable,
            has_remote: false,
            applying: None,
            pending_candidates: Vec::new(),
            health: Health::Connecting,
            we_offered: false,
            gathered: Vec::new(),
            restart_wanted: false,
            last_totals: None,
        }
    }
}

/// Counters of what the core decided, for stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CoreCounters {
    /// Offer collisions where this side ignored the other's offer.
    pub glare_ignored: u64,
    /// Offer collisions where this side rolled its own offer back.
    pub glare_rollbacks: u64,
    /// ICE restarts this side started.
    pub ice_restarts: u64,
    /// Remote candidates ignored as malformed.
    pub bad_candidates: u64,
    /// Times the signalling connection was restored after it dropped.
    pub signal_reconnects: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct CallCore {
    config: CoreConfig,
    peer: Option<Peer>,
    out: VecDeque<Output>,
    armed: BTreeSet<Timer>,
    ended: bool,
    counters: CoreCounters,
    /// Whether the signalling connection is up (sends go out at once) or being restored
    /// (sends wait in `outbox`).
    signal_up: bool,
    outbox: VecDeque<ClientMessage>,
    reconnect_attempts: u32,
    /// Our last local offer, to send again if it may have been lost with the connection.
    last_offer: Option<Description>,
}

impl CallCore {
    /// A core for one session in `config.room`.
    #[must_use]
    pub fn new(config: CoreConfig) -> Self {
        Self {
            config,
            peer: None,
            out: VecDeque::new(),
            armed: BTreeSet::new(),
            ended: false,
            signal_up: true,
            outbox: VecDeque::new(),
            reconnect_attempts: 0,
            last_offer: None,
            counters: CoreCounters::default(),
        }
    }

    /// The next thing to do, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Whether the call reached a terminal state (ended or failed).
    #[must_use]
    pub fn is_over(&self) -> bool {
        self.ended
    }

    /// What the core decided so far.
    #[must_use]
    pub fn counters(&self) -> CoreCounters {
        self.counters
    }

    /// Takes this second's media counters of the current peer connection and returns the
    /// rates since the previous tick; `None` on the first tick of a peer connection (a new
    /// peer starts from zero) or when there is none.
    pub fn stats_tick(&mut self, totals: Totals) -> Option<Rates> {
        let peer = self.peer.as_mut()?;
        let rates = peer
            .last_totals
            .as_ref()
            .map(|earlier| totals.rates_since(earlier));
        peer.last_totals = Some(totals);
        rates
    }

    /// Whether a peer connection exists (someone else is in the room).
    #[must_use]
    pub fn has_peer(&self) -> bool {
        self.peer.is_some()
    }

    /// Takes one input at `now`. Inputs after the call is over are ignored.
    pub fn handle(&mut self, input: Input, now: Instant) {
        let _ = now; // Timers are relative; kept for symmetry with the owner's clock.
        if self.ended {
            return;
        }
        match input {
            Input::Joined => {
                self.signal_up = true;
                self.state(CallState::WaitingForPeer);
            }
            Input::Signal(msg) => self.on_signal(msg),
            Input::SignalLost { reason } => self.on_signal_lost(reason),
            Input::SignalRestored => self.on_signal_restored(),
            Input::LocalOffer(desc) => self.on_local_offer(desc),
            Input::LocalAnswer(desc) => {
                if let Some(peer) = self.peer.as_mut() {
                    peer.signaling = Signaling::Stable;
                    let answer = description_value(&desc);
                    self.send(ClientMessage::Answer {
                        room: self.config.room.clone(),
                        answer,
                    });
                    self.maybe_restart();
                }
            }
            Input::RemoteApplied { kind } => self.on_remote_applied(kind),
            Input::RemoteRejected { kind, reason } => self.fail(CallError::BadRemote {
                what: kind_name(kind),
                reason,
            }),
            Input::OperationFailed { what, reason } => {
                self.fail(CallError::Negotiation(format!("{what}: {reason}")));
            }
            Input::CandidateRejected { reason } => {
                self.counters.bad_candidates += 1;
                self.warn(format!("ignored a candidate the other side sent: {reason}"));
            }
            Input::LocalCandidate(mut candidate) => {
                if self.peer.is_none() {
                    return;
                }
                if let Some(kind) = candidate
                    .get("candidate")
                    .and_then(Value::as_str)
                    .and_then(candidate_type)
                    && let Some(peer) = self.peer.as_mut()
                    && !peer.gathered.iter().any(|k| k == kind)
                {
                    peer.gathered.push(kind.to_owned());
                }
                // webrtc-rs leaves sdpMid empty; browsers want the bundled m-line's mid.
                if candidate.get("sdpMid").and_then(Value::as_str) == Some("") {
                    candidate["sdpMid"] = Value::String("0".into());
                }
                self.send(ClientMessage::Candidate {
                    room: self.config.room.clone(),
                    candidate: Some(candidate),
                });
            }
            Input::GatheringComplete => {
                if self.peer.is_some() {
                    self.send(ClientMessage::Candidate {
                        room: self.config.room.clone(),
                        candidate: None,
                    });
                }
            }
            Input::PcState(state) => self.on_pc_state(state),
            Input::HangUp => {
                self.send(ClientMessage::Leave {
                    room: self.config.room.clone(),
                });
                if self.peer.take().is_some() {
                    self.out.push_back(Output::ClosePeer);
                }
                self.finish(CallState::Ended);
            }
            Input::Timer(timer) => {
                if self.armed.remove(&timer) {
                    self.on_timer(timer);
                }
            }
        }
    }

    fn on_signal(&mut self, msg: ServerMessage) {
        match msg {
            ServerMessage::Ready {
                offerer,
                ice_servers,
                ..
            } => {
                let ice_servers = ice_servers.unwrap_or_default();
                let urls = || ice_servers.iter().flat_map(|s| s.urls.iter());
                self.config.has_stun |=
                    urls().any(|u| u.starts_with("stun:") || u.starts_with("stuns:"));
                self.config.has_turn |=
                    urls().any(|u| u.starts_with("turn:") || u.starts_with("turns:"));
                if self.peer.as_ref().is_some_and(Peer::negotiating) {
                    // The call is already being set up (the other side's offer came first) or
                    // runs (both rejoined a restarted server): a late `ready` must not tear
                    // it down.
                    return;
                }
                self.new_peer(offerer, ice_servers);
                if self
                    .peer
                    .as_ref()
                    .is_some_and(|p| p.negotiator.should_offer_on_ready())
                {
                    self.out
                        .push_back(Output::CreateOffer { ice_restart: false });
                }
            }
            ServerMessage::Offer { offer, .. } => match parse_description(offer, SdpKind::Offer) {
                Ok(desc) => self.on_remote_offer(desc),
                Err(e) => self.fail(e),
            },
            ServerMessage::Answer { answer, .. } => {
                match parse_description(answer, SdpKind::Answer) {
                    Ok(desc) => self.on_remote_answer(desc),
                    Err(e) => self.fail(e),
                }
            }
            ServerMessage::Candidate { candidate, .. } => self.on_remote_candidate(candidate),
            ServerMessage::PeerLeft { .. } => {
                if self.peer.take().is_some() {
                    self.out.push_back(Output::ClosePeer);
                }
                self.cancel_timers();
                self.state(CallState::PeerLeft);
                self.state(CallState::WaitingForPeer);
            }
            ServerMessage::PeerResumed { .. } => {
                // The other side's connection dropped and came back: what we sent meanwhile
                // may be lost. An offer still waiting for its answer goes again.
                self.resend_pending_offer();
                self.network_changed();
            }
            ServerMessage::Error { code, message } => {
                if ends_call(ErrorCode::from_wire(&code)) {
                    self.fail(CallError::Refused(message));
                } else {
                    self.warn(format!("signal server: {message}"));
                }
            }
        }
    }

    fn new_peer(&mut self, offerer: Option<bool>, ice_servers: Vec<IceServer>) {
        if self.peer.take().is_some() {
            self.out.push_back(Output::ClosePeer);
        }
        self.cancel_timers();
        self.peer = Some(Peer::new(offerer));
        self.out.push_back(Output::NewPeer {
            offerer,
            ice_servers,
        });
        self.state(CallState::Connecting);
        self.arm(Timer::Connect, CONNECT_TIMEOUT);
    }

    fn on_signal_lost(&mut self, reason: String) {
        if self.signal_up {
            self.signal_up = false;
            self.reconnect_attempts = 0;
            self.arm(Timer::SignalGiveUp, SIGNAL_GIVE_UP);
            self.warn(format!(
                "lost the connection to the signal server ({reason}); reconnecting"
            ));
            // The first attempt at once: a dropped connection usually comes back right away.
            self.out.push_back(Output::ReconnectSignal { in_ms: 0 });
            return;
        }
        // An attempt failed: try again, waiting longer each time.
        self.reconnect_attempts += 1;
        let delay =
            Duration::from_millis(250 << self.reconnect_attempts.min(5)).min(MAX_RECONNECT_DELAY);
        self.out.push_back(Output::ReconnectSignal {
            in_ms: delay.as_millis() as u64,
        });
    }

    fn on_signal_restored(&mut self) {
        if self.signal_up {
            return;
        }
        self.signal_up = true;
        self.reconnect_attempts = 0;
        self.counters.signal_reconnects += 1;
        self.cancel(Timer::SignalGiveUp);
        let queued = std::mem::take(&mut self.outbox);
        let offer_queued = queued
            .iter()
            .any(|m| matches!(m, ClientMessage::Offer { .. }));
        for msg in queued {
            self.out.push_back(Output::Send(msg));
        }
        if !offer_queued {
            self.resend_pending_offer();
        }
        self.network_changed();
    }

    /// A signalling connection that dropped and came back (ours, or the other side's:
    /// `peer-resumed`) while the media path is `disconnected` says that a network changed:
    /// waiting out the rest of the grace period would only delay the ICE restart.
    fn network_changed(&mut self) {
        let disconnected = self.armed.contains(&Timer::DisconnectGrace)
            && self
                .peer
                .as_ref()
                .is_some_and(|p| p.health == Health::Connected);
        if disconnected {
            self.cancel(Timer::DisconnectGrace);
            self.lost_connection();
        }
    }

    /// Sends our offer again if it still waits for an answer.
    fn resend_pending_offer(&mut self) {
        let pending = self
            .peer
            .as_ref()
            .is_some_and(|p| p.signaling == Signaling::HaveLocalOffer && p.applying.is_none());
        if let (true, Some(desc)) = (pending, self.last_offer.clone()) {
            let offer = description_value(&desc);
            self.send(ClientMessage::Offer {
                room: self.config.room.clone(),
                offer,
            });
        }
    }

    fn on_local_offer(&mut self, desc: Description) {
        let Some(peer) = self.peer.as_mut() else {
            return;
        };
        peer.negotiator.local_offer_made(&desc.sdp);
        peer.signaling = Signaling::HaveLocalOffer;
        self.last_offer = Some(desc.clone());
        let offer = description_value(&desc);
        self.send(ClientMessage::Offer {
            room: self.config.room.clone(),
            offer,
        });
    }

    fn on_remote_offer(&mut self, desc: Description) {
        if self.peer.is_none() {
            // The other side saw `ready` (or was told to offer) before we did: take its offer.
            self.new_peer(Some(false), Vec::new());
        }
        let Some(peer) = self.peer.as_mut() else {
            return;
        };
        let have_local_offer = peer.signaling == Signaling::HaveLocalOffer;
        match peer.negotiator.on_remote_offer(&desc.sdp, have_local_offer) {
            OfferAction::Ignore => {
                self.counters.glare_ignored += 1;
            }
            OfferAction::Accept { rollback_first } => {
                if rollback_first {
                    self.counters.glare_rollbacks += 1;
                    peer.signaling = Signaling::Stable;
                    self.out.push_back(Output::Rollback);
                }
                peer.applying = Some(SdpKind::Offer);
                if peer.health == Health::Connecting {
                    peer.we_offered = false;
                }
                self.out.push_back(Output::SetRemote(desc));
            }
        }
    }

    fn on_remote_answer(&mut self, desc: Description) {
        let Some(peer) = self.peer.as_mut() else {
            return;
        };
        if peer.signaling != Signaling::HaveLocalOffer {
            // A stale answer to an offer we rolled back: harmless.
            return;
        }
        peer.applying = Some(SdpKind::Answer);
        self.out.push_back(Output::SetRemote(desc));
    }

    fn on_remote_applied(&mut self, kind: SdpKind) {
        let Some(peer) = self.peer.as_mut() else {
            return;
        };
        peer.applying = None;
        peer.has_remote = true;
        for candidate in std::mem::take(&mut peer.pending_candidates) {
            self.out.push_back(Output::AddCandidate(candidate));
        }
        match kind {
            SdpKind::Offer => self.out.push_back(Output::CreateAnswer),
            SdpKind::Answer => {
                peer.signaling = Signaling::Stable;
                if peer.health == Health::Connecting {
                    peer.we_offered = true;
                }
                self.maybe_restart();
            }
        }
    }

    fn on_remote_candidate(&mut self, candidate: Option<Value>) {
        let Some(peer) = self.peer.as_mut() else {
            return;
        };
        let line = match &candidate {
            None | Some(Value::Null) => return, // end of candidates
            Some(v) => v
                .get("candidate")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        let Some(line) = line else {
            self.counters.bad_candidates += 1;
            self.warn("ignored a candidate the other side sent: no `candidate` field".into());
            return;
        };
        if line.is_empty() {
            return; // end of candidates, browser style
        }
        if let Err(reason) = check_candidate(&line) {
            self.counters.bad_candidates += 1;
            self.warn(format!("ignored a candidate the other side sent: {reason}"));
            return;
        }
        if self.config.loopback_only && !is_loopback_candidate(&line) {
            return;
        }
        let Some(candidate) = candidate else { return };
        if !peer.has_remote || peer.applying.is_some() {
            if peer.pending_candidates.len() < MAX_PENDING_CANDIDATES {
                peer.pending_candidates.push(candidate);
            }
            return;
        }
        self.out.push_back(Output::AddCandidate(candidate));
    }

    fn on_pc_state(&mut self, state: PcState) {
        let Some(peer) = self.peer.as_mut() else {
            return;
        };
        match state {
            PcState::Connected => {
                let first = peer.health == Health::Connecting;
                let back = peer.health == Health::Reconnecting;
                peer.health = Health::Connected;
                if first {
                    self.cancel(Timer::Connect);
                    self.out.push_back(Output::StartMedia);
                    self.state(CallState::Connected);
                } else {
                    self.cancel(Timer::DisconnectGrace);
                    if back {
                        self.cancel(Timer::Restart);
                        self.state(CallState::Connected);
                    }
                }
            }
            PcState::Disconnected => {
                if peer.health == Health::Connected {
                    self.arm(Timer::DisconnectGrace, DISCONNECT_GRACE);
                    if self.signal_up {
                        self.out.push_back(Output::ProbeSignal);
                    }
                }
            }
            PcState::Failed => match peer.health {
                Health::Connecting => {
                    let reason = self.no_path_reason();
                    self.fail(CallError::NoPath(reason));
                }
                Health::Connected | Health::Reconnecting => self.lost_connection(),
            },
            PcState::New | PcState::Connecting | PcState::Closed => {}
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        if timer == Timer::SignalGiveUp {
            if !self.signal_up {
                self.fail(CallError::Signal(
                    "the connection to the signal server was lost and could not be restored".into(),
                ));
            }
            return;
        }
        let Some(peer) = self.peer.as_ref() else {
            return;
        };
        match timer {
            Timer::Connect => {
                if peer.health == Health::Connecting {
                    let reason = self.no_path_reason();
                    self.fail(CallError::NoPath(reason));
                }
            }
            Timer::DisconnectGrace => {
                if peer.health == Health::Connected {
                    self.lost_connection();
                }
            }
            Timer::SignalGiveUp => {}
            Timer::Restart => {
                if peer.health == Health::Reconnecting {
                    self.fail(CallError::NoPath(
                        "the connection to the other side was lost and could not be restored"
                            .into(),
                    ));
                }
            }
        }
    }

    /// The media path is gone: show it, and have the side that offered restart ICE.
    fn lost_connection(&mut self) {
        let Some(peer) = self.peer.as_mut() else {
            return;
        };
        let first_loss = peer.health != Health::Reconnecting;
        peer.health = Health::Reconnecting;
        if first_loss {
            self.state(CallState::Reconnecting);
            self.arm(Timer::Restart, RESTART_TIMEOUT);
        }
        if let Some(peer) = self.peer.as_mut()
            && peer.we_offered
        {
            peer.restart_wanted = true;
        }
        self.maybe_restart();
    }

    /// Sends the restart offer once no offer is in flight.
    fn maybe_restart(&mut self) {
        let Some(peer) = self.peer.as_mut() else {
            return;
        };
        if peer.restart_wanted && peer.signaling == Signaling::Stable && peer.applying.is_none() {
            peer.restart_wanted = false;
            self.counters.ice_restarts += 1;
            self.out
                .push_back(Output::CreateOffer { ice_restart: true });
        }
    }

    /// Why no path was found, from what was configured and gathered.
    fn no_path_reason(&self) -> String {
        let gathered = self.peer.as_ref().map_or(&[][..], |p| &p.gathered[..]);
        let has = |kind: &str| gathered.iter().any(|k| k == kind);
        if has("relay") {
            "no connection could be made, not even through the relay (TURN) server".into()
        } else if self.config.has_turn {
            "the relay (TURN) server could not be reached: UDP seems blocked on this network, \
             and duet needs a TURN server reachable over UDP"
                .into()
        } else if self.config.has_stun && !has("srflx") {
            "the STUN server did not answer: UDP seems blocked on this network; duet needs a \
             TURN server reachable over UDP"
                .into()
        } else {
            "no relay (TURN) server was offered and a direct connection failed (both sides may \
             be behind strict NATs)"
                .into()
        }
    }

    fn cancel_timers(&mut self) {
        for timer in [Timer::Connect, Timer::DisconnectGrace, Timer::Restart] {
            self.cancel(timer);
        }
    }

    fn cancel(&mut self, timer: Timer) {
        if self.armed.remove(&timer) {
            self.out.push_back(Output::CancelTimer(timer));
        }
    }

    fn arm(&mut self, timer: Timer, after: Duration) {
        self.armed.insert(timer);
        self.out.push_back(Output::ArmTimer {
            timer,
            in_ms: after.as_millis() as u64,
        });
    }

    fn send(&mut self, msg: ClientMessage) {
        if self.signal_up {
            self.out.push_back(Output::Send(msg));
        } else {
            if self.outbox.len() >= MAX_OUTBOX {
                self.outbox.pop_front();
            }
            self.outbox.push_back(msg);
        }
    }

    fn state(&mut self, state: CallState) {
        self.out.push_back(Output::State(state));
    }

    fn warn(&mut self, message: String) {
        self.out.push_back(Output::Warning(message));
    }

    fn fail(&mut self, error: CallError) {
        if self.peer.take().is_some() {
            self.out.push_back(Output::ClosePeer);
        }
        self.finish(CallState::Failed(error.to_string()));
    }

    fn finish(&mut self, state: CallState) {
        self.ended = true;
        self.cancel_timers();
        self.cancel(Timer::SignalGiveUp);
        self.state(state);
    }
}

fn kind_name(kind: SdpKind) -> &'static str {
    match kind {
        SdpKind::Offer => "offer",
        SdpKind::Answer => "answer",
    }
}

fn description_value(desc: &Description) -> Value {
    serde_json::to_value(desc).unwrap_or(Value::Null)
}

/// A remote description of the `expected` kind, or why it is unusable.
fn parse_description(value: Value, expected: SdpKind) -> Result<Description, CallError> {
    let what = kind_name(expected);
    let desc: Description = serde_json::from_value(value).map_err(|e| CallError::BadRemote {
        what,
        reason: e.to_string(),
    })?;
    if desc.kind != expected {
        return Err(CallError::BadRemote {
            what,
            reason: format!("type is {}", kind_name(desc.kind)),
        });
    }
    if !desc.sdp.starts_with("v=0") {
        return Err(CallError::BadRemote {
            what,
            reason: "the SDP does not start with v=0".into(),
        });
    }
    Ok(desc)
}

/// Checks the syntax of a candidate line (`candidate:` prefix optional):
/// `foundation component transport priority address port typ type ...`.
///
/// # Errors
/// What is wrong with it, for a warning.
pub fn check_candidate(line: &str) -> Result<(), String> {
    let s = line.strip_prefix("candidate:").unwrap_or(line);
    let f: Vec<&str> = s.split_whitespace().collect();
    if f.len() < 8 {
        return Err(format!("{} fields, a candidate has at least 8", f.len()));
    }
    if f[1].parse::<u16>().is_err() {
        return Err(format!("bad component {:?}", f[1]));
    }
    if !matches!(f[2].to_ascii_lowercase().as_str(), "udp" | "tcp") {
        return Err(format!("bad transport {:?}", f[2]));
    }
    if f[3].parse::<u32>().is_err() {
        return Err(format!("bad priority {:?}", f[3]));
    }
    let address_ok = f[4].parse::<IpAddr>().is_ok()
        || (f[4].ends_with(".local")
            && f[4]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    if !address_ok {
        return Err(format!("bad address {:?}", f[4]));
    }
    if f[5].parse::<u16>().is_err() {
        return Err(format!("bad port {:?}", f[5]));
    }
    if f[6] != "typ" || !matches!(f[7], "host" | "srflx" | "prflx" | "relay") {
        return Err(format!("bad type {:?} {:?}", f[6], f[7]));
    }
    Ok(())
}

/// The candidate's type (`host`, `srflx`, `prflx`, `relay`).
#[must_use]
pub fn candidate_type(line: &str) -> Option<&str> {
    let mut it = line.split_whitespace();
    it.find(|f| *f == "typ")?;
    it.next()
}

/// The connection address of a candidate line, if it is an IP (mDNS names are not).
#[must_use]
pub fn candidate_ip(candidate: &str) -> Option<IpAddr> {
    let s = candidate.strip_prefix("candidate:").unwrap_or(candidate);
    s.split_whitespace().nth(4)?.parse().ok()
}

/// Whether a remote candidate may be used when the call is restricted to loopback.
#[must_use]
pub fn is_loopback_candidate(candidate: &str) -> bool {
    candidate_ip(candidate).is_some_and(|ip| ip.is_loopback())
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
