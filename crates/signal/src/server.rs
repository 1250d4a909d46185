//! The server shell: sockets, tasks and timers around the pure [`Registry`].
//!
//! One tokio task per connection. The registry lives behind a short-held mutex together with
//! each connection's bounded outbox; a task that receives a frame asks the registry what to do
//! and pushes the results into the recipients' outboxes without waiting. A recipient too slow
//! to drain its outbox is disconnected (1008) instead of letting memory grow.
//!
//! Before a connection becomes a WebSocket it passes, in order: TLS (when configured), the
//! request head, the origin policy, the global connection limit and the per-IP limit. Each
//! refusal is a plain HTTP answer and a counter in [`crate::metrics`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::access::{self, OriginPolicy};
use crate::http::{self, RequestHead, Response};
use crate::metrics::{CloseReason, Gauges, Metrics, RejectReason};
use crate::protocol::{ErrorCode, Rejection};
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
    /// Room and rate rules enforced by the registry.
    pub limits: Limits,
    /// Largest accepted WebSocket message; a bigger one closes that connection with 1009.
    pub max_message_bytes: usize,
    /// Most simultaneous WebSocket connections; further upgrades get HTTP 503.
    pub max_connections: usize,
    /// How often the server pings each connection.
    pub ping_interval: Duration,
    /// A connection silent (no frame, not even a pong) for this long is dropped.
    pub idle_timeout: Duration,
    /// Time allowed to send the HTTP request head.
    pub handshake_timeout: Duration,
    /// Messages queued for one connection before it is considered too slow and dropped.
    pub outbox_capacity: usize,
    /// Per-connection WebSocket read buffer. tungstenite's default (128 KiB) would cost
    /// ~1.3 GB at 10k connections; signalling messages are small.
    pub read_buffer_bytes: usize,
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
            read_buffer_bytes: 2 * 1024,
            pages: None,
            tls: None,
            origins: OriginPolicy::default(),
            max_connections_per_ip: 32,
            trust_proxy: false,
            room_secret: None,
        }
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
            .field("read_buffer_bytes", &self.read_buffer_bytes)
            .field("pages", &self.pages.is_some())
            .field("tls", &self.tls)
            .field("origins", &self.origins)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("trust_proxy", &self.trust_proxy)
            .field("room_secret", &self.room_secret.is_some())
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

struct Outbox {
    tx: mpsc::Sender<Utf8Bytes>,
    /// Cancelled when the connection is too slow to keep up.
    kill: CancellationToken,
}

struct Hub {
    registry: Registry,
    outboxes: HashMap<ConnId, Outbox>,
    /// Open (or opening) WebSockets per client address.
    per_ip: HashMap<IpAddr, u32>,
}

struct Shared {
    config: Config,
    hub: Mutex<Hub>,
    next_id: AtomicU64,
    metrics: Metrics,
}

impl Shared {
    fn hub(&self) -> MutexGuard<'_, Hub> {
        // No code path panics while holding the lock; if one ever did, the registry is still
        // structurally valid, so keep serving.
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn metrics_text(&self) -> String {
        let gauges = {
            let hub = self.hub();
            Gauges {
                open_connections: hub.outboxes.len() as u64,
                rooms: hub.registry.room_count() as u64,
                client_ips: hub.per_ip.len() as u64,
                tls_reloads: self.config.tls.as_ref().map(Tls::reload_counts),
            }
        };
        self.metrics.render(&gauges)
    }
}

