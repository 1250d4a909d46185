//! 64 rooms whose receiver stops reading, each sent offers of the largest allowed size: every
//! slow receiver is disconnected (1008 "too slow") within the send timeout once its socket and
//! its byte-bounded outbox are full, its partner hears `peer-left`, and the server's memory
//! comes back down.
#![allow(clippy::unwrap_used)]
use crate::common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{Seen, TestServer};
use futures_util::SinkExt;
use serde_json::json;
use signal::{Config, Limits};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const PAIRS: usize = 64;
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

#[tokio::test]
async fn slow_readers_are_dropped_within_the_send_timeout() {
    let _memory = common::MEMORY.lock().await;
    let config = Config {
        send_timeout: SEND_TIMEOUT,
        limits: Limits {
            rate_per_sec: 1e9,
            rate_burst: 1e9,
            ..Limits::default()
        },
        max_connections_per_ip: 0,
        ..Config::default()
    };
    let max = config.max_message_bytes;
    let server = TestServer::with_config(config).await;
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut pairs = Vec::new();
    for i in 0..PAIRS {
        let room = format!("slow-{i}");
        let mut a = common::connect_from(local, server.addr, None).await;
        // The receiver announces a small window so its socket fills quickly.
        let mut b = common::connect_from(local, server.addr, Some(4096)).await;
        a.join(&room).await;
        a.sync().await;
        b.join(&room).await;
        a.recv().await;
        b.recv().await;
        pairs.push((room, a, b));
    }
    // One frame of the largest allowed size, shared by every send of this test.
    let envelope = json!({"type": "offer", "room": "ROOM", "offer": {"type": "offer", "sdp": ""}})
        .to_string()
        .len();
    let sdp = "s".repeat(max - envelope - 16);
    let before = common::rss_kib();
    let mut peak = before;
    let started = Instant::now();
    // Each round sends one offer into every room whose receiver is still connected.
    let mut open: Vec<bool> = vec![true; PAIRS];
    for _round in 0..400 {
        for (i, (room, a, _)) in pairs.iter_mut().enumerate() {
            if !open[i] {
                continue;
            }
            let msg =
                json!({"type": "offer", "room": room, "offer": {"type": "offer", "sdp": sdp}});
            assert!(msg.to_string().len() <= max);
            a.ws.send(Message::Text(msg.to_string().into()))
                .await
                .unwrap();
            if let Ok(Seen::Json(v)) = tokio::time::timeout(Duration::ZERO, a.next()).await {
                assert_eq!(v, json!({"type": "peer-left", "room": room}));
                open[i] = false;
            }
        }
        peak = peak.max(common::rss_kib());
        if !open.contains(&true) {
            break;
        }
    }
    let sent_for = started.elapsed();
    // Whoever is left is disconnected within the send timeout (plus scheduling slack).
    for (i, (room, a, _)) in pairs.iter_mut().enumerate() {
        if open[i] {
            let v = tokio::time::timeout(SEND_TIMEOUT + Duration::from_secs(2), a.recv())
                .await
                .unwrap_or_else(|_| panic!("receiver {i} not dropped"));
            assert_eq!(v, json!({"type": "peer-left", "room": room}));
            peak = peak.max(common::rss_kib());
        }
    }
    let dropped_after = started.elapsed();
    let m = common::metrics(server.addr).await;
    assert_eq!(
        m["signal_connections_closed_total{reason=\"too-slow\"}"],
        PAIRS as f64
    );
    let (_, _, mut b) = pairs.pop().unwrap();
    // The slow receiver's last frame is a close with 1008, behind whatever it did not read.
    let close = tokio::time::timeout(Duration::from_secs(10), b.expect_close()).await;
    if let Ok(Some(code)) = close {
        assert_eq!(code, 1008);
    }
    drop(pairs);
    drop(b);
    common::wait_for(|| server.stats.stats().open_connections == 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = common::rss_kib();
    eprintln!(
        "slow readers: rss before {before} KiB, peak {peak} KiB, after {after} KiB; sent for {sent_for:?}, all dropped after {dropped_after:?}"
    );
    // Before this issue: ~1.8 MB per pair (117 MB) held for 30 s.
    assert!(
        peak.saturating_sub(before) < 48 * 1024,
        "peak grew {} KiB",
        peak - before
    );
    assert!(
        after.saturating_sub(before) < 16 * 1024,
        "RSS did not come back down: {before} → {after} KiB"
    );
    server.shutdown().await;
}
