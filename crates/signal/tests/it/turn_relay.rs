//! signal's TURN server with a real TURN client on loopback: allocation and relay, the peer
//! policy, credentials and the per-credential quota.

use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;
use webrtc_util::Conn;

use crate::common::QUIET;
use crate::common::tls;
use crate::common::turn::{self, Allocated, TURN_WAIT};

/// Sends `ping` from the client through its relay to the peer and `pong` back; asserts that
/// both arrive whole and that each side sees the other's address.
async fn round_trip(a: &Allocated, ping: &[u8], pong: &[u8]) {
    let (relay, peer) = (&a.relay, &a.peer);
    let relayed = relay.local_addr().unwrap();
    let peer_addr = peer.local_addr().unwrap();
    timeout(TURN_WAIT, relay.send_to(ping, peer_addr))
        .await
        .unwrap()
        .unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = timeout(TURN_WAIT, peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], ping, "to the peer");
    assert_eq!(from, relayed, "the peer sees the relayed address");
    peer.send_to(pong, from).await.unwrap();
    let (n, from) = timeout(TURN_WAIT, relay.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], pong, "back to the client");
    assert_eq!(from, peer_addr);
}

#[tokio::test]
async fn relays_between_a_client_and_a_peer() {
    let server = turn::start(turn::config(&["127.0.0.0/8"])).await;
    let (user, pass) = turn::credential("alice", 600);
    let client = turn::client(server.local_addr(), &user, &pass).await;
    let mapped = timeout(TURN_WAIT, client.send_binding_request())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mapped.ip().to_string(), "127.0.0.1", "STUN binding answers");
    let a = Allocated::on(client).await;
    round_trip(&a, b"ping", b"pong").await;
    a.close().await;
    server.close().await;
}

/// Round trips between the client and the peer until the client has bound a channel and
/// media takes signal's fast path both ways (at most 20; the `turn` client sends its first
/// datagrams as Send indications while it binds). Returns the fast path's counts then.
async fn until_the_channel_is_bound(server: &signal::TurnServer, a: &Allocated) -> (u64, u64) {
    for round in 0..20u8 {
        round_trip(a, &[round; 100], &[!round; 80]).await;
        let (to_peers, to_clients) = server.fast_path_datagrams();
        if to_peers > 0 && to_clients > 0 {
            return (to_peers, to_clients);
        }
    }
    panic!(
        "no datagram took the fast path in 20 round trips: {:?}",
        server.fast_path_datagrams()
    );
}

/// Once the client has bound a channel, every datagram on it is relayed by signal's fast
/// path, both ways, whole and with the right addresses (not by the engine: the counts grow
/// by one per datagram).
#[tokio::test]
async fn bound_channels_take_the_fast_path_both_ways() {
    let server = turn::start(turn::config(&["127.0.0.0/8"])).await;
    let a = turn::allocated(server.local_addr(), "alice").await;
    let before = until_the_channel_is_bound(&server, &a).await;
    for len in [1usize, 3, 1200, 1472] {
        let ping: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let pong: Vec<u8> = (0..len).map(|i| !(i as u8)).collect();
        round_trip(&a, &ping, &pong).await;
    }
    assert_eq!(
        server.fast_path_datagrams(),
        (before.0 + 4, before.1 + 4),
        "every datagram on the bound channel took the fast path"
    );
    a.close().await;
    server.close().await;
}

/// A bound channel belongs to its client's address: ChannelData with the same channel
/// numbers from another address is not relayed.
#[tokio::test]
async fn another_address_cannot_use_a_clients_channel() {
    let server = turn::start(turn::config(&["127.0.0.0/8"])).await;
    let a = turn::allocated(server.local_addr(), "alice").await;
    let before = until_the_channel_is_bound(&server, &a).await;
    let intruder = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for number in 0x4000u16..0x4010 {
        let mut datagram = number.to_be_bytes().to_vec();
        datagram.extend_from_slice(&4u16.to_be_bytes());
        datagram.extend_from_slice(b"evil");
        intruder
            .send_to(&datagram, server.local_addr())
            .await
            .unwrap();
    }
    let mut buf = [0u8; 64];
    assert!(
        timeout(QUIET, a.peer.recv_from(&mut buf)).await.is_err(),
        "the intruder's ChannelData reached the peer"
    );
    assert_eq!(server.fast_path_datagrams(), before);
    // The client's own channel still works.
    round_trip(&a, b"still", b"here").await;
    a.close().await;
    server.close().await;
}

