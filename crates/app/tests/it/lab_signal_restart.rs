//! The signal server restarts mid-call (killed, then started again with none of its state):
//! media goes peer to peer, so video never stops; both clients reconnect with backoff and join
//! again with their session ids, and the `ready` the fresh server sends does not tear the
//! running call down.

use std::time::Duration;

use crate::common::lab::{
    PeerOptions, assert_pictures_arrived, finish, freezes_after, lab, servers, start_peer, summary,
};
use crate::common::unique_room;
use netlab::Nat;

/// When signal goes away, seconds after the peers started.
const RESTART_AT_S: f64 = 8.0;

#[test]
fn a_signal_restart_mid_call_does_not_stop_the_video() {
    let _slot = crate::common::slots::call_slot();
    let Some(lab) = lab("restart") else { return };
    let mut servers = servers(&lab);
    let a = lab.home("a", Nat::Cone).expect("home a");
    let b = lab.home("b", Nat::Cone).expect("home b");
    let room = unique_room("restart");
    let options = |tone| PeerOptions {
        room: &room,
        tone,
        seconds: 20,
        extra: &[],
    };
    let pa = start_peer(&a, &servers, "a", &options("tone:440"));
    let pb = start_peer(&b, &servers, "b", &options("tone:660"));
    std::thread::sleep(Duration::from_secs_f64(RESTART_AT_S));
    servers.restart_signal(Duration::from_secs(1));
    let fa = finish(pa, Duration::from_secs(50));
    let fb = finish(pb, Duration::from_secs(50));
    for f in [&fa, &fb] {
        eprintln!("{}\n{}", summary(f), f.output);
        assert_pictures_arrived(f, 400.0);
        let long: Vec<f64> = freezes_after(f, RESTART_AT_S)
            .into_iter()
            .filter(|ms| *ms > 1000.0)
            .collect();
        assert!(long.is_empty(), "{}: the video froze: {long:?}", f.name);
        assert!(
            f.stat("signal_reconnects") >= 1.0,
            "{}: never got back onto signal: {}",
            f.name,
            f.report["stats"]
        );
    }
}
