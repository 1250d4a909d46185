//! The headless `signal` relay. Parses flags, sets up logging, and calls [`signal::serve`];
//! reloads the TLS certificate on SIGHUP; runs the STUN/TURN server beside it unless told not
//! to. `signal token` mints room tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// duet's WebSocket room relay for 1-to-1 calls (seed-protocol compatible).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SIGNAL_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Largest accepted message in bytes; bigger ones close the connection (1009).
    #[arg(long, env = "SIGNAL_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    max_message_bytes: usize,
    /// Most simultaneous WebSocket connections.
    #[arg(long, env = "SIGNAL_MAX_CONNECTIONS", default_value_t = 20_000)]
    max_connections: usize,
    /// Rooms one connection may be in at once.
    #[arg(long, env = "SIGNAL_MAX_ROOMS_PER_CONNECTION", default_value_t = 4)]
    max_rooms_per_connection: usize,
    /// Longest room name in bytes.
    #[arg(long, env = "SIGNAL_MAX_ROOM_NAME_BYTES", default_value_t = 128)]
    max_room_name_bytes: usize,
    /// Sustained messages per second per connection.
    #[arg(long, env = "SIGNAL_RATE", default_value_t = 50.0)]
    rate: f64,
    /// Burst of messages per connection above the sustained rate.
    #[arg(long, env = "SIGNAL_BURST", default_value_t = 200.0)]
    burst: f64,
    /// Seconds a member that joined with a session id keeps its seat after its connection
    /// drops (it reconnects and takes it back; the other member is not told it left). 0: off.
    #[arg(long, env = "SIGNAL_SEAT_HOLD_SECS", default_value_t = 10)]
    seat_hold_secs: u64,
    /// Seconds between pings.
    #[arg(long, env = "SIGNAL_PING_SECS", default_value_t = 30)]
    ping_secs: u64,
    /// Seconds of silence after which a connection is dropped.
    #[arg(long, env = "SIGNAL_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    idle_timeout_secs: u64,
    /// Per-connection WebSocket read buffer in bytes (larger messages still work; they are
    /// read in several steps).
    #[arg(long, env = "SIGNAL_READ_BUFFER_BYTES", default_value_t = 2048)]
    read_buffer_bytes: usize,
    /// Seconds allowed for the TLS handshake and the request head together, from accept.
    #[arg(long, env = "SIGNAL_HANDSHAKE_TIMEOUT_SECS", default_value_t = 10)]
    handshake_timeout_secs: u64,
    /// Seconds one write to a client may take; a client that does not read is dropped (1008).
    #[arg(long, env = "SIGNAL_SEND_TIMEOUT_SECS", default_value_t = 10)]
    send_timeout_secs: u64,
    /// Bytes queued for one connection before it counts as too slow and is dropped (1008).
    #[arg(long, env = "SIGNAL_OUTBOX_MAX_BYTES", default_value_t = 256 * 1024)]
    outbox_max_bytes: usize,
    /// Per-connection WebSocket write buffer limit in bytes (at least one largest message).
    #[arg(long, env = "SIGNAL_MAX_WRITE_BUFFER_BYTES", default_value_t = 128 * 1024)]
    max_write_buffer_bytes: usize,
    /// Most accepted connections that are not WebSockets yet (TLS handshake, request head);
    /// more are refused at accept.
    #[arg(long, env = "SIGNAL_MAX_PENDING_CONNECTIONS", default_value_t = 1024)]
    max_pending_connections: usize,
    /// Most pending connections from one peer address (0: no limit; ignored with
    /// --trust-proxy).
    #[arg(long, env = "SIGNAL_MAX_PENDING_PER_IP", default_value_t = 16)]
    max_pending_per_ip: usize,
    /// Seconds between two log lines about refused connections of one reason (each line
    /// carries the count).
    #[arg(long, env = "SIGNAL_REFUSAL_LOG_SECS", default_value_t = 10)]
    refusal_log_secs: u64,
    /// Worker threads. One thread relays tens of thousands of messages per second; more
    /// only add cross-thread wake-ups.
    #[arg(long, env = "SIGNAL_THREADS", default_value_t = 1)]
    threads: usize,
    /// Log format.
    #[arg(long, env = "SIGNAL_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// TLS certificate chain (PEM, leaf first, e.g. Let's Encrypt's fullchain.pem): serve
    /// HTTPS and WSS on --listen. Re-read on SIGHUP.
    #[arg(long, env = "SIGNAL_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM, e.g. Let's Encrypt's privkey.pem). Re-read on SIGHUP.
    #[arg(long, env = "SIGNAL_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Browser origins (scheme://host[:port]) allowed to open a WebSocket; repeatable or
    /// comma separated; `*` for any. Unset: any origin. Requests without Origin (native
    /// clients) and pages served by this host are always allowed.
    #[arg(long, env = "SIGNAL_ALLOW_ORIGIN", value_delimiter = ',')]
    allow_origin: Vec<String>,
    /// Most simultaneous WebSockets from one client address (0: no limit); more get HTTP 429.
    #[arg(long, env = "SIGNAL_MAX_CONNECTIONS_PER_IP", default_value_t = 32)]
    max_connections_per_ip: usize,
    /// Take the client address from X-Forwarded-For (last entry). Only behind a reverse
    /// proxy you run: anyone can send that header.
    #[arg(long, env = "SIGNAL_TRUST_PROXY")]
    trust_proxy: bool,
    /// Require a room token on join: hex(HMAC-SHA256(secret, room)); mint them with
    /// `signal token`.
    #[arg(long, env = "SIGNAL_ROOM_SECRET", hide_env_values = true)]
    room_secret: Option<String>,
    #[command(flatten)]
    turn: TurnArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// STUN/TURN: signal's own server (UDP) or an external coturn; both announced on `ready`.
