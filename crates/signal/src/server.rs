//! The server shell: sockets, tasks and timers around the pure [`Registry`].
//!
//! One tokio task per connection. The registry lives behind a short-held mutex together with
//! each connection's bounded outbox; a task that receives a frame asks the registry what to do
//! and pushes the results into the recipients' outboxes without waiting. A recipient too slow
//! to drain its outbox is disconnected (1008) instead of letting memory grow.
//!
//! Memory per connection is bounded in bytes whatever the client does: the outbox (in messages
//! and bytes; relayed frames are shared, not copied), tungstenite's write buffer, and every
//! write runs under a send timeout. Reading and writing run side by side in the connection's
//! task, so the ping and idle timers keep running while a write waits for a slow reader.
//!
//! Before a connection becomes a WebSocket it passes, in order: the pending-connection limits
//! (at accept, global and per peer address), TLS (when configured) and the request head under
//! one deadline, the upgrade checks, the origin policy, the global connection limit and the
//! per-IP limit. Each refusal is a plain HTTP answer (when the socket takes one), a counter in
//! [`crate::metrics`] and, at most once per interval per reason, a log line with a count.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, debug_span, info, warn};

use crate::access::{self, OriginPolicy};
use crate::http::{self, RequestHead, Response, Security};
use crate::ice::IceConfig;
use crate::metrics::{CloseReason, Gauges, Metrics, RejectReason};
use crate::protocol::ServerMessage;
use crate::protocol::{ErrorCode, Rejection};
use crate::refusals::{LogKey, RefusalLog};
use crate::registry::{ConnId, Delivery, Handled, Limits, Outbound, Registry};
use crate::tls::Tls;
use crate::token::RoomSecret;

/// Answers plain HTTP `GET`/`HEAD` requests that are not WebSocket upgrades (for example the
/// browser client's files). Return `None` for "not found".
pub type PageHandler = Arc<dyn Fn(&RequestHead) -> Option<Response> + Send + Sync>;

/// Everything the server enforces. Every limit is explicit here; the `signal` binary exposes
/// each as a flag.
#[derive(Clone)]
pub struct Config {
    /// Room and rate rules enforced by the registry. Pings and pongs from the client are charged
    /// to the same rate bucket as messages; one arriving with the bucket empty closes the
    /// connection (1008).
    pub limits: Limits,
    /// Largest accepted WebSocket message; a bigger one closes that connection with 1009.
    pub max_message_bytes: usize,
    /// Most simultaneous WebSocket connections; further upgrades get HTTP 503.
    pub max_connections: usize,
    /// How often the server pings each connection.
    pub ping_interval: Duration,
    /// A connection that sends no message and does not answer the server's ping for this long
    /// is dropped. Its own pings and unsolicited pongs do not count as life.
    pub idle_timeout: Duration,
    /// Time allowed for the TLS handshake and the HTTP request head together, from accept.
    pub handshake_timeout: Duration,
    /// Messages queued for one connection before it is considered too slow and dropped.
    pub outbox_capacity: usize,
    /// Bytes queued for one connection before it is considered too slow and dropped (raised to
    /// one largest message if smaller).
    pub outbox_max_bytes: usize,
    /// Longest a single write to a client may take (a WebSocket frame, or a plain HTTP answer);
    /// a client that does not read within it is dropped (WebSocket close 1008 "too slow").
    pub send_timeout: Duration,
    /// Per-connection WebSocket write buffer limit in bytes (raised to one largest message plus
    /// framing if smaller): what tungstenite may hold for a client that does not read,
    /// including automatic pongs.
    pub max_write_buffer_bytes: usize,
    /// Per-connection WebSocket read buffer. tungstenite's default (128 KiB) would cost
    /// ~1.3 GB at 10k connections; signalling messages are small.
    pub read_buffer_bytes: usize,
    /// Most accepted connections that are not yet WebSockets (in the TLS handshake, sending the
    /// head, being answered); more are refused at accept, before a byte is read.
    pub max_pending_connections: usize,
    /// Most such pending connections from one peer address (0: no limit). Not applied with
    /// `trust_proxy`, where every connection arrives from the proxy.
    pub max_pending_per_ip: usize,
    /// Refusals are logged at most once per reason per this interval, with their count.
    pub refusal_log_interval: Duration,
    /// Plain HTTP pages (the browser client); `/healthz` and `/metrics` are always answered.
    pub pages: Option<PageHandler>,
    /// Serve HTTPS and WSS (instead of HTTP and WS) with this certificate.
    pub tls: Option<Tls>,
    /// Browser origins allowed to open a WebSocket; refused upgrades get HTTP 403.
    pub origins: OriginPolicy,
    /// Most simultaneous WebSockets from one client address (0: no limit); further upgrades
    /// from it get HTTP 429.
    pub max_connections_per_ip: usize,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy you run: anyone
    /// can send that header).
    pub trust_proxy: bool,
    /// When set, `join` must carry the room's token (`forbidden` otherwise).
    pub room_secret: Option<RoomSecret>,
    /// STUN/TURN servers put on `ready` (`iceServers`) with fresh credentials; `None`: the
    /// field is left out.
    pub ice: Option<IceConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_message_bytes: 64 * 1024,
            max_connections: 20_000,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            outbox_capacity: 64,
            outbox_max_bytes: 256 * 1024,
            send_timeout: Duration::from_secs(10),
            max_write_buffer_bytes: 128 * 1024,
            read_buffer_bytes: 2 * 1024,
            max_pending_connections: 1024,
            max_pending_per_ip: 16,
            refusal_log_interval: Duration::from_secs(10),
            pages: None,
            tls: None,
            origins: OriginPolicy::default(),
            max_connections_per_ip: 32,
            trust_proxy: false,
            room_secret: None,
            ice: None,
        }
    }
}

