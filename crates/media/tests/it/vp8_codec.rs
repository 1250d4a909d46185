//! VP8 through the shared [`VideoEncoder`] / [`VideoDecoder`] interface: the test pattern
//! survives an encode → decode round trip at 640×480 and 1280×720 (counters match, PSNR ≥ 33
//! dB at 1.5 Mbit/s); after lost frames the decoder asks for a keyframe, shows nothing built on
//! missing references, and resumes exactly at the next keyframe; keyframes come on request and
//! bitrate changes do not force one; garbage is an error, not a panic.

use crate::common::{self, pattern_frame};

use media::{
    EncodedFrame, EncoderConfig, Error, TestPattern, VideoCodec, VideoDecoder, VideoEncoder,
    read_pattern_stamp, vp8_is_keyframe,
};

fn vp8_encoder(bitrate_bps: u32) -> VideoEncoder {
    VideoEncoder::new(
        VideoCodec::Vp8,
        EncoderConfig {
            bitrate_bps,
            ..EncoderConfig::default()
        },
    )
    .expect("VP8 encoder")
}

fn round_trip(width: u32, height: u32, frames: u32) {
    let pattern = TestPattern::new(width, height, 30);
    let mut enc = vp8_encoder(1_500_000);
    assert_eq!(enc.codec(), VideoCodec::Vp8);
    let mut dec = VideoDecoder::new(VideoCodec::Vp8).expect("decoder");
    let (mut decoded, mut worst_psnr, mut total_bytes) = (0u32, f64::INFINITY, 0usize);
    for n in 0..frames {
        let source = pattern_frame(&pattern, n);
        let Some(encoded) = enc.encode(&source).expect("encode") else {
            continue; // dropped by rate control: allowed, but see the count below
        };
        total_bytes += encoded.data.len();
        assert_eq!(
            encoded.keyframe,
            vp8_is_keyframe(&encoded.data),
            "frame {n}"
        );
        if n == 0 {
            assert!(encoded.keyframe, "the first frame must be a keyframe");
        } else {
            assert!(
                !encoded.keyframe,
                "frame {n}: keyframes only at start and on request"
            );
        }
        let frame = dec
            .decode(&encoded.data)
            .expect("decode")
            .expect("one picture per frame");
        assert_eq!((frame.width(), frame.height()), (width, height));
        let stamp = read_pattern_stamp(&frame).expect("stamp readable after compression");
        assert_eq!(
            stamp.counter, n,
            "decoded frame shows another frame's counter"
        );
        assert_eq!(stamp.capture_time_us, source.capture_time_us);
        let psnr = frame.psnr(&source).expect("same size");
        assert!(psnr >= 33.0, "frame {n}: PSNR {psnr:.1} dB < 33 dB");
        worst_psnr = worst_psnr.min(psnr);
        decoded += 1;
    }
    assert!(
        decoded * 10 >= frames * 9,
        "rate control dropped too much: {decoded}/{frames} decoded"
    );
    let kbps = total_bytes as f64 * 8.0 * 30.0 / f64::from(frames) / 1000.0;
    assert!(kbps < 1500.0 * 1.5, "bitrate overshoot: {kbps:.0} kbps");
    eprintln!(
        "VP8 {width}x{height}: {decoded}/{frames} frames, worst PSNR {worst_psnr:.1} dB, {kbps:.0} kbps"
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

fn encode_all(frames: u32, keyframe_at: u32) -> Vec<(u32, EncodedFrame)> {
    common::encode_stream(VideoCodec::Vp8, frames, keyframe_at)
}

#[test]
fn lost_frames_need_a_keyframe_and_recovery_starts_there() {
    let stream = encode_all(40, 25);
    let mut dec = VideoDecoder::new(VideoCodec::Vp8).expect("decoder");
    assert!(dec.needs_keyframe(), "a fresh decoder needs a keyframe");
    let mut shown = Vec::new();
    for (n, e) in &stream {
        if (10..13).contains(n) {
            dec.report_loss(); // lost in the network: the assembler says so
            continue;
        }
        let result = dec.decode(&e.data);
        if (13..25).contains(n) {
            assert!(
                !matches!(result, Ok(Some(_))),
                "frame {n}: decoded a picture without its references"
            );
            assert!(dec.needs_keyframe(), "frame {n}: must ask for a keyframe");
        }
        if let Ok(Some(frame)) = result {
            let stamp = read_pattern_stamp(&frame).expect("stamp");
            assert_eq!(stamp.counter, *n);
            shown.push(*n);
        }
        if *n >= 25 {
            assert_eq!(e.keyframe, *n == 25, "frame 25 is the requested keyframe");
            assert!(
                !dec.needs_keyframe(),
                "frame {n}: recovered at the keyframe"
            );
        }
    }
    let expected: Vec<u32> = stream
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| *n < 10 || *n >= 25)
        .collect();
    assert_eq!(
        shown, expected,
        "pictures shown: before the loss and from the keyframe on"
    );
    assert_eq!(dec.decoded_frames(), expected.len() as u64);
}

#[test]
fn bitrate_changes_take_effect_without_a_keyframe() {
    let pattern = TestPattern::new(640, 480, 30);
    let mut enc = vp8_encoder(2_000_000);
    let mut bytes = [0usize; 2];
    for n in 0..120u32 {
        if n == 60 {
            enc.set_bitrate(200_000).expect("lower bitrate");
            enc.set_fps(15.0).expect("lower frame rate");
        }
        if let Some(e) = enc.encode(&pattern_frame(&pattern, n)).expect("encode") {
            assert_eq!(e.keyframe, n == 0, "frame {n}");
            // Skip the first second of each half: rate control settles.
            if n % 60 >= 30 {
                bytes[(n / 60) as usize] += e.data.len();
            }
        }
    }
    assert_eq!(enc.config().bitrate_bps, 200_000);
    let kbps = bytes.map(|b| b as f64 * 8.0 / 1000.0); // one second each
    eprintln!(
        "VP8 at 2 Mbit/s: {:.0} kbps; at 200 kbit/s: {:.0} kbps",
        kbps[0], kbps[1]
    );
    assert!(
        kbps[1] < kbps[0] / 3.0,
        "the lower bitrate took no effect: {kbps:?}"
    );
    assert!(
        kbps[1] < 200.0 * 1.5,
        "overshoot after lowering: {:.0} kbps",
        kbps[1]
    );
    assert!(matches!(enc.set_bitrate(5_000), Err(Error::Encoder(_))));
}

#[test]
fn garbage_is_an_error_and_the_decoder_recovers_at_the_next_keyframe() {
    let stream = encode_all(10, 5);
    let mut dec = VideoDecoder::new(VideoCodec::Vp8).expect("decoder");
    assert!(dec.decode(&stream[0].1.data).expect("keyframe").is_some());
    // Too short, random bytes dressed as a keyframe, and a truncated delta frame.
    assert!(matches!(dec.decode(&[0x10]), Err(Error::Decoder(_))));
    let mut fake_key = vec![0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];
    fake_key.extend((0..500u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let garbage = dec.decode(&fake_key);
    assert!(!matches!(garbage, Ok(Some(_))), "garbage made a picture");
    let truncated = &stream[1].1.data[..stream[1].1.data.len() / 3];
    let _ = dec.decode(truncated); // an error or nothing, never a panic
    assert!(
        dec.needs_keyframe(),
        "after bad input the decoder waits for a keyframe"
    );
    for (n, e) in &stream[2..] {
        let result = dec.decode(&e.data);
        if *n < 5 {
            assert!(
                !matches!(result, Ok(Some(_))),
                "frame {n} before the keyframe"
            );
        } else {
            let frame = result.expect("decodes").expect("picture");
            assert_eq!(read_pattern_stamp(&frame).expect("stamp").counter, *n);
        }
    }
}
