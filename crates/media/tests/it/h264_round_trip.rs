//! Encode → decode round trip of the test pattern at 1.5 Mbit/s: every decoded frame carries the
//! counter of the frame it was encoded from, and its PSNR against that frame is at least 35 dB.

use crate::common;

use common::{encoder, pattern_frame};
use media::{H264Decoder, TestPattern, nal_unit_types, read_pattern_stamp};

fn round_trip(width: u32, height: u32, frames: u32) {
    let pattern = TestPattern::new(width, height, 30);
    let mut enc = encoder(1_500_000);
    let mut dec = H264Decoder::new().expect("decoder");
    let (mut decoded, mut worst_psnr, mut total_bytes) = (0u32, f64::INFINITY, 0usize);
    for n in 0..frames {
        let source = pattern_frame(&pattern, n);
        let Some(encoded) = enc.encode(&source).expect("encode") else {
            continue; // skipped by rate control: allowed, but see the count below
        };
        total_bytes += encoded.data.len();
        if n == 0 {
            assert!(encoded.keyframe, "the first frame must be an IDR");
            let types = nal_unit_types(&encoded.data);
            assert!(types.starts_with(&[7, 8]), "SPS and PPS lead: {types:?}");
            // profile_idc 66 (baseline), constraint_set0/1 (constrained baseline), level <= 3.1.
            let sps = &encoded.data[encoded.data.iter().position(|&b| b == 0x67).expect("SPS")..];
            assert_eq!(sps[1], 0x42, "baseline profile");
            assert_eq!(
                sps[2] & 0x40,
                0x40,
                "constraint_set1 (constrained baseline): {:#x}",
                sps[2]
            );
            assert!(sps[3] <= 0x1f, "level {:#x} above 3.1", sps[3]);
        }
        let frame = dec
            .decode(&encoded.data)
            .expect("decode")
            .expect("one frame per access unit");
        let stamp = read_pattern_stamp(&frame).expect("stamp readable after compression");
        assert_eq!(
            stamp.counter, n,
            "decoded frame shows another frame's counter"
        );
        assert_eq!(stamp.capture_time_us, source.capture_time_us);
        let psnr = frame.psnr(&source).expect("same size");
        assert!(psnr >= 35.0, "frame {n}: PSNR {psnr:.1} dB < 35 dB");
        worst_psnr = worst_psnr.min(psnr);
        decoded += 1;
    }
    assert!(
        decoded * 10 >= frames * 9,
        "rate control skipped too much: {decoded}/{frames} decoded"
    );
    let kbps = total_bytes as f64 * 8.0 * 30.0 / f64::from(frames) / 1000.0;
    assert!(kbps < 1500.0 * 1.5, "bitrate overshoot: {kbps:.0} kbps");
    eprintln!(
        "{width}x{height}: {decoded}/{frames} frames, worst PSNR {worst_psnr:.1} dB, {kbps:.0} kbps"
    );
}

#[test]
fn vga_round_trip_keeps_counters_and_quality() {
    round_trip(640, 480, 60);
}

#[test]
fn hd_round_trip_keeps_counters_and_quality() {
    round_trip(1280, 720, 60);
}
