//! After access units are lost the decoder reports `needs_keyframe` (so the engine sends PLI)
//! and, instead of freezing until the next IDR, goes on showing pictures with the loss
//! concealed; they stay close to what was sent, and the stream is exact again from the IDR.

use crate::common;

use media::{
    CONCEAL_LIMIT_FRAMES, EncodedFrame, H264Decoder, TestPattern, VideoCodec, read_pattern_stamp,
};

fn encode_all(frames: u32, keyframe_at: u32) -> Vec<(u32, EncodedFrame)> {
    common::encode_stream(VideoCodec::H264, frames, keyframe_at)
}

/// The picture frame `n` of the stream was encoded from (the one `encode_stream` uses).
fn source(n: u32) -> media::VideoFrame {
    common::pattern_frame(&TestPattern::new(640, 480, 30), n)
}

#[test]
fn lost_access_units_are_concealed_until_the_idr() {
    let stream = encode_all(40, 25);
    let mut dec = H264Decoder::new().expect("decoder");
    assert!(dec.needs_keyframe(), "a fresh decoder needs a keyframe");
    let mut shown = Vec::new();
    let mut worst_concealed_db = f64::INFINITY;
    let mut frozen_db = Vec::new();
    for (n, e) in &stream {
        if (10..13).contains(n) {
            continue; // lost in the network; the decoder finds the gap in the frame numbers
        }
        let picture = dec.decode(&e.data).expect("concealed, not an error");
        if *n < 10 {
            assert!(!dec.needs_keyframe(), "frame {n}: clean stream");
        }
        if (13..25).contains(n) {
            assert!(dec.needs_keyframe(), "frame {n}: must ask for a keyframe");
            let picture = picture
                .as_ref()
                .unwrap_or_else(|| panic!("frame {n}: frozen"));
            let db = picture.psnr(&source(*n)).expect("same size");
            // What a freeze would show instead: the last picture before the loss.
            frozen_db.push(source(9).psnr(&source(*n)).expect("same size"));
            worst_concealed_db = worst_concealed_db.min(db);
        }
        if let Some(picture) = &picture {
            assert_eq!(
                picture.concealed,
                (13..25).contains(n),
                "frame {n}: a picture says whether it was concealed"
            );
            if !(13..25).contains(n) {
                let stamp = read_pattern_stamp(picture).expect("stamp");
                assert_eq!(stamp.counter, *n, "frame {n}: exact outside the loss");
            }
            shown.push(*n);
        }
        if *n >= 25 {
            assert!(e.keyframe || *n > 25, "frame 25 is the requested IDR");
            assert!(!dec.needs_keyframe(), "frame {n}: recovered at the IDR");
        }
    }
    let worst_frozen_db = frozen_db.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "concealed pictures: worst {worst_concealed_db:.1} dB PSNR against what was sent; \
         a freeze on frame 9 would be at worst {worst_frozen_db:.1} dB"
    );
    let expected: Vec<u32> = stream
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !(10..13).contains(n))
        .collect();
    assert_eq!(shown, expected, "a picture for every frame that arrived");
    assert_eq!(dec.concealed_frames(), 12, "frames 13..25 were concealed");
    assert!(
        worst_concealed_db > worst_frozen_db,
        "concealment ({worst_concealed_db:.1} dB) must beat freezing ({worst_frozen_db:.1} dB)"
    );
}

#[test]
fn report_loss_conceals_until_the_next_idr() {
    let stream = encode_all(20, 12);
    let mut dec = H264Decoder::new().expect("decoder");
    for (n, e) in &stream {
        if *n == 6 {
            dec.report_loss();
        }
        let picture = dec
            .decode(&e.data)
            .expect("intact stream decodes")
            .expect("a picture for every frame");
        let stamp = read_pattern_stamp(&picture).expect("stamp");
        assert_eq!(stamp.counter, *n, "frame {n}");
        assert_eq!(picture.concealed, (6..12).contains(n), "frame {n}");
        assert_eq!(dec.needs_keyframe(), (6..12).contains(n), "frame {n}");
    }
    assert_eq!(dec.concealed_frames(), 6, "frames 6..12 came while waiting");
}

#[test]
fn concealment_stops_when_no_keyframe_comes() {
    let frames = CONCEAL_LIMIT_FRAMES + 20;
    let stream = encode_all(frames, u32::MAX);
    let mut dec = H264Decoder::new().expect("decoder");
    let mut shown_after_loss = 0;
    for (n, e) in &stream {
        if *n == 5 {
            continue; // lost, and the keyframe asked for never comes
        }
        let picture = dec.decode(&e.data).expect("no error");
        if *n > 5 {
            assert!(dec.needs_keyframe(), "frame {n}");
            shown_after_loss += u32::from(picture.is_some());
        }
    }
    assert_eq!(
        shown_after_loss, CONCEAL_LIMIT_FRAMES,
        "concealed pictures are shown for a bounded time, then the decoder waits"
    );
}

#[test]
fn nothing_is_shown_before_the_first_idr() {
    let stream = encode_all(10, u32::MAX);
    let mut dec = H264Decoder::new().expect("decoder");
    for (n, e) in stream.iter().skip(1) {
        let picture = dec.decode(&e.data);
        assert!(
            !matches!(picture, Ok(Some(_))),
            "frame {n}: a delta frame without any reference shows nothing"
        );
        assert!(dec.needs_keyframe());
    }
    assert_eq!(dec.concealed_frames(), 0);
}
