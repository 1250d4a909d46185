//! [`Microphone`]: a real capture device through cpal, delivered as 48 kHz 20 ms frames, with a
//! watch that reports failures, stalls and digital silence as [`DeviceEvent`]s.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cpal::traits::DeviceTrait;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use super::devices::{
    DEVICE_STALL_MS, DeviceEvent, Direction, MICROPHONE_SILENT_MS, PRESENCE_CHECK_PERIOD, Presence,
    device_error, device_present, find_device, read_any, start_stream, stream_config,
};
use super::frame::{check_channels, remix};
use super::resample::StreamResampler;
use super::{AudioFrame, AudioSource, SAMPLE_RATE_HZ, SAMPLES_PER_FRAME};
use crate::capture::{AudioCapture, Capture, FrameSender, spawn_named};
use crate::{Error, unix_time_us};

/// A real microphone through cpal (PulseAudio or ALSA), delivered as 48 kHz 20 ms frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Microphone {
    /// Device name from [`list_audio_inputs`]; `None` for the system default.
    pub device: Option<String>,
    /// Channels of the delivered frames (1 or 2), whatever the device has.
    pub channels: u8,
}

impl Microphone {
    /// The named device (or the default with `None`), delivering mono.
    #[must_use]
    pub fn new(device: Option<&str>) -> Self {
        Self {
            device: device.map(str::to_owned),
            channels: 1,
        }
    }
}

enum MicEvent {
    Samples(Vec<f32>),
    Failed(String),
}

impl AudioSource for Microphone {
    fn name(&self) -> String {
        self.device
            .clone()
            .unwrap_or_else(|| "Default microphone".to_owned())
    }

    fn start(self, capacity: usize) -> Result<Capture<AudioFrame>, Error> {
        self.start_inner(capacity, None)
    }
}

impl Microphone {
    /// Like [`AudioSource::start`], and reports failures, stalls and digital silence (and their
    /// end) as [`DeviceEvent`]s on `events`.
    ///
    /// # Errors
    /// As [`AudioSource::start`].
    pub fn start_with_events(
        self,
        capacity: usize,
        events: Sender<DeviceEvent>,
    ) -> Result<AudioCapture, Error> {
        self.start_inner(capacity, Some(events))
    }

    fn start_inner(
        self,
        capacity: usize,
        events: Option<Sender<DeviceEvent>>,
    ) -> Result<AudioCapture, Error> {
        check_channels(self.channels)?;
        let (ready_tx, ready_rx) = bounded::<Result<(), Error>>(1);
        let capture = spawn_named(
            "duet-microphone",
            capacity,
            move |tx| match open_microphone(&self) {
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    Ok(())
                }
                Ok(mic) => {
                    let _ = ready_tx.send(Ok(()));
                    let watch = MicWatch::new(mic.name.clone(), events);
                    run_microphone(mic, self.channels, &tx, watch)
                }
            },
        )?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(capture),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::ThreadPanicked("duet-microphone".into())),
        }
    }
}

struct OpenMicrophone {
    name: String,
    stream: cpal::Stream,
    events: Receiver<MicEvent>,
    rate: u32,
    channels: usize,
    callback_drops: Arc<AtomicU64>,
}

fn open_microphone(mic: &Microphone) -> Result<OpenMicrophone, Error> {
    let (device, name) = find_device(mic.device.as_deref(), Direction::Input)?;
    let (config, format) = stream_config(&device, &name, Direction::Input)?;
    let (events_tx, events) = bounded::<MicEvent>(64);
    let error_tx = events_tx.clone();
    let callback_drops = Arc::new(AtomicU64::new(0));
    let drops = Arc::clone(&callback_drops);
    let build = |config: cpal::StreamConfig| {
        let events_tx = events_tx.clone();
        let error_tx = error_tx.clone();
        let drops = Arc::clone(&drops);
        device.build_input_stream_raw(
            config,
            format,
            move |data: &cpal::Data, _: &cpal::InputCallbackInfo| {
                let mut samples = Vec::with_capacity(data.len());
                if !read_any(data, &mut samples) {
                    let _ = events_tx.try_send(MicEvent::Failed(format!(
                        "unsupported sample format {format}"
                    )));
                    return;
                }
                if events_tx.try_send(MicEvent::Samples(samples)).is_err() {
                    drops.fetch_add(1, Ordering::Relaxed);
                }
            },
            move |error| {
                let _ = error_tx.try_send(MicEvent::Failed(error.to_string()));
            },
            Some(Duration::from_secs(5)),
        )
    };
    let stream = start_stream(&name, config, build)?;
    tracing::debug!(device = %name, rate = config.sample_rate, channels = config.channels, %format, "microphone open");
    Ok(OpenMicrophone {
        name,
        stream,
        events,
        rate: config.sample_rate,
        channels: usize::from(config.channels),
        callback_drops,
    })
}

/// Watches a running microphone and turns failures, stalls and digital silence into
/// [`DeviceEvent`]s. Pure apart from the channel: time comes in as an `Instant`.
struct MicWatch {
    device: String,
    events: Option<Sender<DeviceEvent>>,
    last_data: Instant,
    /// Start of the current run of all-zero callbacks.
    zeros_since: Option<Instant>,
    reported: bool,
}

