//! WAN link impairments, changed at runtime: random loss, rate caps, UDP blocking, lost NAT
//! mappings and a new public address.

use std::net::{Ipv4Addr, SocketAddr};
use std::thread;
use std::time::Duration;

use netlab::Nat;

use crate::common::{Reflector, lab, observe, receive_count, send_paced};

#[test]
fn loss_drops_about_the_set_share_one_way() {
    let Some(lab) = lab("loss") else { return };
    let server = lab
        .public_host("server", Ipv4Addr::new(203, 0, 113, 2))
        .expect("server");
    let home = lab.home("alice", Nat::Cone).expect("home");
    home.set_loss_permille(100, 0).expect("loss");

    let sink = server.bind_udp(5000).expect("bind");
    let client = home.host().bind_udp(0).expect("bind");
    let sink_addr = sink.local_addr().expect("addr");
    let count = 2000;

    let counter = thread::spawn(move || {
        let up = receive_count(
            &sink,
            count,
            Duration::from_millis(700),
            Duration::from_secs(10),
        );
        (sink, up)
    });
    let client = {
        send_paced(&client, sink_addr, count, 100, 5000);
        client
    };
    let (sink, up) = counter.join().expect("counter");
    let up_loss = 1.0 - f64::from(up.packets) / f64::from(count);
    eprintln!(
        "loss: {} of {count} arrived up ({:.1} % lost)",
        up.packets,
        up_loss * 100.0
    );
    assert!(
        (0.05..=0.16).contains(&up_loss),
        "upload loss {:.1} % with 100 per mille",
        up_loss * 100.0
    );

    // The way down is clean. The client's mapping exists: it just sent to the sink.
    let client_public: SocketAddr = {
        let mut buf = [0u8; 16];
        sink.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        // Some of these are lost on the way up; retry until one passes.
        let mut seen = None;
        for _ in 0..20 {
            client.send_to(b"here", sink_addr).expect("send");
            if let Ok((_, from)) = sink.recv_from(&mut buf) {
                seen = Some(from);
                break;
            }
        }
        seen.expect("one of 20 datagrams passes 10 % loss")
    };
    let counter = thread::spawn(move || {
        receive_count(
            &client,
            count,
            Duration::from_millis(700),
            Duration::from_secs(10),
        )
    });
    send_paced(&sink, client_public, count, 100, 5000);
    let down = counter.join().expect("counter");
    let down_loss = 1.0 - f64::from(down.packets) / f64::from(count);
    eprintln!("loss: {} of {count} arrived down", down.packets);
    assert!(
        down_loss < 0.02,
        "download loss {:.1} % with none set",
        down_loss * 100.0
    );

    home.set_loss_permille(0, 0).expect("clear");
}

#[test]
fn rate_cap_limits_both_directions_and_can_be_lifted() {
    let Some(lab) = lab("rate") else { return };
    let server = lab
        .public_host("server", Ipv4Addr::new(203, 0, 113, 2))
        .expect("server");
    let home = lab.home("alice", Nat::Cone).expect("home");
    home.set_rate_kbit(Some(1000)).expect("cap");

    let up_sink = server.bind_udp(5000).expect("bind");
    let down_source = server.bind_udp(5001).expect("bind");
    let up_source = home.host().bind_udp(0).expect("bind");
    let down_sink = home.host().bind_udp(0).expect("bind");
    let up_addr = up_sink.local_addr().expect("addr");
    // Open the download mapping and learn its public address.
    let mut buf = [0u8; 16];
    down_source
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    down_sink
        .send_to(b"open", down_source.local_addr().expect("addr"))
        .expect("send");
    let (_, down_public) = down_source.recv_from(&mut buf).expect("mapping opened");

    // 4 Mbit/s of 1000-byte datagrams for 2 s each way, at the same time.
    let (count, size, per_second) = (1000, 1000, 500);
    let idle = Duration::from_millis(600);
    let limit = Duration::from_secs(6);
    let up_counter = thread::spawn(move || (receive_count(&up_sink, count, idle, limit), up_sink));
    let down_counter =
        thread::spawn(move || (receive_count(&down_sink, count, idle, limit), down_sink));
    let up_sender = thread::spawn(move || {
        send_paced(&up_source, up_addr, count, size, per_second);
        up_source
    });
    send_paced(&down_source, down_public, count, size, per_second);
    let up_source = up_sender.join().expect("sender");
    let (up, up_sink) = up_counter.join().expect("counter");
    let (down, _) = down_counter.join().expect("counter");
    for (way, got) in [("up", up), ("down", down)] {
        let kbit = got.rate_kbit();
        eprintln!(
            "rate: {way} {kbit:.0} kbit/s, {} of {count} datagrams",
            got.packets
        );
        assert!(
            (600.0..=1200.0).contains(&kbit),
            "{way}: {kbit:.0} kbit/s under a 1000 kbit/s cap ({got:?})"
        );
        assert!(
            got.packets < count * 7 / 10,
            "{way}: the excess was dropped ({got:?})"
        );
    }

    // Lifted: a short burst goes through far above the old cap.
    home.set_rate_kbit(None).expect("lift");
    let counter = thread::spawn(move || receive_count(&up_sink, 250, idle, limit));
    send_paced(&up_source, up_addr, 250, size, per_second);
    let free = counter.join().expect("counter");
    eprintln!(
        "rate: uncapped {:.0} kbit/s, {} of 250",
        free.rate_kbit(),
        free.packets
    );
    assert!(free.packets >= 245, "uncapped: {free:?}");
    assert!(
        free.rate_kbit() > 2500.0,
        "uncapped: {:.0} kbit/s",
        free.rate_kbit()
    );
}

