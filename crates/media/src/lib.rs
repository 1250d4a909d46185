//! duet's media layer: everything between a device (camera, microphone, speaker) and an encoded
//! packet, and nothing about networking.
//!
//! - Video: [`VideoFrame`] (I420 plus a wall-clock capture time), the [`VideoSource`] trait with
//!   [`TestPattern`] (synthetic, carries a machine-readable frame counter and timestamp, see
//!   [`read_pattern_stamp`]) and [`Camera`] (nokhwa), and the codecs behind one interface,
//!   [`VideoEncoder`] / [`VideoDecoder`] for a [`VideoCodec`]: H.264 ([`H264Encoder`] /
//!   [`H264Decoder`], openh264, constrained baseline) and VP8 ([`Vp8Encoder`] /
//!   [`Vp8Decoder`], the system libvpx).
//! - Audio: [`AudioFrame`] (48 kHz, 20 ms, f32 interleaved), the [`AudioSource`] trait with
//!   [`Tone`], [`Silence`] and [`Microphone`] (cpal, resampled with rubato), the [`AudioSink`]
//!   trait with [`Speaker`] (cpal) and [`NullSink`], the Opus codec pair [`OpusEncoder`] /
//!   [`OpusDecoder`] and the playout [`JitterBuffer`]. Device trouble (failure, removal,
//!   stall, digital silence) is reported as [`DeviceEvent`]s, never papered over.
//! - Audio processing: [`AudioProcessor`] (echo cancellation, noise suppression, gain control,
//!   high-pass filter; 48 kHz mono, 10 ms chunks), fed the far end through
//!   [`AudioProcessor::process_render`] or a [`RenderTap`]; [`echo_sim`] has the synthetic
//!   speech and echo path its tests use.
//! - Flow: sources deliver on named OS threads through bounded channels that drop the oldest
//!   frame (and count it) when the consumer is slow ([`Capture`]); [`DecodeWorker`] runs the
//!   video decoder on its own thread the same way.
//!
//! The crate owns no sockets, no RTP and no UI. The call engine packetizes what
//! [`VideoEncoder`] and [`OpusEncoder`] produce; the app displays [`VideoFrame::to_rgba`].

mod analysis;
mod audio;
mod camera;
mod camera_platform;
mod capture;
pub mod echo_sim;
mod error;
mod frame;
mod h264;
mod jitter;
mod opus_codec;
mod pattern;
mod pipeline;
mod processing;
mod scale;
mod screen;
mod video_codec;
mod vp8;

pub use analysis::{dominant_frequency_hz, goertzel_power};
pub use audio::{
    AudioDeviceInfo, AudioDeviceKind, AudioFrame, AudioSink, AudioSource, Bursts, CHANNELS_MAX,
    DEVICE_STALL_MS, Demand, DeviceEvent, FRAME_DURATION_US, MICROPHONE_SILENT_MS, Microphone,
    NullSink, NullSinkStats, PACE_SLICE, Pace, SAMPLE_RATE_HZ, SAMPLES_PER_FRAME,
    SPEAKER_WARMUP_MS, Silence, Speaker, SpeakerStats, Step, Tone, Warble, list_audio_inputs,
    list_audio_outputs,
};
pub use camera::{Camera, CameraInfo, CameraMode, CameraPixelFormat, list_cameras};
pub use capture::{AudioCapture, Capture, CaptureStats, STOP_TIMEOUT, VideoCapture, VideoSource};
pub use error::Error;
pub use frame::{VideoFrame, unix_time_us};
pub use h264::{CONCEAL_LIMIT_FRAMES, H264Decoder, H264Encoder, nal_unit_types};
pub use jitter::{JitterBuffer, JitterConfig, JitterStats, Playout, PushOutcome};
pub use opus_codec::{OpusDecoder, OpusEncoder};
pub use pattern::{PatternRect, Stamp, TestPattern, read_pattern_stamp, read_pattern_stamp_rgba};
pub use pipeline::{DecodeWorker, WorkerStats};
pub use processing::{
    AudioProcessor, PROCESSING_CHUNK_SAMPLES, ProcessingConfig, ProcessingStats, RenderTap,
};
pub use scale::{Scaler, fit_within};
pub use screen::{
    MAX_SCREEN_HEIGHT, MAX_SCREEN_WIDTH, SCREEN_FPS_RANGE, SCREEN_READY_WAIT, Screen, ScreenInfo,
    list_screens, screen_frame,
};
pub use video_codec::{EncodedFrame, EncoderConfig, VideoCodec, VideoDecoder, VideoEncoder};
pub use vp8::{Vp8Decoder, Vp8Encoder, vp8_is_keyframe};
