//! The threaded flow: test pattern → encode worker → decode worker, each on its own named thread
//! with bounded channels; pictures arrive in order with their stamps, a keyframe request is
//! honoured through the worker, and an unread decoder output stays bounded.

use std::time::Duration;

use media::{
    DecodeWorker, EncodeWorker, EncoderCommand, H264Config, H264Encoder, TestPattern, VideoSource,
    read_pattern_stamp,
};

#[test]
fn capture_encode_decode_on_threads() {
    let capture = TestPattern::new(320, 240, 60).start(4).expect("source");
    let encoder = H264Encoder::new(H264Config::default()).expect("encoder");
    let enc = EncodeWorker::spawn(capture.receiver().clone(), encoder, 8).expect("encode worker");
    let dec = DecodeWorker::spawn(8).expect("decode worker");
    assert!(dec.needs_keyframe(), "nothing decoded yet");

    let mut counters = Vec::new();
    let mut keyframes = 0;
    while counters.len() < 30 {
        let au = enc
            .output()
            .recv_timeout(Duration::from_secs(5))
            .expect("encoded frames keep coming");
        keyframes += usize::from(au.keyframe);
        if counters.len() == 15 {
            enc.command(EncoderCommand::SetBitrate(500_000));
            enc.request_keyframe();
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
    assert_eq!(enc.stats().errors(), 0);

    // Nobody reads the decoder output now: it stays bounded and counts what it drops.
    for _ in 0..20 {
        let au = enc
            .output()
            .recv_timeout(Duration::from_secs(5))
            .expect("encoded");
        dec.push(au.data);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while dec.stats().processed() < 50 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(dec.output().len() <= 8);
    assert!(dec.stats().dropped() > 0, "{:?}", dec.stats());

    enc.stop().expect("encoder stops cleanly");
    dec.stop().expect("decoder stops cleanly");
    capture.stop().expect("source stops cleanly");
}