/// File descriptors kept free for the listener, logs, certificate reloads and the runtime.
pub const RESERVED_FDS: u64 = 64;

impl Config {
    /// The write buffer limit actually used: at least one largest message plus framing.
    pub fn effective_write_buffer_bytes(&self) -> usize {
        self.max_write_buffer_bytes
            .max(self.max_message_bytes.saturating_add(64))
    }

    /// The outbox byte limit actually used: at least one largest message, which must fit.
    pub fn effective_outbox_bytes(&self) -> usize {
        self.outbox_max_bytes.max(self.max_message_bytes)
    }

    /// Fits `max_connections` (and, if it alone is too large, `max_pending_connections`) into
    /// `open_file_limit` descriptors, keeping [`RESERVED_FDS`] free. Returns the previous
    /// `max_connections` when it was lowered, so the caller can warn.
    pub fn fit_to_open_files(&mut self, open_file_limit: u64) -> Option<usize> {
        let usable = open_file_limit.saturating_sub(RESERVED_FDS);
        let pending_max = usable / 4;
        if self.max_pending_connections as u64 > pending_max {
            self.max_pending_connections = pending_max.max(1) as usize;
        }
        let room = usable.saturating_sub(self.max_pending_connections as u64);
        if self.max_connections as u64 <= room {
            return None;
        }
        let before = self.max_connections;
        self.max_connections = room.max(1) as usize;
        Some(before)
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("limits", &self.limits)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_connections", &self.max_connections)
            .field("ping_interval", &self.ping_interval)
            .field("idle_timeout", &self.idle_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("outbox_capacity", &self.outbox_capacity)
            .field("outbox_max_bytes", &self.outbox_max_bytes)
            .field("send_timeout", &self.send_timeout)
            .field("max_write_buffer_bytes", &self.max_write_buffer_bytes)
            .field("read_buffer_bytes", &self.read_buffer_bytes)
            .field("max_pending_connections", &self.max_pending_connections)
            .field("max_pending_per_ip", &self.max_pending_per_ip)
            .field("refusal_log_interval", &self.refusal_log_interval)
            .field("pages", &self.pages.is_some())
            .field("tls", &self.tls)
            .field("origins", &self.origins)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("trust_proxy", &self.trust_proxy)
            .field("room_secret", &self.room_secret.is_some())
            .field("ice", &self.ice)
            .finish()
    }
}

/// A snapshot of the server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Open WebSocket connections.
    pub open_connections: u64,
    /// Rooms with at least one member.
    pub rooms: u64,
    /// WebSocket connections accepted since start.
    pub connections_total: u64,
    /// Offer/answer/candidate messages forwarded.
    pub relayed: u64,
    /// Error replies sent.
    pub errors: u64,
}

