//! A client for the relay, used by the call engine.
//!
//! [`connect`] opens the WebSocket and spawns one task that owns it; the caller gets a
//! [`SignalSender`] (cheap to clone) and a [`SignalReceiver`] of [`SignalEvent`]s. Both
//! directions are bounded channels. Messages the client cannot parse (from a newer server) are
//! skipped with a debug log, never an error.
//!
//! A connection whose path died silently (a home's router got a new address: no FIN, no RST
//! ever arrives) is noticed: the task pings the server every [`KEEPALIVE_INTERVAL`] and gives
//! up after [`SILENCE_LIMIT`] without hearing anything, and [`SignalSender::probe`] asks for an
//! answer within [`PROBE_TIMEOUT`] (the call engine probes when its media path breaks, since the
//! signalling path has often broken with it). Either ends the connection with
//! [`SignalEvent::Closed`] and a reason.
//!
//! `wss://` URLs are verified against the Mozilla root certificates (webpki-roots) by default;
//! [`connect_with`] takes a custom rustls configuration instead (a self-signed deployment, or
//! tests), which [`tls_config_trusting`] builds from certificates.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::debug;

pub use rustls::ClientConfig as TlsClientConfig;
pub use rustls::pki_types::CertificateDer;

use crate::protocol::{ClientMessage, ServerMessage};

/// Why the client could not connect or send.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not a `ws://` or `wss://` URL.
    #[error("not a WebSocket URL: {0} (expected ws://host:port/ or wss://...)")]
    InvalidUrl(String),
    /// The server could not be reached or refused the upgrade.
    #[error("cannot reach the signal server at {url}: {reason}")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The connection did not open in time.
    #[error("the signal server at {0} did not answer within {1:?}")]
    Timeout(String, Duration),
    /// The connection is closed.
    #[error("the connection to the signal server is closed")]
    Closed,
    /// A TLS configuration could not be built (for example an invalid root certificate).
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

fn client_config(roots: rustls::RootCertStore) -> Result<Arc<TlsClientConfig>, ClientError> {
    let config = TlsClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The TLS configuration `wss://` uses by default: Mozilla's root certificates (webpki-roots),
/// so a server with a Let's Encrypt (or any public CA) certificate is trusted.
pub fn default_tls_config() -> Result<Arc<TlsClientConfig>, ClientError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    client_config(roots)
}

/// A TLS configuration that trusts exactly `roots` (DER certificates): a private CA or a
/// self-signed server certificate.
pub fn tls_config_trusting(
    roots: impl IntoIterator<Item = CertificateDer<'static>>,
) -> Result<Arc<TlsClientConfig>, ClientError> {
    let mut store = rustls::RootCertStore::empty();
    for cert in roots {
        store
            .add(cert)
            .map_err(|e| ClientError::Tls(format!("bad root certificate: {e}")))?;
    }
    client_config(store)
}

/// Something that happened on the signalling connection.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalEvent {
    /// A message from the server.
    Message(ServerMessage),
    /// The connection ended; no more events follow. Carries the close reason if any.
    Closed(Option<String>),
}

/// How often the client pings the server (the server answers every ping with a pong).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Hearing nothing at all from the server for this long ends the connection.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(25);
/// How long [`SignalSender::probe`] waits for the server to answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1000);

/// What the caller hands to the connection's task.
#[derive(Debug)]
enum Outgoing {
    Message(ClientMessage),
    Probe,
}

/// Sends messages to the server. Cloning shares the connection.
#[derive(Debug, Clone)]
pub struct SignalSender {
    tx: mpsc::Sender<Outgoing>,
}

