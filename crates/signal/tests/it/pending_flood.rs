//! 3000 silent TCP connections from one address: the server keeps at most
//! `max_pending_per_ip` of them (refusing the rest at accept, before reading a byte), its memory
//! stays flat, and a caller from another address still connects and calls.
#![allow(clippy::unwrap_used)]
use crate::common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::TestServer;
use serde_json::json;
use signal::Config;
use tokio::net::TcpStream;

const SILENT: usize = 3000;
const PER_IP: usize = 16;

#[tokio::test]
async fn silent_connections_are_capped_per_address_at_accept() {
    let _memory = common::MEMORY.lock().await;
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let server = TestServer::with_config(Config {
        max_pending_per_ip: PER_IP,
        // Long enough that the silent ones are still pending when counted.
        handshake_timeout: Duration::from_secs(60),
        ..Config::default()
    })
    .await;
    let before = common::rss_kib();
    let mut silent = Vec::with_capacity(SILENT);
    for _ in 0..SILENT {
        match TcpStream::connect(server.addr).await {
            Ok(s) => silent.push(s),
            // The listen backlog may overflow while the server catches up; that is a refusal too.
            Err(_) => continue,
        }
    }
    let refused_at_least = (silent.len() - PER_IP) as f64;
    let stats = server.stats.clone();
    common::wait_for(|| {
        let m = common::parse_metrics(&stats.metrics_text());
        m["signal_connections_rejected_total{reason=\"pending-per-ip\"}"] >= refused_at_least
    })
    .await;
    assert_eq!(server.stats.pending_connections(), PER_IP);
    // On the client side, all but the kept ones were answered and closed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut still_open = 0;
    let mut buf = [0u8; 256];
    for s in &silent {
        if let Err(e) = s.try_read(&mut buf)
            && e.kind() == std::io::ErrorKind::WouldBlock
        {
            still_open += 1;
        }
    }
    assert!(
        still_open <= PER_IP,
        "{still_open} silent sockets still open"
    );

    // Another address on the loopback network is not affected.
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut a = common::connect_from(other, server.addr, None).await;
    let mut b = common::connect_from(other, server.addr, None).await;
    a.join("call").await;
    a.sync().await;
    b.join("call").await;
    assert_eq!(a.recv().await["offerer"], true);
    assert_eq!(b.recv().await["offerer"], false);
    let offer = json!({"type": "offer", "room": "call", "offer": {"type": "offer", "sdp": "v=0"}});
    a.send_json(offer.clone()).await;
    assert_eq!(b.recv().await, offer);

    let grown_kib = common::rss_kib().saturating_sub(before);
    assert!(grown_kib < 16 * 1024, "RSS grew by {grown_kib} KiB");
    // (Over HTTP from 127.0.0.1 this would be refused like the flood: read it in-process.)
    let m = common::parse_metrics(&server.stats.metrics_text());
    assert_eq!(m["signal_connections_pending"], PER_IP as f64);
    drop(silent);
    server.shutdown().await;
}

#[tokio::test]
async fn global_pending_cap_refuses_at_accept() {
    let server = TestServer::with_config(Config {
        max_pending_connections: 4,
        max_pending_per_ip: 0,
        ..Config::default()
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let stats = server.stats.clone();
    common::wait_for(|| stats.pending_connections() == 4).await;
    let refused = common::raw_request(server.addr, b"GET /healthz HTTP/1.1\r\n\r\n").await;
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
    drop(silent);
    common::wait_for(|| stats.pending_connections() == 0).await;
    let ok = common::raw_request(server.addr, b"GET /healthz HTTP/1.1\r\n\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 200 "), "{ok}");
    let m = common::parse_metrics(&stats.metrics_text());
    assert!(m["signal_connections_rejected_total{reason=\"pending-full\"}"] >= 1.0);
    server.shutdown().await;
}
