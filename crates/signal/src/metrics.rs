//! Counters for `GET /metrics` (Prometheus text format, version 0.0.4).
//!
//! Plain relaxed atomics: counting a relayed message costs one `fetch_add`. Gauges that the
//! registry already knows (open connections, rooms) are read from it when scraped, so the hot
//! path does not maintain them twice. Names and labels are listed in `docs/deploy.md`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::{ErrorCode, RelayKind};

/// Why the server closed (or saw the end of) a WebSocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed it or the TCP connection ended.
    ClientClosed,
    /// Graceful server shutdown (1001).
    Shutdown,
    /// No frame, not even a pong, within the idle timeout.
    Idle,
    /// A message over the size limit (1009).
    TooLarge,
    /// The client stopped reading: its outbox overflowed (in messages or bytes), a send did
    /// not complete within the send timeout, or the write buffer filled (1008).
    TooSlow,
    /// Pings and pongs beyond the connection's rate bucket (1008).
    ControlFlood,
    /// A protocol or socket error.
    Error,
}

impl CloseReason {
    const ALL: [Self; 7] = [
        Self::ClientClosed,
        Self::Shutdown,
        Self::Idle,
        Self::TooLarge,
        Self::TooSlow,
        Self::ControlFlood,
        Self::Error,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::ClientClosed => "client-closed",
            Self::Shutdown => "shutdown",
            Self::Idle => "idle",
            Self::TooLarge => "too-large",
            Self::TooSlow => "too-slow",
            Self::ControlFlood => "control-flood",
            Self::Error => "error",
        }
    }
}

/// Why a connection was refused before it became a WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// `--max-connections` reached (HTTP 503).
    ServerFull,
    /// `--max-connections-per-ip` reached for the client's address (HTTP 429).
    PerIpLimit,
    /// A browser `Origin` not in `--allow-origin` (HTTP 403).
    Origin,
    /// A malformed or oversized request head, or an upgrade without a valid key (HTTP 400/431).
    BadRequest,
    /// The request head did not arrive within the handshake timeout.
    Timeout,
    /// The TLS handshake failed or timed out.
    TlsHandshake,
    /// `--max-pending-connections` reached: refused at accept, before any byte was read.
    PendingFull,
    /// `--max-pending-per-ip` reached for the peer's address: refused at accept.
    PendingPerIp,
}

impl RejectReason {
    /// Every reason, in a fixed order.
    pub const ALL: [Self; 8] = [
        Self::ServerFull,
        Self::PerIpLimit,
        Self::Origin,
        Self::BadRequest,
        Self::Timeout,
        Self::TlsHandshake,
        Self::PendingFull,
        Self::PendingPerIp,
    ];

    /// The `reason` label in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServerFull => "server-full",
            Self::PerIpLimit => "per-ip-limit",
            Self::Origin => "origin",
            Self::BadRequest => "bad-request",
            Self::Timeout => "timeout",
            Self::TlsHandshake => "tls-handshake",
            Self::PendingFull => "pending-full",
            Self::PendingPerIp => "pending-per-ip",
        }
    }

    /// This reason's position in [`RejectReason::ALL`].
    pub fn index(self) -> usize {
        match self {
            Self::ServerFull => 0,
            Self::PerIpLimit => 1,
            Self::Origin => 2,
            Self::BadRequest => 3,
            Self::Timeout => 4,
            Self::TlsHandshake => 5,
            Self::PendingFull => 6,
            Self::PendingPerIp => 7,
        }
    }
}

impl CloseReason {
    fn index(self) -> usize {
        match self {
            Self::ClientClosed => 0,
            Self::Shutdown => 1,
            Self::Idle => 2,
            Self::TooLarge => 3,
            Self::TooSlow => 4,
            Self::ControlFlood => 5,
            Self::Error => 6,
        }
    }
}

/// The server's counters. Every method is one relaxed atomic operation.
#[derive(Debug, Default)]
pub struct Metrics {
    connections_total: AtomicU64,
    joins: AtomicU64,
    relayed: [AtomicU64; RelayKind::ALL.len()],
    errors: [AtomicU64; ErrorCode::ALL.len()],
    closed: [AtomicU64; CloseReason::ALL.len()],
    rejected: [AtomicU64; RejectReason::ALL.len()],
    http_requests: AtomicU64,
}

/// Values the caller reads from elsewhere at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Open WebSocket connections.
    pub open_connections: u64,
    /// Rooms with at least one member.
    pub rooms: u64,
    /// Distinct client addresses with an open WebSocket.
    pub client_ips: u64,
    /// Accepted TCP connections that are not (yet) a WebSocket: TLS handshake, request head,
    /// plain HTTP answer.
    pub pending_connections: u64,
    /// Certificate reloads `(succeeded, failed)`, when TLS is on.
    pub tls_reloads: Option<(u64, u64)>,
}

