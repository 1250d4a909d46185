//! The media crate's integration tests: one binary, one module per behaviour.
#![allow(clippy::unwrap_used)]

mod audio_sources;
mod capture_drops_when_slow;
mod codec_workers;
mod common;
mod device_unplug_event;
mod devices_absent;
mod echo_synthetic;
mod echo_through_pulse;
mod encoder_rate_per_rung;
mod h264_corrupt_input;
mod h264_keyframe_request;
mod h264_loss_recovery;
mod h264_round_trip;
mod jitter_buffer;
mod opus_packet_loss;
mod opus_round_trip;
mod pattern_stamp_scaled;
mod processing_bad_input;
mod processing_passthrough;
mod pulse_loopback;
mod speaker_pacing;
mod video_frame;
mod vp8_codec;
