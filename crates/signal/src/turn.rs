//! The STUN/TURN server the `signal` binary runs beside the relay (RFC 5766/8656 over UDP).
//!
//! The protocol engine is webrtc-rs's `turn` crate (server with a pluggable `AuthHandler`
//! and relay address generator; see docs/deploy.md for why). This module owns the policy
//! around it, none of which the crate has:
//! - credentials: coturn's TURN REST scheme ([`crate::ice`]); expired or forged ones are
//!   refused, and every request but Binding needs one (no open relay);
//! - [`PeerPolicy`]: never relay to loopback, private, link-local, multicast, unspecified or
//!   the server's own addresses unless an allowed range says so (CreatePermission and
//!   ChannelBind get 403, Send indications and relayed datagrams are dropped);
//! - quotas: allocations per credential and in total (486), and a byte rate per allocation
//!   and direction (excess datagrams dropped, as a real link would).
//!
//! The screening sits in two `Conn` wrappers the crate accepts: [`Gate`] around the listening
//! socket (looks at each request's header and attributes before the crate does, and at the
//! crate's Allocate and ChannelBind answers), and `Guarded` around each relay socket. The same
//! two relay media on bound channels themselves, without the crate ([`channels`]). TURN over
//! TCP and over TLS comes in as datagrams through [`crate::turn_tcp`].

mod channels;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Instant, SystemTime};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use turn::allocation::AllocationInfo;
use turn::auth::{AuthHandler, generate_auth_key};
use turn::relay::RelayAddressGenerator;
use turn::server::config::{ConnConfig, ServerConfig};

use crate::turn_tcp::TcpFrames;
use channels::{Channels, Counters, PendingBinds, Route};
use webrtc_util::Conn;

use crate::ice::{TurnSecret, username_is_current};

/// Errors starting the TURN server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TurnError {
    /// A socket operation failed.
    #[error("TURN socket: {0}")]
    Io(#[from] std::io::Error),
    /// The TURN engine refused the configuration.
    #[error("TURN server: {0}")]
    Engine(String),
    /// The configuration is inconsistent.
    #[error("TURN configuration: {0}")]
    Config(String),
}

/// An IP range such as `203.0.113.0/24` or `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside the range (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR range"))?;
        let net = net.to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix must be 0..={max}"))?,
        };
        Ok(Self { net, prefix })
    }
}

/// Which peer addresses the relay may send to.
#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    /// Ranges allowed even though the default rule refuses them (`--turn-allow-peer`).
    pub allow: Vec<Cidr>,
    /// The server's own addresses (refused unless allowed).
    pub own: Vec<IpAddr>,
}

impl PeerPolicy {
    /// Whether the relay may exchange datagrams with `ip`. An allowed range wins over every
    /// default rule; otherwise only public unicast addresses that are not the server's own.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.allow.iter().any(|c| c.contains(ip)) {
            return true;
        }
        if self.own.iter().any(|own| own.to_canonical() == ip) {
            return false;
        }
        match ip {
            IpAddr::V4(v4) => !refused_v4(v4),
            IpAddr::V6(v6) => !refused_v6(v6),
        }
    }
}

fn refused_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || a == 0
        || a >= 240
        // Shared address space (carrier-grade NAT, RFC 6598).
        || (a == 100 && (64..128).contains(&b))
}

fn refused_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link local
}

/// Everything the TURN server enforces. The `signal` binary exposes each field as a flag.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// The realm in the long-term credential mechanism.
    pub realm: String,
    /// The secret credentials are checked with (shared with [`crate::IceConfig`]).
    pub secret: TurnSecret,
    /// Address relay sockets bind to (the host of `--listen`; may be unspecified).
    pub relay_bind_ip: IpAddr,
    /// Address announced as the relayed address (the public one behind a 1:1 NAT).
    pub relay_ip: IpAddr,
    /// Ports relay sockets are taken from.
    pub relay_ports: RangeInclusive<u16>,
    /// Live allocations one credential (username) may hold; more get 486.
    pub max_allocations_per_user: usize,
    /// Live allocations in total; more get 486.
    pub max_allocations: usize,
    /// Bytes per second one allocation may relay in each direction (0: no limit); excess
    /// datagrams are dropped.
    pub max_bytes_per_sec_per_allocation: u64,
    /// Which peers may be relayed to.
    pub peers: PeerPolicy,
    /// TURN-over-TCP connections open at once (when a TCP listener is given); more are
    /// closed at accept.
    pub max_tcp_connections: usize,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            realm: "duet".to_owned(),
            secret: TurnSecret::random(),
            relay_bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            relay_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            relay_ports: 49152..=65535,
            max_allocations_per_user: 8,
            max_allocations: 10_000,
            // 5 Mbit/s: a 720p call with headroom.
            max_bytes_per_sec_per_allocation: 5_000_000 / 8,
            peers: PeerPolicy::default(),
            max_tcp_connections: 512,
        }
    }
}

