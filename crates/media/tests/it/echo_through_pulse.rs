//! Real echo through the sound server: a far-end (warbled) tone is played through `Speaker`
//! into a private PulseAudio null sink while `Microphone` records that sink's monitor, a 100 %
//! echo path with the real devices' buffering and timing. What the speaker is given goes to
//! `process_render`, what the microphone hears to `process_capture`; the raw capture is the
//! "processing off" case, so both are measured on the same audio. With processing on the tone
//! must be ≥ 25 dB lower. The tone warbles (±10 % at 5 Hz): AEC3 does not adapt on a steady
//! sine by design (measured: −2 to +9 dB), see `media::echo_sim::warble_tone`. Near-end
//! speech, mixed into the capture from 5 s on (a null sink has no room), must keep its level
//! within 6 dB.
//!
//! A run in which the server did not keep real time (overloaded machine: the null sink's
//! monitor then repeats audio, or returns it more than `MAX_ECHO_DELAY` late) measures
//! nothing; after five such runs the test reports INCONCLUSIVE loudly and passes, unless
//! `DUET_REQUIRE_CLEAN_AUDIO=1`. Two clean runs that miss the mark fail.
//!
//! Needs a PulseAudio server (see `common::pulse`).

use crate::common::pulse::{PrivateSink, RAN, with_pulse};
use crate::common::seconds;

use std::time::{Duration, Instant};

use media::echo_sim::{energy_ratio_db, speech_like, warble_tone};
use media::{
    AudioProcessor, AudioSink, AudioSource, Microphone, ProcessingConfig, SAMPLES_PER_FRAME,
    Speaker,
};

const TONE_HZ: f32 = 1000.0;
const RUN: Duration = Duration::from_secs(9);
/// Silence is played for this long before the tone and the processing start (see below).
const SETTLE_FRAMES: u64 = 100;
/// The longest echo delay a run may measure and still count. AEC3's delay estimator covers
/// about 512 ms (5 matched filters of 128 ms, shifted by 96 ms); real devices put the echo
/// 10–200 ms behind the reference. A null sink that has just rewound can put its monitor
/// seconds behind (seen in CI: the canceller then never converged, ERLE estimate 0.2 dB), and
/// such a run measures the sink, not the canceller.
const MAX_ECHO_DELAY: Duration = Duration::from_millis(400);

#[test]
fn tone_echo_is_25_db_lower_with_processing() {
    with_pulse(
        module_path!(),
        "tone_echo_is_25_db_lower_with_processing",
        echo_through_sound_server,
    );
}

/// What one run measured.
struct Run {
    /// The sound server kept real time after settling: no playout underruns, the monitor
    /// delivered no more than 10 % beyond the wall clock (counting what was dropped), and the
    /// echo came back within `MAX_ECHO_DELAY` of the tone being played.
    clean: bool,
    /// How much lower the echo is with processing (far end alone, 2.5–5 s), dB.
    suppression_db: f64,
    /// Near-end level after processing relative to before (double-talk, 6 s on), dB.
    kept_db: f64,
    report: String,
}

fn echo_through_sound_server() {
    // On a loaded machine the null sink's monitor repeats audio (a playout underrun makes the
    // sink rewind; measured up to 3× real time): such a run says nothing about the canceller,
    // so up to five are tried. A clean run that misses the mark is retried once (CI saw one,
    // 1 in ~40 runs, 7 dB under the suite's load with no sign of a glitch the counters catch);
    // a second clean miss fails: a broken canceller misses every time.
    let mut reports = Vec::new();
    let mut clean_misses = 0;
    for attempt in 1..=5 {
        let run = run_once();
        eprintln!("attempt {attempt} (clean: {}): {}", run.clean, run.report);
        let good = run.suppression_db >= 25.0 && run.kept_db >= -6.0;
        if good {
            println!("{RAN} echo through the sound server: {}", run.report);
            return;
        }
        if run.clean {
            clean_misses += 1;
            assert!(
                clean_misses < 2,
                "echo through the sound server, sound server in real time, missed twice:\n{}\n{}",
                reports.join("\n"),
                run.report
            );
        }
        reports.push(run.report);
    }
    // Nothing was measured: say so loudly. `DUET_REQUIRE_CLEAN_AUDIO=1` makes it a failure
    // (for a quiet machine, where an unclean run is itself a bug).
    let message = format!(
        "echo through the sound server: INCONCLUSIVE, the sound server never kept real time \
         (machine overloaded?) in 5 runs:\n{}",
        reports.join("\n")
    );
    assert!(
        std::env::var("DUET_REQUIRE_CLEAN_AUDIO").as_deref() != Ok("1"),
        "{message}"
    );
    eprintln!("\n**************************************************************");
    eprintln!("{message}");
    eprintln!("**************************************************************\n");
    println!("{RAN} echo through the sound server: inconclusive");
}

