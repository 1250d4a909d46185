//! The test pattern's stamp survives what the far end does to a picture: heavy compression, and
//! being shown scaled inside a window and read back from a screenshot.

use crate::common;

use common::{encoder, frame_time_us, pattern_frame};
use media::{
    H264Decoder, PatternRect, Stamp, TestPattern, read_pattern_stamp, read_pattern_stamp_rgba,
};

/// Bilinear resize of an RGBA image (a stand-in for a GPU texture sampler).
fn resize(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<u8> {
    let mut out = vec![0u8; dw * dh * 4];
    for y in 0..dh {
        let fy = ((y as f64 + 0.5) * sh as f64 / dh as f64 - 0.5).clamp(0.0, (sh - 1) as f64);
        let (y0, wy) = (fy.floor() as usize, fy.fract());
        let y1 = (y0 + 1).min(sh - 1);
        for x in 0..dw {
            let fx = ((x as f64 + 0.5) * sw as f64 / dw as f64 - 0.5).clamp(0.0, (sw - 1) as f64);
            let (x0, wx) = (fx.floor() as usize, fx.fract());
            let x1 = (x0 + 1).min(sw - 1);
            for c in 0..4 {
                let p = |xx: usize, yy: usize| f64::from(src[(yy * sw + xx) * 4 + c]);
                let v = p(x0, y0) * (1.0 - wx) * (1.0 - wy)
                    + p(x1, y0) * wx * (1.0 - wy)
                    + p(x0, y1) * (1.0 - wx) * wy
                    + p(x1, y1) * wx * wy;
                out[(y * dw + x) * 4 + c] = v.round() as u8;
            }
        }
    }
    out
}

/// Pastes `img` (iw×ih) into a grey canvas (cw×ch) at (x, y).
fn paste(img: &[u8], iw: usize, ih: usize, cw: usize, ch: usize, x: usize, y: usize) -> Vec<u8> {
    let mut canvas = vec![90u8; cw * ch * 4];
    for row in 0..ih {
        let dst = ((y + row) * cw + x) * 4;
        canvas[dst..dst + iw * 4].copy_from_slice(&img[row * iw * 4..(row + 1) * iw * 4]);
    }
    canvas
}

#[test]
fn stamp_survives_a_low_bitrate() {
    let pattern = TestPattern::new(640, 480, 30);
    let mut enc = encoder(250_000);
    let mut dec = H264Decoder::new().expect("decoder");
    let mut read = 0;
    for n in 0..60 {
        let Some(e) = enc.encode(&pattern_frame(&pattern, n)).expect("encode") else {
            continue;
        };
        let frame = dec.decode(&e.data).expect("decode").expect("frame");
        let stamp = read_pattern_stamp(&frame).expect("readable at 250 kbps");
        assert_eq!(
            stamp,
            Stamp {
                counter: n,
                capture_time_us: frame_time_us(n, 30)
            }
        );
        read += 1;
    }
    assert!(read >= 30, "{read}");
}

#[test]
fn stamp_is_read_from_a_scaled_screenshot_region() {
    let pattern = TestPattern::new(1280, 720, 30);
    let frame = pattern_frame(&pattern, 4242);
    let rgba = frame.to_rgba().expect("rgba");
    // Shown at 45 % inside an 800x500 window, at (37, 61).
    let (dw, dh) = (576, 324);
    let small = resize(&rgba, 1280, 720, dw, dh);
    let shot = paste(&small, dw, dh, 800, 500, 37, 61);
    let exact = PatternRect {
        x: 37,
        y: 61,
        width: dw as u32,
        height: dh as u32,
    };
    let expected = Some(Stamp {
        counter: 4242,
        capture_time_us: frame_time_us(4242, 30),
    });
    assert_eq!(read_pattern_stamp_rgba(&shot, 800, 500, exact), expected);
    // The caller's idea of the rectangle is a few pixels off (window borders, rounding).
    let sloppy = PatternRect {
        x: 40,
        y: 58,
        width: dw as u32 - 4,
        height: dh as u32 + 3,
    };
    assert_eq!(read_pattern_stamp_rgba(&shot, 800, 500, sloppy), expected);
    // A region without the pattern reads as nothing, not as a wrong number.
    let elsewhere = PatternRect {
        x: 0,
        y: 400,
        width: 300,
        height: 100,
    };
    assert_eq!(read_pattern_stamp_rgba(&shot, 800, 500, elsewhere), None);
}
