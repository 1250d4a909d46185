//! The real cpal path: a tone played through `Speaker` into a PulseAudio null sink and captured
//! back through `Microphone` from the sink's monitor arrives at the same frequency, paced in real
//! time.
//!
//! Needs a PulseAudio server. If the environment has none, the test looks for (and starts, when
//! `pulseaudio` is installed) the one of `scripts/pulse-null-sink.sh`, then re-runs itself in a
//! child process pointed at it. Without any server the test is skipped with a loud message,
//! unless `DUET_REQUIRE_PULSE=1`, in which case it fails.

use crate::common;

use std::time::{Duration, Instant};

use common::pulse::{RAN, with_pulse};
use common::{dominant_frequency, rms};
use media::{AudioSink, AudioSource, Microphone, SAMPLE_RATE_HZ, Speaker, Tone};

#[test]
fn tone_through_null_sink_comes_back_at_the_same_frequency() {
    with_pulse(
        module_path!(),
        "tone_through_null_sink_comes_back_at_the_same_frequency",
        loopback,
    );
}

fn loopback() {
    let mut speaker = Speaker::open(Some("Null Output")).expect("null sink is an output");
    let mic = Microphone {
        device: Some("Monitor of Null Output".into()),
        channels: 1,
    }
    .start(100)
    .expect("its monitor is an input");
    let tone = Tone::new(440.0).start(4).expect("tone source");

    let seconds = 2.0;
    let start = Instant::now();
    let mut captured: Vec<f32> = Vec::new();
    let mut played = 0;
    while start.elapsed() < Duration::from_secs_f64(seconds) {
        if let Some(frame) = tone.recv_timeout(Duration::from_millis(5)) {
            speaker.play(&frame).expect("play");
            played += 1;
        }
        while let Ok(frame) = mic.receiver().try_recv() {
            captured.extend_from_slice(frame.samples());
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let speaker_stats = speaker.stats();
    drop(tone);
    drop(speaker);
    let mic_stats = std::sync::Arc::clone(mic.stats());
    mic.stop().expect("microphone ran without errors");

    let captured_s = captured.len() as f64 / f64::from(SAMPLE_RATE_HZ);
    eprintln!(
        "played {played} frames ({} dropped, {} underruns), captured {captured_s:.2} s in {elapsed:.2} s ({} dropped)",
        speaker_stats.dropped(),
        speaker_stats.underruns(),
        mic_stats.dropped()
    );
    // Paced by the server's clock, not faster and not starved (loose bounds: a loaded machine).
    assert!(
        captured_s > elapsed * 0.5 && captured_s < elapsed * 1.5 + 0.2,
        "captured {captured_s:.2} s of audio in {elapsed:.2} s"
    );
    // Skip the start (stream set-up, silence before the tone reached the monitor).
    let loud: Vec<f32> = captured
        .chunks(960)
        .skip_while(|c| rms(c) < 0.05)
        .skip(5)
        .flatten()
        .copied()
        .collect();
    assert!(
        loud.len() > 24_000,
        "less than 0.5 s of tone came back ({} samples)",
        loud.len()
    );
    let f = dominant_frequency(&loud);
    assert!((f - 440.0).abs() <= 5.0, "dominant frequency {f} Hz");
    let level = rms(&loud);
    assert!(level > 0.1, "level {level}");
    println!("{RAN} loopback {f} Hz, RMS {level}");
}
