//! [`Speaker`]: a real output device through cpal. Frames are converted to the device's rate
//! and channels and queued for its callback; a failed, removed or stalled device is reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cpal::traits::DeviceTrait;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use super::devices::{
    DEVICE_STALL_MS, DeviceEvent, Direction, PRESENCE_CHECK_PERIOD, Presence, SPEAKER_WARMUP_MS,
    device_error, device_present, find_device, start_stream, stream_config, write_any,
};
use super::frame::remix;
use super::resample::StreamResampler;
use super::{AudioFrame, AudioSink, Demand, SAMPLE_RATE_HZ};
use crate::Error;

/// Counters of a [`Speaker`].
#[derive(Debug, Default)]
pub struct SpeakerStats {
    frames: AtomicU64,
    dropped: AtomicU64,
    underruns: AtomicU64,
}

impl SpeakerStats {
    /// Frames accepted for playout.
    #[must_use]
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Frames dropped because the device queue was full (more than ~200 ms queued).
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Device callbacks that found no audio queued and played silence.
    #[must_use]
    pub fn underruns(&self) -> u64 {
        self.underruns.load(Ordering::Relaxed)
    }
}

/// A real output device through cpal. Frames passed to [`AudioSink::play`] are converted to the
/// device's rate and channels and queued (at most ~200 ms) for the device callback, which
/// paces the playout ([`AudioSink::demand`]): the queue is kept two device requests deep
/// ([`Speaker::lead`]), topped up each time the device takes audio.
pub struct Speaker {
    name: String,
    queue: Sender<Vec<f32>>,
    failures: Receiver<String>,
    resampler: StreamResampler,
    device_channels: usize,
    stats: Arc<SpeakerStats>,
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    events: Option<Sender<DeviceEvent>>,
    /// When the device callback last ran, µs after `opened`.
    last_callback_us: Arc<AtomicU64>,
    opened: Instant,
    stall_reported: bool,
    /// Set once the stream failed: every later `play` returns it.
    failed: Option<String>,
    /// What the device callback shares with the playout side.
    pacing: Arc<Pacing>,
    /// A token each time the device callback took audio.
    taken: Receiver<()>,
    /// Device samples per second, all channels together.
    samples_per_sec: usize,
}

/// Counts shared between [`Speaker::play`] and the device callback.
#[derive(Debug, Default)]
struct Pacing {
    /// Device samples (all channels) handed over and not yet taken by the device.
    queued: AtomicUsize,
    /// The device callback's latest request, in device samples.
    last_request: AtomicUsize,
}

/// The least audio kept queued ahead of the device.
const LEAD_MIN: Duration = Duration::from_millis(40);
/// The most: the queue holds ~200 ms.
const LEAD_MAX: Duration = Duration::from_millis(160);
/// A device that has not asked for audio this long cannot pace the playout; the wall clock
/// does until it asks again (a suspended or stalled device, the null sink's warm-up).
pub const DEVICE_PACE_GRACE: Duration = Duration::from_millis(150);

impl std::fmt::Debug for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaker")
            .field("name", &self.name)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Chunks of about 20 ms each: ~200 ms of queue at most.
const SPEAKER_QUEUE_CHUNKS: usize = 10;

impl Speaker {
    /// Opens the named output device (or the default with `None`) and starts its stream.
    ///
    /// # Errors
    /// [`Error::AudioDeviceNotFound`] when there is no such device (or none at all),
    /// [`Error::AudioDevice`] when it cannot be configured or started.
    pub fn open(device: Option<&str>) -> Result<Self, Error> {
        Self::open_inner(device, None)
    }

    /// Like [`Speaker::open`], and reports a failed or stalled device as a [`DeviceEvent`] on
    /// `events` (the failure as soon as the backend reports it, not only at the next
    /// [`AudioSink::play`]).
    ///
    /// # Errors
    /// As [`Speaker::open`].
    pub fn open_with_events(
        device: Option<&str>,
        events: Sender<DeviceEvent>,
    ) -> Result<Self, Error> {
        Self::open_inner(device, Some(events))
    }

