//! `signal`: duet's WebSocket room relay for 1-to-1 calls.
//!
//! Wire-compatible with the seed's Node server (join → `ready` when two peers are in a room →
//! offer/answer/candidate forwarded to the other peer), hardened with explicit limits, and
//! extended with `leave`, `peer-left`, `error` and the `offerer` flag. See `docs/protocol.md`.
//!
//! - [`protocol`]: message types and the parser (pure).
//! - [`registry`]: who is in which room and who gets what (pure, no IO, time passed in).
//! - [`server`]: the tokio shell; [`serve`] runs it on a listener the caller bound.
//! - [`client`]: the client the desktop app and the headless peer use.
//!
//! It owns neither TLS termination policy nor the web client's files: embedders pass pages in
//! through [`Config::pages`].

pub mod client;
pub mod http;
pub mod protocol;
pub mod registry;
pub mod server;

pub use protocol::{ClientMessage, ErrorCode, ServerMessage};
pub use registry::{Limits, ROOM_CAPACITY};
pub use server::{Config, Server, Stats, StatsHandle, serve};
