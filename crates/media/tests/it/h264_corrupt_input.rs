//! Garbage into the H.264 decoder is an error (or nothing to show), never a panic, and the
//! decoder then waits for a keyframe and recovers from it.

use crate::common;

use common::{encoder, pattern_frame};
use media::{H264Decoder, TestPattern, read_pattern_stamp};

/// Deterministic pseudo-random bytes (xorshift).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn bytes_without_start_codes_are_an_error() {
    let mut dec = H264Decoder::new().expect("decoder");
    assert!(dec.decode(&[]).is_err());
    assert!(dec.decode(&[1, 2, 3]).is_err());
    let err = dec.decode(&[0xff; 100]).expect_err("no NAL units");
    assert!(err.to_string().contains("H.264"), "{err}");
}

#[test]
fn corrupt_access_units_error_and_the_decoder_recovers_at_the_next_idr() {
    let pattern = TestPattern::new(640, 480, 30);
    let mut enc = encoder(1_500_000);
    let mut dec = H264Decoder::new().expect("decoder");
    let idr = enc
        .encode(&pattern_frame(&pattern, 0))
        .expect("encode")
        .expect("IDR");
    assert!(dec.decode(&idr.data).expect("decodes").is_some());

    let mut errors = 0;
    for n in 1..40u32 {
        let mut au = enc
            .encode(&pattern_frame(&pattern, n))
            .expect("encode")
            .expect("frame")
            .data;
        // Keep the start code and NAL header, scramble the slice data.
        let body = au.len().saturating_sub(6);
        let scrambled = noise(body, u64::from(n) * 7919 + 1);
        au.truncate(6);
        au.extend_from_slice(&scrambled[..body / 2]);
        if dec.decode(&au).is_err() {
            errors += 1;
        }
    }
    // Random NAL headers, start codes in the middle, truncated units: nothing may panic.
    for seed in 1..200u64 {
        let mut au = vec![0, 0, 0, 1];
        au.extend(noise(50 + (seed as usize * 37) % 3000, seed));
        let _ = dec.decode(&au);
    }
    let _ = dec.decode(&idr.data[..idr.data.len() / 3]);
    assert!(errors > 0, "scrambled slices must be reported");
    assert!(
        dec.needs_keyframe(),
        "after corruption the decoder wants a keyframe"
    );

    enc.request_keyframe();
    let fresh = enc
        .encode(&pattern_frame(&pattern, 100))
        .expect("encode")
        .expect("IDR");
    assert!(fresh.keyframe);
    let frame = dec
        .decode(&fresh.data)
        .expect("a clean IDR decodes")
        .expect("picture");
    assert_eq!(read_pattern_stamp(&frame).map(|s| s.counter), Some(100));
    assert!(!dec.needs_keyframe());
}
