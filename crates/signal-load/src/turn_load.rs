//! `--mode turn`: relays video-like traffic through a TURN server (duet's `signal` or coturn,
//! both with coturn's REST credentials from one shared secret) and measures the server's CPU
//! per relayed packet.
//!
//! `--allocations` clients each allocate a relay (the webrtc-rs `turn` client, the one the
//! call engine uses) and send `--pps` packets a second of `--size` bytes through it to one
//! peer socket on 127.0.0.1 (so the server must allow loopback peers), for `--duration`
//! seconds after a warm-up that creates the permissions and channel bindings. The peer counts
//! what arrives; the server's CPU comes from `/proc/PID/task/*/schedstat` (ns on a CPU; the
//! user share from `/proc/PID/stat`'s 10 ms ticks).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

use crate::{Args, TICKS_PER_SEC, sample};

/// Receive buffer asked for on the peer socket (the kernel caps it at `net.core.rmem_max`).
const PEER_BUFFER_BYTES: usize = 8 << 20;

/// How often the sender wakes up to send its share of packets.
const TICK: Duration = Duration::from_millis(10);

pub async fn turn(args: &Args) -> anyhow::Result<()> {
    let server: SocketAddr = args
        .turn
        .parse()
        .context("--turn must be ip:port of the TURN server")?;
    let secret = signal::TurnSecret::new(&args.turn_secret);
    let peer = UdpSocket::bind("127.0.0.1:0").await?;
    // The peer takes every allocation's packets on one socket: with the kernel's default
    // buffer it, not the server, dropped 3-5 % of them whenever the counting task fell behind.
    socket2::SockRef::from(&peer).set_recv_buffer_size(PEER_BUFFER_BYTES)?;
    let peer = Arc::new(peer);
    let peer_addr = peer.local_addr()?;
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let counter = tokio::spawn(count(
        Arc::clone(&peer),
        Arc::clone(&received),
        Arc::clone(&stop),
    ));

    let mut clients = Vec::with_capacity(args.allocations);
    let mut relays = Vec::with_capacity(args.allocations);
    let expires = SystemTime::now() + Duration::from_secs(3600);
    for i in 0..args.allocations {
        let credential = secret.credential(expires, &format!("load{i}"));
        let conn = UdpSocket::bind("127.0.0.1:0").await?;
        let client = Client::new(ClientConfig {
            stun_serv_addr: server.to_string(),
            turn_serv_addr: server.to_string(),
            username: credential.username,
            password: credential.password,
            realm: args.turn_realm.clone(),
            software: String::new(),
            rto_in_ms: 0,
            conn: Arc::new(conn),
            vnet: None,
        })
        .await?;
        client.listen().await?;
        let relay = client
            .allocate()
            .await
            .with_context(|| format!("allocation {i} on {server}"))?;
        clients.push(client);
        relays.push(relay);
    }
    let payload = vec![0x42u8; args.size.clamp(20, 1400)];
    // Warm-up: permissions, channel bindings, and the first packets through.
    send_for(
        &relays,
        &payload,
        peer_addr,
        args.pps,
        Duration::from_secs(2),
    )
    .await;
    let before = sample(args.server_pid);
    let drops_before = udp_receive_buffer_errors();
    let received_before = received.load(Ordering::Relaxed);
    let started = Instant::now();
    let sent = send_for(
        &relays,
        &payload,
        peer_addr,
        args.pps,
        Duration::from_secs(args.duration),
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let after = sample(args.server_pid);
    // Whatever was still in flight arrives within a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let delivered = received.load(Ordering::Relaxed) - received_before;
    let buffer_drops = match (drops_before, udp_receive_buffer_errors()) {
        (Some(a), Some(b)) => (b - a).to_string(),
        _ => "n/a".to_owned(),
    };
    stop.store(true, Ordering::Relaxed);
    counter.abort();
    for relay in &relays {
        let _ = relay.close().await;
    }
    for client in &clients {
        let _ = client.close().await;
    }

    let (cpu_us_per_pkt, cpu_pct, user_pct) = match (before, after) {
        (Some(a), Some(b)) => {
            let cpu_s = match (a.cpu_ns, b.cpu_ns) {
                (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1e9,
                _ => (b.cpu_ticks - a.cpu_ticks) as f64 / TICKS_PER_SEC,
            };
            let user_s = (b.user_ticks - a.user_ticks) as f64 / TICKS_PER_SEC;
            (
                format!("{:.2}", cpu_s * 1e6 / delivered.max(1) as f64),
                format!("{:.1}", cpu_s / elapsed * 100.0),
                format!("{:.0}", user_s / elapsed * 100.0),
            )
        }
        _ => ("n/a".into(), "n/a".into(), "n/a".into()),
    };
    println!(
        "RESULT mode=turn label={} allocations={} pps_per_allocation={} size={} offered_pps={:.0} sent={sent} delivered={delivered} delivered_pct={:.2} delivered_pps={:.0} server_cpu_pct={cpu_pct} server_user_pct={user_pct} server_cpu_us_per_pkt={cpu_us_per_pkt} udp_rcvbuf_drops={buffer_drops}",
        args.label,
        args.allocations,
        args.pps,
        payload.len(),
        (args.allocations as u64 * args.pps) as f64,
        delivered as f64 * 100.0 / sent.max(1) as f64,
        delivered as f64 / elapsed,
    );
    Ok(())
}

/// Sends `pps` packets a second through every relay for `length`; returns how many went out.
async fn send_for(
    relays: &[impl Conn],
    payload: &[u8],
    peer: SocketAddr,
    pps: u64,
    length: Duration,
) -> u64 {
    let start = Instant::now();
    let mut sent = 0u64;
    let mut due = 0u64;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while start.elapsed() < length {
        ticker.tick().await;
        // Packets per relay owed by now, spread over the ticks.
        let owed = (start.elapsed().as_secs_f64() * pps as f64) as u64;
        while due < owed {
            for relay in relays {
                if relay.send_to(payload, peer).await.is_ok() {
                    sent += 1;
                }
            }
            due += 1;
        }
    }
    sent
}

async fn count(peer: Arc<UdpSocket>, received: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        if peer.recv_from(&mut buf).await.is_ok() {
            received.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Datagrams this host's UDP sockets dropped for a full receive buffer (`RcvbufErrors` in
/// `/proc/net/snmp`): the server's and the peer's alike, so a run shows where packets went.
fn udp_receive_buffer_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let names = udp.next()?.split_whitespace();
    let values = udp.next()?.split_whitespace();
    names
        .zip(values)
        .find(|(name, _)| *name == "RcvbufErrors")?
        .1
        .parse()
        .ok()
}
