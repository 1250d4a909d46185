//! A 440 Hz tone survives Opus encode → decode at the right pitch.

use crate::common;

use common::{dominant_frequency, rms};
use media::{OpusDecoder, OpusEncoder, Tone};

#[test]
fn tone_round_trip_keeps_its_frequency() {
    for channels in [1u8, 2] {
        let tone = Tone {
            freq_hz: 440.0,
            amplitude: 0.5,
            channels,
        };
        let mut enc = OpusEncoder::new(channels, 32_000).expect("encoder");
        let mut dec = OpusDecoder::new(channels).expect("decoder");
        let mut out: Vec<f32> = Vec::new();
        for i in 0..50 {
            let packet = enc.encode(&tone.frame(i, 0)).expect("encode");
            assert!(
                !packet.is_empty() && packet.len() < 400,
                "{} bytes",
                packet.len()
            );
            let frame = dec.decode(&packet).expect("decode");
            assert_eq!(frame.channels(), channels);
            // First channel only.
            out.extend(frame.samples().iter().step_by(usize::from(channels)));
        }
        let steady = &out[9600..]; // skip the codec's start-up
        let f = dominant_frequency(steady);
        assert!(
            (f - 440.0).abs() <= 5.0,
            "{channels} ch: dominant frequency {f} Hz"
        );
        let level = rms(steady);
        assert!(
            level > 0.25,
            "{channels} ch: level {level} (tone RMS is 0.35)"
        );
    }
}

#[test]
fn corrupt_packets_are_errors() {
    let mut dec = OpusDecoder::new(1).expect("decoder");
    assert!(dec.decode(&[]).is_err());
    // A TOC byte announcing a code-3 packet with an impossible frame count.
    assert!(dec.decode(&[0x03, 0xff]).is_err());
    // The decoder still works afterwards.
    let mut enc = OpusEncoder::new(1, 32_000).expect("encoder");
    let packet = enc.encode(&Tone::new(440.0).frame(0, 0)).expect("encode");
    assert!(dec.decode(&packet).is_ok());
    // Wrong channel count into the encoder.
    assert!(
        enc.encode(
            &Tone {
                channels: 2,
                ..Tone::new(440.0)
            }
            .frame(0, 0)
        )
        .is_err()
    );
}
