//! Echo in a real call, through the sound server: peer A's speaker plays into a private
//! PulseAudio null sink and A's microphone is that sink's monitor, a 100 % echo path. Peer B
//! sends a warbled tone (echo cancellers leave a steady sine alone on purpose), so what B
//! receives while nobody speaks at A is its own tone coming back. With A's audio processing on,
//! B must hear it at least 25 dB lower than with it off (in one of up to four calls: see the
//! test). Then B falls silent (mutes, as people
//! take turns) and "A's voice" (speech-like audio played into the same sink by `pacat`, which
//! A's canceller has no reference for) is measured at B: asserted without processing, printed
//! with it (see the note at the assertion). (Double-talk with a 100 % echo path 17 dB louder
//! than the voice came through in two runs of three; `media`'s `echo_through_pulse` asserts
//! double-talk at realistic levels.)
//!
//! The second test unplugs A's microphone and speaker mid-call (unloads the sink): A is told,
//! and the call goes on with video flowing.
//!
//! Needs the PulseAudio server `scripts/test.sh` starts (`scripts/pulse-null-sink.sh`); without
//! one the test is skipped loudly, unless `DUET_REQUIRE_PULSE=1`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use call::{
    AudioChoice, CallConfig, CallState, Command as CallCommand, Engine, Event, SpeakerChoice,
    VideoChoice,
};
use signal::HostedSignal;

use crate::common::{KillOnDrop, median, target_dir};

/// How long after B first plays audio the echo is measured (the canceller converges in ~2 s).
const ECHO_FROM_S: f64 = 3.0;
/// When "A's voice" starts, seconds after B first plays audio.
const NEAR_END_AT_S: f64 = 6.0;
/// When the measurement ends.
const END_S: f64 = 10.0;
/// Calls with processing on, at most, until one cancels the echo (see the test).
const ECHO_ATTEMPTS: usize = 4;

/// A null sink only this test uses, unloaded on drop.
struct EchoRoom {
    sink: String,
    description: String,
    module: String,
}

impl EchoRoom {
    fn new() -> Self {
        let id = std::process::id();
        let sink = format!("duet_echo_{id}");
        let description = format!("DuetEcho{id}");
        let module = crate::common::pactl(&[
            "load-module",
            "module-null-sink",
            &format!("sink_name={sink}"),
            &format!("sink_properties=device.description={description}"),
            "rate=48000",
            "channels=1",
        ]);
        Self {
            sink,
            description,
            module,
        }
    }
}

impl EchoRoom {
    /// Unloads the sink now: its streams (speaker and monitor) lose their device.
    fn unplug(&mut self) {
        if !self.module.is_empty() {
            crate::common::pactl(&["unload-module", &self.module]);
            self.module.clear();
        }
    }
}

impl Drop for EchoRoom {
    fn drop(&mut self) {
        if !self.module.is_empty() {
            let _ = Command::new("pactl")
                .args(["unload-module", &self.module])
                .output();
        }
    }
}

/// Writes 10 s of speech-like audio (48 kHz mono f32) for `pacat` to play as A's voice.
fn near_end_file() -> PathBuf {
    let path = target_dir().join(format!("echo-near-end-{}.f32", std::process::id()));
    let speech = media::echo_sim::speech_like(7, 48_000 * 10, 48_000);
    let mut file = std::fs::File::create(&path).expect("near-end file");
    for s in speech {
        file.write_all(&(s * 0.5).to_le_bytes()).expect("write");
    }
    path
}

fn config(url: &str, room: &str) -> CallConfig {
    let mut c = CallConfig::new(url, room);
    c.video = VideoChoice::None;
    c.ice_servers.clear();
    c.loopback_only = true;
    c
}

/// B's received level over the windows of one call, dBFS (medians of the per-second stats).
#[derive(Debug)]
struct Heard {
    /// B's own tone coming back, nobody speaking at A.
    echo_dbfs: f64,
    /// While "A's voice" plays.
    voice_dbfs: f64,
    /// B's received level each second from the first audio on, dBFS.
    per_second: Vec<f64>,
}

