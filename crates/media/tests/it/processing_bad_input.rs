//! Bad input to the processor is an error or is repaired, never a panic: chunks of the wrong
//! length are rejected (and left untouched), NaN and infinities become silence and are counted,
//! and the processor keeps cancelling echo afterwards.

use crate::common::{echo_scenario, run_processor, seconds};
use media::echo_sim::energy_ratio_db;
use media::{AudioProcessor, Error, PROCESSING_CHUNK_SAMPLES, ProcessingConfig};

#[test]
fn wrong_length_is_a_clear_error() {
    let mut processor = AudioProcessor::new(ProcessingConfig::default());
    for len in [0, 1, 479, 481, 960] {
        let mut chunk = vec![0.25f32; len];
        match processor.process_capture(&mut chunk) {
            Err(Error::InvalidAudio(msg)) => assert!(msg.contains("480"), "{msg}"),
            other => panic!("capture of {len} samples: {other:?}"),
        }
        assert!(
            chunk.iter().all(|&x| x == 0.25),
            "rejected chunk was modified"
        );
        assert!(matches!(
            processor.process_render(&chunk),
            Err(Error::InvalidAudio(_))
        ));
    }
    assert_eq!(processor.stats().capture_chunks, 0);
}

#[test]
fn non_finite_samples_are_silenced_and_counted() {
    let s = echo_scenario();
    let mut processor = AudioProcessor::new(ProcessingConfig::default());
    let mut far = s.far.clone();
    let mut mic = s.mic.clone();
    // A burst of garbage at 0.5 s on both sides.
    for i in 24_000..24_000 + PROCESSING_CHUNK_SAMPLES {
        far[i] = f32::NAN;
        mic[i] = if i % 2 == 0 { f32::INFINITY } else { f32::NAN };
    }
    let out = run_processor(&mut processor, &far, &mic);
    assert!(out.iter().all(|x| x.is_finite()), "non-finite output");
    assert_eq!(
        processor.stats().non_finite_samples,
        2 * PROCESSING_CHUNK_SAMPLES as u64
    );
    let r = seconds(2.0, 4.0);
    let erle = energy_ratio_db(&s.echo[r.clone()], &out[r]);
    assert!(erle >= 25.0, "ERLE after the garbage: {erle:.1} dB");
}