#[derive(Debug, clap::Args)]
struct TurnArgs {
    /// Run no STUN/TURN server and announce no ICE servers.
    #[arg(long, env = "SIGNAL_NO_TURN")]
    no_turn: bool,
    /// UDP port of the built-in STUN/TURN server (on the host of --listen); TURN over TCP
    /// is served on the same TCP port unless --no-turn-tcp.
    #[arg(long, env = "SIGNAL_TURN_PORT", default_value_t = 3478)]
    turn_port: u16,
    /// Serve TURN over UDP only (no TCP listener, no `?transport=tcp` URL on `ready`).
    #[arg(long, env = "SIGNAL_NO_TURN_TCP")]
    no_turn_tcp: bool,
    /// TCP port of TURN over TLS (`turns:`), served when signal has a certificate
    /// (--tls-cert), on the host of --listen.
    #[arg(long, env = "SIGNAL_TURN_TLS_PORT", default_value_t = 5349)]
    turn_tls_port: u16,
    /// Serve no TURN over TLS even with a certificate (no `turns:` URL on `ready`).
    #[arg(long, env = "SIGNAL_NO_TURN_TLS")]
    no_turn_tls: bool,
    /// TURN-over-TCP (and over-TLS) connections open at once, each; more are closed at
    /// accept.
    #[arg(long, env = "SIGNAL_TURN_MAX_TCP", default_value_t = 512)]
    turn_max_tcp: usize,
    /// Ports relay sockets are taken from, FIRST-LAST.
    #[arg(long, env = "SIGNAL_TURN_RELAY_PORTS", default_value = "49152-65535")]
    turn_relay_ports: String,
    /// Public address announced for relays and in the ICE URLs, for hosts behind a 1:1 NAT
    /// (cloud VMs). Unset: the host of --listen (or, for 0.0.0.0, the address of the
    /// default route) for relays, and the host clients used to reach signal for URLs.
    #[arg(long, env = "SIGNAL_TURN_PUBLIC_IP")]
    turn_public_ip: Option<std::net::IpAddr>,
    /// Host name put in the ICE URLs instead (e.g. turn.example.com).
    #[arg(long, env = "SIGNAL_TURN_HOST")]
    turn_host: Option<String>,
    /// Secret TURN credentials are signed with (coturn's --static-auth-secret). Unset: a
    /// random one per start (credentials handed out before a restart stop working).
    #[arg(long, env = "SIGNAL_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// External TURN server URLs (repeatable or comma separated), e.g.
    /// turn:turn.example.com:3478?transport=udp: signal hands out credentials for it
    /// (needs --turn-secret) and runs no STUN/TURN of its own.
    #[arg(
        long,
        env = "SIGNAL_TURN_URL",
        value_delimiter = ',',
        requires = "turn_secret"
    )]
    turn_url: Vec<String>,
    /// Seconds a credential handed out on `ready` stays valid.
    #[arg(long, env = "SIGNAL_TURN_TTL_SECS", default_value_t = 24 * 3600)]
    turn_ttl_secs: u64,
    /// Live allocations one credential may hold (each client gets its own credential).
    #[arg(
        long,
        env = "SIGNAL_TURN_MAX_ALLOCATIONS_PER_USER",
        default_value_t = 8
    )]
    turn_max_allocations_per_user: usize,
    /// Live allocations in total.
    #[arg(long, env = "SIGNAL_TURN_MAX_ALLOCATIONS", default_value_t = 10_000)]
    turn_max_allocations: usize,
    /// Kilobits per second one allocation may relay in each direction (0: no limit).
    #[arg(long, env = "SIGNAL_TURN_MAX_KBPS", default_value_t = 5_000)]
    turn_max_kbps: u64,
    /// Peer range the relay may send to although the default policy refuses it (loopback,
    /// private, link-local, multicast, own addresses); repeatable or comma separated.
    #[arg(long, env = "SIGNAL_TURN_ALLOW_PEER", value_delimiter = ',')]
    turn_allow_peer: Vec<signal::turn::Cidr>,
    /// Realm of the long-term credential mechanism.
    #[arg(long, env = "SIGNAL_TURN_REALM", default_value = "duet")]
    turn_realm: String,
}

