//! With 10 % of packets dropped, FEC and concealment leave no silence gap longer than one frame,
//! and the tone keeps its pitch. The jitter buffer decides between packet, FEC and PLC.

use crate::common;

use common::{dominant_frequency, longest_silence};
use media::{JitterBuffer, JitterConfig, OpusDecoder, OpusEncoder, Playout, Tone};

/// Deterministic loss pattern: about 10 %, including one burst of two.
fn lost(i: u64) -> bool {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xDEAD_BEEF;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    x.is_multiple_of(10) || i == 200 || i == 201
}

#[test]
fn ten_percent_loss_leaves_no_gap_longer_than_a_frame() {
    let tone = Tone::new(440.0);
    let mut enc = OpusEncoder::new(1, 32_000).expect("encoder");
    enc.set_packet_loss_perc(10).expect("loss hint");
    let mut dec = OpusDecoder::new(1).expect("decoder");
    let mut jitter = JitterBuffer::new(JitterConfig::default());
    let frames = 500u64;
    let mut out: Vec<f32> = Vec::new();
    let (mut dropped, mut fec, mut plc) = (0, 0, 0);
    // Sender and receiver in lock step: one packet sent and one slot played per 20 ms.
    for i in 0..frames + 3 {
        if i < frames {
            let packet = enc.encode(&tone.frame(i, 0)).expect("encode");
            if lost(i) {
                dropped += 1;
            } else {
                jitter.push(i as u16, (i * 960) as u32, packet);
            }
        }
        let frame = match jitter.pop() {
            Playout::Buffering => continue,
            Playout::Packet { payload, .. } => dec.decode(&payload).expect("decode"),
            Playout::Lost {
                next_payload: Some(next),
                ..
            } => {
                fec += 1;
                dec.decode_fec(&next).expect("fec")
            }
            Playout::Lost {
                next_payload: None, ..
            } => {
                plc += 1;
                dec.conceal().expect("plc")
            }
        };
        out.extend_from_slice(frame.samples());
    }
    assert!((40..=70).contains(&dropped), "about 10 % lost: {dropped}");
    assert!(
        fec > 0 && plc > 0,
        "both FEC ({fec}) and PLC ({plc}) exercised"
    );
    let steady = &out[4800..];
    // Silence = 5 ms windows more than 40 dB below the tone (RMS 0.35).
    let gap = longest_silence(steady, 240, 0.0035);
    eprintln!("lost {dropped}, FEC {fec}, PLC {plc}, longest silence {gap} samples");
    assert!(
        gap <= 960,
        "silence gap of {gap} samples (> one 20 ms frame)"
    );
    // Stricter than the requirement, so that a concealment producing silence for single frames
    // is caught too: no silent 5 ms window at all.
    assert_eq!(gap, 0, "concealed or FEC-rebuilt frames must not be silent");
    let f = dominant_frequency(steady);
    assert!((f - 440.0).abs() <= 5.0, "dominant frequency {f} Hz");

    // The same loss without any concealment *does* leave gaps: the check above is meaningful.
    let mut naive = out.clone();
    for chunk in naive.chunks_mut(960).skip(20).step_by(10) {
        chunk.fill(0.0);
    }
    assert!(longest_silence(&naive[4800..], 240, 0.0035) >= 960);
}
