//! A call survives a network change: mid-call, home A's router forgets its UDP mappings (the
//! media path's public port changes; signalling over TCP lives on). The side that offered
//! restarts ICE, both sides show "reconnecting", and video resumes without a new call.
//!
//! Not yet covered: a change that also breaks the signalling connection (a new public address,
//! all mappings flushed); that needs signalling reconnect (issue 13, item 4).

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
