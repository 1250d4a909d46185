//! The audio receiver: RTP → jitter buffer → `duet-audio-out`, one 20 ms slot whenever the
//! device asks for audio (the wall clock where there is no device) → Opus decode or
//! concealment → sink.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use media::{
    AudioFrame, AudioSink, JitterBuffer, JitterConfig, NullSink, OpusDecoder, Pace, Playout,
    Speaker,
};
use rtc::rtp;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::*;
use crate::config::SpeakerChoice;

/// Builds the audio sink for `choice`; a speaker that cannot open falls back to a null sink
/// and the reason is returned for a warning.
pub fn open_sink(
    choice: &SpeakerChoice,
    devices: &crossbeam_channel::Sender<media::DeviceEvent>,
) -> (Box<dyn AudioSink>, Option<String>) {
    match choice {
        SpeakerChoice::Null => (Box::new(NullSink::new()), None),
        SpeakerChoice::Device(name) => {
            match Speaker::open_with_events(name.as_deref(), devices.clone()) {
                Ok(speaker) => (Box::new(speaker), None),
                Err(e) => (
                    Box::new(NullSink::new()),
                    Some(format!(
                        "no sound output ({e}); the call goes on without sound"
                    )),
                ),
            }
        }
    }
}

/// Receives the remote audio track until it ends: RTP → jitter buffer; `duet-audio-out`
/// plays out one 20 ms slot each time the sink's device wants one ([`media::Pace`]).
pub async fn receive_audio(
    track: Arc<dyn TrackRemote>,
    counters: Arc<MediaCounters>,
    speaker: SpeakerChoice,
    speaker_switch: Arc<Mutex<Option<SpeakerChoice>>>,
    mut render: Option<media::RenderTap>,
    warn: Arc<dyn Fn(String) + Send + Sync>,
) {
    let jitter = Arc::new(Mutex::new(JitterBuffer::new(JitterConfig::default())));
    let playout_jitter = jitter.clone();
    let out_counters = counters.clone();
    // Its thread is joined off the runtime, also when this task is aborted.
    let playout = Worker::spawn("duet-audio-out", move |stop| {
        let mut decoder = match OpusDecoder::new(1) {
            Ok(d) => d,
            Err(e) => {
                warn(format!("the Opus decoder cannot start: {e}"));
                return;
            }
        };
        // A failing speaker becomes a warning (and a null sink until another is picked).
        let (device_tx, device_rx) = crossbeam_channel::bounded::<media::DeviceEvent>(16);
        let (mut sink, problem) = open_sink(&speaker, &device_tx);
        if let Some(p) = problem {
            warn(p);
        }
        let mut analysis: Vec<f32> = Vec::with_capacity(48_000);
        let mut bursts = BurstDetector::default();
        let mut pace = Pace::new(Instant::now());
        while !stop.load(Ordering::Relaxed) {
            while let Ok(event) = device_rx.try_recv() {
                warn(describe_device_event(&event));
            }
            if let Some(new) = lock(&speaker_switch).take() {
                let (s, problem) = open_sink(&new, &device_tx);
                sink = s;
                if let Some(p) = problem {
                    warn(p);
                }
            }
            // One 20 ms slot when the device asks for it (or the clock says so).
            if pace.step(sink.as_ref()).is_none() {
                continue;
            }
            let slot = lock(&playout_jitter).pop();
            let frame: Option<AudioFrame> = match slot {
                Playout::Buffering => None,
                Playout::Packet { payload, .. } => decoder.decode(&payload).ok(),
                Playout::Lost { next_payload, .. } => {
                    out_counters.audio_concealed.fetch_add(1, Ordering::Relaxed);
                    match next_payload {
                        Some(next) => decoder
                            .decode_fec(&next)
                            .or_else(|_| decoder.conceal())
                            .ok(),
                        None => decoder.conceal().ok(),
                    }
                }
                #[allow(unreachable_patterns)]
                _ => None,
            };
            let frame = match frame {
                Some(frame) => {
                    out_counters.audio_played.fetch_add(1, Ordering::Relaxed);
                    // When it will reach the device: after what is queued ahead of it.
                    let heard_us = media::unix_time_us() + sink.queued().as_micros() as u64;
                    if let Some(ms) = bursts.on_frame(frame.samples(), heard_us) {
                        lock(&out_counters.mouth_to_ear).record(ms);
                    }
                    analysis.extend_from_slice(frame.samples());
                    if analysis.len() >= 48_000 / 2 {
                        *lock(&out_counters.dominant_hz) =
                            media::dominant_frequency_hz(&analysis, 48_000.0);
                        out_counters
                            .received_centi_dbfs
                            .store((level_dbfs(&analysis) * 100.0) as i64, Ordering::Relaxed);
                        analysis.clear();
                    }
                    frame
                }
                // Nothing to play yet: the slot is silence, so the device (and the echo
                // canceller's reference) stay in step with the slots.
                None => match AudioFrame::silence(1, media::unix_time_us()) {
                    Ok(silence) => silence,
                    Err(_) => continue,
                },
            };
            // The echo canceller's reference is exactly what the speaker is given.
            if let Some(tap) = render.as_mut() {
                tap.push_frame(&frame);
            }
            if let Err(e) = sink.play(&frame) {
                tracing::debug!(error = %e, "sink failed; switching to a null sink");
                sink = Box::new(NullSink::new());
            }
        }
    })
    .map(JoinOffRuntime::new);
    let mut first = true;
    let started = Instant::now();
    while let Some(event) = track.poll().await {
        if first {
            first = false;
            let ssrcs = track.ssrcs().await;
            tracing::debug!(?ssrcs, "first audio track event");
        }
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let rtp::Packet {
                    header, payload, ..
                } = packet;
                let arrival_ms = started.elapsed().as_secs_f64() * 1000.0;
                let mut jb = lock(&jitter);
                jb.push_timed(
                    header.sequence_number,
                    header.timestamp,
                    payload.to_vec(),
                    arrival_ms,
                );
                counters
                    .audio_jitter_target_us
                    .store((jb.target_delay_ms() * 1000.0) as u64, Ordering::Relaxed);
                counters
                    .audio_jitter_delay_us
                    .store((jb.delay_ms() * 1000.0) as u64, Ordering::Relaxed);
            }
            TrackRemoteEvent::OnRtcpPacket(packets) => note_keyframe_requests(&packets, &counters),
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
    drop(playout);
}

