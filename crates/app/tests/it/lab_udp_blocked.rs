//! UDP blocked at one home: `duet call` there cannot reach signal's TURN (webrtc-rs relays
//! over UDP only) and says so within the connect timeout, naming UDP as the reason, instead of
//! hanging at "connecting". (A browser there gets through over TURN/TCP: `lab_browser.rs`.)

use std::time::Duration;

use crate::common::lab::{PeerOptions, finish, signal_lab, start_bare_peer};
use crate::common::unique_room;
use netlab::Nat;

#[test]
fn duet_behind_a_udp_block_says_udp_is_blocked() {
    let Some(lab) = signal_lab("udpblk", Nat::Cone) else {
        return;
    };
    let (a, b, signal) = (&lab.a, &lab.b, &lab.signal);
    a.block_udp(true).expect("block UDP at home a");
    let room = unique_room("udpblk");
    let options = |tone| PeerOptions {
        room: &room,
        tone,
        seconds: 25,
        extra: &[],
    };
    let pa = start_bare_peer(a, &signal.signal_url(), "a", &options("tone:440"));
    let pb = start_bare_peer(b, &signal.signal_url(), "b", &options("tone:660"));
    let fa = finish(pa, Duration::from_secs(45));
    let _fb = finish(pb, Duration::from_secs(45));
    assert!(
        !fa.success,
        "a call without UDP cannot connect:\n{}",
        fa.output
    );
    let failure = fa.report["failure"].to_string();
    assert!(
        failure.contains("UDP seems blocked"),
        "the failure does not say why: {failure}\n{}",
        fa.output
    );
    assert_eq!(
        fa.stat("frames_decoded"),
        0.0,
        "nothing can have arrived without UDP"
    );
}
