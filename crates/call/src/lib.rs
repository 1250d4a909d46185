//! `call`: duet's call engine.
//!
//! A call joins a room on a `signal` server, negotiates a webrtc-rs peer connection with the
//! other member (glare-safe: see [`negotiation`]), and runs H.264 video and Opus audio both
//! ways using the `media` crate. The desktop app and the headless `duet call` peer are two
//! faces on the same [`Engine`].
//!
//! - [`config`]: what a call is made of (devices, ICE servers, loopback restriction).
//! - [`negotiation`]: the pure offer/answer role logic.
//! - [`peer`]: building the peer connection (codecs, interceptors, ICE settings).
//! - [`media_io`]: the media threads and tasks of a connected call.
//! - [`session`]: the async state machine of one call.
//! - [`engine`]: the non-blocking handle a UI or the headless peer holds.
//! - [`headless`]: `duet call`: a call without a window, with progress lines and a JSON report.

pub mod assembler;
pub mod config;
pub mod core;
pub mod engine;
pub mod error;
pub mod events;
pub mod media_io;
pub mod negotiation;
pub mod peer;
pub mod session;
pub mod stats;
pub mod verify;
pub mod video_track;

pub use config::{AudioChoice, CallConfig, IceServer, SpeakerChoice, VideoChoice};
pub use engine::Engine;
pub use error::CallError;
pub use events::{CallState, CallStats, Command, Event, FrameSlot};
