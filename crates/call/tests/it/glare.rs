//! Glare: with a seed-style server (no `offerer` flag in `ready`), both sides offer at once;
//! the engines still agree on who backs down and the call connects.
use crate::common;

use std::time::Duration;

#[test]
fn both_offer_and_still_connect() {
    let (url, _server) = common::seed_relay(None);
    let (_a, sa, _b, sb, ok) = common::two_engines(
        &url,
        "glare",
        660.0,
        Duration::from_secs(20),
        common::media_flowing(30, 50),
    );
    assert!(
        ok,
        "glare call did not connect: a={:?} {:?} b={:?} {:?}",
        sa.states, sa.stats, sb.states, sb.stats
    );
    // Both sides offered on `ready`, so the offers collided: one side ignored the other's
    // offer and the other rolled its own back.
    let ignored = sa.stats.glare_offers_ignored + sb.stats.glare_offers_ignored;
    let rollbacks = sa.stats.glare_rollbacks + sb.stats.glare_rollbacks;
    assert!(
        ignored >= 1 && rollbacks >= 1,
        "expected an ignored offer and a rollback ({ignored}, {rollbacks}): a={:?} b={:?}",
        sa.stats,
        sb.stats
    );
}
