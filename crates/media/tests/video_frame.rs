//! `VideoFrame` validates its shape and converts to and from RGBA (through the `yuv` crate)
//! without visible loss.

mod common;

use common::pattern_frame;
use media::{Error, TestPattern, VideoFrame};

#[test]
fn rgba_round_trip_is_nearly_lossless() {
    let frame = pattern_frame(&TestPattern::new(320, 240, 30), 7);
    let rgba = frame.to_rgba().expect("to rgba");
    assert_eq!(rgba.len(), 320 * 240 * 4);
    assert!(rgba.chunks(4).all(|p| p[3] == 255), "opaque");
    let back = VideoFrame::from_rgba(320, 240, &rgba, frame.capture_time_us).expect("from rgba");
    let psnr = back.psnr(&frame).expect("same size");
    assert!(psnr > 38.0, "RGBA round trip PSNR {psnr:.1} dB");
    assert_eq!(frame.psnr(&frame).expect("same"), f64::INFINITY);
}

#[test]
fn bad_shapes_are_errors() {
    assert!(matches!(
        VideoFrame::new_black(641, 480, 0),
        Err(Error::InvalidFrame(_))
    ));
    assert!(VideoFrame::new_black(0, 480, 0).is_err());
    assert!(VideoFrame::from_planes(4, 2, vec![0; 8], vec![0; 2], vec![0; 1], 0).is_err());
    assert!(VideoFrame::from_rgba(4, 2, &[0; 31], 0).is_err());
    let a = VideoFrame::new_black(4, 2, 0).expect("frame");
    let b = VideoFrame::new_black(8, 2, 0).expect("frame");
    assert!(a.psnr(&b).is_err());
    let mut out = vec![0; 3];
    assert!(a.write_rgba(&mut out).is_err());
    assert!(
        TestPattern::new(30, 31, 30).render(0, 0).is_err(),
        "odd sizes are rejected, not panicked on"
    );
}
