//! `call`: duet's call engine.
//!
//! A call joins a room on a `signal` server, negotiates a webrtc-rs peer connection with the
//! other member (glare-safe: see [`negotiation`]), and runs H.264 or VP8 video and Opus audio
//! both ways using the `media` crate. The desktop app and the headless `duet call` peer (in the
//! app crate) are two faces on the same [`Engine`].
//!
//! - [`core`]: `CallCore`, every signalling and negotiation rule as a pure state machine.
//! - [`config`]: what a call is made of (devices, ICE servers, loopback restriction).
//! - [`negotiation`]: the pure offer/answer role logic and the codec choice.
//! - [`peer`]: building the peer connection (codecs, interceptors, ICE settings).
//! - [`congestion`]: the send-side congestion controller every call runs (GCC with
//!   libwebrtc's overuse detector and rate control).
//! - [`media_io`]: the media threads and tasks of a connected call.
//! - [`session`]: the shell that carries out the core's outputs on webrtc-rs.
//! - [`engine`]: the non-blocking handle a UI or the headless peer holds.

pub mod assembler;
pub mod config;
pub mod congestion;
pub mod core;
pub mod engine;
pub mod error;
pub mod events;
pub mod media_io;
pub mod negotiation;
pub mod peer;
pub mod probe;
pub mod resend;
pub mod session;
pub mod stats;
pub mod verify;
pub mod video_track;

pub use config::{AudioChoice, CallConfig, IceServer, SpeakerChoice, VideoChoice};
pub use engine::Engine;
pub use error::CallError;
pub use events::{CallState, CallStats, Command, Event, FrameSlot};
