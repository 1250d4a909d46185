//! The audio system's devices: listing, finding by name, checking that one is still there,
//! choosing a stream configuration, converting cpal sample buffers, and the [`DeviceEvent`]s
//! that running microphones and speakers report.

use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};

use super::AudioSource;
use super::synthetic::Tone;
use crate::Error;

/// Which way audio flows through a device: in from a microphone, or out to a speaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    /// A microphone (capture).
    Input,
    /// A speaker (playout).
    Output,
}

impl Direction {
    /// "input" or "output", for messages.
    fn label(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
        }
    }

    /// The host's default device this way.
    fn default_device(self, host: &cpal::Host) -> Option<cpal::Device> {
        match self {
            Self::Input => host.default_input_device(),
            Self::Output => host.default_output_device(),
        }
    }

    /// Every device of the host this way.
    fn devices(self, host: &cpal::Host) -> Result<Vec<cpal::Device>, cpal::Error> {
        match self {
            Self::Input => host.input_devices().map(Iterator::collect),
            Self::Output => host.output_devices().map(Iterator::collect),
        }
    }

    /// The device's default configuration this way.
    fn default_config(
        self,
        device: &cpal::Device,
    ) -> Result<cpal::SupportedStreamConfig, cpal::Error> {
        match self {
            Self::Input => device.default_input_config(),
            Self::Output => device.default_output_config(),
        }
    }

    /// The device period asked of cpal ([`CAPTURE_PERIOD_MS`] / [`PLAYOUT_PERIOD_MS`]).
    fn period_ms(self) -> u32 {
        match self {
            Self::Input => CAPTURE_PERIOD_MS,
            Self::Output => PLAYOUT_PERIOD_MS,
        }
    }
}

/// What an entry of [`list_audio_inputs`] / [`list_audio_outputs`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AudioDeviceKind {
    /// A real device of the audio system; open it by name with [`Microphone`](super::Microphone) or [`Speaker`](super::Speaker).
    Device,
    /// The synthetic [`Tone`] source.
    Tone,
    /// The synthetic [`Silence`](super::Silence) source.
    Silence,
    /// The [`NullSink`](super::NullSink).
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
fn real_devices(direction: Direction) -> Vec<AudioDeviceInfo> {
    let host = audio_host();
    let default = direction
        .default_device(&host)
        .and_then(|d| device_name(&d));
    let devices = match direction.devices(&host) {
        Ok(devices) => devices,
        Err(error) => {
            tracing::debug!(%error, ?direction, "no audio devices");
            return Vec::new();
        }
    };
    devices
        .into_iter()
        .filter(|d| direction.default_config(d).is_ok())
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
    let mut list = real_devices(Direction::Input);
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
    let mut list = real_devices(Direction::Output);
    list.push(AudioDeviceInfo {
        name: "Null output (discard)".to_owned(),
        kind: AudioDeviceKind::Null,
        is_default: false,
    });
    list
}

/// Finds a device by exact name (then by case-insensitive substring), or the default.
pub(super) fn find_device(
    name: Option<&str>,
    direction: Direction,
) -> Result<(cpal::Device, String), Error> {
    let host = audio_host();
    let what = direction.label();
    let Some(wanted) = name else {
        let device = direction
            .default_device(&host)
            .ok_or_else(|| Error::AudioDeviceNotFound(format!("no default audio {what} device")))?;
        let name = device_name(&device).unwrap_or_else(|| format!("default {what}"));
        return Ok((device, name));
    };
    let devices = direction
        .devices(&host)
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
pub(super) const PRESENCE_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// Listings in a row that must lack a device before it counts as removed. One listing can miss
/// a device the sound server is busy with: seen in CI, a null sink's monitor absent from one
/// listing while it was being recorded, which ended a healthy capture with "device removed".
pub(super) const PRESENCE_MISSES: u32 = 2;

/// Counts listings without the device ([`PRESENCE_MISSES`] in a row mean it is gone).
#[derive(Debug, Default)]
pub(super) struct Presence {
    misses: u32,
}

impl Presence {
    /// Records one check; true once the device was missing from enough listings in a row.
    pub(super) fn gone(&mut self, listed: bool) -> bool {
        if listed {
            self.misses = 0;
            return false;
        }
        self.misses += 1;
        self.misses >= PRESENCE_MISSES
    }
}

/// True unless the host positively lists its devices without one named `name` (a failed
/// listing is not taken as a removal).
pub(super) fn device_present(name: &str, direction: Direction) -> bool {
    match direction.devices(&audio_host()) {
        Ok(devices) => devices
            .iter()
            .any(|d| device_name(d).as_deref() == Some(name)),
        Err(_) => true,
    }
}

/// An [`Error::AudioDevice`] for `device`.
pub(super) fn device_error(device: &str, reason: impl std::fmt::Display) -> Error {
    Error::AudioDevice {
        device: device.to_owned(),
        reason: reason.to_string(),
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

/// Appends a cpal buffer of any sample format as f32; false for an unknown format.
pub(super) fn read_any(data: &cpal::Data, out: &mut Vec<f32>) -> bool {
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

/// Writes f32 samples into a cpal buffer of any sample format; false for an unknown format.
pub(super) fn write_any(data: &mut cpal::Data, samples: &[f32]) -> bool {
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
/// [`AudioFrame`](super::AudioFrame)); beyond the server's queue, recorded audio waits in the socket and then in
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
pub(super) fn stream_config(
    device: &cpal::Device,
    name: &str,
    direction: Direction,
) -> Result<(cpal::StreamConfig, SampleFormat), Error> {
    let supported = direction
        .default_config(device)
        .map_err(|e| device_error(name, e))?;
    let mut config = supported.config();
    config.buffer_size =
        cpal::BufferSize::Fixed((config.sample_rate * direction.period_ms() / 1000).max(64));
    Ok((config, supported.sample_format()))
}

/// Builds a stream with `config` (its fixed period) or, where the backend refuses a fixed
/// buffer size, with the device default, and starts it. `build` is cpal's
/// `build_{input,output}_stream_raw` with the callbacks bound.
pub(super) fn start_stream<E: std::fmt::Display>(
    name: &str,
    config: cpal::StreamConfig,
    mut build: impl FnMut(cpal::StreamConfig) -> Result<cpal::Stream, E>,
) -> Result<cpal::Stream, Error> {
    let stream = match build(config) {
        Ok(stream) => stream,
        Err(_) => build(cpal::StreamConfig {
            buffer_size: cpal::BufferSize::Default,
            ..config
        })
        .map_err(|e| device_error(name, e))?,
    };
    stream.play().map_err(|e| device_error(name, e))?;
    Ok(stream)
}

/// Something a caller should know about an audio device while it runs: the device failed,
/// stopped delivering, or hears nothing but digital silence. Sent on the channel given to
/// [`Microphone::start_with_events`](super::Microphone::start_with_events) / [`Speaker::open_with_events`](super::Speaker::open_with_events) (never blocking: a full
/// channel drops the event). The stream is not replaced behind the caller's back; picking
/// another device is the caller's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceEvent {
    /// The microphone stream failed (unplugged, sound server gone); its capture has ended and
    /// [`Capture::stop`](crate::Capture::stop) returns the error.
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
    /// The speaker stream failed; [`AudioSink::play`](super::AudioSink::play) returns the error from now on.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_listing_without_the_device_is_not_a_removal() {
        let mut presence = Presence::default();
        assert!(!presence.gone(false), "one miss");
        assert!(!presence.gone(true));
        assert!(!presence.gone(false), "the count starts again");
        assert!(presence.gone(false), "two in a row: removed");
    }
}