/// A running STUN/TURN server. Stop it with [`TurnServer::close`].
pub struct TurnServer {
    engine: turn::server::Server,
    local_addr: SocketAddr,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for TurnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnServer")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

/// The buffers asked for on the TURN socket, each way. Every client's packets arrive on that
/// one socket (coturn gives each client a socket of its own), so a moment's burst from many
/// clients (a video frame each) while the server's thread is busy elsewhere overflows the
/// kernel's default receive buffer: 208 KiB holds about 90 datagrams of 1200 bytes (the test
/// `a_burst_from_many_clients_is_relayed_whole` got 92 of 400 through with it). The kernel
/// grants at most `net.core.rmem_max` / `wmem_max`.
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Asks for [`SOCKET_BUFFER_BYTES`] each way on `socket`; returns the receive buffer granted
/// (bytes, as the kernel reports it), warning when the kernel kept it small.
fn grow_buffers(socket: &UdpSocket) -> usize {
    let socket = socket2::SockRef::from(socket);
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    let granted = socket.recv_buffer_size().unwrap_or(0);
    // Linux reports twice what it granted (the other half is its bookkeeping), so a full
    // grant reads as twice the request there.
    let full = if cfg!(target_os = "linux") {
        2 * SOCKET_BUFFER_BYTES
    } else {
        SOCKET_BUFFER_BYTES
    };
    if granted < full {
        tracing::warn!(
            granted,
            wanted = SOCKET_BUFFER_BYTES,
            "the TURN socket's receive buffer stays small: raise net.core.rmem_max (sysctl) so \
             that bursts from many clients are not dropped"
        );
    }
    granted
}

impl TurnServer {
    /// Serves STUN and TURN on `socket` (bound by the caller, e.g. `0.0.0.0:3478`).
    pub async fn start(socket: UdpSocket, config: TurnConfig) -> Result<Self, TurnError> {
        Self::start_with_tcp(socket, None, config).await
    }

    /// Like [`TurnServer::start`], and also TURN over TCP on `tcp` (usually the same port),
    /// for clients whose network drops UDP; relays stay UDP. See [`crate::turn_tcp`].
    pub async fn start_with_tcp(
        socket: UdpSocket,
        tcp: Option<TcpListener>,
        config: TurnConfig,
    ) -> Result<Self, TurnError> {
        Self::start_with_streams(socket, tcp, None, config).await
    }

