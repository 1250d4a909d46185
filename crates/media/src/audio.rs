//! Audio frames, sources and sinks.
//!
//! Everything inside duet is 48 kHz, 20 ms frames ([`SAMPLES_PER_FRAME`] samples per channel),
//! f32 interleaved, mono or stereo: the unit Opus encodes. Device audio is converted at the edge:
//! [`Microphone`] resamples whatever the device runs at (rubato) and mixes to the wanted channel
//! count; [`Speaker`] does the reverse. Synthetic sources ([`Tone`], [`Silence`]) and the
//! [`NullSink`] stand in where there is no sound card; "no audio device at all" is an ordinary
//! empty list or a clear [`Error::AudioDeviceNotFound`], never a panic.
//!
//! cpal streams live on named threads owned by this module, so every public type is `Send`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Resampler, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

use crate::capture::{AudioCapture, Capture, FrameSender, spawn_named};
use crate::{Error, unix_time_us};

/// The sample rate of every [`AudioFrame`].
pub const SAMPLE_RATE_HZ: u32 = 48_000;
/// Samples per channel in one [`AudioFrame`] (20 ms at 48 kHz).
pub const SAMPLES_PER_FRAME: usize = 960;
/// Duration of one [`AudioFrame`] in microseconds.
pub const FRAME_DURATION_US: u64 = 20_000;
/// Most channels an [`AudioFrame`] may have.
pub const CHANNELS_MAX: u8 = 2;

const FRAME_PERIOD: Duration = Duration::from_millis(20);

/// 20 ms of 48 kHz audio, f32 samples in -1..1, interleaved when stereo.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioFrame {
    channels: u8,
    samples: Vec<f32>,
    /// Wall-clock capture time of the first sample, UNIX µs (0 when unknown).
    pub capture_time_us: u64,
}

fn check_channels(channels: u8) -> Result<(), Error> {
    if channels == 0 || channels > CHANNELS_MAX {
        return Err(Error::InvalidAudio(format!(
            "{channels} channels (1 or 2 supported)"
        )));
    }
    Ok(())
}

impl AudioFrame {
    /// Wraps `SAMPLES_PER_FRAME * channels` interleaved samples.
    ///
    /// # Errors
    /// [`Error::InvalidAudio`] for a channel count other than 1 or 2 or a wrong length.
    pub fn new(channels: u8, samples: Vec<f32>, capture_time_us: u64) -> Result<Self, Error> {
        check_channels(channels)?;
        if samples.len() != SAMPLES_PER_FRAME * usize::from(channels) {
            return Err(Error::InvalidAudio(format!(
                "{} samples for {channels} channel(s); {} expected",
                samples.len(),
                SAMPLES_PER_FRAME * usize::from(channels)
            )));
        }
        Ok(Self {
            channels,
            samples,
            capture_time_us,
        })
    }

    /// A silent frame.
    ///
    /// # Errors
    /// [`Error::InvalidAudio`] for a channel count other than 1 or 2.
    pub fn silence(channels: u8, capture_time_us: u64) -> Result<Self, Error> {
        check_channels(channels)?;
        Ok(Self {
            channels,
            samples: vec![0.0; SAMPLES_PER_FRAME * usize::from(channels)],
            capture_time_us,
        })
    }

    /// 1 (mono) or 2 (stereo).
    #[must_use]
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// Interleaved samples.
    #[must_use]
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// Interleaved samples, mutably.
    pub fn samples_mut(&mut self) -> &mut [f32] {
        &mut self.samples
    }

    /// Root-mean-square level over all samples (0 for silence, ≈0.707 × amplitude for a sine).
    #[must_use]
    pub fn rms(&self) -> f32 {
        let sum: f32 = self.samples.iter().map(|s| s * s).sum();
        (sum / self.samples.len().max(1) as f32).sqrt()
    }