/// What the TURN flags amount to: the `ready` announcement and, if built in, the server.
struct TurnPlan {
    ice: Option<signal::IceConfig>,
    server: Option<(std::net::SocketAddr, signal::TurnConfig)>,
}

fn parse_ports(range: &str) -> anyhow::Result<std::ops::RangeInclusive<u16>> {
    let (first, last) = range
        .split_once('-')
        .context("--turn-relay-ports must be FIRST-LAST")?;
    let (first, last): (u16, u16) = (first.trim().parse()?, last.trim().parse()?);
    anyhow::ensure!(
        first > 0 && first <= last,
        "--turn-relay-ports: FIRST must be 1..=LAST"
    );
    Ok(first..=last)
}

/// The address of the interface the default route leaves by (no packet is sent).
fn default_route_ip(v4: bool) -> Option<std::net::IpAddr> {
    let (bind, probe) = if v4 {
        ("0.0.0.0:0", "198.51.100.1:9")
    } else {
        ("[::]:0", "[2001:db8::1]:9")
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket.connect(probe).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

fn plan_turn(args: &TurnArgs, listen: SocketAddr, tls: bool) -> anyhow::Result<TurnPlan> {
    if args.no_turn {
        return Ok(TurnPlan {
            ice: None,
            server: None,
        });
    }
    anyhow::ensure!(
        args.turn_secret.as_deref() != Some(""),
        "--turn-secret is empty"
    );
    let secret = args
        .turn_secret
        .as_deref()
        .map_or_else(signal::TurnSecret::random, signal::TurnSecret::new);
    let credential_ttl = Duration::from_secs(args.turn_ttl_secs.max(60));
    if !args.turn_url.is_empty() {
        return Ok(TurnPlan {
            ice: Some(signal::IceConfig {
                offer: signal::IceOffer::External {
                    urls: args.turn_url.clone(),
                },
                secret,
                credential_ttl,
            }),
            server: None,
        });
    }
    let bind_ip = listen.ip();
    let relay_ip = match args.turn_public_ip {
        Some(ip) => ip,
        None if bind_ip.is_unspecified() => default_route_ip(bind_ip.is_ipv4())
            .context("cannot tell this host's address for TURN relays; set --turn-public-ip")?,
        None => bind_ip,
    };
    let host = args
        .turn_host
        .clone()
        .or_else(|| {
            args.turn_public_ip.map(|ip| match ip {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            })
        })
        .or_else(|| {
            (!bind_ip.is_unspecified()).then(|| match bind_ip {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            })
        });
    let config = signal::TurnConfig {
        realm: args.turn_realm.clone(),
        secret: secret.clone(),
        relay_bind_ip: bind_ip,
        relay_ip,
        relay_ports: parse_ports(&args.turn_relay_ports)?,
        max_allocations_per_user: args.turn_max_allocations_per_user.max(1),
        max_allocations: args.turn_max_allocations.max(1),
        max_bytes_per_sec_per_allocation: args.turn_max_kbps.saturating_mul(1000) / 8,
        peers: signal::PeerPolicy {
            allow: args.turn_allow_peer.clone(),
            own: Vec::new(),
        },
        max_tcp_connections: args.turn_max_tcp.max(1),
    };
    Ok(TurnPlan {
        ice: Some(signal::IceConfig {
            offer: signal::IceOffer::Builtin {
                host,
                port: args.turn_port,
                tcp: !args.no_turn_tcp,
                tls_port: (tls && !args.no_turn_tls).then_some(args.turn_tls_port),
            },
            secret,
            credential_ttl,
        }),
        server: Some((SocketAddr::new(bind_ip, args.turn_port), config)),
    })
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the token for ROOM (and a link with --url) for a server run with --room-secret.
    Token {
        /// The server's room secret.
        #[arg(long, env = "SIGNAL_ROOM_SECRET", hide_env_values = true)]
        secret: String,
        /// Print a browser link instead: URL?room=ROOM&token=TOKEN (e.g. https://host/).
        #[arg(long)]
        url: Option<String>,
        /// The room name.
        room: String,
    },
}

/// Percent-encodes `s` for a URL query value.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn print_token(secret: &str, room: &str, url: Option<&str>) -> anyhow::Result<()> {
    anyhow::ensure!(!secret.is_empty(), "the secret is empty");
    let token = signal::room_token(secret, room);
    match url {
        None => println!("{token}"),
        Some(url) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            println!("{url}{sep}room={}&token={token}", query_escape(room));
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    large_buffers_go_back_to_the_system();
    let args = Args::parse();
    if let Some(Command::Token { secret, url, room }) = &args.command {
        return print_token(secret, room, url.as_deref());
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            signal::Tls::from_pem_files(cert, key).context("cannot load the TLS certificate")?,
        ),
        _ => None,
    };
    if args.room_secret.as_deref() == Some("") {
        anyhow::bail!("--room-secret is empty; leave it unset to let anyone join any room");
    }
    tracing::info!(
        tls = tls.is_some(),
        allow_origin = ?args.allow_origin,
        max_connections_per_ip = args.max_connections_per_ip,
        trust_proxy = args.trust_proxy,
        room_secret = args.room_secret.is_some(),
        "access settings"
    );
    let turn = plan_turn(&args.turn, args.listen, tls.is_some())?;
    tracing::info!(
        builtin = turn.server.is_some(),
        external = !args.turn.turn_url.is_empty(),
        allow_peer = ?args.turn.turn_allow_peer,
        "TURN settings"
    );
    let mut config = signal::Config {
        limits: signal::Limits {
            max_rooms_per_connection: args.max_rooms_per_connection,
            max_room_name_bytes: args.max_room_name_bytes,
            rate_per_sec: args.rate,
            rate_burst: args.burst,
            seat_hold: Duration::from_secs(args.seat_hold_secs),
        },
        max_message_bytes: args.max_message_bytes,
        max_connections: args.max_connections,
        ping_interval: Duration::from_secs(args.ping_secs.max(1)),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
        read_buffer_bytes: args.read_buffer_bytes.max(256),
        handshake_timeout: Duration::from_secs(args.handshake_timeout_secs.max(1)),
        send_timeout: Duration::from_secs(args.send_timeout_secs.max(1)),
        outbox_max_bytes: args.outbox_max_bytes.max(1024),
        max_write_buffer_bytes: args.max_write_buffer_bytes,
        max_pending_connections: args.max_pending_connections.max(1),
        max_pending_per_ip: args.max_pending_per_ip,
        refusal_log_interval: Duration::from_secs(args.refusal_log_secs.max(1)),
        tls: tls.clone(),
        origins: signal::OriginPolicy::new(&args.allow_origin),
        max_connections_per_ip: args.max_connections_per_ip,
        trust_proxy: args.trust_proxy,
        room_secret: args.room_secret.as_deref().map(signal::RoomSecret::new),
        pages: Some(signal::web::pages()),
        ice: turn.ice,
        ..signal::Config::default()
    };
    fit_open_files(&mut config);
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let turn_server = match turn.server {
            Some((addr, turn_config)) => {
                let socket = tokio::net::UdpSocket::bind(addr)
                    .await
                    .with_context(|| format!("cannot bind STUN/TURN on udp {addr}"))?;
                let udp_port = socket.local_addr()?.port();
                let tcp = match &config.ice {
                    Some(signal::IceConfig {
                        offer: signal::IceOffer::Builtin { tcp: true, .. },
                        ..
                    }) => {
                        // The same port over TCP (with `--turn-port 0`, the one UDP got).
                        let tcp_addr = SocketAddr::new(addr.ip(), udp_port);
                        Some(
                            tokio::net::TcpListener::bind(tcp_addr)
                                .await
                                .with_context(|| {
                                    format!("cannot bind TURN on tcp {tcp_addr} (--no-turn-tcp turns it off)")
                                })?,
                        )
                    }
                    _ => None,
                };
                let tls_listener = match (&config.ice, &tls) {
                    (
                        Some(signal::IceConfig {
                            offer:
                                signal::IceOffer::Builtin {
                                    tls_port: Some(tls_port),
                                    ..
                                },
                            ..
                        }),
                        Some(tls),
                    ) => {
                        let tls_addr = SocketAddr::new(addr.ip(), *tls_port);
                        let listener = tokio::net::TcpListener::bind(tls_addr)
                            .await
                            .with_context(|| {
                                format!("cannot bind TURN over TLS on tcp {tls_addr} (--no-turn-tls turns it off)")
                            })?;
                        Some((listener, tls.turn_acceptor()))
                    }
                    _ => None,
                };
                let tls_port = match &tls_listener {
                    Some((listener, _)) => Some(listener.local_addr()?.port()),
                    None => None,
                };
                let server =
                    signal::TurnServer::start_with_streams(socket, tcp, tls_listener, turn_config)
                        .await?;
                // `--turn-port 0` (and `--turn-tls-port 0`) take any free port; announce the
                // ones taken.
                if let Some(signal::IceConfig {
                    offer:
                        signal::IceOffer::Builtin {
                            port,
                            tls_port: announced_tls,
                            ..
                        },
                    ..
                }) = &mut config.ice
                {
                    *port = server.local_addr().port();
                    *announced_tls = tls_port;
                }
                Some(server)
            }
            None => None,
        };
        tokio::spawn(reload_on_hangup(tls));
        let served = signal::serve(listener, config, shutdown_signal())
            .await
            .context("server failed");
        if let Some(turn_server) = turn_server {
            turn_server.close().await;
        }
        served
    })
}