/// One WebSocket counted against its client address; gives the slot back when dropped.
struct IpSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl IpSlot {
    /// Takes a slot for `ip`, or says which limit is reached.
    fn take(shared: &Arc<Shared>, ip: IpAddr) -> Result<Self, RejectReason> {
        let config = &shared.config;
        let mut hub = shared.hub();
        if hub.outboxes.len() >= config.max_connections {
            return Err(RejectReason::ServerFull);
        }
        let count = hub.per_ip.entry(ip).or_insert(0);
        if config.max_connections_per_ip > 0 && *count as usize >= config.max_connections_per_ip {
            return Err(RejectReason::PerIpLimit);
        }
        *count += 1;
        Ok(Self {
            shared: shared.clone(),
            ip,
        })
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
        Self {
            shared: Arc::new(Shared {
                config,
                hub: Mutex::new(Hub {
                    registry,
                    outboxes: HashMap::new(),
                    per_ip: HashMap::new(),
                }),
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
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let shared = self.shared.clone();
                        let stop = stop.clone();
                        let span = info_span!("conn", %peer, client = tracing::field::Empty);
                        match &self.shared.config.tls {
                            None => tracker.spawn(handle_connection(shared, stream, peer, stop).instrument(span)),
                            Some(tls) => tracker.spawn(handle_tls(shared, tls.acceptor(), stream, peer, stop).instrument(span)),
                        };
                    }
                    Err(e) => {
                        // Typically EMFILE: keep the server alive, back off briefly.
                        warn!(error = %e, "accept failed");
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
}

/// Runs the relay on a bound listener until `shutdown` completes. See [`Server::serve`].
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    Server::new(config).serve(listener, shutdown).await
}

/// Completes the TLS handshake (bounded by the handshake timeout), then serves the
/// connection like a plain one.
async fn handle_tls(
    shared: Arc<Shared>,
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    stop: CancellationToken,
) {
    let timeout = shared.config.handshake_timeout;
    let accepted = tokio::select! {
        () = stop.cancelled() => return,
        accepted = tokio::time::timeout(timeout, acceptor.accept(stream)) => accepted,
    };
    match accepted {
        Ok(Ok(tls)) => handle_connection(shared, tls, peer, stop).await,
        Ok(Err(e)) => {
            debug!(error = %e, "TLS handshake failed");
            shared.metrics.rejected(RejectReason::TlsHandshake);
        }
        Err(_) => {
            debug!(?timeout, "TLS handshake timed out");
            shared.metrics.rejected(RejectReason::TlsHandshake);
        }
    }
}

async fn handle_connection<S>(
    shared: Arc<Shared>,
    mut stream: S,
    peer: SocketAddr,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = &shared.config;
    let head = tokio::select! {
        () = stop.cancelled() => return,
        head = http::read_head(&mut stream, config.handshake_timeout) => head,
    };
    let head = match head {
        Ok(head) => head,
        Err(http::HeadError::Closed | http::HeadError::Io(_)) => return,
        Err(http::HeadError::Timeout(_)) => {
            shared.metrics.rejected(RejectReason::Timeout);
            return;
        }
        Err(e) => {
            debug!(error = %e, "bad request head");
            shared.metrics.rejected(RejectReason::BadRequest);
            let status = if matches!(e, http::HeadError::TooLarge) {
                431
            } else {
                400
            };
            let _ = http::write_response(
                &mut stream,
                &Response::text(status, format!("{e}\n")),
                false,
            )
            .await;
            return;
        }
    };
    let head_only = head.method == "HEAD";
    if !head.wants_upgrade {
        shared.metrics.http_request();
        let response = if head.method != "GET" && !head_only {
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
        let _ = http::write_response(&mut stream, &response, head_only).await;
        return;
    }
    let key = match (&head.websocket_key, head.websocket_version.as_deref()) {
        (Some(key), Some("13")) => key.clone(),
        _ => {
            shared.metrics.rejected(RejectReason::BadRequest);
            let response = Response::text(
                400,
                "WebSocket upgrade needs Sec-WebSocket-Key and version 13\n",
            );
            let _ = http::write_response(&mut stream, &response, false).await;
            return;
        }
    };
    let ip = access::client_ip(peer, &head, config.trust_proxy);
    if config.trust_proxy {
        tracing::Span::current().record("client", tracing::field::display(ip));
    }
    let slot = if config.origins.allows(&head) {
        IpSlot::take(&shared, ip)
    } else {
        debug!(
            origin = head.origin.as_deref().unwrap_or(""),
            "origin not allowed"
        );
        Err(RejectReason::Origin)
    };
    // The head is not needed any more; do not keep it for the connection's lifetime.
    drop(head);
    let slot = match slot {
        Ok(slot) => slot,
        Err(reason) => {
            shared.metrics.rejected(reason);
            let response = match reason {
                RejectReason::ServerFull => {
                    warn!(max = config.max_connections, "connection limit reached");
                    Response::text(503, "server full\n")
                }
                RejectReason::PerIpLimit => {
                    debug!(%ip, max = config.max_connections_per_ip, "per-address connection limit reached");
                    Response::text(429, "too many connections from your address\n")
                }
                _ => Response::text(403, "origin not allowed\n"),
            };
            let _ = http::write_response(&mut stream, &response, false).await;
            return;
        }
    };
    if http::write_upgrade(&mut stream, &key).await.is_err() {
        return;
    }
    drop(key);
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_bytes)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_message_bytes))
        .max_frame_size(Some(config.max_message_bytes));
    let ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(ws_config)).await;
    run_websocket(shared, ws, peer, stop).await;
    drop(slot);
}

