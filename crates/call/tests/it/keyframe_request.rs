//! A keyframe request from the receiver (PLI) produces an IDR at the sender.
use crate::common;

use std::time::Duration;

use call::{Command, Engine};

#[test]
fn pli_from_receiver_makes_the_sender_send_an_idr() {
    let server = common::hosted_signal();
    let url = server.local_url();
    let sender = Engine::start(common::config(&url, "kf", 440.0), None).expect("engine");
    let receiver = Engine::start(common::config(&url, "kf", 550.0), None).expect("engine");
    let (mut ss, mut sr) = (common::Seen::default(), common::Seen::default());
    assert!(common::watch_both(
        &sender,
        &mut ss,
        &receiver,
        &mut sr,
        Duration::from_secs(20),
        common::media_flowing(10, 1)
    ));
    // Let a stats tick pass so the counters below are settled.
    assert!(common::watch(
        &sender,
        &mut ss,
        Duration::from_secs(3),
        |s| s.stats.keyframes_sent >= 1
    ));
    let idrs_before = ss.stats.keyframes_sent;
    let requests_before = ss.stats.keyframe_requests_received;
    let plis_before = sr.stats.plis_sent;

    assert!(receiver.command(Command::RequestKeyframe));
    let got = common::watch(&sender, &mut ss, Duration::from_secs(10), |s| {
        s.stats.keyframe_requests_received > requests_before && s.stats.keyframes_sent > idrs_before
    });
    assert!(
        got,
        "no IDR after the PLI: before {idrs_before}/{requests_before}, now {:?}; receiver {:?}",
        ss.stats, sr.stats
    );
    assert!(common::watch(
        &receiver,
        &mut sr,
        Duration::from_secs(3),
        |s| s.stats.plis_sent > plis_before
    ));
}