    fn open_inner(
        device: Option<&str>,
        events: Option<Sender<DeviceEvent>>,
    ) -> Result<Self, Error> {
        let wanted = device.map(str::to_owned);
        let opened = Instant::now();
        let last_callback_us = Arc::new(AtomicU64::new(0));
        let callback_clock = CallbackClock {
            opened,
            last_us: Arc::clone(&last_callback_us),
        };
        let callback_events = events.clone();
        let (ready_tx, ready_rx) = bounded::<Result<(String, u32, usize), Error>>(1);
        let (queue_tx, queue_rx) = bounded::<Vec<f32>>(SPEAKER_QUEUE_CHUNKS);
        let (fail_tx, failures) = bounded::<String>(4);
        let (stop_tx, stop_rx) = bounded::<()>(1);
        let stats = Arc::new(SpeakerStats::default());
        let callback_stats = Arc::clone(&stats);
        let pacing = Arc::new(Pacing::default());
        let callback_pacing = Arc::clone(&pacing);
        let (taken_tx, taken) = bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("duet-speaker".into())
            .spawn(move || {
                let opened = open_speaker(
                    wanted.as_deref(),
                    Feed {
                        queue: queue_rx,
                        pacing: callback_pacing,
                        taken: taken_tx,
                    },
                    fail_tx.clone(),
                    callback_stats,
                    callback_clock,
                    callback_events.clone(),
                );
                match opened {
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                    Ok((stream, name, rate, channels)) => {
                        let _ = ready_tx.send(Ok((name.clone(), rate, channels)));
                        // Hold the stream until the Speaker is dropped, checking that the
                        // device still exists: PulseAudio moves the streams of a removed
                        // device to another one without telling the client.
                        let mut presence = Presence::default();
                        while let Err(RecvTimeoutError::Timeout) =
                            stop_rx.recv_timeout(PRESENCE_CHECK_PERIOD)
                        {
                            if presence.gone(device_present(&name, Direction::Output)) {
                                let reason = "device removed".to_owned();
                                if let Some(events) = &callback_events {
                                    let _ = events.try_send(DeviceEvent::SpeakerFailed {
                                        device: name.clone(),
                                        reason: reason.clone(),
                                    });
                                }
                                let _ = fail_tx.try_send(reason);
                                let _ = stop_rx.recv();
                                break;
                            }
                        }
                        drop(stream);
                    }
                }
            })
            .map_err(|source| Error::Thread {
                name: "duet-speaker".into(),
                source,
            })?;
        let (name, rate, device_channels) = match ready_rx.recv() {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => return Err(Error::ThreadPanicked("duet-speaker".into())),
        };
        Ok(Self {
            resampler: StreamResampler::new(SAMPLE_RATE_HZ, rate, device_channels)?,
            name,
            queue: queue_tx,
            failures,
            device_channels,
            stats,
            stop: Some(stop_tx),
            thread: Some(thread),
            events,
            last_callback_us,
            opened,
            stall_reported: false,
            failed: None,
            pacing,
            taken,
            samples_per_sec: rate as usize * device_channels.max(1),
        })
    }

    fn duration_of(&self, samples: usize) -> Duration {
        Duration::from_secs_f64(samples as f64 / self.samples_per_sec.max(1) as f64)
    }

    /// How much audio is kept queued ahead of the device: twice its latest request, between
    /// 40 and 160 ms, so the playout thread has a whole request's time to top the queue up
    /// before the next one (an underrun is worse than a late frame: PulseAudio then rewinds).
    /// On PulseAudio duet asks for 40 ms requests, so 80 ms. (The latest, not the largest: a
    /// device's first request fills its whole buffer.)
    #[must_use]
    pub fn lead(&self) -> Duration {
        let request = self.duration_of(self.pacing.last_request.load(Ordering::Relaxed));
        (request * 2).clamp(LEAD_MIN, LEAD_MAX)
    }

    /// How long ago the device last asked for audio; `None` before its first request.
    #[must_use]
    pub fn since_last_callback(&self) -> Option<Duration> {
        match self.last_callback_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(
                self.opened
                    .elapsed()
                    .saturating_sub(Duration::from_micros(us)),
            ),
        }
    }

    /// Reports a stall once per episode while frames keep being played, after a warm-up of
    /// [`SPEAKER_WARMUP_MS`] (a fresh PulseAudio null sink asks for nothing for ~2 s while it
    /// plays out what it had rendered ahead).
    fn watch_stall(&mut self) {
        if self.opened.elapsed() < Duration::from_millis(SPEAKER_WARMUP_MS) {
            return;
        }
        let idle = self
            .since_last_callback()
            .unwrap_or_else(|| self.opened.elapsed());
        let silent_ms = idle.as_millis() as u64;
        if silent_ms < DEVICE_STALL_MS {
            self.stall_reported = false;
            return;
        }
        if !self.stall_reported {
            self.stall_reported = true;
            let event = DeviceEvent::SpeakerStalled {
                device: self.name.clone(),
                silent_ms,
            };
            tracing::info!(?event, "audio device event");
            if let Some(events) = &self.events {
                let _ = events.try_send(event);
            }
        }
    }

    /// The device's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Playout counters.
    #[must_use]
    pub fn stats(&self) -> Arc<SpeakerStats> {
        Arc::clone(&self.stats)
    }
}

type OpenedSpeaker = (cpal::Stream, String, u32, usize);

/// Where the speaker's device callback records that it ran.
#[derive(Clone)]
struct CallbackClock {
    opened: Instant,
    last_us: Arc<AtomicU64>,
}

impl CallbackClock {
    fn tick(&self) {
        let us = self.opened.elapsed().as_micros() as u64;
        self.last_us.store(us, Ordering::Relaxed);
    }
}

