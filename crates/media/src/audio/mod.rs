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
//!
//! - [`frame`]: [`AudioFrame`] and channel remixing;
//! - [`synthetic`]: [`Tone`], [`Warble`], [`Silence`], [`NullSink`];
//! - [`devices`]: listing and finding devices, stream configuration, [`DeviceEvent`];
//! - [`resample`]: rate conversion at the device edge;
//! - [`microphone`] and [`speaker`]: the cpal streams;
//! - [`pace`]: when a playout loop plays its next slot into a sink.

mod devices;
mod frame;
mod microphone;
mod pace;
mod resample;
mod speaker;
mod synthetic;

pub use devices::{
    AudioDeviceInfo, AudioDeviceKind, DEVICE_STALL_MS, DeviceEvent, MICROPHONE_SILENT_MS,
    SPEAKER_WARMUP_MS, list_audio_inputs, list_audio_outputs,
};
pub use frame::{AudioFrame, CHANNELS_MAX, FRAME_DURATION_US, SAMPLE_RATE_HZ, SAMPLES_PER_FRAME};
pub use microphone::Microphone;
pub use pace::{PACE_SLICE, Pace, Step};
pub use speaker::{Speaker, SpeakerStats};
pub use synthetic::{Bursts, NullSink, NullSinkStats, Silence, Tone, Warble};

use crate::Error;
use crate::capture::Capture;

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

/// When a sink wants its next frame ([`AudioSink::demand`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Demand {
    /// It holds less than its lead: give it a frame now.
    Now,
    /// It holds enough: wait for its device to take some ([`AudioSink::wait_for_device`]).
    Later,
    /// There is no device clock to follow (a null sink, or a device that stopped asking):
    /// pace by the wall clock, one frame every 20 ms.
    Clock,
}

/// Something that plays [`AudioFrame`]s.
///
/// The playout loop asks [`demand`](Self::demand) before each 20 ms slot, so a real device
/// pulls the audio at its own rate: a device clock a little faster or slower than the sender's
/// shows up in the jitter buffer (which stretches or skips a frame) instead of as a queue that
/// grows without end or runs dry.
pub trait AudioSink: Send {
    /// Queues one frame for playout. Sinks never block for long: a device whose queue is full
    /// drops the frame and counts it.
    ///
    /// # Errors
    /// The device failed (unplugged, server gone).
    fn play(&mut self, frame: &AudioFrame) -> Result<(), Error>;

    /// Whether the sink wants a frame now. The default has no device: [`Demand::Clock`].
    fn demand(&self) -> Demand {
        Demand::Clock
    }

    /// Waits at most `timeout` for the device to take audio; returns as soon as it does.
    fn wait_for_device(&self, timeout: std::time::Duration) {
        std::thread::sleep(timeout);
    }

    /// Audio handed to the sink that its device has not taken yet.
    fn queued(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}
