//! The call crate's integration tests: one binary, one module per behaviour.
#![allow(clippy::unwrap_used)]

mod bad_remote;
mod camera_off;
mod common;
mod dtls_lost_flight;
mod engine_ends;
mod glare;
mod keyframe_request;
mod mouth_to_ear;
mod peer_left;
mod preview;
mod two_engines;
mod verification;
mod video_codecs;
