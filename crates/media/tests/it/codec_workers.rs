//! The decoder thread: test pattern → encoder → decode worker with bounded channels; pictures
//! arrive in order with their stamps, a keyframe request at the encoder is honoured, and an
//! unread decoder output stays bounded.

use std::time::Duration;

use media::{
    DecodeWorker, EncoderConfig, H264Encoder, TestPattern, VideoSource, read_pattern_stamp,
};

/// The next access unit the encoder makes from `capture`'s frames.
fn next_au(capture: &media::VideoCapture, encoder: &mut H264Encoder) -> media::EncodedFrame {
    loop {
        let frame = capture
            .receiver()
            .recv_timeout(Duration::from_secs(5))
            .expect("frames keep coming");
        if let Some(au) = encoder.encode(&frame).expect("encodes") {
            return au;
        }
    }
}

#[test]
fn capture_encode_decode_on_threads() {
    let capture = TestPattern::new(320, 240, 60).start(4).expect("source");
    let mut encoder = H264Encoder::new(EncoderConfig::default()).expect("encoder");
    let dec = DecodeWorker::spawn(media::VideoCodec::H264, 8).expect("decode worker");
    assert!(dec.needs_keyframe(), "nothing decoded yet");

    let mut counters = Vec::new();
    let mut keyframes = 0;
    while counters.len() < 30 {
        let au = next_au(&capture, &mut encoder);
        keyframes += usize::from(au.keyframe);
        if counters.len() == 15 {
            encoder.set_bitrate(500_000).expect("bitrate");
            encoder.request_keyframe();
        }
        assert!(dec.push(au.data));
        let frame = dec
            .output()
            .recv_timeout(Duration::from_secs(5))
            .expect("decoded frame");
        counters.push(read_pattern_stamp(&frame).expect("stamp").counter);
    }
    assert!(
        counters.windows(2).all(|w| w[0] < w[1]),
        "in order: {counters:?}"
    );
    assert!(
        keyframes >= 2,
        "initial IDR plus the requested one: {keyframes}"
    );
    assert!(!dec.needs_keyframe());
    assert_eq!(dec.stats().errors(), 0);

    // Nobody reads the decoder output now: it stays bounded and counts what it drops.
    for _ in 0..20 {
        dec.push(next_au(&capture, &mut encoder).data);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while dec.stats().processed() < 50 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(dec.output().len() <= 8);
    assert!(dec.stats().dropped() > 0, "{:?}", dec.stats());

    dec.stop().expect("decoder stops cleanly");
    capture.stop().expect("source stops cleanly");
}
