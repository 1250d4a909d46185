//! The audio sender (`duet-audio-send`): source → Opus encoder → RTP track (silence while
//! muted).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::Receiver;
use media::{AudioCapture, AudioSource, OpusEncoder, Silence, Tone};
use rtc::media::Sample;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

use super::*;
use crate::config::AudioChoice;

/// Commands to the audio send thread.
#[derive(Debug)]
pub enum AudioCmd {
    Switch(AudioChoice),
}

fn open_audio(
    choice: &AudioChoice,
    devices: &crossbeam_channel::Sender<media::DeviceEvent>,
) -> Result<Option<AudioCapture>, String> {
    match choice {
        AudioChoice::Tone(hz) => Tone::new(*hz).start(4).map(Some).map_err(|e| e.to_string()),
        AudioChoice::Bursts(hz) => media::Bursts::new(*hz)
            .start(4)
            .map(Some)
            .map_err(|e| e.to_string()),
        AudioChoice::Warble(hz) => media::Warble::new(*hz)
            .start(4)
            .map(Some)
            .map_err(|e| e.to_string()),
        AudioChoice::Microphone(name) => media::Microphone::new(name.as_deref())
            .start_with_events(4, devices.clone())
            .map(Some)
            .map_err(|e| format!("the microphone cannot be used: {e}")),
        AudioChoice::None => Silence { channels: 1 }
            .start(4)
            .map(Some)
            .map_err(|e| e.to_string()),
    }
}

/// Spawns `duet-audio-send`.
#[allow(clippy::too_many_arguments)]
pub fn spawn_audio_sender(
    rt: tokio::runtime::Handle,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    payload_type: u8,
    mut choice: AudioChoice,
    bitrate_bps: u32,
    counters: Arc<MediaCounters>,
    commands: Receiver<AudioCmd>,
    mut processor: media::AudioProcessor,
    warn: Arc<dyn Fn(String) + Send + Sync>,
) -> std::io::Result<Worker> {
    Worker::spawn("duet-audio-send", move |stop| {
        let mut encoder = match OpusEncoder::new(1, bitrate_bps) {
            Ok(e) => e,
            Err(e) => {
                warn(format!("the Opus encoder cannot start: {e}"));
                return;
            }
        };
        // In-band FEC is negotiated (`useinbandfec=1`); how much of each packet it takes
        // follows the loss the other side reports, once a second.
        let mut loss_percent = 5;
        let _ = encoder.set_packet_loss_perc(loss_percent);
        counters
            .audio_fec_loss_percent
            .store(u64::from(loss_percent), Ordering::Relaxed);
        counters
            .audio_ssrc
            .store(u64::from(ssrc), Ordering::Relaxed);
        let mut frames = 0u32;
        // A failing, stalled or silent microphone becomes a warning; the call goes on and the
        // user can pick another one.
        let (device_tx, device_rx) = crossbeam_channel::bounded::<media::DeviceEvent>(16);
        let mut capture = open_audio(&choice, &device_tx).unwrap_or_else(|e| {
            warn(e);
            open_audio(&AudioChoice::None, &device_tx).ok().flatten()
        });
        while !stop.load(Ordering::Relaxed) {
            while let Ok(event) = device_rx.try_recv() {
                warn(describe_device_event(&event));
            }
            if let Ok(AudioCmd::Switch(new)) = commands.try_recv() {
                drop(capture.take());
                choice = new;
                capture = open_audio(&choice, &device_tx).unwrap_or_else(|e| {
                    warn(e);
                    open_audio(&AudioChoice::None, &device_tx).ok().flatten()
                });
            }
            let Some(c) = &capture else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let Some(mut frame) = c.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            if frame.channels() != 1 {
                match frame.to_channels(1) {
                    Ok(mono) => frame = mono,
                    Err(_) => continue,
                }
            }
            frames = frames.wrapping_add(1);
            if frames.is_multiple_of(50) {
                let reported = counters.audio_remote_loss_permille.load(Ordering::Relaxed);
                let want = expected_loss_percent(reported);
                if want != loss_percent && encoder.set_packet_loss_perc(want).is_ok() {
                    loss_percent = want;
                    counters
                        .audio_fec_loss_percent
                        .store(u64::from(want), Ordering::Relaxed);
                }
            }
            // Echo cancellation and the rest work on what the microphone heard, with what the
            // speaker played as the reference (the playout thread feeds it to the processor).
            // Synthetic sources (a tone, silence) hear no room: they are sent as they are.
            let on = counters.audio_processing.load(Ordering::Relaxed)
                && matches!(choice, AudioChoice::Microphone(_));
            if processor.is_enabled() != on {
                processor.set_enabled(on);
            }
            if let Err(e) = processor.process_capture_frame(&mut frame) {
                tracing::debug!(error = %e, "audio processing skipped a frame");
            }
            if frames.is_multiple_of(50) {
                let erle = processor.stats().erle_db.unwrap_or(0.0).max(0.0);
                counters
                    .aec_erle_centi_db
                    .store((erle * 100.0) as u64, Ordering::Relaxed);
            }
            if counters.mic_muted.load(Ordering::Relaxed) {
                frame.samples_mut().fill(0.0);
            }
            let Ok(packet) = encoder.encode(&frame) else {
                continue;
            };
            let sample = Sample {
                data: Bytes::from(packet),
                duration: Duration::from_millis(20),
                ..Sample::new(Instant::now())
            };
            if let Err(e) = rt.block_on(track.write_sample(ssrc, payload_type, &sample, &[])) {
                tracing::debug!(error = %e, "audio write failed");
            }
        }
    })
}

/// The Opus encoder's expected-loss setting for a reported loss (per mille): a little above
/// what is measured (loss comes in bursts), at least 5 % so FEC is never off, at most 40 %.
#[must_use]
pub fn expected_loss_percent(reported_permille: u64) -> u8 {
    let percent = reported_permille.div_ceil(10) + 2;
    percent.clamp(5, 40) as u8
}

/// What a device event means for the person in the call.
#[must_use]
pub fn describe_device_event(event: &media::DeviceEvent) -> String {
    use media::DeviceEvent as E;
    match event {
        E::MicrophoneFailed { device, reason } => format!(
            "the microphone {device} stopped working ({reason}); pick another one under Devices"
        ),
        E::MicrophoneStalled { device, silent_ms } => format!(
            "the microphone {device} has delivered no sound for {:.0} s",
            *silent_ms as f64 / 1000.0
        ),
        E::MicrophoneSilent { device, .. } => {
            format!("the microphone {device} hears only silence (is it muted in the system?)")
        }
        E::MicrophoneRecovered { device } => format!("the microphone {device} works again"),
        E::SpeakerFailed { device, reason } => format!(
            "the speaker {device} stopped working ({reason}); pick another one under Devices"
        ),
        E::SpeakerStalled { device, .. } => format!("the speaker {device} stopped playing"),
        other => format!("sound device: {other:?}"),
    }
}