#[test]
fn block_udp_flush_and_renumber_change_what_the_public_net_sees() {
    let Some(lab) = lab("mapping") else { return };
    let server = lab
        .public_host("stun", Ipv4Addr::new(203, 0, 113, 2))
        .expect("server");
    let reflector = Reflector::start(&server, 3478);
    let home = lab.home("alice", Nat::Cone).expect("home");
    let socket = home.host().bind_udp(0).expect("bind");
    let first = observe(&socket, reflector.addr).expect("answer");

    home.block_udp(true).expect("block");
    assert_eq!(observe(&socket, reflector.addr), None, "UDP is blocked");
    home.block_udp(false).expect("unblock");
    assert_eq!(
        observe(&socket, reflector.addr),
        Some(first),
        "same mapping after unblocking"
    );

    // A lost mapping comes back on a new random port (retry: 1 in 10 000 it is the same).
    let mut after_flush = first;
    for _ in 0..3 {
        home.flush_conntrack().expect("flush");
        after_flush = observe(&socket, reflector.addr).expect("answer");
        if after_flush != first {
            break;
        }
    }
    assert_eq!(after_flush.ip(), first.ip());
    assert_ne!(
        after_flush.port(),
        first.port(),
        "flushing conntrack remaps the port"
    );

    // Forgetting only the UDP mappings always moves UDP to another port, every time.
    for _ in 0..3 {
        let before = observe(&socket, reflector.addr).expect("answer");
        home.flush_udp_mappings().expect("flush the UDP mappings");
        let after = observe(&socket, reflector.addr).expect("answer after the flush");
        assert_eq!(after.ip(), before.ip());
        assert_ne!(
            after.port(),
            before.port(),
            "flush_udp_mappings remaps the port"
        );
    }

    let old_ip = home.public_ip();
    let new_ip = home.renumber().expect("renumber");
    assert_ne!(new_ip, old_ip);
    assert_eq!(home.public_ip(), new_ip);
    let after_renumber = observe(&socket, reflector.addr).expect("answer after renumbering");
    assert_eq!(
        after_renumber.ip(),
        new_ip,
        "the public net sees the new address"
    );
}

#[test]
fn a_rate_cap_can_step_while_set() {
    let Some(lab) = lab("step") else { return };
    let home = lab.home("alice", Nat::Cone).expect("home");
    // Down, up, the same again, then lifted: each change applies without an error.
    for kbit in [
        Some(3000),
        Some(500),
        Some(3000),
        Some(3000),
        None,
        Some(800),
    ] {
        home.set_rate_kbit(kbit)
            .unwrap_or_else(|e| panic!("setting {kbit:?} kbit/s: {e}"));
    }
    let qdiscs = home
        .router()
        .command("tc")
        .args(["qdisc", "show", "dev", "wan"])
        .output()
        .expect("tc");
    let text = String::from_utf8_lossy(&qdiscs.stdout);
    assert!(text.contains("htb"), "no htb after the last change: {text}");
    let classes = home
        .router()
        .command("tc")
        .args(["class", "show", "dev", "wan"])
        .output()
        .expect("tc");
    let text = String::from_utf8_lossy(&classes.stdout);
    assert!(
        text.contains("rate 800Kbit"),
        "the last rate is not in force: {text}"
    );
}
