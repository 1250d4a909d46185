//! `signal`: duet's WebSocket room relay for 1-to-1 calls.
//!
//! Wire-compatible with the seed's Node server (join → `ready` when two peers are in a room →
//! offer/answer/candidate forwarded to the other peer), hardened with explicit limits, and
//! extended with `leave`, `peer-left`, `error` and the `offerer` flag. See `docs/protocol.md`.
//!
//! - [`protocol`]: message types and the parser (pure).
//! - [`registry`]: who is in which room and who gets what (pure, no IO, time passed in).
//! - [`server`]: the tokio shell; [`serve`] runs it on a listener the caller bound.
//! - [`client`]: the client the desktop app and the headless peer use (`ws://` and `wss://`).
//! - [`tls`]: HTTPS/WSS on the same port, certificate reloadable while running.
//! - [`access`]: browser origin policy and the client address behind a proxy.
//! - [`ice`]: the `iceServers` on `ready` and ephemeral TURN credentials (coturn's REST scheme).
//! - [`turn`]: the STUN/TURN server the `signal` binary runs beside the relay (UDP, and
//!   TURN over TCP through [`turn_tcp`] for networks that drop UDP).
//! - [`token`]: room tokens (`hex(HMAC-SHA256(secret, room))`) for servers with a room secret.
//! - [`metrics`]: the counters behind `GET /metrics`.
//! - [`refusals`]: refusals logged once per interval with a count, never per client.
//! - [`web`]: the browser client's files (`assets/web/`), embedded; [`web::pages`] serves them.
//!
//! Plain HTTP pages are whatever the embedder passes in [`Config::pages`] (the `signal` binary
//! passes [`web::pages`]).

pub mod access;
pub mod client;
pub mod hosted;
pub mod http;
pub mod ice;
pub mod metrics;
pub mod protocol;
pub mod refusals;
pub mod registry;
pub mod server;
pub mod tls;
pub mod token;
pub mod turn;
pub mod turn_tcp;
pub mod web;

pub use access::OriginPolicy;
pub use hosted::HostedSignal;
pub use ice::{IceConfig, IceOffer, TurnSecret};
pub use protocol::{ClientMessage, ErrorCode, ServerMessage};
pub use registry::{Limits, ROOM_CAPACITY};
pub use server::{Config, Server, Stats, StatsHandle, serve};
pub use tls::{Tls, TlsError};
pub use token::{RoomSecret, room_token};
pub use turn::{PeerPolicy, TurnConfig, TurnError, TurnServer};
