//! Across NAT, in the network lab: two homes behind symmetric NATs exchange UDP through
//! signal's TURN server on the public net (no WebRTC stack involved), and the server refuses
//! to relay to a private address of its own host or of a home.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netlab::{Lab, LabError, Nat};
use tokio::net::UdpSocket;
use tokio::time::timeout;
use webrtc_util::Conn;

use crate::common::turn::{self, TURN_WAIT};

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
/// A private address the server's host also has (on `lo`).
const SERVER_PRIVATE_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// What a home reports: whether it got the other's datagram, and whether the policy
/// refused the private peers.
#[derive(Debug)]
struct HomeResult {
    received: bool,
    refused_server_private: bool,
    refused_home_private: bool,
}

#[test]
fn symmetric_nat_homes_talk_through_signals_turn() {
    let lab = match Lab::new("turn") {
        Ok(lab) => lab,
        Err(LabError::Unavailable(why)) => {
            eprintln!("skipped: {why}");
            return;
        }
        Err(e) => panic!("lab: {e}"),
    };
    let server = lab.public_host("signal", SERVER_IP).unwrap();
    let status = server
        .command("ip")
        .args([
            "addr",
            "add",
            &format!("{SERVER_PRIVATE_IP}/32"),
            "dev",
            "lo",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let alice = lab.home("alice", Nat::Symmetric).unwrap();
    let bob = lab.home("bob", Nat::Symmetric).unwrap();
    let bob_private = bob.host().ip();

    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::channel::<SocketAddr>();
    let turn_thread = server
        .run_in(move || {
            runtime().block_on(async move {
                let config = signal::TurnConfig {
                    relay_bind_ip: IpAddr::V4(SERVER_IP),
                    relay_ip: IpAddr::V4(SERVER_IP),
                    // The lab's public net is a TEST-NET treated as public; its addresses
                    // include the server's own, which the default rule refuses.
                    ..turn::config(&["203.0.113.0/24"])
                };
                let socket = UdpSocket::bind((SERVER_IP, 3478)).await.unwrap();
                let server = signal::TurnServer::start(socket, config).await.unwrap();
                ready_tx.send(server.local_addr()).unwrap();
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
                server.close().await;
            })
        })
        .unwrap();
    let turn_addr = ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();

    // Each home allocates, publishes its relayed address, then sends to the other's until
    // it hears from it.
    let (a_relay_tx, a_relay_rx) = mpsc::channel::<SocketAddr>();
    let (b_relay_tx, b_relay_rx) = mpsc::channel::<SocketAddr>();
    let home = move |label: &'static str,
                     mine: mpsc::Sender<SocketAddr>,
                     theirs: mpsc::Receiver<SocketAddr>| {
        move || {
            runtime().block_on(async move {
                let (user, pass) = turn::credential(label, 600);
                let socket = Arc::new(UdpSocket::bind("0.0.0.0:0").await.unwrap());
                let client = turn::client_on(socket, turn_addr, &user, &pass).await;
                let relay = timeout(TURN_WAIT, client.allocate())
                    .await
                    .unwrap()
                    .unwrap();
                mine.send(relay.local_addr().unwrap()).unwrap();
                let other = tokio::task::spawn_blocking(move || {
                    theirs.recv_timeout(Duration::from_secs(10))
                })
                .await
                .unwrap()
                .unwrap();
                let refused_server_private = timeout(
                    TURN_WAIT,
                    relay.send_to(b"x", SocketAddr::new(IpAddr::V4(SERVER_PRIVATE_IP), 9)),
                )
                .await
                .unwrap()
                .is_err();
                let refused_home_private = timeout(
                    TURN_WAIT,
                    relay.send_to(b"x", SocketAddr::new(IpAddr::V4(bob_private), 9)),
                )
                .await
                .unwrap()
                .is_err();
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut buf = [0u8; 1500];
                let mut received = false;
                while Instant::now() < deadline && !received {
                    let _ = relay.send_to(label.as_bytes(), other).await;
                    if let Ok(Ok((n, from))) =
                        timeout(Duration::from_millis(200), relay.recv_from(&mut buf)).await
                    {
                        received = from == other && n > 0 && &buf[..n] != label.as_bytes();
                    }
                }
                // Keep answering for a moment so the other side hears us too.
                let linger = Instant::now() + Duration::from_secs(1);
                while Instant::now() < linger {
                    let _ = relay.send_to(label.as_bytes(), other).await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let _ = client.close().await;
                HomeResult {
                    received,
                    refused_server_private,
                    refused_home_private,
                }
            })
        }
    };
    let a = alice
        .host()
        .run_in(home("alice", a_relay_tx, b_relay_rx))
        .unwrap();
    let b = bob
        .host()
        .run_in(home("bob", b_relay_tx, a_relay_rx))
        .unwrap();
    let a = a.join().unwrap();
    let b = b.join().unwrap();
    let _ = stop_tx.send(());
    turn_thread.join().unwrap();
    assert!(
        a.received && b.received,
        "relay across symmetric NATs: {a:?} {b:?}"
    );
    assert!(
        a.refused_server_private,
        "server's private address refused: {a:?}"
    );
    assert!(
        a.refused_home_private,
        "a home's private address refused: {a:?}"
    );
}