impl SignalSender {
    /// Queues `msg` for sending; fails only when the connection is closed.
    pub async fn send(&self, msg: ClientMessage) -> Result<(), ClientError> {
        self.tx
            .send(Outgoing::Message(msg))
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// Asks the server for a sign of life now: unless something arrives from it within
    /// [`PROBE_TIMEOUT`], the connection ends ([`SignalEvent::Closed`]). Never waits; a probe
    /// that finds the queue full is skipped (the queued messages will test the path anyway).
    pub fn probe(&self) {
        let _ = self.tx.try_send(Outgoing::Probe);
    }

    /// `{"type":"join","room":..}`.
    pub async fn join(&self, room: &str) -> Result<(), ClientError> {
        self.join_with_token(room, None).await
    }

    /// `{"type":"join","room":..,"token":..}`: the token is needed when the server has a
    /// room secret (it comes with the room link, `?token=`).
    pub async fn join_with_token(
        &self,
        room: &str,
        token: Option<&str>,
    ) -> Result<(), ClientError> {
        self.send(ClientMessage::Join {
            room: room.to_owned(),
            token: token.map(str::to_owned),
            session: None,
        })
        .await
    }

    /// `{"type":"leave","room":..}`.
    pub async fn leave(&self, room: &str) -> Result<(), ClientError> {
        self.send(ClientMessage::Leave {
            room: room.to_owned(),
        })
        .await
    }
}

/// Receives events from the server.
#[derive(Debug)]
pub struct SignalReceiver {
    rx: mpsc::Receiver<SignalEvent>,
}

impl SignalReceiver {
    /// The next event; `None` after [`SignalEvent::Closed`] was delivered.
    pub async fn recv(&mut self) -> Option<SignalEvent> {
        self.rx.recv().await
    }
}

/// Connects to a relay at `url` (`ws://host:port/` or `wss://...`) within `timeout`.
/// `wss://` trusts the public CAs ([`default_tls_config`]).
pub async fn connect(
    url: &str,
    timeout: Duration,
) -> Result<(SignalSender, SignalReceiver), ClientError> {
    connect_with(url, timeout, None).await
}

/// Like [`connect`], with the TLS configuration for `wss://` given (`None`: the default);
/// ignored for `ws://`.
pub async fn connect_with(
    url: &str,
    timeout: Duration,
    tls: Option<Arc<TlsClientConfig>>,
) -> Result<(SignalSender, SignalReceiver), ClientError> {
    let secure = url.starts_with("wss://");
    if !(secure || url.starts_with("ws://")) {
        return Err(ClientError::InvalidUrl(url.to_owned()));
    }
    let connector = if secure {
        Connector::Rustls(match tls {
            Some(tls) => tls,
            None => default_tls_config()?,
        })
    } else {
        Connector::Plain
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(1 << 20));
    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, Some(connector));
    let (mut ws, _response) = match tokio::time::timeout(timeout, connecting).await {
        Err(_) => return Err(ClientError::Timeout(url.to_owned(), timeout)),
        Ok(Err(e)) => {
            return Err(ClientError::Unreachable {
                url: url.to_owned(),
                reason: e.to_string(),
            });
        }
        Ok(Ok(pair)) => pair,
    };
    let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(64);
    let (ev_tx, ev_rx) = mpsc::channel::<SignalEvent>(64);
    tokio::spawn(async move {
        let mut liveness = Liveness::new(Instant::now());
        let reason = loop {
            tokio::select! {
                outgoing = out_rx.recv() => match outgoing {
                    Some(Outgoing::Message(msg)) => {
                        if let Err(e) = ws.send(Message::Text(msg.to_json().into())).await {
                            break Some(e.to_string());
                        }
                    }
                    Some(Outgoing::Probe) => {
                        if liveness.probe(Instant::now())
                            && let Err(e) = ws.send(Message::Ping(Default::default())).await
                        {
                            break Some(e.to_string());
                        }
                    }
                    None => {
                        // Every sender dropped: hang up politely.
                        let _ = ws.close(None).await;
                        break None;
                    }
                },
                () = tokio::time::sleep_until(liveness.next_check()) => {
                    match liveness.check(Instant::now()) {
                        Check::Dead(why) => break Some(why),
                        Check::Ping => {
                            if let Err(e) = ws.send(Message::Ping(Default::default())).await {
                                break Some(e.to_string());
                            }
                        }
                        Check::Fine => {}
                    }
                }
                incoming = ws.next() => {
                    if matches!(incoming, Some(Ok(_))) {
                        liveness.heard(Instant::now());
                    }
                    match incoming {
                        Some(Ok(Message::Text(text))) => match serde_json::from_str::<ServerMessage>(&text) {
                            Ok(msg) => {
                                if ev_tx.send(SignalEvent::Message(msg)).await.is_err() {
                                    let _ = ws.close(None).await;
                                    break None;
                                }
                            }
                            Err(e) => debug!(error = %e, "skipping a message this client does not understand"),
                        },
                        Some(Ok(Message::Close(frame))) => break frame.map(|f| format!("{} ({})", f.reason, u16::from(f.code))),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => break Some(e.to_string()),
                        None => break None,
                    }
                }
            }
        };
        let _ = ev_tx.send(SignalEvent::Closed(reason)).await;
    });
    Ok((SignalSender { tx: out_tx }, SignalReceiver { rx: ev_rx }))
}