impl Metrics {
    pub(crate) fn connection_opened(&self) {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn joined(&self) {
        self.joins.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn relayed(&self, kind: RelayKind) {
        self.relayed[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn error(&self, code: ErrorCode) {
        self.errors[code.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        self.closed[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self, reason: RejectReason) {
        self.rejected[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn http_request(&self) {
        self.http_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// WebSocket connections accepted since start.
    pub fn connections_total(&self) -> u64 {
        self.connections_total.load(Ordering::Relaxed)
    }

    /// Messages relayed since start, all kinds.
    pub fn relayed_total(&self) -> u64 {
        self.relayed.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Error replies sent since start, all codes.
    pub fn errors_total(&self) -> u64 {
        self.errors.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The Prometheus text exposition of every counter plus `gauges`.
    pub fn render(&self, gauges: &Gauges) -> String {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let one = |value: u64| vec![(String::new(), value)];
        let by = |label: &str, names: &[&str], counters: &[AtomicU64]| {
            names
                .iter()
                .zip(counters)
                .map(|(name, c)| (format!("{label}=\"{name}\""), load(c)))
                .collect::<Vec<_>>()
        };
        let mut out = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        };
        metric(
            "signal_build_info",
            "gauge",
            "Always 1; the label carries the version.",
            vec![(
                concat!("version=\"", env!("CARGO_PKG_VERSION"), "\"").to_owned(),
                1,
            )],
        );
        metric(
            "signal_connections_open",
            "gauge",
            "Open WebSocket connections.",
            one(gauges.open_connections),
        );
        metric(
            "signal_client_ips",
            "gauge",
            "Distinct client addresses with an open WebSocket.",
            one(gauges.client_ips),
        );
        metric(
            "signal_connections_pending",
            "gauge",
            "Accepted connections not yet a WebSocket (TLS handshake, request head, HTTP answer).",
            one(gauges.pending_connections),
        );
        metric(
            "signal_rooms",
            "gauge",
            "Rooms with at least one member.",
            one(gauges.rooms),
        );
        metric(
            "signal_connections_total",
            "counter",
            "WebSocket connections accepted.",
            one(load(&self.connections_total)),
        );
        metric(
            "signal_joins_total",
            "counter",
            "Accepted join messages.",
            one(load(&self.joins)),
        );
        metric(
            "signal_messages_relayed_total",
            "counter",
            "Messages forwarded to the other member of a room, by type.",
            by(
                "type",
                &RelayKind::ALL.map(RelayKind::as_str),
                &self.relayed,
            ),
        );
        metric(
            "signal_errors_total",
            "counter",
            "Error replies sent to clients, by code.",
            by("code", &ErrorCode::ALL.map(ErrorCode::as_str), &self.errors),
        );
        metric(
            "signal_connections_closed_total",
            "counter",
            "WebSocket connections ended, by reason.",
            by(
                "reason",
                &CloseReason::ALL.map(CloseReason::as_str),
                &self.closed,
            ),
        );
        metric(
            "signal_connections_rejected_total",
            "counter",
            "Connections refused before becoming a WebSocket, by reason.",
            by(
                "reason",
                &RejectReason::ALL.map(RejectReason::as_str),
                &self.rejected,
            ),
        );
        metric(
            "signal_http_requests_total",
            "counter",
            "Plain HTTP requests answered (health, metrics, pages, errors).",
            one(load(&self.http_requests)),
        );
        if let Some((ok, failed)) = gauges.tls_reloads {
            metric(
                "signal_tls_reloads_total",
                "counter",
                "Certificate reloads (SIGHUP), by result.",
                vec![
                    ("result=\"ok\"".to_owned(), ok),
                    ("result=\"error\"".to_owned(), failed),
                ],
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_counters() {
        let m = Metrics::default();
        m.relayed(RelayKind::Answer);
        m.relayed(RelayKind::Answer);
        m.error(ErrorCode::Forbidden);
        m.closed(CloseReason::TooSlow);
        m.rejected(RejectReason::Origin);
        let text = m.render(&Gauges {
            open_connections: 3,
            ..Gauges::default()
        });
        for line in [
            "signal_connections_open 3",
            "signal_messages_relayed_total{type=\"answer\"} 2",
            "signal_messages_relayed_total{type=\"offer\"} 0",
            "signal_errors_total{code=\"forbidden\"} 1",
            "signal_connections_closed_total{reason=\"too-slow\"} 1",
            "signal_connections_rejected_total{reason=\"origin\"} 1",
            "# TYPE signal_joins_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("signal_tls_reloads_total"));
    }
}
