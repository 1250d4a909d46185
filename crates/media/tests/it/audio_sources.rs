//! Synthetic audio: the tone source delivers phase-continuous 20 ms frames at its frequency, and
//! the null sink counts what it is given through shared counters.

use crate::common;

use std::time::Duration;

use common::dominant_frequency;
use media::{AudioFrame, AudioSink, AudioSource, NullSink, SAMPLES_PER_FRAME, Tone};

#[test]
fn tone_source_feeds_a_null_sink() {
    let capture = Tone {
        freq_hz: 1000.0,
        amplitude: 0.3,
        channels: 2,
    }
    .start(8)
    .expect("tone");
    let mut sink = NullSink::new();
    let stats = sink.stats();
    let mut left = Vec::new();
    for _ in 0..10 {
        let frame = capture
            .recv_timeout(Duration::from_secs(2))
            .expect("a frame every 20 ms");
        assert_eq!(frame.channels(), 2);
        assert!(frame.capture_time_us > 0);
        left.extend(frame.samples().iter().step_by(2));
        sink.play(&frame).expect("null sink never fails");
    }
    capture.stop().expect("stop");
    assert_eq!(stats.frames(), 10);
    assert_eq!(stats.samples(), 10 * SAMPLES_PER_FRAME as u64);
    let f = dominant_frequency(&left);
    assert!((f - 1000.0).abs() <= 2.0, "{f}");
    // Phase-continuous: no jump between consecutive frames.
    let max_step = left
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max);
    assert!(max_step < 0.05, "discontinuity {max_step}");
}

#[test]
fn audio_frames_validate_their_shape() {
    assert!(AudioFrame::new(1, vec![0.0; 960], 0).is_ok());
    assert!(AudioFrame::new(1, vec![0.0; 959], 0).is_err());
    assert!(AudioFrame::new(3, vec![0.0; 2880], 0).is_err());
    let stereo = Tone::new(440.0).frame(0, 0).to_channels(2).expect("stereo");
    assert_eq!(stereo.samples().len(), 1920);
    assert_eq!(stereo.samples()[0], stereo.samples()[1]);
}
