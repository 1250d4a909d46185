//! Processing switched off is a pass-through: the capture audio comes out bit for bit as it went
//! in, whatever the render side is fed, and switching it back on processes again.

use crate::common::{echo_scenario, run_processor};
use media::{AudioFrame, AudioProcessor, ProcessingConfig};

#[test]
fn disabled_processing_leaves_audio_unchanged() {
    let s = echo_scenario();
    let mut processor = AudioProcessor::new(ProcessingConfig::default());
    processor.set_enabled(false);
    assert!(!processor.is_enabled());
    let out = run_processor(&mut processor, &s.far, &s.mic);
    assert_eq!(out, s.mic, "disabled processing changed the audio");
    assert_eq!(processor.stats().erle_db, None);

    // 20 ms frames too, stereo included.
    let mut frame = AudioFrame::new(2, s.mic[..1920].to_vec(), 7).unwrap();
    let before = frame.clone();
    processor.process_capture_frame(&mut frame).unwrap();
    assert_eq!(frame, before);

    // Back on, the same input is changed (echo removed).
    processor.set_enabled(true);
    let out = run_processor(&mut processor, &s.far, &s.mic);
    assert_ne!(out, s.mic);
}

#[test]
fn each_part_can_be_switched_off() {
    let s = echo_scenario();
    let mut processor = AudioProcessor::new(ProcessingConfig::NONE);
    let out = run_processor(&mut processor, &s.far, &s.mic);
    // Nothing switched on: no echo removed (WebRTC's buffers pass the audio through).
    let r = crate::common::seconds(2.0, 4.0);
    let erle = media::echo_sim::energy_ratio_db(&s.echo[r.clone()], &out[r]);
    assert!(
        erle.abs() < 1.0,
        "with everything off the echo changed by {erle:.1} dB"
    );
    assert_eq!(processor.stats().erle_db, None);
    processor.set_config(ProcessingConfig::ECHO_ONLY);
    assert_eq!(processor.config(), ProcessingConfig::ECHO_ONLY);
}
