//! The ChannelData fast path: media on a channel the engine has bound is relayed by signal's
//! socket wrappers themselves, both ways, without a trip through the `turn` engine.
//!
//! Calls send nearly all their media as ChannelData once ICE has bound a channel. The engine
//! relays each such datagram by copying it into a fresh `Vec`, building a request context
//! (`Arc` and `String` clones) and taking two async locks, and each datagram from a peer by
//! taking another lock and copying it into a new ChannelData `Vec`. The fast path looks the
//! channel up under one short lock and sends from the buffer it received into.
//!
//! The engine stays the authority over what is bound:
//! - a binding enters an allocation's [`Channels`] only when the gate sees the engine answer
//!   a ChannelBind request with success (and the next success refreshes it);
//! - it leaves the fast path [`LAPSE_MARGIN`] before the engine's own timer removes it;
//! - an allocation the engine closes stops its fast path at once ([`Channels::close`]).
//!
//! Everything else still goes to the engine: every request, Send and Data indications,
//! ChannelData on a channel this table does not know (the engine answers those as before).
//! The peer policy and the per-allocation byte rate apply on the fast path as on the other.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// A channel binding's lifetime: the engine's (its `channel_bind_timeout`, 10 minutes when
/// left at zero as signal does; RFC 8656 §12).
pub(super) const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);

/// A binding leaves the fast path this long before the engine's timer removes it, so the
/// engine decides at the edge (its timer starts a moment before the gate sees its answer).
pub(super) const LAPSE_MARGIN: Duration = Duration::from_secs(1);

/// Channel numbers (RFC 8656 §12; the engine accepts up to 0x7FFF, as RFC 5766 did).
const CHANNELS: std::ops::RangeInclusive<u16> = 0x4000..=0x7FFF;

/// The ChannelData header: channel number and length, two octets each.
pub(super) const HEADER: usize = 4;

/// Bindings a client may have asked for and not been answered yet, at most; more are
/// forgotten (a flood of unanswered requests), and those channels take the engine's path.
const MAX_PENDING_BINDS: usize = 4096;

/// The channel number and application data of a ChannelData message (RFC 8656 §12.4), when
/// `datagram` is one. Trailing octets (padding on a stream) are ignored.
pub(super) fn parse(datagram: &[u8]) -> Option<(u16, &[u8])> {
    let header = datagram.get(..HEADER)?;
    let number = u16::from_be_bytes([header[0], header[1]]);
    if !CHANNELS.contains(&number) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    datagram
        .get(HEADER..HEADER + len)
        .map(|data| (number, data))
}

/// Frames `len` octets of data, already at `frame[HEADER..HEADER + len]`, as ChannelData on
/// channel `number`, padded to a multiple of four (required on a stream, harmless on UDP, and
/// what the engine sends); returns the frame's length. `frame` must hold `HEADER + len + 3`
/// octets and `len` must fit 16 bits.
pub(super) fn frame(frame: &mut [u8], number: u16, len: usize) -> usize {
    frame[..2].copy_from_slice(&number.to_be_bytes());
    frame[2..HEADER].copy_from_slice(&(len as u16).to_be_bytes());
    let padded = HEADER + ((len + 3) & !3);
    frame[HEADER + len..padded].fill(0);
    padded
}

#[derive(Debug, Clone, Copy)]
struct Binding {
    number: u16,
    peer: SocketAddr,
    lapses: Instant,
}

/// Where an allocation's client is: its address on the listener, and how to send to it.
pub(super) struct Route<W> {
    pub client: SocketAddr,
    pub wire: W,
}

/// One allocation's fast path: its client's route (set once the engine granted the
/// allocation) and its channel bindings.
pub(super) struct Channels<W> {
    route: OnceLock<Route<W>>,
    bindings: Mutex<Vec<Binding>>,
    closed: AtomicBool,
}