    /// The same audio with `channels` channels (mono is duplicated, stereo averaged).
    ///
    /// # Errors
    /// [`Error::InvalidAudio`] for a channel count other than 1 or 2.
    pub fn to_channels(&self, channels: u8) -> Result<AudioFrame, Error> {
        check_channels(channels)?;
        let samples = remix(
            &self.samples,
            usize::from(self.channels),
            usize::from(channels),
        );
        Ok(AudioFrame {
            channels,
            samples,
            capture_time_us: self.capture_time_us,
        })
    }
}

/// Converts interleaved audio between channel counts: to mono by averaging, to more channels by
/// copying the first channels (mono is duplicated).
fn remix(input: &[f32], from: usize, to: usize) -> Vec<f32> {
    if from == to || from == 0 {
        return input.to_vec();
    }
    let frames = input.len() / from;
    let mut out = Vec::with_capacity(frames * to);
    for frame in input.chunks_exact(from) {
        if to == 1 {
            out.push(frame.iter().sum::<f32>() / from as f32);
        } else {
            for c in 0..to {
                out.push(frame[c.min(from - 1)]);
            }
        }
    }
    out
}

/// An audio source: once started, delivers [`AudioFrame`]s from its own thread.
pub trait AudioSource: Send + 'static {
    /// A human-readable name for menus and logs.
    fn name(&self) -> String;

    /// Starts producing 20 ms frames into a channel holding at most `capacity` frames; when the
    /// consumer is slow the oldest frame is dropped and counted.
    ///
    /// # Errors
    /// Device errors for [`Microphone`]; synthetic sources only fail to spawn their thread.
    fn start(self, capacity: usize) -> Result<Capture<AudioFrame>, Error>
    where
        Self: Sized;
}

/// Something that plays [`AudioFrame`]s.
pub trait AudioSink: Send {
    /// Queues one frame for playout. Sinks never block for long: a device whose queue is full
    /// drops the frame and counts it.
    ///
    /// # Errors
    /// The device failed (unplugged, server gone).
    fn play(&mut self, frame: &AudioFrame) -> Result<(), Error>;
}

/// A sine wave (synthetic microphone).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tone {
    /// Frequency in Hz.
    pub freq_hz: f32,
    /// Peak amplitude, 0..=1.
    pub amplitude: f32,
    /// 1 or 2.
    pub channels: u8,
}

impl Tone {
    /// A mono tone at half amplitude.
    #[must_use]
    pub fn new(freq_hz: f32) -> Self {
        Self {
            freq_hz,
            amplitude: 0.5,
            channels: 1,
        }
    }

    /// Frame number `index` of the tone (phase-continuous across indices). Pure.
    #[must_use]
    pub fn frame(&self, index: u64, capture_time_us: u64) -> AudioFrame {
        let channels = self.channels.clamp(1, CHANNELS_MAX);
        let first = index * SAMPLES_PER_FRAME as u64;
        let freq = f64::from(self.freq_hz);
        let rate = f64::from(SAMPLE_RATE_HZ);
        let mut samples = Vec::with_capacity(SAMPLES_PER_FRAME * usize::from(channels));
        for n in first..first + SAMPLES_PER_FRAME as u64 {
            // Reduce the phase modulo one cycle in f64 so that long runs stay exact.
            let cycles = (n as f64 * freq / rate).fract();
            let value = (f64::from(self.amplitude) * (cycles * std::f64::consts::TAU).sin()) as f32;
            for _ in 0..channels {
                samples.push(value);
            }
        }
        AudioFrame {
            channels,
            samples,
            capture_time_us,
        }
    }
}

impl AudioSource for Tone {
    fn name(&self) -> String {
        format!("Test tone ({} Hz)", self.freq_hz)
    }

    fn start(self, capacity: usize) -> Result<Capture<AudioFrame>, Error> {
        spawn_paced("duet-tone", capacity, move |i| {
            self.frame(i, unix_time_us())
        })
    }
}

/// Silence (synthetic microphone, or "mute").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Silence {
    /// 1 or 2.
    pub channels: u8,
}

impl AudioSource for Silence {
    fn name(&self) -> String {
        "Silence".to_owned()
    }

