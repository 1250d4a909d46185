//! Running code inside a namespace: commands pass arguments and environment through, threads
//! see only their namespace's interfaces.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use netlab::Nat;

use crate::common::lab;

#[test]
fn command_runs_inside_with_args_and_env() {
    let Some(lab) = lab("exec") else { return };
    let host = lab
        .public_host("server", Ipv4Addr::new(203, 0, 113, 2))
        .expect("host");
    let out = host
        .command("sh")
        .args([
            "-c",
            "echo \"$NETLAB_PROBE $1\"; ip -4 -o addr show",
            "sh",
            "arg one",
        ])
        .env("NETLAB_PROBE", "env ok")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("env ok arg one\n"), "{text}");
    assert!(text.contains("203.0.113.2/24"), "{text}");
    assert!(text.contains("127.0.0.1/8"), "lo is up: {text}");
    assert_eq!(text.lines().count(), 3, "only lo and eth0: {text}");
}

#[test]
fn run_in_enters_the_namespace_and_children_inherit_it() {
    let Some(lab) = lab("runin") else { return };
    let home = lab.home("alice", Nat::Cone).expect("home");
    let ip = home.host().ip();
    let netns_inode = std::fs::metadata(format!("/run/netns/{}", home.host().netns()))
        .expect("netns file")
        .ino();
    let (inode, bound) = home
        .host()
        .run_in(move || {
            // A thread spawned from inside is inside too.
            std::thread::spawn(move || (current_netns(), UdpSocket::bind((ip, 0)).is_ok()))
                .join()
                .unwrap_or((None, false))
        })
        .expect("enter")
        .join()
        .expect("thread");
    assert_eq!(
        inode,
        Some(netns_inode),
        "the child thread is in the host's namespace"
    );
    assert!(bound, "and binds the host's private address");
    assert_ne!(
        current_netns(),
        Some(netns_inode),
        "the test thread stays where it was"
    );
    // Loopback is up inside.
    let lo = home
        .router()
        .run(|| UdpSocket::bind("127.0.0.1:0").and_then(|s| s.send_to(b"x", s.local_addr()?)))
        .expect("enter");
    assert!(lo.is_ok(), "{lo:?}");
}

/// The inode of the calling thread's network namespace (`net:[INODE]`).
fn current_netns() -> Option<u64> {
    let link = std::fs::read_link("/proc/thread-self/ns/net").ok()?;
    let text = link.to_string_lossy();
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// `wait_for_tcp` sees a listener on the public net from inside a home once it listens, and
/// gives up on a port nobody listens on.
#[test]
fn wait_for_tcp_waits_for_a_listener_and_gives_up_on_none() {
    let Some(lab) = lab("waittcp") else { return };
    let server = lab
        .public_host("srv", Ipv4Addr::new(203, 0, 113, 10))
        .expect("public host");
    let home = lab.home("alice", Nat::Cone).expect("home");
    let addr = SocketAddr::from((server.ip(), 7000));
    assert!(
        !home.host().wait_for_tcp(addr, Duration::from_millis(300)),
        "nothing listens yet"
    );
    // Listening a moment later, from another thread, is waited for.
    let late = server.clone();
    let listener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        late.bind_tcp(7000).expect("listen")
    });
    assert!(
        home.host().wait_for_tcp(addr, Duration::from_secs(5)),
        "the listener was not seen"
    );
    drop(listener.join());
}
