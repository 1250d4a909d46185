//! `request_keyframe` makes the very next encoded frame an IDR (with SPS/PPS in front), and
//! frames are otherwise deltas.

use crate::common;

use common::{encoder, pattern_frame};
use media::{TestPattern, nal_unit_types};

#[test]
fn keyframe_request_yields_an_idr_on_the_next_frame() {
    let pattern = TestPattern::new(640, 480, 30);
    let mut enc = encoder(1_500_000);
    let mut n = 0;
    let encode = |enc: &mut media::H264Encoder, n: &mut u32| loop {
        let frame = pattern_frame(&pattern, *n);
        *n += 1;
        if let Some(encoded) = enc.encode(&frame).expect("encode") {
            return encoded;
        }
    };
    assert!(encode(&mut enc, &mut n).keyframe, "first frame is an IDR");
    for _ in 0..10 {
        let delta = encode(&mut enc, &mut n);
        assert!(!delta.keyframe, "no keyframe without a request");
        assert!(!nal_unit_types(&delta.data).contains(&5));
    }
    for round in 0..3 {
        enc.request_keyframe();
        let frame = common::pattern_frame(&TestPattern::new(640, 480, 30), n);
        n += 1;
        let idr = enc
            .encode(&frame)
            .expect("encode")
            .expect("a requested keyframe is not skipped");
        assert!(idr.keyframe, "round {round}: the next frame must be an IDR");
        let types = nal_unit_types(&idr.data);
        assert!(
            types.contains(&5) && types.contains(&7) && types.contains(&8),
            "{types:?}"
        );
        assert!(!encode(&mut enc, &mut n).keyframe, "and only that one");
    }
}

#[test]
fn bitrate_and_fps_change_without_a_keyframe() {
    let pattern = TestPattern::new(320, 240, 30);
    let mut enc = encoder(800_000);
    let mut keyframes = 0;
    for n in 0..40 {
        if n == 10 {
            enc.set_bitrate(300_000).expect("lower bitrate");
        }
        if n == 20 {
            enc.set_bitrate(1_200_000).expect("higher bitrate");
            enc.set_fps(15.0).expect("fps");
        }
        if let Some(e) = enc.encode(&pattern_frame(&pattern, n)).expect("encode") {
            keyframes += usize::from(e.keyframe);
        }
    }
    assert_eq!(keyframes, 1, "only the initial IDR");
    assert!(enc.set_bitrate(0).is_err());
    assert!(enc.set_fps(f32::NAN).is_err());
}
