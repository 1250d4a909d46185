//! 64 rooms whose receiver stops reading, each sent offers of the largest allowed size: every
//! slow receiver is disconnected (1008 "too slow") within the send timeout once its socket and
//! its byte-bounded outbox are full, its partner hears `peer-left`, and the server's memory
//! comes back down: in process, and in the real binary (whose allocator settings return large
//! freed buffers to the system).
#![allow(clippy::unwrap_used)]
use crate::common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::binary::SignalProcess;
use common::{Seen, TestServer};
use futures_util::SinkExt;
use serde_json::json;
use signal::{Config, Limits};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const PAIRS: usize = 64;
/// Offers sent into each room.
const ROUNDS: usize = 100;
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// Memory of the server under attack, in KiB, at one moment.
#[derive(Debug, Clone, Copy)]
struct Memory {
    before: u64,
    peak: u64,
    after: u64,
}

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
    let memory = attack(server.addr, max, common::rss_kib).await;
    // Before this issue: ~1.8 MB per pair (117 MB) held for 30 s. This process holds the
    // attackers' buffers too.
    assert!(
        memory.peak.saturating_sub(memory.before) < 48 * 1024,
        "{memory:?}"
    );
    assert!(
        memory.after.saturating_sub(memory.before) < 16 * 1024,
        "RSS did not come back down: {memory:?}"
    );
    server.shutdown().await;
}

/// The binary alone, measured from outside (without this test's own buffers): what was queued
/// for the slow readers goes back once they are gone. (The release binary under
/// `signal-load --attack slow-readers` kept ~23 MB with glibc's default malloc thresholds, which
/// the binary now sets; this test's gentler attack does not reproduce that fragmentation, so it
/// guards against memory held by the server itself.)
#[tokio::test]
async fn the_binary_gives_the_memory_back_after_slow_readers() {
    let _memory = common::MEMORY.lock().await;
    let server = SignalProcess::start([
        "--send-timeout-secs",
        "1",
        "--rate",
        "1e9",
        "--burst",
        "1e9",
        "--max-connections-per-ip",
        "0",
    ]);
    let max = signal::Config::default().max_message_bytes;
    let memory = attack(server.addr, max, || server.rss_kib()).await;
    assert!(
        memory.peak.saturating_sub(memory.before) > 4 * 1024,
        "the attack did not load the server: {memory:?}"
    );
    assert!(
        memory.after.saturating_sub(memory.before) < 4 * 1024,
        "RSS did not come back down: {memory:?}"
    );
}

/// A call from another address (127.0.0.2) trading a candidate each way every 10 ms until
/// `stop`; returns how many were relayed.
async fn legitimate_call(addr: SocketAddr, stop: Arc<AtomicBool>) -> usize {
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut a = common::connect_from(other, addr, None).await;
    let mut b = common::connect_from(other, addr, None).await;
    a.join("legit").await;
    a.sync().await;
    b.join("legit").await;
    a.recv().await;
    b.recv().await;
    let candidate = json!({"type": "candidate", "room": "legit", "candidate": {"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host", "sdpMid": "0"}});
    let mut relayed = 0;
    while !stop.load(Ordering::Relaxed) {
        a.send_json(candidate.clone()).await;
        assert_eq!(b.recv().await, candidate);
        b.send_json(candidate.clone()).await;
        assert_eq!(a.recv().await, candidate);
        relayed += 2;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    relayed
}

/// Fills 64 slow rooms on the server at `addr` (send timeout [`SEND_TIMEOUT`], no rate or
/// per-address limit) while a legitimate call goes on, asserts every slow reader is dropped in
/// time and the call relayed meanwhile, and measures `rss`.
async fn attack(addr: SocketAddr, max: usize, rss: impl Fn() -> u64) -> Memory {
    let stop = Arc::new(AtomicBool::new(false));
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut pairs = Vec::new();
    for i in 0..PAIRS {
        let room = format!("slow-{i}");
        let mut a = common::connect_from(local, addr, None).await;
        // The receiver announces a small window so its socket fills quickly.
        let mut b = common::connect_from(local, addr, Some(4096)).await;
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
    // Each room's offer, serialised once (64 KiB of JSON each; a debug build would spend
    // seconds serialising it again for every send).
    let offers: Vec<String> = pairs
        .iter()
        .map(|(room, _, _)| {
            let msg =
                json!({"type": "offer", "room": room, "offer": {"type": "offer", "sdp": sdp}});
            msg.to_string()
        })
        .collect();
    assert!(offers.iter().all(|text| text.len() <= max));
    let legit = tokio::spawn(legitimate_call(addr, Arc::clone(&stop)));
    let before = rss();
    let mut peak = before;
    let started = Instant::now();
    // Each round sends one offer into every room, also those whose receiver was dropped (as an
    // attacker would: the server reads and discards them).
    let mut open: Vec<bool> = vec![true; PAIRS];
    for _round in 0..ROUNDS {
        for (i, (room, a, _)) in pairs.iter_mut().enumerate() {
            a.ws.send(Message::Text(offers[i].as_str().into()))
                .await
                .unwrap();
            if !open[i] {
                continue;
            }
            if let Ok(Seen::Json(v)) = tokio::time::timeout(Duration::ZERO, a.next()).await {
                assert_eq!(v, json!({"type": "peer-left", "room": room}));
                open[i] = false;
            }
        }
        peak = peak.max(rss());
    }
    let sent_for = started.elapsed();
    // Whoever is left is disconnected within the send timeout (plus scheduling slack).
    for (i, (room, a, _)) in pairs.iter_mut().enumerate() {
        if open[i] {
            let v = tokio::time::timeout(SEND_TIMEOUT + Duration::from_secs(2), a.recv())
                .await
                .unwrap_or_else(|_| panic!("receiver {i} not dropped"));
            assert_eq!(v, json!({"type": "peer-left", "room": room}));
            peak = peak.max(rss());
        }
    }
    let dropped_after = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let relayed = legit.await.unwrap();
    assert!(
        relayed > 10,
        "the legitimate call relayed {relayed} messages"
    );
    let m = common::metrics(addr).await;
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
    let deadline = Instant::now() + common::WAIT;
    while common::metrics(addr).await["signal_connections_open"] > 0.0 {
        assert!(Instant::now() < deadline, "connections still open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss();
    eprintln!(
        "slow readers: rss before {before} KiB, peak {peak} KiB, after {after} KiB; sent for {sent_for:?}, all dropped after {dropped_after:?}"
    );
    Memory {
        before,
        peak,
        after,
    }
}
