//! A per-connection rate limit: a flood is dropped with one `rate-limited` error, the flooder
//! recovers once it slows down, and other connections are unaffected.
#![allow(clippy::unwrap_used)]
use crate::common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;
use signal::{Config, Limits};

#[tokio::test]
async fn flood_is_limited_then_recovers() {
    // One token a second: the flood below would have to take a second to earn one more.
    // (At 20 a second, a flood sent on a busy CI machine took over 50 ms and 11 got through.)
    let limits = Limits {
        rate_per_sec: 1.0,
        rate_burst: 10.0,
        ..Limits::default()
    };
    let server = TestServer::with_config(Config {
        limits,
        ..Config::default()
    })
    .await;
    let (mut a, mut b) = common::pair(&server, "flood").await;

    // The two joins+sync used 2 tokens of a's burst; send 50 messages at once.
    for i in 0..50 {
        a.send_json(json!({"type": "candidate", "room": "flood", "candidate": {"i": i}}))
            .await;
    }
    a.expect_error("rate-limited").await;
    // Only the burst got through, in order.
    let mut got = Vec::new();
    while let Ok(common::Seen::Json(v)) =
        tokio::time::timeout(Duration::from_millis(300), b.next()).await
    {
        got.push(v["candidate"]["i"].as_i64().unwrap());
    }
    assert!(
        (7..=10).contains(&got.len()),
        "burst relayed {} messages",
        got.len()
    );
    assert_eq!(got, (0..got.len() as i64).collect::<Vec<_>>());
    // One error for the whole flood, not one per dropped message.
    a.expect_silence().await;

    // The other direction was never limited.
    b.send_json(json!({"type": "candidate", "room": "flood", "candidate": null}))
        .await;
    assert_eq!(a.recv().await["type"], "candidate");

    // After slowing down (a token a second), a's messages flow again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    a.send_json(json!({"type": "candidate", "room": "flood", "candidate": {"i": 99}}))
        .await;
    assert_eq!(b.recv().await["candidate"]["i"], 99);
    server.shutdown().await;
}