/// The per-allocation byte rate holds on bound channels, each way: of 50 datagrams of
/// 1000 bytes sent at once at 10 000 bytes a second (one second of burst), about 10 get
/// through.
#[tokio::test]
async fn the_byte_rate_holds_on_bound_channels() {
    const RATE: u64 = 10_000;
    let config = signal::TurnConfig {
        max_bytes_per_sec_per_allocation: RATE,
        ..turn::config(&["127.0.0.0/8"])
    };
    let server = turn::start(config).await;
    let a = turn::allocated(server.local_addr(), "alice").await;
    until_the_channel_is_bound(&server, &a).await;
    let (relay, peer) = (&a.relay, &a.peer);
    // Let the buckets fill again after the warm-up.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let peer_addr = peer.local_addr().unwrap();
    let relayed = relay.local_addr().unwrap();
    let datagram = [0x55u8; 1000];
    for _ in 0..50 {
        relay.send_to(&datagram, peer_addr).await.unwrap();
        peer.send_to(&datagram, relayed).await.unwrap();
    }
    let mut buf = [0u8; 1500];
    let mut at_peer = 0;
    while timeout(QUIET, peer.recv_from(&mut buf)).await.is_ok() {
        at_peer += 1;
    }
    let mut at_client = 0;
    while timeout(QUIET, relay.recv_from(&mut buf)).await.is_ok() {
        at_client += 1;
    }
    // A full bucket holds 10 such datagrams; a few more trickle in while the 50 are sent.
    for (got, way) in [(at_peer, "to the peer"), (at_client, "to the client")] {
        assert!(
            (5..=15).contains(&got),
            "{got} of 50 datagrams of 1000 bytes got through {way} at {RATE} bytes/s"
        );
    }
    a.close().await;
    server.close().await;
}

/// TURN over TCP: a client that can only reach the server over TCP allocates a (UDP) relay
/// and talks to a UDP peer through it, both ways, with ChannelData after the channel is
/// bound; the same port keeps serving UDP.
#[tokio::test]
async fn relays_for_a_client_over_tcp() {
    let server = turn::start_with_tcp(turn::config(&["127.0.0.0/8"])).await;
    let (user, pass) = turn::credential("bob", 600);
    let client = turn::tcp_client(server.local_addr(), &user, &pass).await;
    let mapped = timeout(TURN_WAIT, client.send_binding_request())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        mapped.ip().to_string(),
        "127.0.0.1",
        "STUN over TCP answers"
    );
    let a = Allocated::on(client).await;
    // Several rounds: the first go as Send/Data indications, later ones as ChannelData of
    // odd lengths (padded on the stream).
    for round in 0..6u8 {
        let ping = vec![round; 5 + usize::from(round)];
        let pong = vec![0x80 | round; 3 + usize::from(round)];
        round_trip(&a, &ping, &pong).await;
    }
    let (to_peers, to_clients) = server.fast_path_datagrams();
    assert!(
        to_peers > 0 && to_clients > 0,
        "ChannelData over TCP takes the fast path both ways: {to_peers} / {to_clients}"
    );
    // UDP on the same port still works beside it.
    let udp = turn::client(server.local_addr(), &user, &pass).await;
    assert!(
        timeout(TURN_WAIT, udp.send_binding_request())
            .await
            .unwrap()
            .is_ok()
    );
    let _ = udp.close().await;
    a.close().await;
    server.close().await;
}

/// TURN over TLS (`turns:`): a client that can reach the server only over TLS allocates a
/// (UDP) relay and talks to a UDP peer through it, both ways, ChannelData included, with the
/// server's certificate checked.
#[tokio::test]
async fn relays_for_a_client_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let cert = tls::make_cert();
    let (cert_path, key_path) = tls::write_cert(dir.path(), &cert);
    let acceptor = signal::Tls::from_pem_files(cert_path, key_path)
        .unwrap()
        .turn_acceptor();
    let server = turn::start_with_tls(turn::config(&["127.0.0.0/8"]), acceptor).await;
    let tls_addr = server.tls_addr;
    let (user, pass) = turn::credential("dora", 600);
    let client = turn::tls_client(tls_addr, tls::trusting(&[&cert]), &user, &pass).await;
    let a = Allocated::on(client).await;
    until_the_channel_is_bound(&server.server, &a).await;
    round_trip(&a, &[7; 1200], &[9; 999]).await;
    // A client that does not trust the certificate gets no session.
    let tcp = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    let stranger = tls::make_cert();
    let refused = timeout(
        TURN_WAIT,
        tokio_rustls::TlsConnector::from(tls::trusting(&[&stranger])).connect(
            rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
            tcp,
        ),
    )
    .await
    .unwrap();
    assert!(refused.is_err(), "an untrusted certificate was accepted");
    a.close().await;
    server.server.close().await;
}

