//! Addressing and NAT: homes reach the public net through their router's public address,
//! cone NATs keep one mapping per socket (hole punching works), symmetric NATs do not.

use std::net::{Ipv4Addr, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use netlab::{HomeOptions, Nat};

use crate::common::{Reflector, lab, observe, receives_anything};

#[test]
fn home_reaches_public_host_through_nat_and_stays_unreachable() {
    let Some(lab) = lab("natbasic") else { return };
    let server = lab
        .public_host("server", Ipv4Addr::new(203, 0, 113, 2))
        .expect("server");
    let home = lab.home("alice", Nat::Cone).expect("home");
    let reflector = Reflector::start(&server, 3478);

    let socket = home.host().bind_udp(0).expect("bind");
    let seen = observe(&socket, reflector.addr).expect("the reflector answers");
    assert_eq!(
        seen.ip(),
        home.public_ip(),
        "the public host sees the router's WAN address"
    );
    assert_ne!(seen.ip(), home.host().ip());

    // Neither the private address nor an unsolicited port of the public one gets through,
    // and the sender hears nothing back (no ICMP: a second send on a connected socket works).
    let local = socket.local_addr().expect("local");
    let prober = server.bind_udp(0).expect("bind prober");
    for target in [
        SocketAddr::from((home.host().ip(), local.port())),
        SocketAddr::from((home.public_ip(), 40_000)),
        // The mapped port, but from a different source port: filtered.
        seen,
    ] {
        prober.connect(target).expect("connect");
        prober.send(b"hello?").expect("first send");
        assert!(
            !receives_anything(&socket, Duration::from_millis(300)),
            "{target} reached the home"
        );
        prober
            .send(b"hello?")
            .expect("second send: no ICMP error came back");
    }
}

#[test]
fn home_without_nat_is_routed() {
    let Some(lab) = lab("nonat") else { return };
    let server = lab
        .public_host("server", Ipv4Addr::new(203, 0, 113, 2))
        .expect("server");
    let home = lab.home("open", Nat::None).expect("home");
    let reflector = Reflector::start(&server, 3478);
    let socket = home.host().bind_udp(0).expect("bind");
    let seen = observe(&socket, reflector.addr).expect("answer");
    assert_eq!(seen, socket.local_addr().expect("local"), "no translation");
    let prober = server.bind_udp(0).expect("bind");
    prober.send_to(b"in", seen).expect("send");
    assert!(
        receives_anything(&socket, Duration::from_secs(1)),
        "unsolicited inbound arrives"
    );
}

#[test]
fn cone_nat_maps_endpoint_independently_and_hole_punching_works() {
    let Some(lab) = lab("cone") else { return };
    let stun1 = lab
        .public_host("stun1", Ipv4Addr::new(203, 0, 113, 2))
        .expect("stun1");
    let stun2 = lab
        .public_host("stun2", Ipv4Addr::new(203, 0, 113, 3))
        .expect("stun2");
    let r1 = Reflector::start(&stun1, 3478);
    let r2 = Reflector::start(&stun2, 3478);
    let r3 = Reflector::start(&stun2, 3479);
    // Both homes on 192.168.1.0/24, as real homes often are.
    let alice = lab
        .home_with("alice", HomeOptions::new(Nat::Cone).lan_subnet(1))
        .expect("alice");
    let bob = lab
        .home_with("bob", HomeOptions::new(Nat::Cone).lan_subnet(1))
        .expect("bob");
    assert_eq!(alice.host().ip(), bob.host().ip());
    assert_ne!(alice.public_ip(), bob.public_ip());

    let a = alice.host().bind_udp(0).expect("bind");
    let seen: Vec<SocketAddr> = [r1.addr, r2.addr, r3.addr]
        .iter()
        .map(|r| observe(&a, *r).expect("answer"))
        .collect();
    assert!(
        seen.iter().all(|s| *s == seen[0]),
        "one public address:port for every destination: {seen:?}"
    );
    assert_eq!(seen[0].ip(), alice.public_ip());

    let b = bob.host().bind_udp(0).expect("bind");
    let a_public = seen[0];
    let b_public = observe(&b, r1.addr).expect("answer");

    // Both sides send to the other's observed address until they hear from it.
    let punch = |socket: std::net::UdpSocket, peer: SocketAddr| {
        thread::spawn(move || {
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
            let deadline = Instant::now() + Duration::from_secs(3);
            let mut buf = [0u8; 64];
            let mut heard = false;
            let mut extra = 0;
            while Instant::now() < deadline && extra < 5 {
                let _ = socket.send_to(b"punch", peer);
                if let Ok((_, from)) = socket.recv_from(&mut buf) {
                    assert_eq!(from, peer, "direct from the peer's public address");
                    heard = true;
                }
                // Keep sending a little after hearing, so the peer hears us too.
                if heard {
                    extra += 1;
                }
            }
            heard
        })
    };
    let from_a = punch(a, b_public);
    let from_b = punch(b, a_public);
    assert!(from_a.join().expect("alice thread"), "alice heard bob");
    assert!(from_b.join().expect("bob thread"), "bob heard alice");
}

#[test]
fn symmetric_nat_maps_per_destination() {
    let Some(lab) = lab("sym") else { return };
    let stun1 = lab
        .public_host("stun1", Ipv4Addr::new(203, 0, 113, 2))
        .expect("stun1");
    let stun2 = lab
        .public_host("stun2", Ipv4Addr::new(203, 0, 113, 3))
        .expect("stun2");
    let reflectors = [
        Reflector::start(&stun1, 3478),
        Reflector::start(&stun2, 3478),
        Reflector::start(&stun2, 3479),
    ];
    let home = lab.home("carol", Nat::Symmetric).expect("home");
    let socket = home.host().bind_udp(0).expect("bind");
    let seen: Vec<SocketAddr> = reflectors
        .iter()
        .map(|r| observe(&socket, r.addr).expect("answer"))
        .collect();
    assert!(seen.iter().all(|s| s.ip() == home.public_ip()));
    let mut ports: Vec<u16> = seen.iter().map(|s| s.port()).collect();
    ports.dedup();
    assert!(ports.len() >= 2, "ports differ per destination: {seen:?}");
    // Still the same mapping for the same destination.
    assert_eq!(observe(&socket, reflectors[0].addr), Some(seen[0]));
}
