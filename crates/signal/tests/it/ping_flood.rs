//! A client that floods pings and never reads: its pongs cannot pile up (bounded write buffer),
//! the pings are charged to its rate bucket (closed with 1008 once it is empty), and they do not
//! keep it alive (closed as idle when the bucket is unlimited). Server memory stays flat and a
//! legitimate pair relays an offer during the flood.
#![allow(clippy::unwrap_used)]
use crate::common;

use std::time::Duration;

use common::TestServer;
use futures_util::SinkExt;
use serde_json::json;
use signal::{Config, Limits};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Pings of the largest control payload (125 bytes) until the send fails, at most `max` or 10 s.
/// Returns how many were sent and when the connection broke.
async fn flood(mut attacker: common::Client, max: usize) -> (usize, Option<Instant>) {
    let payload = vec![0x5a_u8; 125];
    let deadline = Instant::now() + Duration::from_secs(10);
    for sent in 0..max {
        if Instant::now() > deadline {
            return (sent, None);
        }
        let send = attacker.ws.send(Message::Ping(payload.clone().into()));
        match tokio::time::timeout(Duration::from_secs(2), send).await {
            Ok(Ok(())) => {}
            // Refused or reset by the server, or the server stopped reading.
            Ok(Err(_)) | Err(_) => return (sent, Some(Instant::now())),
        }
        if sent % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    (max, None)
}

/// Floods from one connection while a legitimate pair relays an offer; asserts the flooder was
/// closed within `within` and the process grew less than 16 MB.
async fn flood_during_a_call(server: &TestServer, within: Duration) {
    let attacker = server.client().await;
    let before = common::rss_kib();
    let start = Instant::now();
    let flooding = tokio::spawn(flood(attacker, 10_000_000));
    legitimate_offer(server).await;
    let (sent, broke) = flooding.await.unwrap();
    let broke = broke.unwrap_or_else(|| panic!("still open after {sent} pings"));
    assert!(
        broke - start < within,
        "closed after {:?} and {sent} pings",
        broke - start
    );
    let grown_kib = common::rss_kib().saturating_sub(before);
    assert!(
        grown_kib < 16 * 1024,
        "RSS grew by {grown_kib} KiB after {sent} pings"
    );
}

async fn legitimate_offer(server: &TestServer) {
    let (mut a, mut b) = common::pair(server, "legit").await;
    let offer = json!({"type": "offer", "room": "legit", "offer": {"type": "offer", "sdp": "v=0"}});
    a.send_json(offer.clone()).await;
    assert_eq!(b.recv().await, offer);
}

#[tokio::test]
async fn ping_flood_is_closed_by_the_rate_bucket() {
    let _memory = common::MEMORY.lock().await;
    let server = TestServer::start().await;
    // The default bucket holds 200 tokens: the close comes at once, bounded by the 0.5 s
    // attempt to send the close frame.
    flood_during_a_call(&server, Duration::from_secs(3)).await;
    let m = common::metrics(server.addr).await;
    assert_eq!(
        m["signal_connections_closed_total{reason=\"control-flood\"}"],
        1.0
    );
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
    // During the flood (and well inside the idle timeout) a real call still gets through; the
    // flooder is closed after the idle timeout (1 s) plus one ping interval, plus the bounded
    // close.
    flood_during_a_call(&server, Duration::from_secs(5)).await;
    let m = common::metrics(server.addr).await;
    assert!(m["signal_connections_closed_total{reason=\"idle\"}"] >= 1.0);
    server.shutdown().await;
}