/// Frames waiting for one connection's writer. An empty queue allocates nothing (a channel
/// would allocate its first block of slots, ~1 KiB, for every idle connection).
#[derive(Default)]
struct Queue {
    frames: std::sync::Mutex<VecDeque<Utf8Bytes>>,
    /// Bytes queued and not yet taken by the writer.
    bytes: AtomicUsize,
    /// Signalled after each push.
    pushed: Notify,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Utf8Bytes>> {
        // A push or pop cannot panic half-way, so a poisoned queue is still consistent.
        self.frames
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `frame` unless that would hold more than `max_frames` frames or `max_bytes`
    /// bytes; returns whether it was queued.
    fn push(&self, frame: Utf8Bytes, max_frames: usize, max_bytes: usize) -> bool {
        let len = frame.len();
        {
            let mut frames = self.lock();
            if frames.len() >= max_frames || self.bytes.load(Ordering::Relaxed) + len > max_bytes {
                return false;
            }
            self.bytes.fetch_add(len, Ordering::Relaxed);
            frames.push_back(frame);
        }
        self.pushed.notify_one();
        true
    }

    /// The next frame, waiting for one. Cancel-safe: a frame is only taken when returned.
    async fn next(&self) -> Utf8Bytes {
        loop {
            if let Some(frame) = self.lock().pop_front() {
                self.bytes.fetch_sub(frame.len(), Ordering::Relaxed);
                return frame;
            }
            // A push between the check and here leaves a permit: no wake-up is lost.
            self.pushed.notified().await;
        }
    }
}

/// A connection's queue of frames to write, bounded in messages and in bytes. Relayed frames
/// are the sender's received buffer, shared (reference-counted), not copied.
struct Outbox {
    queue: Arc<Queue>,
    /// Cancelled when the connection is too slow to keep up.
    kill: CancellationToken,
    /// Where the client reached us, for the ICE server URLs on `ready`.
    reached: Reached,
}

/// How a client reached the server: its `Host` header and the local address its connection
/// arrived on.
#[derive(Debug, Clone, Default)]
struct Reached {
    host: Option<String>,
    local: Option<IpAddr>,
}

impl Outbox {
    /// Queues `frame`, or marks the connection too slow when either bound would be exceeded.
    fn push(&self, frame: Utf8Bytes, max_frames: usize, max_bytes: usize) {
        if !self.queue.push(frame, max_frames, max_bytes) {
            self.kill.cancel();
        }
    }
}

struct Hub {
    registry: Registry,
    outboxes: HashMap<ConnId, Outbox>,
    /// Open (or opening) WebSockets per client address.
    per_ip: HashMap<IpAddr, u32>,
}

/// Accepted connections that are not WebSockets yet.
#[derive(Default)]
struct Pending {
    total: usize,
    per_ip: HashMap<IpAddr, u32>,
}

struct Shared {
    config: Config,
    hub: Mutex<Hub>,
    pending: Mutex<Pending>,
    refusals: Mutex<RefusalLog>,
    /// Set once the reverse-proxy hint has been logged.
    proxy_hint_logged: AtomicBool,
    next_id: AtomicU64,
    metrics: Metrics,
}

/// Open WebSockets from one loopback or private address carrying `X-Forwarded-For` (without
/// `trust_proxy`) from which on the server warns that it is probably behind a proxy.
pub const PROXY_HINT_CONNECTIONS: u32 = 8;

impl Shared {
    fn hub(&self) -> MutexGuard<'_, Hub> {
        // No code path panics while holding the lock; if one ever did, the registry is still
        // structurally valid, so keep serving.
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn metrics_text(&self) -> String {
        let pending_connections = self.pending().total as u64;
        let gauges = {
            let hub = self.hub();
            Gauges {
                open_connections: hub.outboxes.len() as u64,
                rooms: hub.registry.room_count() as u64,
                client_ips: hub.per_ip.len() as u64,
                pending_connections,
                tls_reloads: self.config.tls.as_ref().map(Tls::reload_counts),
            }
        };
        self.metrics.render(&gauges)
    }

    /// Counts a refusal and logs it, at most once per reason per interval, without the address.
    fn refused(&self, reason: RejectReason) {
        self.metrics.rejected(reason);
        let due = self
            .refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(LogKey::Refused(reason), std::time::Instant::now());
        let Some(count) = due else { return };
        let reason_label = reason.as_str();
        match reason {
            RejectReason::ServerFull => warn!(
                reason = reason_label,
                count,
                max = self.config.max_connections,
                "connections refused: server full"
            ),
            RejectReason::PendingFull => warn!(
                reason = reason_label,
                count,
                max = self.config.max_pending_connections,
                "connections refused at accept: too many pending connections"
            ),
            _ => info!(reason = reason_label, count, "connections refused"),
        }
    }

    fn accept_failed(&self, error: &std::io::Error) {
        let due = self
            .refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(LogKey::AcceptFailed, std::time::Instant::now());
        if let Some(count) = due {
            warn!(error = %error, count, "accept failed (out of file descriptors?)");
        }
    }

    /// Warns once when a proxy seems to forward every user from one address while the server
    /// does not believe `X-Forwarded-For`.
    fn proxy_hint(&self, peer: IpAddr, head: &RequestHead, connections_from_peer: u32) {
        if self.config.trust_proxy
            || head.forwarded_for.is_none()
            || !is_local_or_private(peer)
            || connections_from_peer < PROXY_HINT_CONNECTIONS
                && (self.config.max_connections_per_ip == 0
                    || (connections_from_peer as usize) < self.config.max_connections_per_ip)
        {
            return;
        }
        if !self.proxy_hint_logged.swap(true, Ordering::Relaxed) {
            warn!(
                connections = connections_from_peer,
                max_per_address = self.config.max_connections_per_ip,
                "many connections from one loopback/private address carry X-Forwarded-For: \
                 this looks like a reverse proxy. Without --trust-proxy (SIGNAL_TRUST_PROXY=true) \
                 every user counts as that one address, so --max-connections-per-ip caps the \
                 whole server; set --trust-proxy if the proxy is yours (see docs/deploy.md)"
            );
        }
    }
}

fn is_local_or_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local(),
    }
}

