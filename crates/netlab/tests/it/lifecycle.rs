//! The lab cleans up after itself: on drop, on explicit cleanup, while unwinding from a
//! panic, and after a process that died without cleaning up.

use std::net::Ipv4Addr;
use std::panic;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use netlab::{Lab, Nat};

use crate::common::lab;

fn exists(netns: &str) -> bool {
    Path::new("/run/netns").join(netns).exists()
}

fn build(lab: &Lab) -> Vec<String> {
    lab.public_host("server", Ipv4Addr::new(203, 0, 113, 2))
        .expect("server");
    lab.home("alice", Nat::Cone).expect("home");
    let names = lab.namespaces();
    assert_eq!(names.len(), 4, "pub, server, router, host: {names:?}");
    assert!(
        names
            .iter()
            .all(|n| exists(n) && n.starts_with(&lab.prefix()))
    );
    names
}

#[test]
fn drop_and_cleanup_delete_every_namespace() {
    let Some(lab) = lab("drop") else { return };
    let names = build(&lab);
    // A straggler process inside is killed, not left running in a nameless namespace.
    let mut sleeper = lab
        .namespaces()
        .get(1)
        .map(|ns| {
            Command::new("ip")
                .args(["netns", "exec", ns, "sleep", "30"])
                .spawn()
                .expect("spawn")
        })
        .expect("a namespace");
    std::thread::sleep(std::time::Duration::from_millis(100));
    drop(lab);
    assert!(names.iter().all(|n| !exists(n)), "{names:?}");
    let status = sleeper.wait().expect("wait");
    assert!(!status.success(), "the sleeper was killed");

    let Some(lab) = crate::common::lab("cleanup") else {
        return;
    };
    let names = build(&lab);
    lab.cleanup().expect("cleanup");
    assert!(names.iter().all(|n| !exists(n)));
    assert!(lab.namespaces().is_empty());
    lab.cleanup().expect("idempotent");
}

#[test]
fn a_panicking_test_still_cleans_up() {
    let Some(probe) = lab("panic") else { return };
    drop(probe);
    let made = Mutex::new(Vec::new());
    let result = panic::catch_unwind(|| {
        let lab = Lab::new("panic").expect("available a moment ago");
        *made.lock().expect("lock") = build(&lab);
        panic!("a test fails with the lab alive (expected, caught)");
    });
    assert!(result.is_err());
    let names = made.into_inner().expect("lock");
    assert_eq!(names.len(), 4);
    assert!(names.iter().all(|n| !exists(n)), "{names:?}");
}

#[test]
fn namespaces_of_dead_processes_are_removed() {
    // A pid that surely belongs to no live process: a child that has exited and been reaped.
    let mut child = Command::new("true").spawn().expect("spawn");
    let dead_pid = child.id();
    child.wait().expect("wait");
    let stale = [
        format!("dl-{dead_pid}-0-old-pub"),
        format!("dl-{dead_pid}-0-old-r-x"),
    ];
    let own_live = format!("dl-{}-9999-live-pub", std::process::id());
    if lab("probe").is_none() {
        return;
    }
    for name in stale.iter().chain([&own_live]) {
        let status = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .expect("ip");
        assert!(status.success(), "ip netns add {name}");
    }
    let lab = lab("stale").expect("available a moment ago");
    assert!(stale.iter().all(|n| !exists(n)), "stale namespaces removed");
    assert!(exists(&own_live), "a live process's namespace is kept");
    let _ = Command::new("ip")
        .args(["netns", "delete", &own_live])
        .status();
    drop(lab);
}
