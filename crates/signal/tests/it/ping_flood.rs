//! A client that floods pings and never reads: its pongs cannot pile up (bounded write buffer),
//! the pings are charged to its rate bucket (closed with 1008 once it is empty), and they do not
//! keep it alive (closed as idle when the bucket is unlimited). The flooder reconnects whenever
//! it is closed, as an attacker would, so the flood goes on for the whole test: server memory
//! stays flat and a legitimate pair relays an offer while pings are still arriving.
#![allow(clippy::unwrap_used)]
use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::TestServer;
use futures_util::SinkExt;
use serde_json::json;
use signal::{Config, Limits};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// What the flooder did, connection by connection.
#[derive(Default)]
struct Flood {
    /// Pings written, over all connections.
    sent: AtomicUsize,
    /// Connections the server closed.
    closed: AtomicUsize,
    stop: AtomicBool,
}

/// Pings of the largest control payload (125 bytes) on one connection until the send fails (or
/// `stop`). Returns how long the connection lasted when the server broke it.
async fn flood_one(mut attacker: common::Client, flood: &Flood) -> Option<Duration> {
    let payload = vec![0x5a_u8; 125];
    let opened = Instant::now();
    while !flood.stop.load(Ordering::Relaxed) {
        let send = attacker.ws.send(Message::Ping(payload.clone().into()));
        match tokio::time::timeout(Duration::from_secs(2), send).await {
            Ok(Ok(())) => {}
            // Refused or reset by the server, or the server stopped reading.
            Ok(Err(_)) | Err(_) => return Some(opened.elapsed()),
        }
        let sent = flood.sent.fetch_add(1, Ordering::Relaxed);
        if sent.is_multiple_of(64) {
            tokio::task::yield_now().await;
        }
    }
    None
}

/// Floods connection after connection until `stop`; returns the longest a connection lasted.
async fn flood_until_stopped(server: Arc<String>, flood: Arc<Flood>) -> Duration {
    let mut longest = Duration::ZERO;
    while !flood.stop.load(Ordering::Relaxed) {
        let attacker = common::Client::connect(&server).await;
        if let Some(lasted) = flood_one(attacker, &flood).await {
            flood.closed.fetch_add(1, Ordering::Relaxed);
            longest = longest.max(lasted);
        }
    }
    longest
}

/// Waits until the flooder has sent `more` pings beyond `from` (the flood is going on).
async fn pings_beyond(flood: &Flood, from: usize, more: usize) {
    let deadline = Instant::now() + common::WAIT;
    while flood.sent.load(Ordering::Relaxed) < from + more {
        assert!(
            Instant::now() < deadline,
            "the flood stalled at {} pings",
            flood.sent.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Floods while a legitimate pair joins and relays an offer, with pings sent both before the
/// pair joins and after the offer arrives; then goes on flooding until the server has closed
/// `closes` flooding connections. Asserts no connection outlived `within` and the process grew
/// by less than 16 MB; with `relay_after`, the pair relays again once the flood is over.
async fn flood_during_a_call(
    server: &TestServer,
    closes: usize,
    within: Duration,
    relay_after: bool,
) {
    let before = common::rss_kib();
    let flood = Arc::new(Flood::default());
    let flooding = tokio::spawn(flood_until_stopped(
        Arc::new(server.url()),
        Arc::clone(&flood),
    ));
    pings_beyond(&flood, 0, 100).await;
    let (mut a, mut b) = common::pair(server, "legit").await;
    let offer = json!({"type": "offer", "room": "legit", "offer": {"type": "offer", "sdp": "v=0"}});
    a.send_json(offer.clone()).await;
    assert_eq!(b.recv().await, offer);
    let at_delivery = flood.sent.load(Ordering::Relaxed);
    pings_beyond(&flood, at_delivery, 100).await;
    let deadline = Instant::now() + common::WAIT + within;
    while flood.closed.load(Ordering::Relaxed) < closes {
        assert!(
            Instant::now() < deadline,
            "{} flooding connections closed, {} pings sent",
            flood.closed.load(Ordering::Relaxed),
            flood.sent.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    flood.stop.store(true, Ordering::Relaxed);
    let longest = flooding.await.unwrap();
    let sent = flood.sent.load(Ordering::Relaxed);
    assert!(longest < within, "a flooder lasted {longest:?}");
    let grown_kib = common::rss_kib().saturating_sub(before);
    assert!(
        grown_kib < 16 * 1024,
        "RSS grew by {grown_kib} KiB after {sent} pings"
    );
    if relay_after {
        a.send_json(offer.clone()).await;
        assert_eq!(b.recv().await, offer);
    }
}

#[tokio::test]
async fn ping_flood_is_closed_by_the_rate_bucket() {
    let _memory = common::MEMORY.lock().await;
    let server = TestServer::start().await;
    // The default bucket holds 200 tokens: each connection is closed at once, bounded by the
    // 0.5 s attempt to send the close frame.
    flood_during_a_call(&server, 3, Duration::from_secs(3), true).await;
    let m = common::metrics(server.addr).await;
    assert!(m["signal_connections_closed_total{reason=\"control-flood\"}"] >= 3.0);
    server.shutdown().await;
}

#[tokio::test]
async fn pings_do_not_keep_a_flooder_alive_and_pongs_do_not_pile_up() {
    let _memory = common::MEMORY.lock().await;
    let server = TestServer::with_config(Config {
        limits: Limits {
            rate_per_sec: 1e9,
            rate_burst: 1e9,
            ..Limits::default()
        },
        ping_interval: Duration::from_millis(250),
        idle_timeout: Duration::from_secs(1),
        ..Config::default()
    })
    .await;
    // A real call gets through while the flood goes on (well inside the idle timeout); each
    // flooder is closed after the idle timeout (1 s) plus one ping interval, plus the bounded
    // close. (The pair, silent too and not reading our pings, is closed as idle as well, so it
    // is not asked to relay after the flood.)
    flood_during_a_call(&server, 1, Duration::from_secs(5), false).await;
    let m = common::metrics(server.addr).await;
    assert!(m["signal_connections_closed_total{reason=\"idle\"}"] >= 1.0);
    server.shutdown().await;
}