/// One accepted connection that is not a WebSocket yet; gives its slot back when dropped.
struct PendingSlot {
    shared: Arc<Shared>,
    ip: Option<IpAddr>,
}

impl PendingSlot {
    /// Takes a pending slot for a connection from `ip`, or says which limit is reached.
    fn take(shared: &Arc<Shared>, ip: IpAddr) -> Result<Self, RejectReason> {
        let config = &shared.config;
        let mut pending = shared.pending();
        if pending.total >= config.max_pending_connections {
            return Err(RejectReason::PendingFull);
        }
        let per_ip = config.max_pending_per_ip > 0 && !config.trust_proxy;
        if per_ip {
            let count = pending.per_ip.entry(ip).or_insert(0);
            if *count as usize >= config.max_pending_per_ip {
                return Err(RejectReason::PendingPerIp);
            }
            *count += 1;
        }
        pending.total += 1;
        Ok(Self {
            shared: shared.clone(),
            ip: per_ip.then_some(ip),
        })
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut pending = self.shared.pending();
        pending.total = pending.total.saturating_sub(1);
        if let Some(ip) = self.ip
            && let Some(count) = pending.per_ip.get_mut(&ip)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                pending.per_ip.remove(&ip);
            }
        }
    }
}

/// One WebSocket counted against its client address; gives the slot back when dropped.
struct IpSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl IpSlot {
    /// Takes a slot for `ip`, or says which limit is reached. `Ok` and `Err` both carry the
    /// number of WebSockets open from `ip` (including the new one on success).
    fn take(shared: &Arc<Shared>, ip: IpAddr) -> (Result<Self, RejectReason>, u32) {
        let config = &shared.config;
        let mut hub = shared.hub();
        let open = hub.per_ip.get(&ip).copied().unwrap_or(0);
        if hub.outboxes.len() >= config.max_connections {
            return (Err(RejectReason::ServerFull), open);
        }
        if config.max_connections_per_ip > 0 && open as usize >= config.max_connections_per_ip {
            return (Err(RejectReason::PerIpLimit), open);
        }
        hub.per_ip.insert(ip, open + 1);
        let slot = Self {
            shared: shared.clone(),
            ip,
        };
        (Ok(slot), open + 1)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut hub = self.shared.hub();
        if let Some(count) = hub.per_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                hub.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A relay server: create it, keep a [`StatsHandle`] if you want counters, then [`Server::serve`].
pub struct Server {
    shared: Arc<Shared>,
}

/// Reads a running server's counters.
#[derive(Clone)]
pub struct StatsHandle {
    shared: Arc<Shared>,
}

impl StatsHandle {
    /// The current counters.
    pub fn stats(&self) -> Stats {
        let hub = self.shared.hub();
        let metrics = &self.shared.metrics;
        Stats {
            open_connections: hub.outboxes.len() as u64,
            rooms: hub.registry.room_count() as u64,
            connections_total: metrics.connections_total(),
            relayed: metrics.relayed_total(),
            errors: metrics.errors_total(),
        }
    }

    /// Accepted connections that are not WebSockets yet.
    pub fn pending_connections(&self) -> usize {
        self.shared.pending().total
    }

    /// Every counter in the Prometheus text format, as `GET /metrics` serves it.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics_text()
    }
}

impl Server {
    /// A server with `config`; nothing runs until [`Server::serve`].
    pub fn new(config: Config) -> Self {
        let registry =
            Registry::new(config.limits.clone()).with_room_secret(config.room_secret.clone());
        let refusals = RefusalLog::new(config.refusal_log_interval);
        Self {
            shared: Arc::new(Shared {
                config,
                hub: Mutex::new(Hub {
                    registry,
                    outboxes: HashMap::new(),
                    per_ip: HashMap::new(),
                }),
                pending: Mutex::new(Pending::default()),
                refusals: Mutex::new(refusals),
                proxy_hint_logged: AtomicBool::new(false),
                next_id: AtomicU64::new(1),
                metrics: Metrics::default(),
            }),
        }
    }

    /// A handle to read counters while the server runs.
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle {
            shared: self.shared.clone(),
        }
    }