/// The device callback's side of the queue.
struct Feed {
    queue: Receiver<Vec<f32>>,
    pacing: Arc<Pacing>,
    taken: Sender<()>,
}

fn open_speaker(
    wanted: Option<&str>,
    feed: Feed,
    failures: Sender<String>,
    stats: Arc<SpeakerStats>,
    clock: CallbackClock,
    events: Option<Sender<DeviceEvent>>,
) -> Result<OpenedSpeaker, Error> {
    let (device, name) = find_device(wanted, Direction::Output)?;
    let event_name = name.clone();
    let (config, format) = stream_config(&device, &name, Direction::Output)?;
    let build = |config: cpal::StreamConfig| {
        let queue = feed.queue.clone();
        let pacing = Arc::clone(&feed.pacing);
        let taken = feed.taken.clone();
        let failures = failures.clone();
        let format_failures = failures.clone();
        let stats = Arc::clone(&stats);
        let clock = clock.clone();
        let events = events.clone();
        let event_name = event_name.clone();
        let mut current: Vec<f32> = Vec::new();
        let mut offset = 0;
        let mut started = false;
        let mut mix: Vec<f32> = Vec::new();
        device.build_output_stream_raw(
            config,
            format,
            move |data: &mut cpal::Data, _: &cpal::OutputCallbackInfo| {
                clock.tick();
                let wanted = data.len();
                pacing.last_request.store(wanted, Ordering::Relaxed);
                mix.clear();
                while mix.len() < wanted {
                    if offset >= current.len() {
                        match queue.try_recv() {
                            Ok(chunk) => {
                                current = chunk;
                                offset = 0;
                                started = true;
                            }
                            Err(_) => {
                                if started {
                                    stats.underruns.fetch_add(1, Ordering::Relaxed);
                                }
                                break;
                            }
                        }
                    }
                    let take = (wanted - mix.len()).min(current.len() - offset);
                    mix.extend_from_slice(&current[offset..offset + take]);
                    offset += take;
                    // Counted in `play` before it was queued, so this never goes below zero.
                    pacing.queued.fetch_sub(take, Ordering::Relaxed);
                }
                if !mix.is_empty() {
                    let _ = taken.try_send(());
                }
                mix.resize(wanted, 0.0);
                if !write_any(data, &mix) {
                    let _ = format_failures.try_send(format!("unsupported sample format {format}"));
                }
            },
            move |error| {
                let reason = error.to_string();
                if let Some(events) = &events {
                    let _ = events.try_send(DeviceEvent::SpeakerFailed {
                        device: event_name.clone(),
                        reason: reason.clone(),
                    });
                }
                let _ = failures.try_send(reason);
            },
            Some(Duration::from_secs(5)),
        )
    };
    let stream = start_stream(&name, config, build)?;
    tracing::debug!(device = %name, rate = config.sample_rate, channels = config.channels, %format, "speaker open");
    Ok((
        stream,
        name,
        config.sample_rate,
        usize::from(config.channels),
    ))
}

impl AudioSink for Speaker {
    fn play(&mut self, frame: &AudioFrame) -> Result<(), Error> {
        if let Ok(reason) = self.failures.try_recv() {
            self.failed.get_or_insert(reason);
        }
        if let Some(reason) = &self.failed {
            return Err(device_error(&self.name, reason));
        }
        self.watch_stall();
        let mixed = remix(
            &frame.samples,
            usize::from(frame.channels),
            self.device_channels,
        );
        let mut out = Vec::with_capacity(mixed.len() + 64);
        self.resampler.process(&mixed, &mut out)?;
        if out.is_empty() {
            return Ok(());
        }
        // Counted before it can be taken, so the callback's subtraction never underflows.
        let len = out.len();
        self.pacing.queued.fetch_add(len, Ordering::Relaxed);
        let sent = self.queue.try_send(out);
        if sent.is_err() {
            self.pacing.queued.fetch_sub(len, Ordering::Relaxed);
        }
        match sent {
            Ok(()) => {
                self.stats.frames.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(crossbeam_channel::TrySendError::Full(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                Err(device_error(&self.name, "stream closed"))
            }
        }
    }

    fn demand(&self) -> Demand {
        if self.failed.is_some() {
            return Demand::Clock;
        }
        let idle = self
            .since_last_callback()
            .unwrap_or_else(|| self.opened.elapsed());
        if idle > DEVICE_PACE_GRACE {
            return Demand::Clock;
        }
        if self.queued() < self.lead() {
            Demand::Now
        } else {
            Demand::Later
        }
    }

    fn wait_for_device(&self, timeout: Duration) {
        let _ = self.taken.recv_timeout(timeout);
    }

    fn queued(&self) -> Duration {
        self.duration_of(self.pacing.queued.load(Ordering::Relaxed))
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