fn one_call(room: &EchoRoom, processing: bool, near_end: &Path) -> Heard {
    let server = HostedSignal::start("127.0.0.1:0".parse().expect("address"), Default::default())
        .expect("signal starts");
    let url = server.local_url();
    let name = format!("echo-{}-{processing}", std::process::id());
    let mut a = config(&url, &name);
    a.audio = AudioChoice::Microphone(Some(format!("Monitor of {}", room.description)));
    a.speaker = SpeakerChoice::Device(Some(room.description.clone()));
    a.audio_processing = processing;
    let mut b = config(&url, &name);
    b.audio = AudioChoice::Warble(1000.0);
    b.speaker = SpeakerChoice::Null;
    let ea = Engine::start(a, None).expect("engine a");
    let eb = Engine::start(b, None).expect("engine b");
    let mut voice: Option<KillOnDrop> = None;
    let (mut echo, mut spoken, mut per_second) = (Vec::new(), Vec::new(), Vec::new());
    let mut heard_from: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        while let Ok(event) = ea.events().try_recv() {
            if let Event::State(CallState::Failed(why)) = event {
                panic!("A failed: {why}");
            }
        }
        match eb.events().recv_timeout(Duration::from_millis(100)) {
            Ok(Event::State(CallState::Failed(why))) => panic!("B failed: {why}"),
            Ok(Event::Stats(s)) if s.audio_frames_played > 0 => {
                let since = heard_from.get_or_insert_with(Instant::now).elapsed();
                let t = since.as_secs_f64();
                per_second.push((s.audio_received_dbfs * 10.0).round() / 10.0);
                if (ECHO_FROM_S..NEAR_END_AT_S).contains(&t) {
                    echo.push(s.audio_received_dbfs);
                } else if (NEAR_END_AT_S + 1.0..END_S).contains(&t) {
                    spoken.push(s.audio_received_dbfs);
                } else if t >= END_S {
                    break;
                }
                if t >= NEAR_END_AT_S && voice.is_none() {
                    assert!(eb.command(CallCommand::SetMicMuted(true)), "B mutes");
                    let child: Child = Command::new("pacat")
                        .args(["--playback", "--raw", "--format=float32le"])
                        .args(["--rate=48000", "--channels=1"])
                        .arg(format!("--device={}", room.sink))
                        .arg(near_end)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("pacat starts (pulseaudio-utils)");
                    voice = Some(KillOnDrop(child));
                }
            }
            _ => {}
        }
    }
    drop(voice);
    drop(ea);
    drop(eb);
    assert!(
        heard_from.is_some(),
        "B never played audio (processing {processing})"
    );
    Heard {
        echo_dbfs: median(echo),
        voice_dbfs: median(spoken),
        per_second,
    }
}