    /// Accepts connections on `listener` until `shutdown` completes, then closes every
    /// WebSocket with 1001 ("going away") and returns once every connection task has ended.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        if let Ok(addr) = listener.local_addr() {
            let tls = self.shared.config.tls.is_some();
            info!(%addr, tls, "signal listening");
        }
        tokio::pin!(shutdown);
        // Held seats (members whose connection dropped) are freed once a second when their
        // hold runs out.
        let mut expiry = tokio::time::interval(Duration::from_secs(1));
        expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = expiry.tick() => {
                    let mut decisions = Vec::new();
                    let mut hub = self.shared.hub();
                    hub.registry.expire(std::time::Instant::now(), &mut decisions);
                    route(&self.shared, &hub, &Utf8Bytes::default(), &mut decisions);
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => self.accepted(stream, peer, &stop, &tracker),
                    Err(e) => {
                        // Typically EMFILE: keep the server alive, back off briefly.
                        self.shared.accept_failed(&e);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        info!(open = tracker.len(), "shutting down: closing connections");
        drop(listener);
        stop.cancel();
        tracker.close();
        tracker.wait().await;
        info!("shut down");
        Ok(())
    }

    /// Admits a new TCP connection against the pending limits and starts its task; a refused
    /// one gets a one-line answer if the socket takes it at once, and is closed.
    fn accepted(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        stop: &CancellationToken,
        tracker: &TaskTracker,
    ) {
        let shared = &self.shared;
        let slot = match PendingSlot::take(shared, peer.ip().to_canonical()) {
            Ok(slot) => slot,
            Err(reason) => {
                debug!(%peer, reason = reason.as_str(), "refused at accept");
                shared.refused(reason);
                if shared.config.tls.is_none() {
                    let answer: &[u8] = match reason {
                        RejectReason::PendingPerIp => b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        _ => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    };
                    let _ = stream.try_write(answer);
                }
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok().map(|a| a.ip().to_canonical());
        // Debug level: the peer address appears only in debug logs.
        let span = debug_span!("conn", %peer, client = tracing::field::Empty);
        let deadline = Instant::now() + shared.config.handshake_timeout;
        let conn = Conn {
            shared: shared.clone(),
            peer,
            stop: stop.clone(),
            deadline,
            pending: Some(slot),
            local,
        };
        match &shared.config.tls {
            None => tracker.spawn(conn.serve(stream).instrument(span)),
            Some(tls) => tracker.spawn(conn.serve_tls(tls.acceptor(), stream).instrument(span)),
        };
    }
}

/// Runs the relay on a bound listener until `shutdown` completes. See [`Server::serve`].
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    Server::new(config).serve(listener, shutdown).await
}

/// One accepted connection before it becomes a WebSocket.
struct Conn {
    shared: Arc<Shared>,
    peer: SocketAddr,
    stop: CancellationToken,
    /// TLS handshake and request head must both be done by then.
    deadline: Instant,
    /// Released once the connection is a WebSocket or has been answered.
    pending: Option<PendingSlot>,
    /// The local address the connection arrived on.
    local: Option<IpAddr>,
}

impl Conn {
    /// Completes the TLS handshake before the connection's deadline, then serves it like a
    /// plain one (the head must arrive before the same deadline).
    async fn serve_tls(self, acceptor: TlsAcceptor, stream: TcpStream) {
        let accepted = tokio::select! {
            () = self.stop.cancelled() => return,
            accepted = tokio::time::timeout_at(self.deadline, acceptor.accept(stream)) => accepted,
        };
        match accepted {
            Ok(Ok(tls)) => self.serve(tls).await,
            Ok(Err(e)) => {
                debug!(error = %e, "TLS handshake failed");
                self.shared.refused(RejectReason::TlsHandshake);
            }
            Err(_) => {
                debug!("TLS handshake timed out");
                self.shared.refused(RejectReason::TlsHandshake);
            }
        }
    }

    /// Writes a plain answer, bounded by the send timeout.
    async fn answer<S: AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        response: &Response,
        head: Option<&RequestHead>,
    ) {
        let head_only = head.is_some_and(|h| h.method == "HEAD");
        let security = Security::for_request(head, self.shared.config.tls.is_some());
        let _ = tokio::time::timeout(
            self.shared.config.send_timeout,
            http::write_response(stream, response, head_only, &security),
        )
        .await;
    }

    async fn serve<S>(mut self, mut stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = self.shared.clone();
        let config = &shared.config;
        let head = tokio::select! {
            () = self.stop.cancelled() => return,
            head = http::read_head_until(&mut stream, self.deadline, config.handshake_timeout) => head,
        };
        let head = match head {
            Ok(head) => head,
            Err(http::HeadError::Closed | http::HeadError::Io(_)) => return,
            Err(http::HeadError::Timeout(_)) => {
                shared.refused(RejectReason::Timeout);
                return;
            }
            Err(e) => {
                debug!(error = %e, "bad request head");
                shared.refused(RejectReason::BadRequest);
                let status = if matches!(e, http::HeadError::TooLarge) {
                    431
                } else {
                    400
                };
                self.answer(&mut stream, &Response::text(status, format!("{e}\n")), None)
                    .await;
                return;
            }
        };
        if !head.wants_upgrade {
            shared.metrics.http_request();
            let response = if head.method != "GET" && head.method != "HEAD" {
                Response::text(405, "only GET and WebSocket upgrades are served\n")
            } else if head.path == "/healthz" {
                Response::text(200, "ok\n")
            } else if head.path == "/metrics" {
                Response {
                    content_type: "text/plain; version=0.0.4; charset=utf-8",
                    ..Response::text(200, shared.metrics_text())
                }
            } else {
                config
                    .pages
                    .as_ref()
                    .and_then(|pages| pages(&head))
                    .unwrap_or_else(|| Response::text(404, "not found\n"))
            };
            self.answer(&mut stream, &response, Some(&head)).await;
            return;
        }
        if let Some(problem) = head.upgrade_problem() {
            debug!(problem, "bad upgrade request");
            shared.refused(RejectReason::BadRequest);
            let response = Response::text(400, format!("{problem}\n"));
            self.answer(&mut stream, &response, Some(&head)).await;
            return;
        }
        let ip = access::client_ip(self.peer, &head, config.trust_proxy);
        if config.trust_proxy {
            tracing::Span::current().record("client", tracing::field::display(ip));
        }
        let slot = if config.origins.allows(&head) {
            let (slot, open) = IpSlot::take(&shared, ip);
            shared.proxy_hint(self.peer.ip(), &head, open);
            slot
        } else {
            debug!(
                origin = head.origin.as_deref().unwrap_or(""),
                "origin not allowed"
            );
            Err(RejectReason::Origin)
        };
        let slot = match slot {
            Ok(slot) => slot,
            Err(reason) => {
                debug!(%ip, reason = reason.as_str(), "upgrade refused");
                shared.refused(reason);
                let response = match reason {
                    RejectReason::ServerFull => Response::text(503, "server full\n"),
                    RejectReason::PerIpLimit => {
                        Response::text(429, "too many connections from your address\n")
                    }
                    _ => Response::text(403, "origin not allowed\n"),
                };
                self.answer(&mut stream, &response, Some(&head)).await;
                return;
            }
        };
        let key = head.websocket_key.unwrap_or_default();
        let upgraded =
            tokio::time::timeout(config.send_timeout, http::write_upgrade(&mut stream, &key)).await;
        if !matches!(upgraded, Ok(Ok(()))) {
            return;
        }
        drop(key);
        self.pending.take();
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(config.read_buffer_bytes)
            .write_buffer_size(0)
            .max_write_buffer_size(config.effective_write_buffer_bytes())
            .max_message_size(Some(config.max_message_bytes))
            .max_frame_size(Some(config.max_message_bytes));
        let ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(ws_config)).await;
        let reached = Reached {
            host: head.host.clone(),
            local: self.local,
        };
        run_websocket(shared.clone(), ws, self.peer, reached, self.stop.clone()).await;
        drop(slot);
    }
}