/// RMS level of `samples` in dBFS (a full-scale sine is -3 dBFS), at least -120.
fn level_dbfs(samples: &[f32]) -> f64 {
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (energy / samples.len().max(1) as f64).sqrt();
    (20.0 * rms.max(1e-6).log10()).max(-120.0)
}

#[cfg(test)]
mod level_tests {
    use super::level_dbfs;
    use crate::media_io::BurstDetector;

    #[test]
    fn a_burst_after_quiet_gives_its_lateness() {
        let mut d = BurstDetector::default();
        let quiet = [0.0f32; 960];
        let mut burst = [0.0f32; 960];
        burst[96..].fill(0.4); // starts 2 ms into the frame
        // Loud right away: no quiet before it, not an onset.
        assert_eq!(d.on_frame(&burst, 7_050_000), None);
        for _ in 0..BurstDetector::QUIET_FRAMES {
            assert_eq!(d.on_frame(&quiet, 0), None);
        }
        // Played 45 ms into second 8: sent at 8.000 s, heard at 8.047 s.
        assert_eq!(d.on_frame(&burst, 8_045_000), Some(47.0));
        // The rest of the burst is not a new onset.
        assert_eq!(d.on_frame(&burst, 8_065_000), None);
        for _ in 0..BurstDetector::QUIET_FRAMES {
            d.on_frame(&quiet, 0);
        }
        // Too late to tell from the next burst: not reported.
        assert_eq!(d.on_frame(&burst, 8_950_000), None);
    }

    #[test]
    fn levels_in_dbfs() {
        assert_eq!(level_dbfs(&[0.0; 480]), -120.0);
        assert!((level_dbfs(&[1.0; 480])).abs() < 1e-9);
        let sine: Vec<f32> = (0..4800)
            .map(|i| (std::f32::consts::TAU * 440.0 * i as f32 / 48_000.0).sin() * 0.5)
            .collect();
        assert!(
            (level_dbfs(&sine) - (-9.03)).abs() < 0.05,
            "{}",
            level_dbfs(&sine)
        );
    }
}
