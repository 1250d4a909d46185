//! A device that goes away mid-capture is reported, not hidden: a private PulseAudio null sink
//! is played into (`Speaker`) and recorded from (`Microphone` on its monitor), then unloaded
//! with `pactl unload-module`. PulseAudio then moves both streams to another sink without
//! telling the client, so the media layer's presence check is what notices. A `DeviceEvent`
//! about the microphone and a speaker failure (event, or error from `play`) must arrive within
//! 5 s, and nothing panics or hangs: playing and stopping still return.
//!
//! Needs a PulseAudio server (see `common::pulse`).

use crate::common::pulse::{PrivateSink, RAN, with_pulse};
use crate::common::rms;

use std::time::{Duration, Instant};

use media::{AudioSink, DeviceEvent, Microphone, Speaker, Tone};

#[test]
fn unplugged_microphone_is_reported() {
    with_pulse(module_path!(), "unplugged_microphone_is_reported", unplug);
}

fn unplug() {
    let mut sink = PrivateSink::load("unplug", &[]);
    let (events_tx, events) = crossbeam_channel::bounded::<DeviceEvent>(32);
    let mut speaker =
        Speaker::open_with_events(Some(&sink.description), events_tx.clone()).expect("speaker");
    let mic = Microphone {
        device: Some(sink.monitor()),
        channels: 1,
    }
    .start_with_events(100, events_tx)
    .expect("microphone");
    let tone = Tone::new(440.0);

    let start = Instant::now();
    let mut played = 0u64;
    let mut heard = Vec::new();
    let mut unplugged_at: Option<Instant> = None;
    let mut play_error = None;
    let mut seen: Vec<(f64, DeviceEvent)> = Vec::new();
    let mut mic_event = None;
    let mut speaker_event = None;
    loop {
        let now = Instant::now();
        if unplugged_at.is_none() && now.duration_since(start) > Duration::from_millis(2500) {
            assert!(
                rms(&heard[heard.len().saturating_sub(24_000)..]) > 0.05,
                "the tone did not come back before the unplug"
            );
            sink.unload().expect("pactl unload-module");
            unplugged_at = Some(now);
        }
        if let Some(at) = unplugged_at
            && now.duration_since(at) > Duration::from_secs(5)
        {
            break;
        }
        let due = start.elapsed().as_micros() as u64 / 20_000 + 3;
        while played < due {
            if let Err(e) = speaker.play(&tone.frame(played, 0)) {
                play_error.get_or_insert(e.to_string());
            }
            played += 1;
        }
        while let Some(frame) = mic.recv_timeout(Duration::from_millis(5)) {
            heard.extend_from_slice(frame.samples());
        }
        while let Ok(event) = events.try_recv() {
            let t = unplugged_at.map_or(-1.0, |at| at.elapsed().as_secs_f64());
            let is_mic = matches!(
                event,
                DeviceEvent::MicrophoneFailed { .. }
                    | DeviceEvent::MicrophoneStalled { .. }
                    | DeviceEvent::MicrophoneSilent { .. }
            );
            seen.push((t, event.clone()));
            if unplugged_at.is_some() {
                if is_mic {
                    mic_event.get_or_insert((t, event));
                } else if matches!(event, DeviceEvent::SpeakerFailed { .. }) {
                    speaker_event.get_or_insert((t, event));
                }
            }
        }
        if mic_event.is_some() && speaker_event.is_some() && play_error.is_some() {
            break;
        }
    }
    eprintln!("events (s after unplug): {seen:?}");
    eprintln!(
        "speaker after unplug: {play_error:?}; microphone finished: {}",
        mic.is_finished()
    );
    let (after_s, event) = mic_event.expect("no microphone event within 5 s of the unplug");
    let (speaker_after_s, _) = speaker_event.expect("no speaker event within 5 s of the unplug");
    assert!(
        play_error.is_some(),
        "play() kept succeeding on a removed device"
    );
    assert!(
        !seen.iter().any(|(t, _)| *t < 0.0),
        "events before the unplug: {seen:?}"
    );
    // Stopping returns (with the device error when the stream failed) instead of hanging.
    let stopped = Instant::now();
    let ended = mic.stop();
    let mic_stop_s = stopped.elapsed().as_secs_f64();
    drop(speaker);
    let both_s = stopped.elapsed().as_secs_f64();
    eprintln!(
        "microphone stopped in {mic_stop_s:.2} s, speaker closed {:.2} s later",
        both_s - mic_stop_s
    );
    // Closing a moved PulseAudio stream can block the backend for half a minute; stopping
    // gives up waiting after `STOP_TIMEOUT` (the thread finishes on its own).
    assert!(
        mic_stop_s < media::STOP_TIMEOUT.as_secs_f64() + 2.0,
        "stopping the microphone hung ({mic_stop_s:.1} s)"
    );
    assert!(both_s < 10.0, "stopping hung ({both_s:.1} s)");
    println!(
        "{RAN} unplug reported after {after_s:.2} s (microphone: {event:?}), {speaker_after_s:.2} s \
         (speaker); capture ended with {ended:?}"
    );
}