async fn run_websocket<S>(
    shared: Arc<Shared>,
    ws: WebSocketStream<S>,
    peer: SocketAddr,
    reached: Reached,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = &shared.config;
    let id = ConnId(shared.next_id.fetch_add(1, Ordering::Relaxed));
    let queue = Arc::new(Queue::default());
    // Cancelled by server shutdown (parent) or when this socket is too slow (this token only).
    let cancel = stop.child_token();
    {
        let mut hub = shared.hub();
        hub.registry.connect(id, std::time::Instant::now());
        hub.outboxes.insert(
            id,
            Outbox {
                queue: Arc::clone(&queue),
                kill: cancel.clone(),
                reached,
            },
        );
    }
    shared.metrics.connection_opened();
    debug!(conn = id.0, %peer, "websocket open");

    // Reading (with the ping and idle timers) and writing run side by side, so a write that
    // waits for a slow reader never holds up the timers, and a flood of input never holds up
    // either timer.
    let (mut sink, mut stream) = ws.split();
    let ping_now = Notify::new();
    let end = {
        let reader = read_loop(&shared, id, &mut stream, &ping_now);
        let writer = write_loop(config, &mut sink, &queue, &ping_now);
        tokio::select! {
            biased;
            () = cancel.cancelled() => if stop.is_cancelled() {
                CloseReason::Shutdown
            } else {
                CloseReason::TooSlow
            },
            end = reader => end,
            end = writer => end,
        }
    };

    // Leave every room first so the other members hear `peer-left` without waiting for the
    // close handshake below.
    {
        let mut decisions = Vec::new();
        let mut hub = shared.hub();
        hub.outboxes.remove(&id);
        hub.registry
            .disconnect(id, std::time::Instant::now(), &mut decisions);
        route(&shared, &hub, &Utf8Bytes::default(), &mut decisions);
    }
    shared.metrics.closed(end);
    debug!(conn = id.0, reason = ?end, "websocket closed");
    let Ok(mut ws) = sink.reunite(stream) else {
        return;
    };
    match end {
        CloseReason::Shutdown => {
            close(&mut ws, CloseCode::Away, "server shutting down", true).await
        }
        CloseReason::TooSlow => close(&mut ws, CloseCode::Policy, "too slow", false).await,
        CloseReason::ControlFlood => {
            close(&mut ws, CloseCode::Policy, "too many pings or pongs", false).await
        }
        CloseReason::Idle => close(&mut ws, CloseCode::Away, "no response to ping", true).await,
        CloseReason::TooLarge => {
            let limit = config.max_message_bytes;
            let error = Rejection::new(
                ErrorCode::TooLarge,
                format!("messages are limited to {limit} bytes"),
            );
            shared.metrics.error(ErrorCode::TooLarge);
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                ws.send(Message::Text(error.to_json().into())),
            )
            .await;
            close(&mut ws, CloseCode::Size, "message too large", true).await;
        }
        CloseReason::ClientClosed | CloseReason::Error => {}
    }
}