    fn start(self, capacity: usize) -> Result<Capture<AudioFrame>, Error> {
        check_channels(self.channels)?;
        let channels = self.channels;
        spawn_paced("duet-silence", capacity, move |_| AudioFrame {
            channels,
            samples: vec![0.0; SAMPLES_PER_FRAME * usize::from(channels)],
            capture_time_us: unix_time_us(),
        })
    }
}

/// Runs `make(i)` every 20 ms on a named thread (absolute schedule, no drift).
fn spawn_paced(
    name: &str,
    capacity: usize,
    make: impl Fn(u64) -> AudioFrame + Send + 'static,
) -> Result<Capture<AudioFrame>, Error> {
    spawn_named(name, capacity, move |tx: FrameSender<AudioFrame>| {
        let start = Instant::now();
        let mut index: u64 = 0;
        loop {
            let deadline = start + FRAME_PERIOD * u32::try_from(index).unwrap_or(u32::MAX);
            let now = Instant::now();
            if deadline > now {
                std::thread::sleep(deadline - now);
            }
            if !tx.push(make(index)) {
                return Ok(());
            }
            index += 1;
        }
    })
}

/// Counters of a [`NullSink`], readable from any thread.
#[derive(Debug, Default)]
pub struct NullSinkStats {
    frames: AtomicU64,
    samples: AtomicU64,
}

impl NullSinkStats {
    /// Frames played.
    #[must_use]
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Samples per channel played.
    #[must_use]
    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }
}

/// A sink that discards audio and counts it (headless peers, tests).
#[derive(Debug, Default, Clone)]
pub struct NullSink {
    stats: Arc<NullSinkStats>,
}

impl NullSink {
    /// A new sink with zeroed counters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters (shared: keep a clone to read them after moving the sink away).
    #[must_use]
    pub fn stats(&self) -> Arc<NullSinkStats> {
        Arc::clone(&self.stats)
    }
}

