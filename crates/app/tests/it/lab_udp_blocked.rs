//! UDP blocked at one home: `duet call` there cannot reach signal's TURN (webrtc-rs relays
//! over UDP only) and says so within the connect timeout, naming UDP as the reason, instead of
//! hanging at "connecting". (A browser there gets through over TURN/TCP: `lab_browser.rs`.)

use crate::common::lab::signal_lab;
use netlab::Nat;

#[test]
fn duet_behind_a_udp_block_says_udp_is_blocked() {
    let Some(lab) = signal_lab("udpblk", Nat::Cone) else {
        return;
    };
    lab.a.block_udp(true).expect("block UDP at home a");
    let (fa, _fb) = lab.call("udpblk", 25);
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