impl<W> Default for Channels<W> {
    fn default() -> Self {
        Self {
            route: OnceLock::new(),
            bindings: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }
}

impl<W> Channels<W> {
    fn bindings(&self) -> MutexGuard<'_, Vec<Binding>> {
        self.bindings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the client's route, once; later calls (another gate naming the same relay) are
    /// ignored and return false.
    pub fn set_route(&self, route: Route<W>) -> bool {
        self.route.set(route).is_ok()
    }

    /// The client's route, while the allocation is open.
    pub fn route(&self) -> Option<&Route<W>> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        self.route.get()
    }

    /// Records the engine's success answer to a ChannelBind of `number` to `peer`, seen at
    /// `now` (a new binding, or the refresh of one).
    pub fn bind(&self, number: u16, peer: SocketAddr, now: Instant) {
        let lapses = now + CHANNEL_LIFETIME - LAPSE_MARGIN;
        let mut bindings = self.bindings();
        bindings.retain(|b| b.lapses > now && b.number != number && b.peer != peer);
        bindings.push(Binding {
            number,
            peer,
            lapses,
        });
    }

    /// The peer channel `number` is bound to at `now`, while the allocation is open.
    pub fn peer(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        self.live(now, |b| b.number == number).map(|b| b.peer)
    }

    /// The channel bound to `peer` at `now`, while the allocation is open.
    pub fn number(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        self.live(now, |b| b.peer == peer).map(|b| b.number)
    }

    /// The binding `which` picks, if it has not lapsed at `now` and the allocation is open.
    fn live(&self, now: Instant, which: impl Fn(&Binding) -> bool) -> Option<Binding> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        self.bindings()
            .iter()
            .find(|b| b.lapses > now && which(b))
            .copied()
    }

    /// The engine closed the allocation: nothing more takes the fast path.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.bindings().clear();
    }
}

/// A request: the client and the transaction.
type Asked = (SocketAddr, [u8; 12]);
/// A binding asked for: the channel number and the peer.
type Bind = (u16, SocketAddr);

/// ChannelBind requests the gate let through, until the engine answers them.
#[derive(Default)]
pub(super) struct PendingBinds(Mutex<HashMap<Asked, Bind>>);

impl PendingBinds {
    fn lock(&self) -> MutexGuard<'_, HashMap<Asked, Bind>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn expect(&self, client: SocketAddr, transaction: [u8; 12], number: u16, peer: SocketAddr) {
        if !CHANNELS.contains(&number) {
            return;
        }
        let mut pending = self.lock();
        if pending.len() >= MAX_PENDING_BINDS {
            pending.clear();
        }
        pending.insert((client, transaction), (number, peer));
    }

    /// The request the engine answered (to `client`, in `transaction`), if one was expected.
    pub fn answered(&self, client: SocketAddr, transaction: [u8; 12]) -> Option<Bind> {
        self.lock().remove(&(client, transaction))
    }
}

/// Datagrams the fast path took (relayed, or dropped by the peer policy or the byte rate as
/// the engine's path would), for [`super::TurnServer::fast_path_datagrams`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub to_peers: AtomicU64,
    pub to_clients: AtomicU64,
}

impl Counters {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    #[test]
    fn channel_data_parses_and_frames_back() {
        let mut buf = [0xAAu8; HEADER + 5 + 3];
        buf[HEADER..HEADER + 5].copy_from_slice(b"hello");
        let len = frame(&mut buf, 0x4001, 5);
        assert_eq!(len, 12, "padded to four");
        assert_eq!(&buf[..HEADER], &[0x40, 0x01, 0x00, 0x05]);
        assert_eq!(&buf[HEADER + 5..len], &[0, 0, 0], "padding is zeros");
        assert_eq!(parse(&buf[..len]), Some((0x4001, &b"hello"[..])));
        assert_eq!(
            parse(&buf[..HEADER + 5]),
            Some((0x4001, &b"hello"[..])),
            "unpadded UDP"
        );
    }