impl AudioSink for NullSink {
    fn play(&mut self, frame: &AudioFrame) -> Result<(), Error> {
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        let per_channel = frame.samples.len() / usize::from(frame.channels.max(1));
        self.stats
            .samples
            .fetch_add(per_channel as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// What an entry of [`list_audio_inputs`] / [`list_audio_outputs`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AudioDeviceKind {
    /// A real device of the audio system; open it by name with [`Microphone`] or [`Speaker`].
    Device,
    /// The synthetic [`Tone`] source.
    Tone,
    /// The synthetic [`Silence`] source.
    Silence,
    /// The [`NullSink`].
    Null,
}

/// One entry of a device list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioDeviceInfo {
    /// Human-readable name (for real devices, the name to open it by).
    pub name: String,
    /// Real or synthetic.
    pub kind: AudioDeviceKind,
    /// True for the system's default device.
    pub is_default: bool,
}

fn device_name(device: &cpal::Device) -> Option<String> {
    device.description().ok().map(|d| d.name().to_owned())
}

/// The audio host: PulseAudio when a server socket is configured (retrying a failed handshake, as
/// cpal's own default silently falls back to ALSA after one 2 s attempt), otherwise cpal's default.
fn audio_host() -> cpal::Host {
    if cpal::available_hosts().contains(&cpal::HostId::PulseAudio) {
        for attempt in 1..=3 {
            match cpal::host_from_id(cpal::HostId::PulseAudio) {
                Ok(host) => return host,
                Err(error) => {
                    tracing::debug!(attempt, %error, "PulseAudio connection failed");
                }
            }
        }
        tracing::warn!("PulseAudio configured but unreachable; using the default audio host");
    }
    cpal::default_host()
}

fn is_alsa_null(device: &cpal::Device) -> bool {
    device
        .id()
        .is_ok_and(|id| id.host() == cpal::HostId::Alsa && id.id() == "null")
}

/// Real devices of the default cpal host (PulseAudio when a server is reachable, else ALSA) that
/// report at least one usable configuration.
fn real_devices(input: bool) -> Vec<AudioDeviceInfo> {
    let host = audio_host();
    let default = if input {
        host.default_input_device()
    } else {
        host.default_output_device()
    }
    .and_then(|d| device_name(&d));
    let devices = match if input {
        host.input_devices().map(|d| d.collect::<Vec<_>>())
    } else {
        host.output_devices().map(|d| d.collect::<Vec<_>>())
    } {
        Ok(devices) => devices,
        Err(error) => {
            tracing::debug!(%error, input, "no audio devices");
            return Vec::new();
        }
    };
    devices
        .into_iter()
        .filter(|d| {
            if input {
                d.default_input_config().is_ok()
            } else {
                d.default_output_config().is_ok()
            }
        })
        // ALSA's "null" PCM accepts audio but is not paced by a clock: useless for a call.
        .filter(|d| !is_alsa_null(d))
        .filter_map(|d| device_name(&d))
        .map(|name| AudioDeviceInfo {
            is_default: default.as_deref() == Some(name.as_str()),
            name,
            kind: AudioDeviceKind::Device,
        })
        .collect()
}

/// Microphones (may be empty) followed by the synthetic sources (always present).
#[must_use]
pub fn list_audio_inputs() -> Vec<AudioDeviceInfo> {
    let mut list = real_devices(true);
    list.push(AudioDeviceInfo {
        name: Tone::new(440.0).name(),
        kind: AudioDeviceKind::Tone,
        is_default: false,
    });
    list.push(AudioDeviceInfo {
        name: "Silence".to_owned(),
        kind: AudioDeviceKind::Silence,
        is_default: false,
    });
    list
}

/// Speakers (may be empty) followed by the null output (always present).
#[must_use]
pub fn list_audio_outputs() -> Vec<AudioDeviceInfo> {
    let mut list = real_devices(false);
    list.push(AudioDeviceInfo {
        name: "Null output (discard)".to_owned(),
        kind: AudioDeviceKind::Null,
        is_default: false,
    });
    list
}

/// Finds a device by exact name (then by case-insensitive substring), or the default.
fn find_device(name: Option<&str>, input: bool) -> Result<(cpal::Device, String), Error> {
    let host = audio_host();
    let what = if input { "input" } else { "output" };
    let Some(wanted) = name else {
        let device = if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        }
        .ok_or_else(|| Error::AudioDeviceNotFound(format!("no default audio {what} device")))?;
        let name = device_name(&device).unwrap_or_else(|| format!("default {what}"));
        return Ok((device, name));
    };
    let devices: Vec<cpal::Device> = if input {
        host.input_devices().map(Iterator::collect)
    } else {
        host.output_devices().map(Iterator::collect)
    }
    .map_err(|e| Error::AudioDeviceNotFound(format!("{wanted}: {e}")))?;
    let named: Vec<(cpal::Device, String)> = devices
        .into_iter()
        .filter(|d| !is_alsa_null(d))
        .filter_map(|d| device_name(&d).map(|n| (d, n)))
        .collect();
    let lower = wanted.to_lowercase();
    let position = named.iter().position(|(_, n)| n == wanted).or_else(|| {
        named
            .iter()
            .position(|(_, n)| n.to_lowercase().contains(&lower))
    });
    match position {
        Some(i) => Ok(named
            .into_iter()
            .nth(i)
            .ok_or_else(|| Error::AudioDeviceNotFound(wanted.to_owned()))?),
        None => Err(Error::AudioDeviceNotFound(format!(
            "no audio {what} device named {wanted:?}"
        ))),
    }
}

/// How often running microphones and speakers check that their device still exists.
const PRESENCE_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// True unless the host positively lists its devices without one named `name` (a failed
/// listing is not taken as a removal).
fn device_present(name: &str, input: bool) -> bool {
    let host = audio_host();
    let devices = if input {
        host.input_devices().map(Iterator::collect::<Vec<_>>)
    } else {
        host.output_devices().map(Iterator::collect::<Vec<_>>)
    };
    match devices {
        Ok(devices) => devices
            .iter()
            .any(|d| device_name(d).as_deref() == Some(name)),
        Err(_) => true,
    }
}

