//! When one side hangs up, the other hears `peer-left` within seconds, goes back to waiting in
//! the same room, and a third person can then join and call.
use crate::common;

use std::time::Duration;

use call::{CallState, Engine};

#[test]
fn hang_up_then_a_third_peer_calls() {
    let server = common::hosted_signal();
    let url = server.local_url();
    let stay = Engine::start(common::config(&url, "revolving", 440.0), None).expect("engine");
    let first = Engine::start(common::config(&url, "revolving", 550.0), None).expect("engine");
    let (mut s_stay, mut s_first) = (common::Seen::default(), common::Seen::default());
    assert!(common::watch_both(
        &stay,
        &mut s_stay,
        &first,
        &mut s_first,
        Duration::from_secs(20),
        common::media_flowing(10, 10)
    ));

    assert_eq!(first.hang_up(), CallState::Ended);
    let left = common::watch(&stay, &mut s_stay, Duration::from_secs(10), |s| {
        s.states
            .ends_with(&[CallState::PeerLeft, CallState::WaitingForPeer])
    });
    assert!(left, "no peer-left: {:?}", s_stay.states);

    let third = Engine::start(common::config(&url, "revolving", 660.0), None).expect("engine");
    let mut s_third = common::Seen::default();
    s_stay.stats = Default::default();
    let again = common::watch_both(
        &stay,
        &mut s_stay,
        &third,
        &mut s_third,
        Duration::from_secs(20),
        |s| s.stats.pattern_frames >= 10 && s.stats.audio_dominant_hz.is_some(),
    );
    assert!(
        again,
        "second call failed: {:?} {:?}",
        s_stay.stats, s_third.stats
    );
    // The one who stayed now hears the third person's tone, not the first's.
    let hz = s_stay.stats.audio_dominant_hz.unwrap_or(0.0);
    assert!((hz - 660.0).abs() <= 5.0, "heard {hz} Hz");
    assert_eq!(
        s_stay
            .states
            .iter()
            .filter(|s| **s == CallState::Connected)
            .count(),
        2
    );
}
