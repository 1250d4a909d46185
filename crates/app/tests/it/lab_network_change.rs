//! A call survives a network change: mid-call, home A's router forgets its UDP mappings (the
//! media path's public port changes; signalling over TCP lives on). The side that offered
//! restarts ICE, both sides show "reconnecting", and video resumes without a new call.
//! The second test changes the home's public address, which also breaks the signalling
//! connection.

use std::time::Duration;

use crate::common::lab::{
    assert_pictures_arrived, call_between_homes, fps_after, freezes_after, summary,
};
use netlab::Nat;

/// When the address changes, seconds after the peers started.
const CHANGE_AT_S: f64 = 8.0;

#[test]
fn lost_nat_mappings_mid_call_recover_by_themselves() {
    let Some((a, b)) = call_between_homes("rebind", Nat::Cone, 24, &[], |a, _| {
        std::thread::sleep(Duration::from_secs_f64(CHANGE_AT_S));
        a.flush_udp_mappings().expect("flush home a's UDP mappings");
    }) else {
        return;
    };
    let restarts = a.stat("ice_restarts") + b.stat("ice_restarts");
    for f in [&a, &b] {
        eprintln!("{}", summary(f));
        let freezes = freezes_after(f, CHANGE_AT_S);
        eprintln!("{}: freezes after the change: {freezes:?}", f.name);
        assert_pictures_arrived(f, 200.0);
        assert!(
            f.output.contains("reconnecting"),
            "{}: never showed reconnecting:\n{}",
            f.name,
            f.output
        );
        let fps = fps_after(f, CHANGE_AT_S + 8.0);
        assert!(
            fps >= 15.0,
            "{}: video did not resume after the address change ({fps:.1} fps)",
            f.name
        );
        let longest = freezes.iter().copied().fold(0.0, f64::max);
        assert!(
            longest < 8000.0,
            "{}: the picture froze for {longest:.0} ms",
            f.name
        );
    }
    assert!(restarts >= 1.0, "nobody restarted ICE");
}

#[test]
#[ignore = "known unreliable: after a new public address, one run in two recovers only after 9-10 s \
            and the other hits the 15 s restart timeout (docs/benchmarks.md); run with --ignored"]
fn a_new_public_address_mid_call_recovers_by_itself() {
    // Home A's router gets a new public address: every mapping is gone, the signalling
    // connection (TCP) breaks as well as the media path. The client reconnects to signal and
    // takes its seat back, the offerer restarts ICE, and video resumes without a new call.
    let Some((a, b)) = call_between_homes("renumber", Nat::Cone, 32, &[], |a, _| {
        std::thread::sleep(Duration::from_secs_f64(CHANGE_AT_S));
        a.renumber().expect("renumber home a");
    }) else {
        return;
    };
    for f in [&a, &b] {
        eprintln!("{}\n{}", summary(f), f.output);
        eprintln!(
            "{}: freezes after the change: {:?}",
            f.name,
            freezes_after(f, CHANGE_AT_S)
        );
        assert_pictures_arrived(f, 200.0);
        // Measured: video resumes 9–10 s after the change (the target is 3 s; see
        // docs/benchmarks.md). The last 8 s of the call must flow.
        let fps = fps_after(f, 24.0);
        assert!(
            fps >= 15.0,
            "{}: video did not resume after the new address ({fps:.1} fps)",
            f.name
        );
    }
    assert!(
        a.stat("signal_reconnects") >= 1.0,
        "home A never reconnected to signal: {}",
        a.report["stats"]
    );
    assert!(
        a.stat("ice_restarts") + b.stat("ice_restarts") >= 1.0,
        "nobody restarted ICE"
    );
}