fn device_error(device: &str, reason: impl std::fmt::Display) -> Error {
    Error::AudioDevice {
        device: device.to_owned(),
        reason: reason.to_string(),
    }
}

/// Streaming sample-rate converter (rubato sinc) for interleaved f32 audio; a pass-through when
/// the rates are equal.
struct StreamResampler {
    inner: Option<Async<f32>>,
    channels: usize,
    pending: Vec<f32>,
    scratch: Vec<f32>,
}

impl StreamResampler {
    fn new(from_hz: u32, to_hz: u32, channels: usize) -> Result<Self, Error> {
        let inner = if from_hz == to_hz {
            None
        } else {
            let params = SincInterpolationParameters {
                sinc_len: 128,
                f_cutoff: None,
                oversampling_factor: 128,
                interpolation: SincInterpolationType::Linear,
                window: WindowFunction::BlackmanHarris2,
            };
            let chunk = (from_hz / 100).max(1) as usize; // 10 ms of input per step
            Some(
                Async::<f32>::new_sinc(
                    f64::from(to_hz) / f64::from(from_hz),
                    1.1,
                    &params,
                    chunk,
                    channels,
                    FixedAsync::Input,
                )
                .map_err(|e| Error::Resample(e.to_string()))?,
            )
        };
        Ok(Self {
            inner,
            channels,
            pending: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// Feeds interleaved `input`, appends whatever output is ready to `out`.
    fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), Error> {
        let Some(inner) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return Ok(());
        };
        let ch = self.channels;
        self.pending.extend_from_slice(input);
        loop {
            let need = inner.input_frames_next();
            if self.pending.len() < need * ch {
                return Ok(());
            }
            let max_out = inner.output_frames_next();
            self.scratch.resize(max_out * ch, 0.0);
            let input = InterleavedSlice::new(&self.pending[..need * ch], ch, need)
                .map_err(|e| Error::Resample(e.to_string()))?;
            let mut output = InterleavedSlice::new_mut(&mut self.scratch[..], ch, max_out)
                .map_err(|e| Error::Resample(e.to_string()))?;
            let (used, produced) = inner
                .process_into_buffer(&input, &mut output, None)
                .map_err(|e| Error::Resample(e.to_string()))?;
            out.extend_from_slice(&self.scratch[..produced * ch]);
            self.pending.drain(..used * ch);
        }
    }
}

/// Appends the samples of a cpal buffer of type `T` as f32; false if the type does not match.
fn read_samples<T>(data: &cpal::Data, out: &mut Vec<f32>) -> bool
where
    T: SizedSample,
    f32: FromSample<T>,
{
    match data.as_slice::<T>() {
        Some(slice) => {
            out.extend(slice.iter().map(|s| s.to_sample::<f32>()));
            true
        }
        None => false,
    }
}

fn read_any(data: &cpal::Data, out: &mut Vec<f32>) -> bool {
    match data.sample_format() {
        SampleFormat::F32 => read_samples::<f32>(data, out),
        SampleFormat::F64 => read_samples::<f64>(data, out),
        SampleFormat::I16 => read_samples::<i16>(data, out),
        SampleFormat::I32 => read_samples::<i32>(data, out),
        SampleFormat::I8 => read_samples::<i8>(data, out),
        SampleFormat::U8 => read_samples::<u8>(data, out),
        SampleFormat::U16 => read_samples::<u16>(data, out),
        SampleFormat::U32 => read_samples::<u32>(data, out),
        _ => false,
    }
}

/// Writes f32 `samples` into a cpal buffer of type `T`; the rest stays silent.
fn write_samples<T>(data: &mut cpal::Data, samples: &[f32]) -> bool
where
    T: SizedSample + FromSample<f32>,
{
    match data.as_slice_mut::<T>() {
        Some(slice) => {
            for (dst, src) in slice.iter_mut().zip(samples) {
                *dst = T::from_sample(*src);
            }
            true
        }
        None => false,
    }
}

fn write_any(data: &mut cpal::Data, samples: &[f32]) -> bool {
    match data.sample_format() {
        SampleFormat::F32 => write_samples::<f32>(data, samples),
        SampleFormat::F64 => write_samples::<f64>(data, samples),
        SampleFormat::I16 => write_samples::<i16>(data, samples),
        SampleFormat::I32 => write_samples::<i32>(data, samples),
        SampleFormat::I8 => write_samples::<i8>(data, samples),
        SampleFormat::U8 => write_samples::<u8>(data, samples),
        SampleFormat::U16 => write_samples::<u16>(data, samples),
        SampleFormat::U32 => write_samples::<u32>(data, samples),
        _ => false,
    }
}

/// The device periods asked of cpal for capture and for playout.
///
/// On PulseAudio a fixed size of N frames becomes, in cpal 0.18: for recording
/// `fragsize = maxlength = N` (the server hands over N frames at a time and keeps at most N
/// queued), for playback `tlength = maxlength = 2N`, `minreq = N` (a double buffer), both with
/// `ADJUST_LATENCY`. At 10 ms (what duet used before) a hiccup of ~10 ms in the client's threads
/// overflowed the record queue or underran playout. Capture asks for 20 ms (one
/// [`AudioFrame`]); beyond the server's queue, recorded audio waits in the socket and then in
/// our own 640 ms callback channel. Playout asks for 40 ms (80 ms buffered in the server): a
/// playout underrun is worse than a late frame, because the server then rewinds, which on a
/// null sink makes its monitor repeat audio (measured under load: the echo test's canceller
/// never converged with 20 ms). `BufferSize::Default` is no answer: PulseAudio then picks
/// ~2 s fragments for recording.
const CAPTURE_PERIOD_MS: u32 = 20;
/// See [`CAPTURE_PERIOD_MS`].
const PLAYOUT_PERIOD_MS: u32 = 40;

/// Picks a stream configuration: the device default, with a [`CAPTURE_PERIOD_MS`] or
/// [`PLAYOUT_PERIOD_MS`] buffer request.
fn stream_config(
    device: &cpal::Device,
    name: &str,
    input: bool,
) -> Result<(cpal::StreamConfig, SampleFormat), Error> {
    let supported = if input {
        device.default_input_config()
    } else {
        device.default_output_config()
    }
    .map_err(|e| device_error(name, e))?;
    let mut config = supported.config();
    let period_ms = if input {
        CAPTURE_PERIOD_MS
    } else {
        PLAYOUT_PERIOD_MS
    };
    config.buffer_size = cpal::BufferSize::Fixed((config.sample_rate * period_ms / 1000).max(64));
    Ok((config, supported.sample_format()))
}

/// Something a caller should know about an audio device while it runs: the device failed,
/// stopped delivering, or hears nothing but digital silence. Sent on the channel given to
/// [`Microphone::start_with_events`] / [`Speaker::open_with_events`] (never blocking: a full
/// channel drops the event). The stream is not replaced behind the caller's back; picking
/// another device is the caller's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceEvent {
    /// The microphone stream failed (unplugged, sound server gone); its capture has ended and
    /// [`Capture::stop`] returns the error.
    MicrophoneFailed {
        /// The device's name.
        device: String,
        /// What the audio backend said.
        reason: String,
    },
    /// The microphone delivered no audio at all for `silent_ms` (stalled or suspended stream).
    /// Capture goes on and [`DeviceEvent::MicrophoneRecovered`] follows if audio comes back.
    MicrophoneStalled {
        /// The device's name.
        device: String,
        /// How long nothing arrived, ms.
        silent_ms: u64,
    },
    /// The microphone delivered only digital silence (every sample exactly 0) for
    /// `silent_ms`: a muted, removed or rerouted source. A real microphone is never exactly 0.
    MicrophoneSilent {
        /// The device's name.
        device: String,
        /// How long it was silent, ms.
        silent_ms: u64,
    },
    /// Audio flows again after [`DeviceEvent::MicrophoneStalled`] or
    /// [`DeviceEvent::MicrophoneSilent`].
    MicrophoneRecovered {
        /// The device's name.
        device: String,
    },
    /// The speaker stream failed; [`AudioSink::play`] returns the error from now on.
    SpeakerFailed {
        /// The device's name.
        device: String,
        /// What the audio backend said.
        reason: String,
    },
    /// The speaker's device stopped asking for audio for `silent_ms` while frames were being
    /// played.
    SpeakerStalled {
        /// The device's name.
        device: String,
        /// How long the device callback did not run, ms.
        silent_ms: u64,
    },
}

