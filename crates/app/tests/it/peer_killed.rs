//! Killing the process of one side (no hang-up sent): the server holds its seat for the seat
//! hold (it might reconnect), then the other side is told `peer-left`, and a third peer can
//! join the same room and call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use call::{CallConfig, CallState, Engine, Event};
use signal::HostedSignal;

fn config(url: &str) -> CallConfig {
    crate::common::synthetic_call(url, "killed", 320, 240)
}

/// Drains events until `pred` holds for the (states, frames decoded) seen, or `timeout`.
fn wait(
    engine: &Engine,
    states: &mut Vec<CallState>,
    timeout: Duration,
    pred: impl Fn(&[CallState], u64) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    let mut frames = 0;
    while Instant::now() < deadline {
        match engine.events().recv_timeout(Duration::from_millis(100)) {
            Ok(Event::State(s)) => states.push(s),
            Ok(Event::Stats(s)) => frames = s.pattern_frames,
            _ => {}
        }
        if pred(states, frames) {
            return true;
        }
    }
    false
}

fn peer_process(url: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_duet"))
        .args([
            "call",
            "killed",
            "--signal",
            url,
            "--loopback",
            "--size",
            "320x240",
            "--duration",
            "60",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("duet call starts")
}

#[test]
fn killed_peer_is_detected_and_replaced() {
    // Real calls: not at the same time as a lab test measuring frame rates.
    let _slot = crate::common::slots::call_slot();
    // The killed side cannot come back: the server frees its seat when the hold runs out.
    let hold = Duration::from_secs(3);
    let server = HostedSignal::start(
        "127.0.0.1:0".parse().unwrap(),
        signal::Config {
            limits: signal::Limits {
                seat_hold: hold,
                ..signal::Limits::default()
            },
            ..signal::Config::default()
        },
    )
    .unwrap();
    let url = server.local_url();
    let engine = Engine::start(config(&url), None).unwrap();
    let mut states = Vec::new();
    assert!(wait(
        &engine,
        &mut states,
        Duration::from_secs(5),
        |s, _| s.contains(&CallState::WaitingForPeer)
    ));

    let mut victim = peer_process(&url);
    let connected = wait(&engine, &mut states, Duration::from_secs(20), |s, f| {
        s.contains(&CallState::Connected) && f >= 10
    });
    assert!(connected, "first call did not connect: {states:?}");

    victim.kill().unwrap(); // SIGKILL: no leave, no close handshake
    let _ = victim.wait();
    let killed_at = Instant::now();
    assert!(wait(
        &engine,
        &mut states,
        hold + Duration::from_secs(10),
        |s, _| s.ends_with(&[CallState::PeerLeft, CallState::WaitingForPeer])
    ));
    assert!(
        killed_at.elapsed() >= hold,
        "peer-left came before the seat hold ran out"
    );
    eprintln!("peer-left seen {:?} after the kill", killed_at.elapsed());

    let mut third = peer_process(&url);
    let again = wait(&engine, &mut states, Duration::from_secs(20), |s, f| {
        s.iter().filter(|x| **x == CallState::Connected).count() == 2 && f >= 10
    });
    let _ = third.kill();
    let _ = third.wait();
    assert!(again, "the third peer could not call: {states:?}");
}