/// Allocations at least this large get their own mapping, returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: libc::c_int = 32 * 1024;

/// glibc keeps freed heap memory unless it is at the top of the heap, and its threshold for
/// giving large blocks their own mapping rises to 32 MiB as such blocks are freed. So a wave
/// of large messages queued for slow readers (up to 64 KiB each, 256 KiB per outbox) left
/// ~23 MB held after they were gone. A fixed 32 KiB threshold maps such messages (and grown
/// write buffers) on their own, so they go back when freed (docs/benchmarks.md, issue 14).
/// Signalling messages are mostly far smaller and stay on the heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn large_buffers_go_back_to_the_system() {
    // SAFETY: mallopt only sets a malloc parameter; it is called first thing in main, before
    // any other thread exists or any allocation depends on the old value.
    let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) };
    debug_assert_eq!(set, 1, "mallopt(M_MMAP_THRESHOLD) refused");
}

/// Other allocators (musl, macOS) are left as they are.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn large_buffers_go_back_to_the_system() {}

/// Raises the open-file limit as far as allowed, then lowers `--max-connections` (and
/// `--max-pending-connections`) if they would run out of descriptors before their own limit
/// answers: "server full" must fire before `accept` starts failing.
fn fit_open_files(config: &mut signal::Config) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            match rlimit::getrlimit(rlimit::Resource::NOFILE) {
                Ok((soft, _)) => soft,
                Err(_) => return,
            }
        }
    };
    tracing::info!(limit, "open-file limit");
    let pending_before = config.max_pending_connections;
    if let Some(before) = config.fit_to_open_files(limit) {
        tracing::warn!(
            open_file_limit = limit,
            requested = before,
            max_connections = config.max_connections,
            "--max-connections lowered to fit the open-file limit; raise LimitNOFILE (systemd) \
             or `ulimit -n` to allow more"
        );
    }
    if config.max_pending_connections != pending_before {
        tracing::warn!(
            open_file_limit = limit,
            requested = pending_before,
            max_pending_connections = config.max_pending_connections,
            "--max-pending-connections lowered to fit the open-file limit"
        );
    }
}

/// Re-reads the certificate files on each SIGHUP (`systemctl reload signal`, certbot's
/// deploy hook). Without TLS, SIGHUP is only logged, so a reload never kills the server.
async fn reload_on_hangup(tls: Option<signal::Tls>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; certificate reload disabled");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            match &tls {
                None => tracing::info!("SIGHUP: no TLS certificate to reload"),
                Some(tls) => match tls.reload() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Err(e) => tracing::warn!(
                        error = %e,
                        "SIGHUP: certificate reload failed; still serving the previous one"
                    ),
                },
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tls;
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