/// No microphone data for this long is a [`DeviceEvent::MicrophoneStalled`]; no speaker
/// callback for this long is a [`DeviceEvent::SpeakerStalled`].
pub const DEVICE_STALL_MS: u64 = 1_000;
/// A speaker is not reported as stalled during its first this many ms.
pub const SPEAKER_WARMUP_MS: u64 = 3_000;
/// Digital silence for this long is a [`DeviceEvent::MicrophoneSilent`].
pub const MICROPHONE_SILENT_MS: u64 = 3_000;

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
    let (device, name) = find_device(mic.device.as_deref(), true)?;
    let (config, format) = stream_config(&device, &name, true)?;
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
    // Some backends refuse a fixed buffer size; fall back to the device default.
    let stream = match build(config) {
        Ok(stream) => stream,
        Err(_) => build(cpal::StreamConfig {
            buffer_size: cpal::BufferSize::Default,
            ..config
        })
        .map_err(|e| device_error(&name, e))?,
    };
    stream.play().map_err(|e| device_error(&name, e))?;
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
    while !tx.should_stop() {
        if presence_checked.elapsed() >= PRESENCE_CHECK_PERIOD {
            presence_checked = Instant::now();
            if !device_present(&mic.name, true) {
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
/// device's rate and channels and queued (at most ~200 ms) for the device callback.
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
}

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
        let thread = std::thread::Builder::new()
            .name("duet-speaker".into())
            .spawn(move || {
                let opened = open_speaker(
                    wanted.as_deref(),
                    queue_rx,
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
                        while let Err(RecvTimeoutError::Timeout) =
                            stop_rx.recv_timeout(PRESENCE_CHECK_PERIOD)
                        {
                            if !device_present(&name, false) {
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
        })
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

fn open_speaker(
    wanted: Option<&str>,
    queue: Receiver<Vec<f32>>,
    failures: Sender<String>,
    stats: Arc<SpeakerStats>,
    clock: CallbackClock,
    events: Option<Sender<DeviceEvent>>,
) -> Result<OpenedSpeaker, Error> {
    let (device, name) = find_device(wanted, false)?;
    let event_name = name.clone();
    let (config, format) = stream_config(&device, &name, false)?;
    let build = |config: cpal::StreamConfig| {
        let queue = queue.clone();
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
    let stream = match build(config) {
        Ok(stream) => stream,
        Err(_) => build(cpal::StreamConfig {
            buffer_size: cpal::BufferSize::Default,
            ..config
        })
        .map_err(|e| device_error(&name, e))?,
    };
    stream.play().map_err(|e| device_error(&name, e))?;
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
        match self.queue.try_send(out) {
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
}

impl Drop for Speaker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remix_mono_to_stereo_and_back() {
        let mono = [0.1, 0.2];
        let stereo = remix(&mono, 1, 2);
        assert_eq!(stereo, vec![0.1, 0.1, 0.2, 0.2]);
        assert_eq!(remix(&stereo, 2, 1), vec![0.1, 0.2]);
    }

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

    #[test]
    fn resampler_keeps_the_rate_ratio() -> Result<(), Error> {
        let mut r = StreamResampler::new(44_100, 48_000, 1)?;
        let mut out = Vec::new();
        let input = vec![0.0f32; 44_100];
        for chunk in input.chunks(441) {
            r.process(chunk, &mut out)?;
        }
        // One second in, about one second out (minus the filter delay).
        assert!((47_000..=48_100).contains(&out.len()), "{}", out.len());
        Ok(())
    }
}