impl MicWatch {
    fn new(device: String, events: Option<Sender<DeviceEvent>>) -> Self {
        Self {
            device,
            events,
            last_data: Instant::now(),
            zeros_since: None,
            reported: false,
        }
    }

    fn send(&self, event: DeviceEvent) {
        tracing::info!(?event, "audio device event");
        if let Some(events) = &self.events {
            let _ = events.try_send(event);
        }
    }

    fn on_samples(&mut self, samples: &[f32], now: Instant) {
        self.last_data = now;
        if samples.iter().all(|&s| s == 0.0) {
            let since = *self.zeros_since.get_or_insert(now);
            let silent_ms = now.duration_since(since).as_millis() as u64;
            if !self.reported && silent_ms >= MICROPHONE_SILENT_MS {
                self.reported = true;
                self.send(DeviceEvent::MicrophoneSilent {
                    device: self.device.clone(),
                    silent_ms,
                });
            }
        } else {
            self.zeros_since = None;
            if self.reported {
                self.reported = false;
                self.send(DeviceEvent::MicrophoneRecovered {
                    device: self.device.clone(),
                });
            }
        }
    }

    fn on_idle(&mut self, now: Instant) {
        let silent_ms = now.duration_since(self.last_data).as_millis() as u64;
        if !self.reported && silent_ms >= DEVICE_STALL_MS {
            self.reported = true;
            self.send(DeviceEvent::MicrophoneStalled {
                device: self.device.clone(),
                silent_ms,
            });
        }
    }

    fn on_failure(&self, reason: &str) {
        self.send(DeviceEvent::MicrophoneFailed {
            device: self.device.clone(),
            reason: reason.to_owned(),
        });
    }
}

fn run_microphone(
    mic: OpenMicrophone,
    out_channels: u8,
    tx: &FrameSender<AudioFrame>,
    mut watch: MicWatch,
) -> Result<(), Error> {
    let channels = usize::from(out_channels);
    let mut resampler = StreamResampler::new(mic.rate, SAMPLE_RATE_HZ, channels)?;
    let mut pending: Vec<f32> = Vec::new();
    let frame_len = SAMPLES_PER_FRAME * channels;
    let mut reported_drops = 0;
    let mut presence_checked = Instant::now();
    let mut presence = Presence::default();
    while !tx.should_stop() {
        if presence_checked.elapsed() >= PRESENCE_CHECK_PERIOD {
            presence_checked = Instant::now();
            if presence.gone(device_present(&mic.name, Direction::Input)) {
                watch.on_failure("device removed");
                return Err(device_error(&mic.name, "device removed"));
            }
        }
        let event = match mic.events.recv_timeout(Duration::from_millis(100)) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => {
                watch.on_idle(Instant::now());
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                watch.on_failure("stream closed");
                return Err(device_error(&mic.name, "stream closed"));
            }
        };
        match event {
            MicEvent::Failed(reason) => {
                watch.on_failure(&reason);
                return Err(device_error(&mic.name, reason));
            }
            MicEvent::Samples(samples) => {
                watch.on_samples(&samples, Instant::now());
                let mixed = remix(&samples, mic.channels, channels);
                resampler.process(&mixed, &mut pending)?;
            }
        }
        let drops = mic.callback_drops.load(Ordering::Relaxed);
        if drops > reported_drops {
            tx.stats().add_dropped(drops - reported_drops);
            reported_drops = drops;
        }
        while pending.len() >= frame_len {
            let buffered_us =
                (pending.len() / channels) as u64 * 1_000_000 / u64::from(SAMPLE_RATE_HZ);
            let samples: Vec<f32> = pending.drain(..frame_len).collect();
            let frame = AudioFrame {
                channels: out_channels,
                samples,
                capture_time_us: unix_time_us().saturating_sub(buffered_us),
            };
            if !tx.push(frame) {
                break;
            }
        }
    }
    drop(mic.stream);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mic_watch_reports_stall_silence_and_recovery() {
        let (tx, rx) = bounded(8);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut watch = MicWatch::new("mic".into(), Some(tx));
        watch.last_data = t0;
        watch.on_samples(&[0.1; 480], ms(0));
        watch.on_idle(ms(900));
        assert!(
            rx.try_recv().is_err(),
            "no stall before {DEVICE_STALL_MS} ms"
        );
        watch.on_idle(ms(1_100));
        assert!(matches!(
            rx.try_recv(),
            Ok(DeviceEvent::MicrophoneStalled {
                silent_ms: 1_100,
                ..
            })
        ));
        watch.on_idle(ms(2_000));
        assert!(rx.try_recv().is_err(), "one event per episode");
        watch.on_samples(&[0.1; 480], ms(2_010));
        assert!(matches!(
            rx.try_recv(),
            Ok(DeviceEvent::MicrophoneRecovered { .. })
        ));
        // Digital silence: reported after MICROPHONE_SILENT_MS of exact zeros.
        for i in 0..=150u64 {
            watch.on_samples(&[0.0; 480], ms(3_000 + i * 20));
        }
        assert!(matches!(
            rx.try_recv(),
            Ok(DeviceEvent::MicrophoneSilent {
                silent_ms: 3_000,
                ..
            })
        ));
        watch.on_failure("gone");
        assert!(matches!(
            rx.try_recv(),
            Ok(DeviceEvent::MicrophoneFailed { .. })
        ));
    }
}