    #[test]
    fn parse_refuses_what_is_not_channel_data() {
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[0x40, 0x00, 0x00]), None, "short header");
        assert_eq!(
            parse(&[0x40, 0x00, 0x00, 0x05, 1, 2]),
            None,
            "length beyond the datagram"
        );
        assert_eq!(
            parse(&[0x3F, 0xFF, 0x00, 0x00]),
            None,
            "below the channel range"
        );
        assert_eq!(
            parse(&[0x80, 0x00, 0x00, 0x00]),
            None,
            "above the channel range"
        );
        // A STUN message starts with two zero bits.
        assert_eq!(parse(&[0x00, 0x01, 0x00, 0x00]), None);
        assert_eq!(parse(&[0x7F, 0xFF, 0x00, 0x00]), Some((0x7FFF, &[][..])));
    }

    #[test]
    fn a_binding_lapses_before_the_engines_and_a_refresh_extends_it() {
        let channels = Channels::<()>::default();
        let t0 = Instant::now();
        let peer = addr("203.0.113.5:4000");
        channels.bind(0x4000, peer, t0);
        assert_eq!(channels.peer(0x4000, t0), Some(peer));
        assert_eq!(channels.number(peer, t0), Some(0x4000));
        assert_eq!(channels.peer(0x4001, t0), None);
        assert_eq!(
            channels.number(addr("203.0.113.5:4001"), t0),
            None,
            "port matters"
        );
        let edge = t0 + CHANNEL_LIFETIME - LAPSE_MARGIN;
        assert_eq!(
            channels.peer(0x4000, edge),
            None,
            "lapsed before the engine's timer"
        );
        channels.bind(0x4000, peer, t0 + Duration::from_secs(300));
        assert_eq!(channels.peer(0x4000, edge), Some(peer), "refreshed");
        assert_eq!(
            channels.bindings().len(),
            1,
            "a refresh replaces the binding"
        );
    }

    #[test]
    fn a_closed_allocation_has_no_fast_path() {
        let channels = Channels::default();
        let now = Instant::now();
        let peer = addr("203.0.113.5:4000");
        assert!(channels.set_route(Route {
            client: addr("198.51.100.1:5000"),
            wire: ()
        }));
        assert!(!channels.set_route(Route {
            client: addr("198.51.100.2:5000"),
            wire: ()
        }));
        assert_eq!(
            channels.route().map(|r| r.client),
            Some(addr("198.51.100.1:5000"))
        );
        channels.bind(0x4000, peer, now);
        channels.close();
        assert!(channels.route().is_none());
        assert_eq!(channels.peer(0x4000, now), None);
        assert_eq!(channels.number(peer, now), None);
        channels.bind(0x4000, peer, now);
        assert_eq!(channels.peer(0x4000, now), None, "still closed");
    }

    #[test]
    fn only_expected_binds_are_taken_and_the_table_is_bounded() {
        let pending = PendingBinds::default();
        let client = addr("198.51.100.1:5000");
        let peer = addr("203.0.113.5:4000");
        pending.expect(client, [1; 12], 0x4000, peer);
        pending.expect(client, [2; 12], 0x3000, peer);
        assert_eq!(
            pending.answered(client, [2; 12]),
            None,
            "not a channel number"
        );
        assert_eq!(pending.answered(addr("198.51.100.1:5001"), [1; 12]), None);
        assert_eq!(pending.answered(client, [1; 12]), Some((0x4000, peer)));
        assert_eq!(pending.answered(client, [1; 12]), None, "answered once");
        for i in 0..=MAX_PENDING_BINDS as u32 {
            let mut tid = [0u8; 12];
            tid[..4].copy_from_slice(&i.to_be_bytes());
            pending.expect(client, tid, 0x4000, peer);
        }
        assert!(pending.lock().len() <= MAX_PENDING_BINDS);
    }
}