async fn run_websocket<S>(
    shared: Arc<Shared>,
    mut ws: WebSocketStream<S>,
    peer: SocketAddr,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = &shared.config;
    let id = ConnId(shared.next_id.fetch_add(1, Ordering::Relaxed));
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(config.outbox_capacity.max(1));
    // Cancelled by server shutdown (parent) or when this socket is too slow (this token only).
    let cancel = stop.child_token();
    {
        let mut hub = shared.hub();
        hub.registry.connect(id, std::time::Instant::now());
        hub.outboxes.insert(
            id,
            Outbox {
                tx,
                kill: cancel.clone(),
            },
        );
    }
    shared.metrics.connection_opened();
    debug!(conn = id.0, %peer, "websocket open");

    let mut ping =
        tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_seen = Instant::now();
    let mut decisions = Vec::new();
    let mut replies = Vec::new();

    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    let why_cancelled = || {
        if stop.is_cancelled() {
            CloseReason::Shutdown
        } else {
            CloseReason::TooSlow
        }
    };
    let end = loop {
        tokio::select! {
            biased;
            () = &mut cancelled => break why_cancelled(),
            frame = ws.next() => {
                last_seen = Instant::now();
                let handled = match frame {
                    Some(Ok(Message::Text(text))) => {
                        let mut hub = shared.hub();
                        let handled = hub.registry.handle_text(id, &text, std::time::Instant::now(), &mut decisions);
                        route(&shared, &hub, id, &text, &mut decisions, &mut replies);
                        drop(hub);
                        handled
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let mut hub = shared.hub();
                        let handled = hub.registry.handle_binary(id, std::time::Instant::now(), &mut decisions);
                        route(&shared, &hub, id, "", &mut decisions, &mut replies);
                        drop(hub);
                        handled
                    }
                    // Pings are answered by tungstenite; pongs and the rest only count as life.
                    Some(Ok(_)) => continue,
                    Some(Err(WsError::Capacity(_))) => break CloseReason::TooLarge,
                    Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) | None => break CloseReason::ClientClosed,
                    Some(Err(e)) => {
                        debug!(conn = id.0, error = %e, "websocket error");
                        break CloseReason::Error;
                    }
                };
                match handled {
                    Handled::Relayed(kind) => shared.metrics.relayed(kind),
                    Handled::Joined => shared.metrics.joined(),
                    Handled::Rejected(code) => debug!(conn = id.0, code = %code, "rejected a message"),
                    _ => {}
                }
                let mut result = Ok(());
                for reply in replies.drain(..) {
                    result = send(&mut ws, Message::Text(reply), cancelled.as_mut(), why_cancelled).await;
                    if result.is_err() {
                        break;
                    }
                }
                if let Err(end) = result {
                    break end;
                }
            }
            Some(text) = rx.recv() => {
                if let Err(end) = send(&mut ws, Message::Text(text), cancelled.as_mut(), why_cancelled).await {
                    break end;
                }
            }
            _ = ping.tick() => {
                if last_seen.elapsed() >= config.idle_timeout {
                    break CloseReason::Idle;
                }
                if let Err(end) = send(&mut ws, Message::Ping(Default::default()), cancelled.as_mut(), why_cancelled).await {
                    break end;
                }
            }
        }
    };

    // Leave every room first so the other members hear `peer-left` without waiting for the
    // close handshake below.
    {
        let mut hub = shared.hub();
        hub.outboxes.remove(&id);
        hub.registry.disconnect(id, &mut decisions);
        route(&shared, &hub, id, "", &mut decisions, &mut replies);
    }
    replies.clear();
    match end {
        CloseReason::Shutdown => close(&mut ws, CloseCode::Away, "server shutting down").await,
        CloseReason::TooSlow => {
            close(&mut ws, CloseCode::Policy, "too slow to read messages").await
        }
        CloseReason::Idle => close(&mut ws, CloseCode::Away, "no response to ping").await,
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
            close(&mut ws, CloseCode::Size, "message too large").await;
        }
        CloseReason::ClientClosed | CloseReason::Error => {}
    }
    shared.metrics.closed(end);
    debug!(conn = id.0, reason = ?end, "websocket closed");
}

/// Sends one message, giving up when the connection is killed (too slow) or the server stops:
/// a peer that stopped reading must not pin its task in a blocked write.
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    msg: Message,
    cancelled: Pin<&mut WaitForCancellationFuture<'_>>,
    why_cancelled: impl Fn() -> CloseReason,
) -> Result<(), CloseReason> {
    tokio::select! {
        biased;
        result = ws.send(msg) => result.map_err(|_| CloseReason::Error),
        () = cancelled => Err(why_cancelled()),
    }
}

/// Sends a close frame and waits briefly for the peer's reply so the TCP close is clean.
async fn close<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    code: CloseCode,
    reason: &'static str,
) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    // Bounded: a peer that stopped reading may never take the frame.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        if ws.send(Message::Close(Some(frame))).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

/// Turns registry decisions into outbox pushes (others) and `replies` (the sender itself).
fn route(
    shared: &Shared,
    hub: &Hub,
    me: ConnId,
    text: &str,
    decisions: &mut Vec<Delivery>,
    replies: &mut Vec<Utf8Bytes>,
) {
    for Delivery { to, msg } in decisions.drain(..) {
        let payload: Utf8Bytes = match &msg {
            Outbound::Forward => Utf8Bytes::from(text),
            Outbound::Error(rejection) => {
                shared.metrics.error(rejection.code);
                msg.to_json().unwrap_or_default().into()
            }
            _ => msg.to_json().unwrap_or_default().into(),
        };
        if to == me {
            replies.push(payload);
        } else if let Some(outbox) = hub.outboxes.get(&to)
            && outbox.tx.try_send(payload).is_err()
        {
            outbox.kill.cancel();
        }
    }
}