    /// Like [`TurnServer::start_with_tcp`], and also TURN over TLS on `tls`'s listener (usually
    /// port 5349) with its acceptor ([`crate::Tls::turn_acceptor`]).
    pub async fn start_with_streams(
        socket: UdpSocket,
        tcp: Option<TcpListener>,
        tls: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
        config: TurnConfig,
    ) -> Result<Self, TurnError> {
        if config.relay_ports.is_empty() || *config.relay_ports.start() == 0 {
            return Err(TurnError::Config(
                "the relay port range is empty or starts at 0".into(),
            ));
        }
        let local_addr = socket.local_addr()?;
        let receive_buffer = grow_buffers(&socket);
        let mut peers = config.peers.clone();
        peers
            .own
            .extend([local_addr.ip(), config.relay_ip, config.relay_bind_ip]);
        peers.own.retain(|ip| !ip.is_unspecified());
        let peers = Arc::new(peers);
        let (closed_tx, closed_rx) = mpsc::channel::<AllocationInfo>(256);
        let quotas = Arc::new(Mutex::new(Quotas::default()));
        tokio::spawn(forget_closed(quotas.clone(), closed_rx));
        let counters = Arc::new(Counters::default());
        let unclaimed = Arc::new(Unclaimed::default());
        let gate = |wire| Gate {
            wire: Arc::new(wire),
            peers: peers.clone(),
            quotas: quotas.clone(),
            max_per_user: config.max_allocations_per_user,
            max_total: config.max_allocations,
            unclaimed: unclaimed.clone(),
            clients: Mutex::new(HashMap::new()),
            binds: PendingBinds::default(),
            counters: counters.clone(),
        };
        let relays = Relays {
            bind_ip: config.relay_bind_ip,
            relay_ip: config.relay_ip,
            ports: config.relay_ports.clone(),
            peers: peers.clone(),
            bytes_per_sec: config.max_bytes_per_sec_per_allocation,
            unclaimed: unclaimed.clone(),
            counters: counters.clone(),
        };
        let mut conn_configs = vec![ConnConfig {
            conn: Arc::new(gate(Wire::Udp(Arc::new(socket), local_addr))),
            relay_addr_generator: Box::new(relays.clone()),
        }];
        let tcp_addr = match tcp {
            Some(listener) => {
                let frames = TcpFrames::start(listener, config.max_tcp_connections)?;
                let addr = frames.local_addr();
                conn_configs.push(ConnConfig {
                    conn: Arc::new(gate(Wire::Tcp(Arc::new(frames)))),
                    relay_addr_generator: Box::new(relays.clone()),
                });
                Some(addr)
            }
            None => None,
        };
        let tls_addr = match tls {
            Some((listener, acceptor)) => {
                let frames = TcpFrames::start_tls(listener, config.max_tcp_connections, acceptor)?;
                let addr = frames.local_addr();
                conn_configs.push(ConnConfig {
                    conn: Arc::new(gate(Wire::Tcp(Arc::new(frames)))),
                    relay_addr_generator: Box::new(relays),
                });
                Some(addr)
            }
            None => None,
        };
        let engine = turn::server::Server::new(ServerConfig {
            conn_configs,
            realm: config.realm.clone(),
            auth_handler: Arc::new(RestAuth {
                secret: config.secret.clone(),
            }),
            channel_bind_timeout: channels::CHANNEL_LIFETIME,
            alloc_close_notify: Some(closed_tx),
        })
        .await
        .map_err(|e| TurnError::Engine(e.to_string()))?;
        let streams = |addr: Option<SocketAddr>| addr.map_or("off".to_owned(), |a| a.to_string());
        tracing::info!(
            addr = %local_addr,
            tcp = %streams(tcp_addr),
            tls = %streams(tls_addr),
            relay_ip = %config.relay_ip,
            receive_buffer,
            "STUN/TURN listening"
        );
        Ok(Self {
            engine,
            local_addr,
            counters,
        })
    }

    /// The address STUN/TURN is served on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Datagrams on bound channels the fast path took so far, without the engine: (client →
    /// peer, peer → client). See [`channels`].
    pub fn fast_path_datagrams(&self) -> (u64, u64) {
        (
            self.counters.to_peers.load(Ordering::Relaxed),
            self.counters.to_clients.load(Ordering::Relaxed),
        )
    }

    /// Stops serving and closes every allocation.
    pub async fn close(self) {
        let _ = self.engine.close().await;
    }
}

/// Checks REST-API credentials: the key is derived from the secret, so any credential the
/// secret did not sign fails the crate's MESSAGE-INTEGRITY check; an expired one is refused
/// before that.
struct RestAuth {
    secret: TurnSecret,
}

impl AuthHandler for RestAuth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        _src_addr: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        if !username_is_current(username, SystemTime::now()) {
            return Err(turn::Error::Other(
                "expired or malformed TURN username".into(),
            ));
        }
        Ok(generate_auth_key(
            username,
            realm,
            &self.secret.password(username),
        ))
    }
}

/// Live allocations by client address and by username.
#[derive(Default)]
struct Quotas {
    /// Allocate requests let through and not answered yet: (client, transaction) → username.
    pending: HashMap<(SocketAddr, [u8; 12]), String>,
    by_client: HashMap<SocketAddr, String>,
    per_user: HashMap<String, usize>,
}

/// More pending Allocate requests than this are forgotten (a flood of unanswered ones).
const MAX_PENDING_ALLOCATES: usize = 4096;

impl Quotas {
    fn add(&mut self, client: SocketAddr, username: String) {
        if self.by_client.contains_key(&client) {
            return;
        }
        *self.per_user.entry(username.clone()).or_insert(0) += 1;
        self.by_client.insert(client, username);
    }

    fn remove(&mut self, client: SocketAddr) {
        if let Some(username) = self.by_client.remove(&client)
            && let Some(count) = self.per_user.get_mut(&username)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_user.remove(&username);
            }
        }
    }
}

