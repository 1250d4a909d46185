//! Two engines through an in-process `signal`: each side decodes the other's test pattern
//! (counters increasing, picture matching the pattern) and hears the other's tone.
use crate::common;

use std::time::Duration;

use call::CallState;
use media::{TestPattern, read_pattern_stamp};

#[test]
fn video_and_audio_flow_both_ways() {
    let server = common::hosted_signal();
    let url = server.local_url();
    let (a, sa, b, sb, ok) = common::two_engines(
        &url,
        "both-ways",
        880.0,
        Duration::from_secs(20),
        common::media_flowing(60, 100),
    );
    assert!(ok, "media did not flow: a={:?} b={:?}", sa.stats, sb.stats);

    for (name, seen, engine, heard_hz) in [("a", &sa, &a, 880.0), ("b", &sb, &b, 440.0)] {
        assert!(
            seen.states.contains(&CallState::Connected),
            "{name} never connected: {:?}",
            seen.states
        );
        let s = &seen.stats;
        // The embedded counters increase: frames arrive in order, none repeated.
        assert_eq!(s.pattern_out_of_order, 0, "{name}: {s:?}");
        let (first, last) = (s.pattern_first.unwrap_or(0), s.pattern_last.unwrap_or(0));
        assert!(last >= first + 59, "{name}: counters {first}..{last}");
        assert_eq!(s.recv_resolution, (320, 240), "{name}");
        // The tone of the other side is what is heard.
        let hz = s.audio_dominant_hz.unwrap_or(0.0);
        assert!(
            (hz - heard_hz).abs() <= 5.0,
            "{name} heard {hz} Hz, expected {heard_hz}"
        );

        // The picture on screen is the sender's pattern: re-render the frame it says it is
        // and compare.
        let (_, frame) = engine.remote_frames().latest();
        let frame = frame.expect("a remote frame");
        let stamp = read_pattern_stamp(&frame).expect("the remote frame carries a stamp");
        let source = TestPattern::new(320, 240, 30)
            .render(stamp.counter, stamp.capture_time_us)
            .expect("render");
        let psnr = frame.psnr(&source).expect("psnr");
        assert!(psnr >= 30.0, "{name}: PSNR {psnr:.1} dB");
        // The self-view shows our own pattern.
        let (_, local) = engine.local_frames().latest();
        assert!(
            read_pattern_stamp(&local.expect("a local preview frame")).is_some(),
            "{name}: no self-view"
        );
    }
    assert_eq!(a.hang_up(), CallState::Ended);
    assert_eq!(b.hang_up(), CallState::Ended);
}