/// Bytes that are neither STUN nor ChannelData end a TURN/TCP connection; the listener goes
/// on serving others.
#[tokio::test]
async fn garbage_over_tcp_closes_that_connection_only() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = turn::start_with_tcp(turn::config(&["127.0.0.0/8"])).await;
    let mut junk = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    junk.write_all(
        b"\x16\xfe\xfd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    )
    .await
    .unwrap();
    let mut buf = [0u8; 16];
    // Refused on its first bytes (no magic cookie), not left to time out waiting for the
    // 64 KiB its STUN-shaped header announces.
    let within = signal::turn_tcp::WRITE_TIMEOUT / 2;
    let read = timeout(within, junk.read(&mut buf))
        .await
        .expect("closed at once, not after a timeout");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the server closes a connection that sends DTLS: {read:?}"
    );
    let (user, pass) = turn::credential("carol", 600);
    let client = turn::tcp_client(server.local_addr(), &user, &pass).await;
    assert!(
        timeout(TURN_WAIT, client.send_binding_request())
            .await
            .unwrap()
            .is_ok(),
        "others are still served"
    );
    let _ = client.close().await;
    server.close().await;
}

#[tokio::test]
async fn refuses_to_relay_to_loopback_by_default() {
    let server = turn::start(turn::config(&[])).await;
    let a = turn::allocated(server.local_addr(), "alice").await;
    let sent = timeout(
        TURN_WAIT,
        a.relay.send_to(b"ping", a.peer.local_addr().unwrap()),
    )
    .await
    .unwrap();
    assert!(
        sent.is_err(),
        "CreatePermission to 127.0.0.1 must be refused"
    );
    let mut buf = [0u8; 64];
    assert!(
        timeout(QUIET, a.peer.recv_from(&mut buf)).await.is_err(),
        "nothing reaches the loopback peer"
    );
    a.close().await;
    server.close().await;
}

#[tokio::test]
async fn refuses_expired_and_forged_credentials() {
    let server = turn::start(turn::config(&["127.0.0.0/8"])).await;
    let (expired_user, expired_pass) = turn::credential("old", -60);
    let (user, _) = turn::credential("alice", 600);
    let cases = [
        (expired_user.as_str(), expired_pass.as_str(), "expired"),
        (user.as_str(), "bm90IHRoZSBwYXNzd29yZA==", "forged"),
        ("alice", "whatever", "no expiry"),
    ];
    for (user, pass, what) in cases {
        let client = turn::client(server.local_addr(), user, pass).await;
        let allocated = timeout(TURN_WAIT, client.allocate()).await.unwrap();
        assert!(allocated.is_err(), "{what} credential must be refused");
        let _ = client.close().await;
    }
    server.close().await;
}

#[tokio::test]
async fn quota_refuses_allocations_beyond_the_per_credential_limit() {
    let config = signal::TurnConfig {
        max_allocations_per_user: 2,
        ..turn::config(&["127.0.0.0/8"])
    };
    let server = turn::start(config).await;
    let (user, pass) = turn::credential("alice", 600);
    let mut clients = Vec::new();
    let mut relays = Vec::new();
    for _ in 0..2 {
        let client = turn::client(server.local_addr(), &user, &pass).await;
        relays.push(
            timeout(TURN_WAIT, client.allocate())
                .await
                .unwrap()
                .unwrap(),
        );
        clients.push(client);
    }
    let third = turn::client(server.local_addr(), &user, &pass).await;
    assert!(
        timeout(TURN_WAIT, third.allocate()).await.unwrap().is_err(),
        "a third allocation on one credential is refused"
    );
    let (other, other_pass) = turn::credential("bob", 600);
    let bob = turn::client(server.local_addr(), &other, &other_pass).await;
    assert!(
        timeout(TURN_WAIT, bob.allocate()).await.unwrap().is_ok(),
        "another credential has its own quota"
    );
    // Giving one back frees a slot.
    let relay = relays.pop().unwrap();
    let _ = relay.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = turn::client(server.local_addr(), &user, &pass).await;
    assert!(timeout(TURN_WAIT, again.allocate()).await.unwrap().is_ok());
    server.close().await;
}