fn lock(quotas: &Mutex<Quotas>) -> MutexGuard<'_, Quotas> {
    quotas.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn forget_closed(quotas: Arc<Mutex<Quotas>>, mut closed: mpsc::Receiver<AllocationInfo>) {
    while let Some(info) = closed.recv().await {
        lock(&quotas).remove(info.five_tuple.src_addr);
    }
}

// STUN wire constants (RFC 8489, RFC 8656).
const MAGIC_COOKIE: u32 = 0x2112_A442;
const METHOD_ALLOCATE: u16 = 0x003;
const METHOD_SEND: u16 = 0x006;
const METHOD_CREATE_PERMISSION: u16 = 0x008;
const METHOD_CHANNEL_BIND: u16 = 0x009;
const CLASS_REQUEST: u16 = 0b00;
const CLASS_INDICATION: u16 = 0b01;
const CLASS_SUCCESS: u16 = 0b10;
const CLASS_ERROR: u16 = 0b11;
const ATTR_CHANNEL_NUMBER: u16 = 0x000C;
const ATTR_USERNAME: u16 = 0x0006;
const ATTR_ERROR_CODE: u16 = 0x0009;
const ATTR_XOR_PEER_ADDRESS: u16 = 0x0012;
const ATTR_XOR_RELAYED_ADDRESS: u16 = 0x0016;

/// The header and the attributes screening looks at, borrowed from a datagram.
struct StunView<'a> {
    method: u16,
    class: u16,
    transaction: [u8; 12],
    attributes: &'a [u8],
}

impl<'a> StunView<'a> {
    fn parse(datagram: &'a [u8]) -> Option<Self> {
        if datagram.len() < 20 || datagram[0] & 0xC0 != 0 {
            return None;
        }
        let typ = u16::from_be_bytes([datagram[0], datagram[1]]);
        let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
        let cookie = u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]);
        if cookie != MAGIC_COOKIE || 20 + length > datagram.len() {
            return None;
        }
        let method = (typ & 0x000F) | ((typ & 0x00E0) >> 1) | ((typ & 0x3E00) >> 2);
        let class = ((typ >> 4) & 1) | ((typ >> 7) & 2);
        let mut transaction = [0u8; 12];
        transaction.copy_from_slice(&datagram[8..20]);
        Some(Self {
            method,
            class,
            transaction,
            attributes: &datagram[20..20 + length],
        })
    }

    /// Every attribute of type `typ`, in order.
    fn each(&self, typ: u16) -> impl Iterator<Item = &'a [u8]> + '_ {
        let mut rest = self.attributes;
        std::iter::from_fn(move || {
            loop {
                if rest.len() < 4 {
                    return None;
                }
                let t = u16::from_be_bytes([rest[0], rest[1]]);
                let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
                let padded = (len + 3) & !3;
                if rest.len() < 4 + len {
                    return None;
                }
                let value = &rest[4..4 + len];
                rest = rest.get(4 + padded..).unwrap_or(&[]);
                if t == typ {
                    return Some(value);
                }
            }
        })
    }

    /// The XOR-PEER-ADDRESS values; `None` stands for one that does not decode.
    fn peers(&self) -> impl Iterator<Item = Option<IpAddr>> + '_ {
        self.each(ATTR_XOR_PEER_ADDRESS)
            .map(|value| xor_address(value, &self.transaction).map(|a| a.ip()))
    }

    /// The first attribute `typ` as an XOR'd transport address, when it decodes.
    fn address(&self, typ: u16) -> Option<SocketAddr> {
        xor_address(self.each(typ).next()?, &self.transaction)
    }

    /// The CHANNEL-NUMBER attribute's number.
    fn channel_number(&self) -> Option<u16> {
        let value = self.each(ATTR_CHANNEL_NUMBER).next()?;
        Some(u16::from_be_bytes([*value.first()?, *value.get(1)?]))
    }
}