/// What the connection's timers say.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    Fine,
    Ping,
    Dead(String),
}

/// The client's liveness rules, pure: time is passed in.
#[derive(Debug)]
struct Liveness {
    last_heard: Instant,
    last_ping: Instant,
    /// A probe is out: the server must be heard from by then.
    probe_deadline: Option<Instant>,
}

impl Liveness {
    fn new(now: Instant) -> Self {
        Self {
            last_heard: now,
            last_ping: now,
            probe_deadline: None,
        }
    }

    /// Something arrived from the server.
    fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.probe_deadline = None;
    }

    /// A probe is asked for; whether to send a ping for it (not when one is already out).
    fn probe(&mut self, now: Instant) -> bool {
        if self.probe_deadline.is_some() {
            return false;
        }
        self.probe_deadline = Some(now + PROBE_TIMEOUT);
        self.last_ping = now;
        true
    }

    /// When [`Liveness::check`] should next run.
    fn next_check(&self) -> Instant {
        let mut at = (self.last_ping + KEEPALIVE_INTERVAL).min(self.last_heard + SILENCE_LIMIT);
        if let Some(deadline) = self.probe_deadline {
            at = at.min(deadline);
        }
        at
    }

    fn check(&mut self, now: Instant) -> Check {
        if self.probe_deadline.is_some_and(|d| now >= d) {
            return Check::Dead(format!(
                "the signal server did not answer within {} ms",
                PROBE_TIMEOUT.as_millis()
            ));
        }
        if now >= self.last_heard + SILENCE_LIMIT {
            return Check::Dead(format!(
                "nothing heard from the signal server for {} s",
                SILENCE_LIMIT.as_secs()
            ));
        }
        if now >= self.last_ping + KEEPALIVE_INTERVAL {
            self.last_ping = now;
            return Check::Ping;
        }
        Check::Fine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_pings_gives_up_on_silence_and_on_an_unanswered_probe() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        assert_eq!(l.next_check(), t0 + KEEPALIVE_INTERVAL);
        assert_eq!(l.check(t0 + Duration::from_secs(1)), Check::Fine);
        assert_eq!(l.check(t0 + KEEPALIVE_INTERVAL), Check::Ping);
        // The server answers: no verdict, the next ping a keepalive later.
        let answered = t0 + KEEPALIVE_INTERVAL + Duration::from_millis(5);
        l.heard(answered);
        assert_eq!(l.next_check(), t0 + KEEPALIVE_INTERVAL * 2);
        // Silence: pings go on until the limit, then the connection is dead.
        assert_eq!(l.check(t0 + KEEPALIVE_INTERVAL * 2), Check::Ping);
        assert_eq!(
            l.check(answered + SILENCE_LIMIT - Duration::from_millis(1)),
            Check::Ping
        );
        assert!(matches!(l.check(answered + SILENCE_LIMIT), Check::Dead(_)));

        // A probe answered in time changes nothing; one not answered ends the connection.
        let mut l = Liveness::new(t0);
        assert!(l.probe(t0));
        assert!(
            !l.probe(t0 + Duration::from_millis(10)),
            "one probe out at a time"
        );
        assert_eq!(l.next_check(), t0 + PROBE_TIMEOUT);
        l.heard(t0 + Duration::from_millis(40));
        assert_eq!(l.check(t0 + PROBE_TIMEOUT), Check::Fine);
        assert!(l.probe(t0 + Duration::from_secs(2)));
        let verdict = l.check(t0 + Duration::from_secs(2) + PROBE_TIMEOUT);
        assert!(
            matches!(&verdict, Check::Dead(why) if why.contains("1000 ms")),
            "{verdict:?}"
        );
    }
}
