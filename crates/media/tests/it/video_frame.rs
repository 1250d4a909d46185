//! `VideoFrame` validates its shape and converts to and from RGBA (through the `yuv` crate)
//! without visible loss.

use crate::common;

use common::pattern_frame;
use media::{Error, TestPattern, VideoFrame};

#[test]
fn rgba_round_trip_is_nearly_lossless() {
    // A smooth, in-gamut RGBA picture (4:2:0 cannot keep sharp colour edges, by design).
    let (w, h) = (320usize, 240usize);
    let mut rgba = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        for x in 0..w {
            rgba.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 128, 255]);
        }
    }
    let frame = VideoFrame::from_rgba(320, 240, &rgba, 42).expect("from rgba");
    assert_eq!(frame.capture_time_us, 42);
    let back = frame.to_rgba().expect("to rgba");
    assert_eq!(back.len(), rgba.len());
    assert!(back.chunks(4).all(|p| p[3] == 255), "opaque");
    let max_diff = rgba
        .iter()
        .zip(&back)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    assert!(max_diff <= 3, "RGBA round trip differs by up to {max_diff}");

    let pattern = pattern_frame(&TestPattern::new(320, 240, 30), 7);
    assert_eq!(pattern.psnr(&pattern).expect("same size"), f64::INFINITY);
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

#[test]
fn half_size_keeps_the_picture_and_its_stamp() {
    let pattern = TestPattern::new(640, 480, 30);
    let full = pattern_frame(&pattern, 77);
    let half = full.half_size();
    assert_eq!((half.width(), half.height()), (320, 240));
    assert_eq!(half.capture_time_us, full.capture_time_us);
    // Each pixel is the mean of its 2×2 block.
    let (y, _, _) = full.strides();
    for (hx, hy) in [(0usize, 0usize), (100, 50), (319, 239)] {
        let p = |x: usize, yy: usize| u16::from(full.y()[yy * y + x]);
        let (x, yy) = (2 * hx, 2 * hy);
        let mean = (p(x, yy) + p(x + 1, yy) + p(x, yy + 1) + p(x + 1, yy + 1) + 2) / 4;
        assert_eq!(u16::from(half.y()[hy * 320 + hx]), mean, "at {hx},{hy}");
    }
    let stamp = media::read_pattern_stamp(&half).expect("stamp readable at half size");
    assert_eq!(stamp.counter, 77);
    let quarter = half.half_size();
    assert_eq!((quarter.width(), quarter.height()), (160, 120));
    assert_eq!(
        media::read_pattern_stamp(&quarter).map(|s| s.counter),
        Some(77),
        "stamp readable at quarter size"
    );
    // Odd and tiny sizes stay valid.
    let odd = VideoFrame::new_black(322, 242, 0)
        .expect("frame")
        .half_size();
    assert_eq!((odd.width(), odd.height()), (160, 120));
    let tiny = VideoFrame::new_black(2, 2, 0).expect("frame");
    assert_eq!(tiny.half_size().width(), 2);
}