/// An XOR-MAPPED-ADDRESS-style value (RFC 8489 §14.2): family, port and address.
fn xor_address(value: &[u8], transaction: &[u8; 12]) -> Option<SocketAddr> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]) ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match (value.get(1), value.len()) {
        (Some(0x01), 8) => {
            let mut ip = [0u8; 4];
            for (i, b) in ip.iter_mut().enumerate() {
                *b = value[4 + i] ^ cookie[i];
            }
            IpAddr::V4(Ipv4Addr::from(ip))
        }
        (Some(0x02), 20) => {
            let mut key = [0u8; 16];
            key[..4].copy_from_slice(&cookie);
            key[4..].copy_from_slice(transaction);
            let mut ip = [0u8; 16];
            for (i, b) in ip.iter_mut().enumerate() {
                *b = value[4 + i] ^ key[i];
            }
            IpAddr::V6(Ipv6Addr::from(ip))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// An error response (no MESSAGE-INTEGRITY: the request is refused before it is checked).
fn error_response(method: u16, transaction: &[u8; 12], code: u16, reason: &str) -> Vec<u8> {
    let class = CLASS_ERROR;
    let typ = (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((class & 1) << 4)
        | ((class & 2) << 7);
    let reason = reason.as_bytes();
    let value_len = 4 + reason.len();
    let padded = (value_len + 3) & !3;
    let mut out = Vec::with_capacity(20 + 4 + padded);
    out.extend_from_slice(&typ.to_be_bytes());
    out.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(transaction);
    out.extend_from_slice(&ATTR_ERROR_CODE.to_be_bytes());
    out.extend_from_slice(&(value_len as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, (code / 100) as u8, (code % 100) as u8]);
    out.extend_from_slice(reason);
    out.resize(20 + 4 + padded, 0);
    out
}

/// What the gate does with one datagram from a client.
enum Verdict {
    Pass,
    Drop,
    Answer(Vec<u8>),
}

/// Where the TURN engine's "datagrams" come from: the UDP socket, or TURN-over-TCP frames.
enum Wire {
    /// The socket and its address: the engine asks for the address with every ChannelData
    /// datagram (its allocation key), and asking the kernel each time cost a `getsockname`
    /// per relayed packet.
    Udp(Arc<UdpSocket>, SocketAddr),
    Tcp(Arc<TcpFrames>),
}

impl Wire {
    async fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        match self {
            Self::Udp(socket, _) => socket.recv_from(buf).await,
            Self::Tcp(frames) => frames
                .recv_from(buf)
                .await
                .ok_or_else(|| std::io::Error::other("the TURN/TCP listener stopped")),
        }
    }

    async fn send_to(&self, buf: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        match self {
            Self::Udp(socket, _) => socket.send_to(buf, to).await,
            Self::Tcp(frames) => {
                frames.send_to(buf, to);
                Ok(buf.len())
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Self::Udp(_, local) => Ok(*local),
            Self::Tcp(frames) => Ok(frames.local_addr()),
        }
    }
}

/// The listening socket, screened: policy and quotas before the TURN engine sees a request.
/// ChannelData on a channel the engine bound goes straight to the peer ([`channels`]).
struct Gate {
    wire: Arc<Wire>,
    peers: Arc<PeerPolicy>,
    quotas: Arc<Mutex<Quotas>>,
    max_per_user: usize,
    max_total: usize,
    /// Relay sockets not yet seen granted to a client.
    unclaimed: Arc<Unclaimed>,
    /// Each client's allocation (on this gate's wire), once the engine granted it.
    clients: Mutex<HashMap<SocketAddr, Weak<Guarded>>>,
    binds: PendingBinds,
    counters: Arc<Counters>,
}

/// Relay sockets by port, from [`Relays::allocate_conn`] until a gate sees the engine grant
/// one to a client (the Allocate success names its relayed address).
#[derive(Default)]
struct Unclaimed(Mutex<HashMap<u16, Weak<Guarded>>>);

impl Unclaimed {
    fn lock(&self) -> MutexGuard<'_, HashMap<u16, Weak<Guarded>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, port: u16, relay: &Arc<Guarded>) {
        let mut relays = self.lock();
        // Sockets the engine dropped without granting them (a failed Allocate).
        relays.retain(|_, r| r.strong_count() > 0);
        relays.insert(port, Arc::downgrade(relay));
    }

    fn claim(&self, port: u16) -> Option<Arc<Guarded>> {
        self.lock().remove(&port)?.upgrade()
    }
}

impl Gate {
    fn screen(&self, datagram: &[u8], from: SocketAddr) -> Verdict {
        let Some(msg) = StunView::parse(datagram) else {
            return Verdict::Pass;
        };
        let forbidden = |msg: &StunView<'_>| {
            msg.peers()
                .any(|peer| peer.is_none_or(|ip| !self.peers.allows(ip)))
        };
        match (msg.method, msg.class) {
            (METHOD_CREATE_PERMISSION | METHOD_CHANNEL_BIND, CLASS_REQUEST) if forbidden(&msg) => {
                tracing::debug!(client = %from, "TURN peer address refused by policy");
                Verdict::Answer(error_response(
                    msg.method,
                    &msg.transaction,
                    403,
                    "Forbidden",
                ))
            }
            (METHOD_SEND, CLASS_INDICATION) if forbidden(&msg) => Verdict::Drop,
            (METHOD_CHANNEL_BIND, CLASS_REQUEST) => {
                if let (Some(number), Some(peer)) =
                    (msg.channel_number(), msg.address(ATTR_XOR_PEER_ADDRESS))
                {
                    self.binds.expect(from, msg.transaction, number, peer);
                }
                Verdict::Pass
            }
            (METHOD_ALLOCATE, CLASS_REQUEST) => {
                let Some(username) = msg
                    .each(ATTR_USERNAME)
                    .next()
                    .and_then(|u| std::str::from_utf8(u).ok())
                else {
                    // The engine answers 401 with a nonce.
                    return Verdict::Pass;
                };
                let mut quotas = lock(&self.quotas);
                if quotas.by_client.contains_key(&from) {
                    return Verdict::Pass;
                }
                let held = quotas.per_user.get(username).copied().unwrap_or(0);
                if held >= self.max_per_user || quotas.by_client.len() >= self.max_total {
                    tracing::debug!(client = %from, held, "TURN allocation quota reached");
                    return Verdict::Answer(error_response(
                        METHOD_ALLOCATE,
                        &msg.transaction,
                        486,
                        "Allocation Quota Reached",
                    ));
                }
                if quotas.pending.len() >= MAX_PENDING_ALLOCATES {
                    quotas.pending.clear();
                }
                quotas
                    .pending
                    .insert((from, msg.transaction), username.to_owned());
                Verdict::Pass
            }
            _ => Verdict::Pass,
        }
    }

    /// Follows the engine's answers: a granted allocation is counted and its relay socket
    /// learns its client; a granted channel binding enters the fast path.
    fn watch_answer(&self, datagram: &[u8], to: SocketAddr) {
        let Some(msg) = StunView::parse(datagram) else {
            return;
        };
        if msg.class == CLASS_REQUEST || msg.class == CLASS_INDICATION {
            return;
        }
        let granted = msg.class == CLASS_SUCCESS;
        match msg.method {
            METHOD_ALLOCATE => {
                {
                    let mut quotas = lock(&self.quotas);
                    if let Some(username) = quotas.pending.remove(&(to, msg.transaction))
                        && granted
                    {
                        quotas.add(to, username);
                    }
                }
                if granted
                    && let Some(relayed) = msg.address(ATTR_XOR_RELAYED_ADDRESS)
                    && let Some(relay) = self.unclaimed.claim(relayed.port())
                {
                    relay.channels.set_route(Route {
                        client: to,
                        wire: self.wire.clone(),
                    });
                    let mut clients = self.clients();
                    clients.retain(|_, r| r.strong_count() > 0);
                    clients.insert(to, Arc::downgrade(&relay));
                }
            }
            METHOD_CHANNEL_BIND => {
                if let Some((number, peer)) = self.binds.answered(to, msg.transaction)
                    && granted
                    && let Some(relay) = self.relay_of(to)
                {
                    relay.channels.bind(number, peer, Instant::now());
                }
            }
            _ => {}
        }
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<SocketAddr, Weak<Guarded>>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `client`'s allocation on this gate, while the engine holds it.
    fn relay_of(&self, client: SocketAddr) -> Option<Arc<Guarded>> {
        self.clients().get(&client)?.upgrade()
    }

    /// Relays ChannelData from `client` on a channel the engine bound, as the engine would;
    /// false when it is not the fast path's to relay.
    async fn relay_bound(&self, client: SocketAddr, datagram: &[u8]) -> bool {
        let Some((number, data)) = channels::parse(datagram) else {
            return false;
        };
        let Some(relay) = self.relay_of(client) else {
            return false;
        };
        let now = Instant::now();
        let Some(peer) = relay.channels.peer(number, now) else {
            return false;
        };
        if let Err(e) = relay.relay_to_peer(data, peer, now).await {
            tracing::debug!(%client, %peer, error = %e, "relaying ChannelData failed");
        }
        Counters::count(&self.counters.to_peers);
        true
    }
}

#[async_trait::async_trait]
impl Conn for Gate {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(webrtc_util::Error::Other("not supported".into()))
    }

    async fn recv(&self, _buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other("not supported".into()))
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            // The engine stops serving on the first error it sees: pass on none of the
            // transient ones (ICMP-induced, interrupted).
            let (n, from) = match self.wire.recv_from(buf).await {
                Ok(got) => got,
                Err(e) if is_fatal(&e) => return Err(e.into()),
                Err(_) => continue,
            };
            if self.relay_bound(from, &buf[..n]).await {
                continue;
            }
            match self.screen(&buf[..n], from) {
                Verdict::Pass => return Ok((n, from)),
                Verdict::Drop => {}
                Verdict::Answer(reply) => {
                    let _ = self.wire.send_to(&reply, from).await;
                }
            }
        }
    }

    async fn send(&self, _buf: &[u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other("not supported".into()))
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        self.watch_answer(buf, target);
        Ok(self.wire.send_to(buf, target).await?)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.wire.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

fn is_fatal(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    !matches!(
        e.kind(),
        ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::Interrupted
            | ErrorKind::WouldBlock
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
    )
}

/// Hands out relay sockets from the port range, each wrapped in the peer policy and the
/// per-allocation rate limit.
#[derive(Clone)]
struct Relays {
    bind_ip: IpAddr,
    relay_ip: IpAddr,
    ports: RangeInclusive<u16>,
    peers: Arc<PeerPolicy>,
    bytes_per_sec: u64,
    unclaimed: Arc<Unclaimed>,
    counters: Arc<Counters>,
}

/// Tries this many random ports of the range before giving up on an allocation.
const PORT_TRIES: usize = 32;

#[async_trait::async_trait]
impl RelayAddressGenerator for Relays {
    fn validate(&self) -> Result<(), turn::Error> {
        Ok(())
    }

    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        if use_ipv4 != self.bind_ip.is_ipv4() {
            return Err(turn::Error::Other("address family not served".into()));
        }
        let (start, end) = (*self.ports.start(), *self.ports.end());
        let span = u32::from(end - start) + 1;
        let mut candidates = Vec::with_capacity(PORT_TRIES + 1);
        if requested_port != 0 && self.ports.contains(&requested_port) {
            candidates.push(requested_port);
        }
        for _ in 0..PORT_TRIES {
            let offset = rand::random::<u32>() % span;
            candidates.push(start + offset as u16);
        }
        for port in candidates {
            let Ok(socket) = UdpSocket::bind((self.bind_ip, port)).await else {
                continue;
            };
            let conn = Arc::new(Guarded {
                socket,
                peers: self.peers.clone(),
                up: Mutex::new(Bucket::new(self.bytes_per_sec)),
                down: Mutex::new(Bucket::new(self.bytes_per_sec)),
                channels: Channels::default(),
                counters: self.counters.clone(),
            });
            self.unclaimed.add(port, &conn);
            return Ok((conn, SocketAddr::new(self.relay_ip, port)));
        }
        Err(turn::Error::Other("no free relay port".into()))
    }
}