/// Reads frames and runs the ping and idle timers; returns why the connection should end.
async fn read_loop<S>(
    shared: &Shared,
    id: ConnId,
    stream: &mut SplitStream<WebSocketStream<S>>,
    ping_now: &Notify,
) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = &shared.config;
    let mut ping =
        tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_seen = Instant::now();
    let mut awaiting_pong = false;
    let mut decisions = Vec::new();
    loop {
        tokio::select! {
            // Timers first: a client flooding input must not starve them.
            biased;
            _ = ping.tick() => {
                if last_seen.elapsed() >= config.idle_timeout {
                    return CloseReason::Idle;
                }
                awaiting_pong = true;
                ping_now.notify_one();
            }
            frame = stream.next() => {
                let frame = match frame {
                    Some(Ok(Message::Text(text))) => Some(text),
                    Some(Ok(Message::Binary(_))) => None,
                    // The answer to our ping is life; other pings and pongs only cost tokens.
                    Some(Ok(Message::Pong(_))) if awaiting_pong => {
                        awaiting_pong = false;
                        last_seen = Instant::now();
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        let allowed = shared.hub().registry.handle_control(id, std::time::Instant::now());
                        if !allowed {
                            return CloseReason::ControlFlood;
                        }
                        continue;
                    }
                    Some(Ok(Message::Close(_) | Message::Frame(_))) => continue,
                    Some(Err(WsError::Capacity(_))) => return CloseReason::TooLarge,
                    Some(Err(WsError::WriteBufferFull(_))) => return CloseReason::TooSlow,
                    Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) | None => return CloseReason::ClientClosed,
                    Some(Err(e)) => {
                        debug!(conn = id.0, error = %e, "websocket error");
                        return CloseReason::Error;
                    }
                };
                last_seen = Instant::now();
                let now = std::time::Instant::now();
                let mut hub = shared.hub();
                let handled = match &frame {
                    Some(text) => hub.registry.handle_text(id, text, now, &mut decisions),
                    None => hub.registry.handle_binary(id, now, &mut decisions),
                };
                route(shared, &hub, &frame.unwrap_or_default(), &mut decisions);
                drop(hub);
                match handled {
                    Handled::Relayed(kind) => shared.metrics.relayed(kind),
                    Handled::Joined => shared.metrics.joined(),
                    Handled::Rejected(code) => debug!(conn = id.0, code = %code, "rejected a message"),
                    _ => {}
                }
            }
        }
    }
}

/// Writes the outbox and the pings, each write under the send timeout.
async fn write_loop<S>(
    config: &Config,
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    outbox: &Queue,
    ping_now: &Notify,
) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let msg = tokio::select! {
            biased;
            () = ping_now.notified() => Message::Ping(Default::default()),
            frame = outbox.next() => Message::Text(frame),
        };
        match tokio::time::timeout(config.send_timeout, sink.send(msg)).await {
            Ok(Ok(())) => {}
            Ok(Err(WsError::WriteBufferFull(_))) | Err(_) => return CloseReason::TooSlow,
            Ok(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                return CloseReason::ClientClosed;
            }
            Ok(Err(_)) => return CloseReason::Error,
        }
    }
}