#[test]
fn echo_through_the_sound_server_is_25_db_lower_with_processing() {
    if !crate::common::pulse_available() {
        return;
    }
    let _whole_machine = crate::common::slots::whole_machine();
    let room = EchoRoom::new();
    let near_end = near_end_file();
    let off = one_call(&room, false, &near_end);
    assert!(
        off.echo_dbfs > -30.0,
        "without processing B should hear its own tone loudly: {off:?}"
    );
    // Through a null sink's monitor AEC3 does not converge in every call: on a fresh VM
    // (2026-12-02) 7 of 9 calls reached 34-80 dB and two stopped at 4 and 10 dB (with AEC3's
    // default transparent mode 7 of 11 missed; docs/benchmarks.md, "Audio processing"). Up to
    // `ECHO_ATTEMPTS` calls with processing are made; one at 25 dB passes. Processing that
    // does not cancel (off, broken, or fed the wrong reference) misses in every call.
    let mut attempts = Vec::new();
    let mut on = None;
    for _ in 0..ECHO_ATTEMPTS {
        let heard = one_call(&room, true, &near_end);
        eprintln!(
            "processing off: {off:?}\nprocessing on: {heard:?}\nB's level each second with \
             processing: {:?} dBFS",
            heard.per_second
        );
        let good = off.echo_dbfs - heard.echo_dbfs >= 25.0;
        attempts.push(heard);
        if good {
            on = attempts.last();
            break;
        }
    }
    let _ = std::fs::remove_file(&near_end);
    let lowered: Vec<String> = attempts
        .iter()
        .map(|h| format!("{:.1}", off.echo_dbfs - h.echo_dbfs))
        .collect();
    println!(
        "echo at B: {:.1} dBFS without processing; with processing, in {} call(s), lowered by \
         {} dB",
        off.echo_dbfs,
        attempts.len(),
        lowered.join(" / ")
    );
    let on = on.unwrap_or_else(|| {
        panic!(
            "the echo B hears was never 25 dB lower with processing in {ECHO_ATTEMPTS} calls \
             (lowered by {} dB): off {off:?}, on {attempts:?}",
            lowered.join(" / ")
        )
    });
    println!("A's voice at B with processing: {:.1} dBFS", on.voice_dbfs);
    assert!(
        off.voice_dbfs > -40.0,
        "A's voice must reach B when nothing processes it: {off:?}"
    );
    // The canceller removes the echo, not the person: A's own voice still reaches B. In 29
    // runs on 2026-12-07 (HMM transparent mode) it arrived at -16.7 to -30.0 dBFS with
    // processing; before that mode one run in six suppressed it to the residual echo's level
    // (docs/benchmarks.md, "Audio processing").
    assert!(
        on.voice_dbfs > -40.0,
        "with processing A's voice must still reach B: {on:?}"
    );
}

#[test]
fn unplugging_the_sound_device_mid_call_is_a_warning_and_the_call_goes_on() {
    if !crate::common::pulse_available() {
        return;
    }
    let _whole_machine = crate::common::slots::whole_machine();
    let mut room = EchoRoom::new();
    let server = HostedSignal::start("127.0.0.1:0".parse().expect("address"), Default::default())
        .expect("signal starts");
    let url = server.local_url();
    let name = format!("unplug-{}", std::process::id());
    let mut a = config(&url, &name);
    a.video = VideoChoice::TestPattern;
    a.audio = AudioChoice::Microphone(Some(format!("Monitor of {}", room.description)));
    a.speaker = SpeakerChoice::Device(Some(room.description.clone()));
    let mut b = config(&url, &name);
    b.audio = AudioChoice::Tone(660.0);
    b.speaker = SpeakerChoice::Null;
    let ea = Engine::start(a, None).expect("engine a");
    let eb = Engine::start(b, None).expect("engine b");
    let mut warnings = Vec::new();
    let mut states = Vec::new();
    let mut frames_at_b = 0;
    let mut unplugged_at: Option<(Instant, u64)> = None;
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        while let Ok(event) = ea.events().try_recv() {
            match event {
                Event::Warning(w) => warnings.push(w),
                Event::State(s) => states.push(s),
                _ => {}
            }
        }
        if let Ok(Event::Stats(s)) = eb.events().recv_timeout(Duration::from_millis(100)) {
            frames_at_b = s.pattern_frames;
        }
        match unplugged_at {
            // Unplug once the call is up and A's audio reaches B.
            None if frames_at_b >= 30 => {
                room.unplug();
                unplugged_at = Some((Instant::now(), frames_at_b));
            }
            Some((at, frames)) if at.elapsed() >= Duration::from_secs(5) => {
                assert!(
                    frames_at_b >= frames + 60,
                    "video stopped after the unplug: {frames} then {frames_at_b} frames at B"
                );
                break;
            }
            _ => {}
        }
    }
    assert!(unplugged_at.is_some(), "the call never came up: {states:?}");
    let told = warnings
        .iter()
        .any(|w| w.contains("microphone") && w.contains("stopped working"));
    assert!(
        told,
        "A was not told its microphone went away: {warnings:?}"
    );
    assert!(
        !states
            .iter()
            .any(|s| matches!(s, CallState::Failed(_) | CallState::Ended)),
        "the call must go on: {states:?}"
    );
}