/// A token bucket in bytes: `rate` per second, one second of burst.
struct Bucket {
    rate: u64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        Self {
            rate,
            tokens: rate as f64,
            at: Instant::now(),
        }
    }

    fn take(&mut self, bytes: usize, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.rate as f64);
        if self.tokens >= bytes as f64 {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }
}

/// One allocation's relay socket: sends only to allowed peers, within the byte rate; a
/// datagram from a peer bound to a channel goes straight to the client as ChannelData.
struct Guarded {
    socket: UdpSocket,
    peers: Arc<PeerPolicy>,
    /// Client → peer.
    up: Mutex<Bucket>,
    /// Peer → client.
    down: Mutex<Bucket>,
    channels: Channels<Arc<Wire>>,
    counters: Arc<Counters>,
}

fn take(bucket: &Mutex<Bucket>, bytes: usize, now: Instant) -> bool {
    bucket
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take(bytes, now)
}

impl Guarded {
    /// Client → peer, for the engine and for the fast path alike: only to an allowed peer,
    /// within the byte rate (an excess datagram is dropped as a congested link would, and the
    /// sender is not told), and a peer's ICMP error does not end the allocation.
    async fn relay_to_peer(
        &self,
        data: &[u8],
        peer: SocketAddr,
        now: Instant,
    ) -> std::io::Result<usize> {
        if !self.peers.allows(peer.ip()) || !take(&self.up, data.len(), now) {
            return Ok(data.len());
        }
        match self.socket.send_to(data, peer).await {
            Ok(n) => Ok(n),
            Err(e) if !is_fatal(&e) => Ok(data.len()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl Conn for Guarded {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(webrtc_util::Error::Other("not supported".into()))
    }

    async fn recv(&self, _buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other("not supported".into()))
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        // Received behind room for a ChannelData header, so that a datagram from a bound peer
        // goes to the client from where it lies. One buffer per call: the engine calls again
        // only for the datagrams the fast path leaves to it.
        let room = buf.len().min(usize::from(u16::MAX));
        let mut frame = vec![0u8; channels::HEADER + room + 3];
        loop {
            let (n, from) = match self
                .socket
                .recv_from(&mut frame[channels::HEADER..channels::HEADER + room])
                .await
            {
                Ok(got) => got,
                Err(e) if is_fatal(&e) => return Err(e.into()),
                Err(_) => continue,
            };
            let now = Instant::now();
            if !self.peers.allows(from.ip()) || !take(&self.down, n, now) {
                continue;
            }
            if let Some(route) = self.channels.route()
                && let Some(number) = self.channels.number(from, now)
            {
                let len = channels::frame(&mut frame, number, n);
                if let Err(e) = route.wire.send_to(&frame[..len], route.client).await {
                    tracing::debug!(client = %route.client, error = %e, "relaying to a client failed");
                }
                Counters::count(&self.counters.to_clients);
                continue;
            }
            buf[..n].copy_from_slice(&frame[channels::HEADER..channels::HEADER + n]);
            return Ok((n, from));
        }
    }

    async fn send(&self, _buf: &[u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other("not supported".into()))
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        Ok(self.relay_to_peer(buf, target, Instant::now()).await?)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        // The engine closes an allocation's relay socket when the allocation ends.
        self.channels.close();
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn default_policy_refuses_local_and_private_peers() {
        let policy = PeerPolicy {
            allow: Vec::new(),
            own: vec![ip("198.51.100.7")],
        };
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.0.1",
            "224.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "100.64.0.1",
            "198.51.100.7",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!policy.allows(ip(refused)), "{refused}");
        }
        for allowed in ["8.8.8.8", "203.0.113.5", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(policy.allows(ip(allowed)), "{allowed}");
        }
    }

    #[test]
    fn allowed_ranges_win() {
        let policy = PeerPolicy {
            allow: vec!["127.0.0.0/8".parse().unwrap_or(Cidr {
                net: ip("0.0.0.0"),
                prefix: 32,
            })],
            own: vec![ip("127.0.0.1")],
        };
        assert!(policy.allows(ip("127.0.0.1")));
        assert!(policy.allows(ip("127.9.9.9")));
        assert!(!policy.allows(ip("10.0.0.1")));
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c: Result<Cidr, _> = "192.168.10.0/24".parse();
        assert!(c.as_ref().is_ok_and(|c| c.contains(ip("192.168.10.77"))));
        assert!(c.as_ref().is_ok_and(|c| !c.contains(ip("192.168.11.1"))));
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .is_ok_and(|c| c.contains(ip("1.2.3.4")))
        );
        assert!(
            "2001:db8::/32"
                .parse::<Cidr>()
                .is_ok_and(|c| c.contains(ip("2001:db8:1::1")))
        );
        assert!(
            "10.0.0.1"
                .parse::<Cidr>()
                .is_ok_and(|c| !c.contains(ip("10.0.0.2")))
        );
        for bad in ["", "10.0.0.0/33", "x/8", "10.0.0.0/-1", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn stun_view_survives_any_bytes() {
        let tid = [7u8; 12];
        let reply = error_response(METHOD_CREATE_PERMISSION, &tid, 403, "Forbidden");
        let view = StunView::parse(&reply);
        assert!(
            view.as_ref()
                .is_some_and(|v| v.method == METHOD_CREATE_PERMISSION
                    && v.class == CLASS_ERROR
                    && v.transaction == tid)
        );
        // Truncations and garbage never panic.
        for len in 0..reply.len() {
            let _ = StunView::parse(&reply[..len]).map(|v| v.peers().count());
        }
        let mut junk = reply.clone();
        junk[22] = 0xFF;
        junk[23] = 0xFF;
        let _ = StunView::parse(&junk).map(|v| v.each(ATTR_USERNAME).count());
    }

    #[test]
    fn bucket_limits_bytes_per_second() {
        let start = Instant::now();
        let mut bucket = Bucket::new(1000);
        assert!(bucket.take(1000, start));
        assert!(!bucket.take(1, start));
        assert!(bucket.take(500, start + Duration::from_millis(500)));
        assert!(Bucket::new(0).take(usize::MAX, start));
    }
}
