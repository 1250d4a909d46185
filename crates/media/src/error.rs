//! The crate's error type: one enum, each variant a message a user can act on.

/// Everything that can go wrong in the media layer. Device, file and peer problems are reported
/// here, never as panics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A frame had impossible dimensions or plane sizes.
    #[error("invalid video frame: {0}")]
    InvalidFrame(String),
    /// Audio samples did not form a 20 ms frame of 1 or 2 channels.
    #[error("invalid audio frame: {0}")]
    InvalidAudio(String),
    /// A video encoder rejected its configuration or a frame (the message names the codec
    /// where it matters).
    #[error("video encoder: {0}")]
    Encoder(String),
    /// A video bitstream could not be decoded (corrupt or missing references).
    #[error("video decoder: {0}")]
    Decoder(String),
    /// The Opus codec reported an error (corrupt packet, bad setting).
    #[error("Opus: {0}")]
    Opus(String),
    /// A colour conversion between pixel formats failed.
    #[error("pixel conversion: {0}")]
    Conversion(String),
    /// There is no camera at the requested index.
    #[error("no camera at index {index} ({available} camera(s) found)")]
    CameraNotFound {
        /// The index asked for.
        index: u32,
        /// How many cameras the system reported.
        available: usize,
    },
    /// The camera exists but could not be opened or stopped delivering frames
    /// (busy, unplugged, unsupported format).
    #[error("camera {index}: {reason}")]
    Camera {
        /// The camera's index.
        index: u32,
        /// What the platform said.
        reason: String,
    },
    /// The screen cannot be shared: no display, no such monitor, or the capture was refused.
    #[error("screen sharing: {0}")]
    Screen(String),
    /// No audio device with that name, or no audio device at all.
    #[error("audio device not found: {0}")]
    AudioDeviceNotFound(String),
    /// The audio device exists but failed to open, configure or keep running.
    #[error("audio device {device}: {reason}")]
    AudioDevice {
        /// The device's name.
        device: String,
        /// What the audio backend said.
        reason: String,
    },
    /// The audio processing stage (echo cancellation, noise suppression, gain control)
    /// rejected its input or configuration.
    #[error("audio processing: {0}")]
    Processing(String),
    /// Sample-rate conversion failed.
    #[error("resampler: {0}")]
    Resample(String),
    /// A media thread could not be started.
    #[error("could not start thread {name}: {source}")]
    Thread {
        /// The thread's name.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A worker thread panicked (a bug in this crate or a dependency).
    #[error("thread {0} panicked")]
    ThreadPanicked(String),
}