/// Sends a close frame and, when `wait_reply`, waits briefly for the peer's reply so the TCP
/// close is clean. A peer dropped for misbehaving is not waited for: it would only keep
/// sending.
async fn close<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    code: CloseCode,
    reason: &'static str,
    wait_reply: bool,
) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    // Bounded: a peer that stopped reading may never take the frame.
    let bound = if wait_reply {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(500)
    };
    let _ = tokio::time::timeout(bound, async {
        if ws.send(Message::Close(Some(frame))).await.is_ok() && wait_reply {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

/// Turns registry decisions into outbox pushes; `frame` is the text frame just handled, which
/// [`Outbound::Forward`] shares with its recipient.
fn route(shared: &Shared, hub: &Hub, frame: &Utf8Bytes, decisions: &mut Vec<Delivery>) {
    for Delivery { to, msg } in decisions.drain(..) {
        let Some(outbox) = hub.outboxes.get(&to) else {
            continue;
        };
        let payload: Utf8Bytes = match &msg {
            Outbound::Forward => frame.clone(),
            Outbound::Ready { room, offerer } if shared.config.ice.is_some() => {
                ready_with_ice(shared, room, *offerer, &outbox.reached).into()
            }
            Outbound::Error(rejection) => {
                shared.metrics.error(rejection.code);
                msg.to_json().unwrap_or_default().into()
            }
            _ => msg.to_json().unwrap_or_default().into(),
        };
        outbox.push(
            payload,
            shared.config.outbox_capacity.max(1),
            shared.config.effective_outbox_bytes(),
        );
    }
}

/// `ready` with `iceServers` carrying a credential minted for this recipient alone (so the
/// TURN quotas are per client).
fn ready_with_ice(shared: &Shared, room: &str, offerer: bool, reached: &Reached) -> String {
    let ice_servers = shared.config.ice.as_ref().map(|ice| {
        let label = hex::encode(rand::random::<[u8; 6]>());
        let local = reached
            .local
            .map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.to_string());
        ice.ice_servers(
            std::time::SystemTime::now(),
            &label,
            reached.host.as_deref(),
            &local,
        )
    });
    ServerMessage::Ready {
        room: room.to_owned(),
        offerer: Some(offerer),
        ice_servers,
    }
    .to_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_outbox_queue_is_bounded_in_frames_and_bytes_and_loses_nothing() {
        let queue = Queue::default();
        assert!(queue.push("abc".into(), 2, 10));
        assert!(queue.push("defg".into(), 2, 10));
        assert!(
            !queue.push("h".into(), 2, 10),
            "third frame over the frame bound"
        );
        assert_eq!(queue.bytes.load(Ordering::Relaxed), 7);
        assert_eq!(queue.next().await, "abc");
        assert!(!queue.push("hijk".into(), 2, 7), "over the byte bound");
        assert!(queue.push("hij".into(), 2, 7));
        assert_eq!(queue.next().await, "defg");
        assert_eq!(queue.next().await, "hij");
        assert_eq!(queue.bytes.load(Ordering::Relaxed), 0);
        // Waiting, then woken by a push; a wait given up (the writer sent a ping instead)
        // takes nothing: the frame comes with the next wait.
        let waiting = tokio::time::timeout(Duration::from_millis(20), queue.next()).await;
        assert!(waiting.is_err(), "nothing queued");
        assert!(queue.push("late".into(), 2, 10));
        assert_eq!(queue.next().await, "late");
        // An idle connection's queue holds no buffer.
        assert_eq!(Queue::default().lock().capacity(), 0);
    }

    #[test]
    fn connections_fit_the_open_file_limit() {
        let mut config = Config::default();
        assert_eq!(config.fit_to_open_files(65_536), None);
        assert_eq!(config.max_connections, 20_000);
        assert_eq!(config.max_pending_connections, 1024);
        // 20 000 + 1024 pending + 64 reserved do not fit in 20 000 descriptors.
        assert_eq!(config.fit_to_open_files(20_000), Some(20_000));
        assert_eq!(config.max_connections, 20_000 - 64 - 1024);
        // A tiny limit lowers the pending cap to a quarter of what is usable, too.
        let mut config = Config::default();
        assert_eq!(config.fit_to_open_files(512), Some(20_000));
        assert_eq!(config.max_pending_connections, 112);
        assert_eq!(config.max_connections, 336);
        let mut config = Config::default();
        config.fit_to_open_files(10);
        assert_eq!(
            (config.max_connections, config.max_pending_connections),
            (1, 1)
        );
    }

    #[test]
    fn buffers_hold_at_least_one_message() {
        let config = Config {
            outbox_max_bytes: 1024,
            max_write_buffer_bytes: 1024,
            ..Config::default()
        };
        assert_eq!(config.effective_outbox_bytes(), 64 * 1024);
        assert!(config.effective_write_buffer_bytes() > 64 * 1024);
    }
}
