//! A network lab for duet's integration tests: a small internet built from Linux network
//! namespaces, veth pairs, a bridge, nftables and tc.
//!
//! ```text
//!            public net 203.0.113.0/24 (namespace dl-…-pub)
//!   ┌──────────────────────── br0 203.0.113.1 ─────────────────────────┐
//!   │  default route: blackhole (the silent sink)                      │
//!   └──┬──────────────┬─────────────────────┬─────────────────────┬────┘
//!      │ eth0         │ eth0                │ wan 203.0.113.100   │ wan 203.0.113.101
//!   ┌──┴───────┐  ┌───┴──────┐        ┌─────┴──────────┐    ┌─────┴──────────┐
//!   │ p-signal │  │ p-turn   │        │ r-alice router │    │ r-bob router   │
//!   │ .2       │  │ .3       │        │ NAT, impair,   │    │ NAT, impair,   │
//!   └──────────┘  └──────────┘        │ rate caps      │    │ rate caps      │
//!   public hosts: Lab::public_host    └─────┬──────────┘    └─────┬──────────┘
//!                                           │ lan 192.168.10.1    │ lan 192.168.11.1
//!                                     ┌─────┴──────────┐    ┌─────┴──────────┐
//!                                     │ h-alice        │    │ h-bob          │
//!                                     │ eth0 .10.2     │    │ eth0 .11.2     │
//!                                     └────────────────┘    └────────────────┘
//!                                      homes: Lab::home, Home::host
//! ```
//!
//! - [`Lab::new`] makes the public namespace with the bridge `br0`. Its default route is a
//!   `blackhole`: packets to addresses no one routes (a home's private address) vanish without
//!   an ICMP error, so a server sending there never gets `ENETUNREACH` (coturn stops relaying an
//!   allocation after one).
//! - [`Lab::public_host`] adds a host on the bridge (signalling, STUN, TURN servers).
//! - [`Lab::home`] adds a router (WAN on the bridge, address from `203.0.113.100..=250`) and a
//!   host behind it on a private `/24`, with a [`Nat`]: cone (endpoint-independent mapping,
//!   hole punching works), symmetric (mapping per destination) or none (routed public LAN).
//!   Its WAN link takes impairments at runtime: [`Home::set_rate_kbit`],
//!   [`Home::set_loss_permille`], [`Home::block_udp`], [`Home::flush_conntrack`],
//!   [`Home::renumber`].
//! - [`Host::command`] runs a program inside a namespace; [`Host::run_in`] runs a closure on a
//!   thread that entered it (threads it spawns inherit it), so a test can host an in-process
//!   server on the public net; [`Host::bind_udp`] and [`Host::bind_tcp`] make sockets there.
//!
//! What it does not do: delay or jitter (this kernel has no `netem`; that needs a user-space
//! shim), IPv6 (off on every lab link), DNS. Traffic never leaves the lab's namespaces: nothing
//! is created in, or routed to, the root namespace.
//!
//! Needs root, `ip` (iproute2), `nft` (nftables), `tc`, `conntrack` and `sysctl`;
//! [`Lab::new`] returns [`LabError::Unavailable`] otherwise so tests can skip. Dropping the
//! [`Lab`] (also during a panic) kills what still runs in its namespaces and deletes them;
//! a later [`Lab::new`] deletes namespaces left by processes that died. See `docs/lab.md`.
//!
//! ```no_run
//! use std::net::Ipv4Addr;
//! use netlab::{Lab, LabError, Nat};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let lab = match Lab::new("example") {
//!     Ok(lab) => lab,
//!     Err(LabError::Unavailable(why)) => {
//!         eprintln!("skipped: {why}");
//!         return Ok(());
//!     }
//!     Err(err) => return Err(err.into()),
//! };
//! let server = lab.public_host("signal", Ipv4Addr::new(203, 0, 113, 2))?;
//! let alice = lab.home("alice", Nat::Cone)?;
//!
//! // An in-process server on the public net: its socket lives in the server's namespace.
//! let socket = server.bind_udp(3478)?;
//! let reflector = std::thread::spawn(move || {
//!     let mut buf = [0u8; 1500];
//!     let (_, from) = socket.recv_from(&mut buf)?;
//!     socket.send_to(from.to_string().as_bytes(), from)
//! });
//!
//! let client = alice.host().bind_udp(0)?;
//! client.send_to(b"hi", (server.ip(), 3478))?;
//! let mut buf = [0u8; 64];
//! let (n, _) = client.recv_from(&mut buf)?;
//! let seen: std::net::SocketAddr = std::str::from_utf8(&buf[..n])?.parse()?;
//! assert_eq!(seen.ip(), alice.public_ip()); // NAT at work
//! # reflector.join().ok();
//!
//! // Step the link mid-call; run a real program on the home's host.
//! alice.set_rate_kbit(Some(800))?;
//! alice.set_loss_permille(20, 20)?;
//! let status = alice.host().command("ip").args(["-4", "addr", "show", "eth0"]).status()?;
//! assert!(status.success());
//! # Ok(())
//! # }
//! ```

mod error;
mod exec;
mod home;
mod host;
mod lab;

pub use error::LabError;
pub use home::{Home, HomeOptions, Nat};
pub use host::{Host, NsThread};
pub use lab::{Lab, PUBLIC_GATEWAY, PUBLIC_NET};
