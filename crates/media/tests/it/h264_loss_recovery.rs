//! After access units are lost the decoder reports `needs_keyframe` (so the engine sends PLI),
//! shows nothing wrong meanwhile, and resumes exactly at the next IDR.

use crate::common;

use media::{EncodedFrame, H264Decoder, VideoCodec, read_pattern_stamp};

fn encode_all(frames: u32, keyframe_at: u32) -> Vec<(u32, EncodedFrame)> {
    common::encode_stream(VideoCodec::H264, frames, keyframe_at)
}

#[test]
fn dropped_access_units_need_a_keyframe_and_recovery_starts_there() {
    let stream = encode_all(40, 25);
    let mut dec = H264Decoder::new().expect("decoder");
    assert!(dec.needs_keyframe(), "a fresh decoder needs a keyframe");
    let mut shown = Vec::new();
    let mut saw_need = false;
    for (n, e) in &stream {
        if (10..13).contains(n) {
            continue; // lost in the network
        }
        let result = dec.decode(&e.data);
        if *n < 10 {
            assert!(!dec.needs_keyframe(), "frame {n}: clean stream");
        }
        if (13..25).contains(n) {
            // Either an error or nothing; never a picture built on missing references.
            assert!(
                !matches!(result, Ok(Some(_))),
                "frame {n}: decoded a picture without its references"
            );
            assert!(dec.needs_keyframe(), "frame {n}: must ask for a keyframe");
            saw_need = true;
        }
        if let Ok(Some(frame)) = result {
            let stamp = read_pattern_stamp(&frame).expect("stamp");
            assert_eq!(stamp.counter, *n);
            shown.push(*n);
        }
        if *n >= 25 {
            assert!(e.keyframe || *n > 25, "frame 25 is the requested IDR");
            assert!(!dec.needs_keyframe(), "frame {n}: recovered at the IDR");
        }
    }
    assert!(saw_need);
    let expected: Vec<u32> = stream
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| *n < 10 || *n >= 25)
        .collect();
    assert_eq!(
        shown, expected,
        "pictures shown: before the loss and from the IDR on"
    );
}

#[test]
fn report_loss_also_waits_for_the_next_idr() {
    let stream = encode_all(20, 12);
    let mut dec = H264Decoder::new().expect("decoder");
    for (n, e) in &stream {
        if *n == 6 {
            dec.report_loss();
        }
        let result = dec.decode(&e.data).expect("intact stream decodes");
        if (6..12).contains(n) {
            assert!(result.is_none() && dec.needs_keyframe(), "frame {n}");
        } else {
            assert!(result.is_some() && !dec.needs_keyframe(), "frame {n}");
        }
    }
}