#[tokio::test]
async fn garbage_datagrams_do_not_stop_the_server() {
    let server = turn::start(turn::config(&["127.0.0.0/8"])).await;
    let junk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for len in [0usize, 1, 4, 19, 20, 21, 36, 100, 548, 1500] {
        for _ in 0..20 {
            let mut bytes = vec![0u8; len];
            for b in &mut bytes {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            // Make some look like STUN with a magic cookie and a bogus length.
            if len >= 20 && seed.is_multiple_of(2) {
                bytes[0] &= 0x3F;
                bytes[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
            }
            let _ = junk.send_to(&bytes, server.local_addr()).await;
        }
    }
    let (user, pass) = turn::credential("alice", 600);
    let client = turn::client(server.local_addr(), &user, &pass).await;
    assert!(timeout(TURN_WAIT, client.allocate()).await.unwrap().is_ok());
    server.close().await;
}

/// A moment's burst from many clients is relayed whole: 50 allocations each send a video
/// frame's worth (8 datagrams of 1200 bytes) at once, from this one-threaded runtime, so all
/// 400 sit in the server's one socket before its task reads any. Every datagram reaches the
/// peer, once. (The kernel's default receive buffer, about 90 such datagrams, dropped most of
/// them: see `signal::turn::SOCKET_BUFFER_BYTES`.)
#[tokio::test]
async fn a_burst_from_many_clients_is_relayed_whole() {
    const CLIENTS: usize = 50;
    const PER_CLIENT: usize = 8;
    let server = turn::start(turn::config(&["127.0.0.0/8"])).await;
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // The peer must hold the burst too, or the test would measure its own socket.
    socket2::SockRef::from(&peer)
        .set_recv_buffer_size(signal::turn::SOCKET_BUFFER_BYTES)
        .unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let mut clients = Vec::new();
    let mut relays = Vec::new();
    for i in 0..CLIENTS {
        let (user, pass) = turn::credential(&format!("burst{i}"), 600);
        let client = turn::client(server.local_addr(), &user, &pass).await;
        let relay = timeout(TURN_WAIT, client.allocate())
            .await
            .unwrap()
            .unwrap();
        clients.push(client);
        relays.push(relay);
    }
    // Warm-up: each relay's permission and channel binding, and one datagram through.
    let mut buf = [0u8; 1500];
    for relay in &relays {
        timeout(TURN_WAIT, relay.send_to(b"warm", peer_addr))
            .await
            .unwrap()
            .unwrap();
        let (n, _) = timeout(TURN_WAIT, peer.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"warm");
    }
    // Unconstrained: tokio's cooperative budget would otherwise yield to the server's task
    // every 128 sends and let it drain the socket mid-burst.
    tokio::task::unconstrained(async {
        for (i, relay) in relays.iter().enumerate() {
            for k in 0..PER_CLIENT {
                let mut datagram = vec![0x42u8; 1200];
                datagram[..2].copy_from_slice(&[i as u8, k as u8]);
                relay.send_to(&datagram, peer_addr).await.unwrap();
            }
        }
    })
    .await;
    let mut seen = std::collections::HashSet::new();
    while seen.len() < CLIENTS * PER_CLIENT {
        // Whatever the server relays arrives within moments; a quiet second means it is lost.
        let Ok(got) = timeout(Duration::from_secs(1), peer.recv_from(&mut buf)).await else {
            break;
        };
        let (n, _) = got.unwrap();
        assert_eq!(n, 1200, "a datagram arrived cut");
        assert!(seen.insert((buf[0], buf[1])), "a datagram arrived twice");
    }
    assert_eq!(
        seen.len(),
        CLIENTS * PER_CLIENT,
        "datagrams of the burst were lost in the server"
    );
    for relay in &relays {
        let _ = relay.close().await;
    }
    for client in &clients {
        let _ = client.close().await;
    }
    server.close().await;
}
