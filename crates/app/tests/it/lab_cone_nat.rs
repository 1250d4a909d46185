//! Two homes behind cone NATs call each other with only a STUN server on the public net:
//! the selected ICE pair goes through the NATs' public addresses (server- or peer-reflexive),
//! and each side decodes the other's test pattern in order.

use crate::common::lab::{assert_pictures_arrived, call_between_homes};
use netlab::Nat;

#[test]
fn cone_nats_connect_through_stun() {
    let Some((a, b)) = call_between_homes("cone", Nat::Cone, 10, &[], |_, _| {}) else {
        return;
    };
    for f in [&a, &b] {
        assert_pictures_arrived(f, 60.0);
        let remote = f.stat_str("ice_remote_candidate");
        assert!(
            (remote.starts_with("srflx ") || remote.starts_with("prflx "))
                && remote.contains(" 203.0.113."),
            "{}: the selected pair does not go through the other home's NAT: local {:?}, remote {remote:?}",
            f.name,
            f.stat_str("ice_local_candidate"),
        );
    }
}