fn run_once() -> Run {
    let sink = PrivateSink::load("echo", &[]);
    let mut speaker = Speaker::open(Some(&sink.description)).expect("private sink is an output");
    let mic = Microphone {
        device: Some(sink.monitor()),
        channels: 1,
    }
    .start(100)
    .expect("its monitor is an input");
    let tone = warble_tone(TONE_HZ, 0.5, seconds(0.0, 12.0).end, 48_000);
    let near_from = seconds(5.0, 5.0).start;
    let near = speech_like(7, seconds(0.0, 12.0).end, 48_000);
    let mut processor = AudioProcessor::new(ProcessingConfig::default());
    let mut out: Vec<f32> = Vec::new();
    let mut raw: Vec<f32> = Vec::new();
    let mut near_heard: Vec<f32> = Vec::new();
    // The first 2 s play silence and the capture is thrown away: when a null sink gets its first
    // playback stream it rewinds and re-renders what it had rendered ahead (up to ~2 s at its
    // idle latency), and its monitor delivers that again, at once: measured 1.35 s of audio in
    // 0.47 s. Fed to the canceller, such a burst puts the capture seconds ahead of the render
    // reference. Real devices do not do this; a call that opens the speaker first avoids it.
    let start = Instant::now();
    let mut played: u64 = 0;
    let mut settle_dropped = 0usize;
    // (microphone drops, playout underruns) when the measurement started.
    let mut counters_at_start: Option<(u64, u64)> = None;
    while start.elapsed() < RUN + Duration::from_millis(20 * SETTLE_FRAMES) {
        // Keep five frames (100 ms) queued ahead of the wall clock: an underrun makes the
        // null sink rewind, and its monitor then repeats audio.
        let due = start.elapsed().as_micros() as u64 / 20_000 + 5;
        while played < due {
            if played < SETTLE_FRAMES {
                speaker
                    .play(&media::AudioFrame::silence(1, 0).expect("silence"))
                    .expect("play");
            } else {
                let at = (played - SETTLE_FRAMES) as usize * SAMPLES_PER_FRAME;
                let frame = media::AudioFrame::new(1, tone[at..at + SAMPLES_PER_FRAME].to_vec(), 0)
                    .expect("frame");
                speaker.play(&frame).expect("play");
                processor.process_render_frame(&frame).expect("render");
            }
            played += 1;
        }
        while let Some(mut frame) = mic.recv_timeout(Duration::from_millis(5)) {
            if played <= SETTLE_FRAMES {
                settle_dropped += frame.samples().len();
                continue;
            }
            counters_at_start.get_or_insert((mic.stats().dropped(), speaker.stats().underruns()));
            let at = raw.len();
            for (i, s) in frame.samples_mut().iter_mut().enumerate() {
                let n = if at + i >= near_from {
                    near[at + i]
                } else {
                    0.0
                };
                *s += n;
                near_heard.push(n);
            }
            raw.extend_from_slice(frame.samples());
            // (processing happens in place, after the raw copy)
            processor
                .process_capture_frame(&mut frame)
                .expect("capture");
            out.extend_from_slice(frame.samples());
        }
    }
    let speaker_stats = speaker.stats();
    let mic_stats = std::sync::Arc::clone(mic.stats());
    drop(speaker);
    mic.stop().expect("microphone ran without errors");
    let captured_s = raw.len() as f64 / 48_000.0;
    assert!(captured_s > 7.0, "only {captured_s:.2} s captured");
    assert!(raw.len().is_multiple_of(SAMPLES_PER_FRAME));
    // The echo of the tone: 2.5–5 s (far end alone, canceller converged); there the raw
    // capture is all echo, so the ratio is the ERLE.
    let far_alone = seconds(2.5, 5.0);
    let raw_rms = crate::common::rms(&raw[far_alone.clone()]);
    assert!(raw_rms > 0.1, "no echo came back (RMS {raw_rms})");
    let suppression_db = energy_ratio_db(&raw[far_alone.clone()], &out[far_alone]);
    // The echo delay, from the tone's onset: the capture before it is the null sink's exact
    // silence, and its first frame was taken when the first tone frame was queued.
    let onset = raw.iter().position(|s| s.abs() > 0.1).unwrap_or(raw.len());
    let echo_delay = Duration::from_secs_f64(onset as f64 / 48_000.0);
    // Double-talk: 6 s to the end.
    let both = seconds(6.0, 0.0).start..raw.len();
    let kept_db = energy_ratio_db(&out[both.clone()], &near_heard[both]);
    let stats = processor.stats();
    let (drops_before, underruns_before) = counters_at_start.unwrap_or_default();
    let delivered_s = captured_s + (mic_stats.dropped() - drops_before) as f64 * 0.02;
    let clean = speaker_stats.underruns() == underruns_before
        && delivered_s <= 1.1 * RUN.as_secs_f64()
        && echo_delay <= MAX_ECHO_DELAY;
    // The monitor should deliver audio in real time once settled; more (repeats after the
    // sink's rewinds) or drops make the echo path time-variant.
    let report = format!(
        "tone {suppression_db:.1} dB lower, near end in double-talk {kept_db:+.1} dB; echo \
         {} ms behind the reference; AEC3 ERLE estimate {:?} dB, delay {:?} ms; settling delivered {:.2} s in {:.2} s; then {} frames \
         played ({} dropped, {} underruns), {captured_s:.2} s captured ({} dropped; {delivered_s:.2} s \
         delivered while measuring)",
        echo_delay.as_millis(),
        stats.erle_db,
        stats.delay_ms,
        settle_dropped as f64 / 48_000.0,
        SETTLE_FRAMES as f64 * 0.02,
        played - SETTLE_FRAMES,
        speaker_stats.dropped(),
        speaker_stats.underruns(),
        mic_stats.dropped()
    );
    Run {
        clean,
        suppression_db,
        kept_db,
        report,
    }
}
