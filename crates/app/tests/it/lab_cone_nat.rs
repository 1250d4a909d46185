//! Two homes behind cone NATs call each other with only a STUN server on the public net:
//! the selected ICE pair goes through the NATs' public addresses (server- or peer-reflexive),
//! and each side decodes the other's test pattern in order.

use crate::common::lab::{
    Finished, assert_pictures_arrived, call_between_homes, signal_lab, summary,
};
use netlab::Nat;

/// Whether `f`'s selected pair goes through the other home's NAT (not through a relay).
fn direct_through_nat(f: &Finished) -> bool {
    let remote = f.stat_str("ice_remote_candidate");
    let local = f.stat_str("ice_local_candidate");
    (remote.starts_with("srflx ") || remote.starts_with("prflx "))
        && remote.contains(" 203.0.113.")
        && !local.starts_with("relay ")
}

#[test]
fn cone_nats_connect_through_stun() {
    let Some((a, b)) = call_between_homes("cone", Nat::Cone, 10, &[], |_, _| {}) else {
        return;
    };
    for f in [&a, &b] {
        assert_pictures_arrived(f, 60.0);
        assert!(
            direct_through_nat(f),
            "{}: the selected pair does not go through the other home's NAT: local {:?}, remote {:?}",
            f.name,
            f.stat_str("ice_local_candidate"),
            f.stat_str("ice_remote_candidate"),
        );
    }
}

/// With `signal`'s TURN on offer too (its relay candidates gathered on both sides), the direct
/// path through the NATs still wins: relayed pairs are only chosen while no direct pair works
/// (`call::peer::RELAY_MIN_WAIT`), and webrtc-rs never switches away from its choice.
#[test]
fn cone_nats_prefer_the_direct_path_to_signals_turn() {
    let Some(lab) = signal_lab("conet", Nat::Cone) else {
        return;
    };
    let (fa, fb) = lab.call("conet", 8);
    for f in [&fa, &fb] {
        eprintln!("{}", summary(f));
        assert_pictures_arrived(f, 60.0);
        assert!(
            direct_through_nat(f),
            "{}: relayed although a direct path exists: local {:?}, remote {:?}",
            f.name,
            f.stat_str("ice_local_candidate"),
            f.stat_str("ice_remote_candidate"),
        );
    }
}
