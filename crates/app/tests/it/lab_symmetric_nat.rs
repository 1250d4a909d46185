//! Two homes behind symmetric NATs, where no direct path exists: with only the `signal`
//! binary on the public net (its built-in TURN, handed out with `ready`) and no ICE servers
//! configured on either side, the call connects through the relay.

use crate::common::lab::{SERVER_IP, assert_pictures_arrived, signal_lab, summary};
use netlab::Nat;

#[test]
fn symmetric_nats_connect_through_signals_turn() {
    let Some(lab) = signal_lab("sym", Nat::Symmetric) else {
        return;
    };
    let (fa, fb) = lab.call("sym", 12);
    for f in [&fa, &fb] {
        eprintln!("{}", summary(f));
        assert_pictures_arrived(f, 60.0);
    }
    // At least one side's selected pair is a relayed candidate on signal's address.
    let relayed = [&fa, &fb].iter().any(|f| {
        let local = f.stat_str("ice_local_candidate");
        let remote = f.stat_str("ice_remote_candidate");
        (local.starts_with("relay ") && local.contains(&SERVER_IP.to_string()))
            || (remote.starts_with("relay ") && remote.contains(&SERVER_IP.to_string()))
    });
    assert!(
        relayed,
        "the call did not go through signal's TURN: a {} / {}, b {} / {}",
        fa.stat_str("ice_local_candidate"),
        fa.stat_str("ice_remote_candidate"),
        fb.stat_str("ice_local_candidate"),
        fb.stat_str("ice_remote_candidate")
    );
}
