//! `signal-load`: a load generator for any server speaking the seed's signalling protocol.
//!
//! It opens `--rooms` rooms of two WebSocket peers, joins them, then keeps candidate-sized
//! messages flowing and reports relayed messages per second and one-hop latency percentiles
//! (sender → server → receiver, both ends in this process on one monotonic clock). Given
//! `--server-pid`, it also reads the server's CPU time and RSS from `/proc` and reports CPU µs
//! per relayed message and RSS KiB per open connection.
//!
//! Modes: `paced` sends at a fixed total `--rate`; `pingpong` bounces one message per room as
//! fast as the server relays it (throughput); `hold` only connects and joins `--connections`
//! sockets and measures memory; `attack` runs one bounded `--attack` against the server
//! (issue 14) while a legitimate pair, from 127.0.0.2, exchanges candidates, and reports the
//! server's RSS before, at peak and after, its CPU, and the pair's relay latency; `turn`
//! relays video-like traffic through a TURN server (signal's or coturn) and reports its CPU
//! per relayed packet (see [`turn_load`]).
//!
//! `wss://` URLs work in every mode; the server's certificate is not checked (see [`tls`]).

mod tls;
mod turn_load;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Paced,
    Pingpong,
    Hold,
    Attack,
    Turn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Attack {
    /// One connection sends pings as fast as it can and never reads.
    PingFlood,
    /// `--rooms` rooms whose receiver never reads, each sent offers of the largest size.
    SlowReaders,
    /// `--connections` silent TCP connections from one address (never send a byte).
    Silent,
    /// `--connections` connections that complete the TLS handshake (for `wss://`) and then send
    /// their request head one byte every 500 ms; reports how long the server held them.
    Drip,
}

/// Load generator for seed-protocol signalling servers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Server URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/")]
    url: String,
    /// What to measure.
    #[arg(long, value_enum, default_value = "paced")]
    mode: Mode,
    /// Rooms of two peers (paced, pingpong).
    #[arg(long, default_value_t = 1000)]
    rooms: usize,
    /// Total messages per second sent by all peers (paced).
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Sockets to open (hold).
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Seconds of measurement.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of traffic before measuring.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// PID of the server process, to read its CPU time and RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Which attack (mode attack).
    #[arg(long, value_enum, default_value = "ping-flood")]
    attack: Attack,
    /// TURN server to relay through, ip:port (turn).
    #[arg(long, default_value = "127.0.0.1:3478")]
    turn: String,
    /// The TURN server's REST-credential secret (signal's --turn-secret, coturn's
    /// --static-auth-secret) (turn).
    #[arg(long, default_value = "")]
    turn_secret: String,
    /// The TURN server's realm (turn).
    #[arg(long, default_value = "duet")]
    turn_realm: String,
    /// Relay allocations, one client each (turn).
    #[arg(long, default_value_t = 100)]
    allocations: usize,
    /// Packets per second through each allocation (turn).
    #[arg(long, default_value_t = 100)]
    pps: u64,
    /// Bytes per packet (turn; video-like: 1000).
    #[arg(long, default_value_t = 1000)]
    size: usize,
    /// Label for the result line.
    #[arg(long, default_value = "server")]
    label: String,
}

/// A candidate message as a browser sends it, plus a send timestamp `t` (µs since start).
fn candidate(room: &str, t_us: u64) -> String {
    format!(
        r#"{{"type":"candidate","room":"{room}","candidate":{{"candidate":"candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag sXq8 network-cost 999","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"sXq8"}},"t":{t_us}}}"#
    )
}

fn timestamp_of(text: &str) -> Option<u64> {
    let at = text.rfind("\"t\":")? + 4;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[derive(Debug, Clone, Copy, Default)]
struct ProcSample {
    cpu_ticks: u64,
    user_ticks: u64,
    rss_kib: u64,
    /// Time on a CPU, ns, summed over the process's threads (`/proc/PID/task/*/schedstat`):
    /// exact where `cpu_ticks` counts 10 ms ticks. `None` without schedstats.
    cpu_ns: Option<u64>,
}

fn sample(pid: Option<u32>) -> Option<ProcSample> {
    let pid = pid?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(ProcSample {
        cpu_ticks: utime + stime,
        user_ticks: utime,
        rss_kib,
        cpu_ns: cpu_ns(pid),
    })
}

/// The first field of each `/proc/PID/task/TID/schedstat` (ns spent running), summed.
fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread that ended between the listing and the read has nothing more to add.
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Clock ticks per second for /proc CPU times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// The server's CPU use between two samples `elapsed_s` apart, in percent of one core.
fn cpu_percent(from: Option<ProcSample>, to: Option<ProcSample>, elapsed_s: f64) -> String {
    match (from, to) {
        (Some(a), Some(b)) => format!(
            "{:.0}",
            (b.cpu_ticks - a.cpu_ticks) as f64 / TICKS_PER_SEC / elapsed_s * 100.0
        ),
        _ => "n/a".to_owned(),
    }
}

/// How to speak TLS to `url`: `None` for `ws://`.
fn connector(url: &str) -> anyhow::Result<Option<tokio_tungstenite::Connector>> {
    Ok(if url.starts_with("wss://") {
        Some(tokio_tungstenite::Connector::Rustls(tls::any_certificate()?))
    } else {
        None
    })
}

/// The `ip:port` of a `ws://` or `wss://` URL.
fn socket_addr(url: &str) -> anyhow::Result<std::net::SocketAddr> {
    let host = url
        .trim_start_matches("ws://")
        .trim_start_matches("wss://")
        .split('/')
        .next()
        .context("url without host")?;
    host.parse().context("url host must be ip:port")
}

async fn connect(url: &str) -> anyhow::Result<Ws> {
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(url, None, false, connector(url)?)
            .await
            .with_context(|| format!("connecting to {url}"))?;
    Ok(ws)
}

async fn recv_type(ws: &mut Ws, want: &str) -> anyhow::Result<()> {
    let needle = format!("\"type\":\"{want}\"");
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains(&needle) => return Ok(()),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => bail!("while waiting for {want}: {e}"),
            Ok(None) => bail!("connection closed while waiting for {want}"),
            Err(_) => bail!("no {want} within 30 s"),
        }
    }
}

/// Opens `rooms` pairs and waits for both `ready`s of each.
async fn open_rooms(url: &str, rooms: usize) -> anyhow::Result<Vec<(String, Ws, Ws)>> {
    let mut out = Vec::with_capacity(rooms);
    for i in 0..rooms {
        let room = format!("load-{i}");
        let mut a = connect(url).await?;
        let mut b = connect(url).await?;
        let join = format!(r#"{{"type":"join","room":"{room}"}}"#);
        a.send(Message::Text(join.clone().into())).await?;
        b.send(Message::Text(join.into())).await?;
        recv_type(&mut a, "ready").await?;
        recv_type(&mut b, "ready").await?;
        out.push((room, a, b));
    }
    Ok(out)
}

struct Window {
    measuring: AtomicBool,
    received: AtomicU64,
    stop: AtomicBool,
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 60 s, 3 significant digits. The bounds are valid constants.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

async fn peer(
    mut ws: Ws,
    room: String,
    start: Instant,
    send_every: Option<Duration>,
    first_ball: bool,
    window: Arc<Window>,
) -> Histogram<u64> {
    let mut hist = new_histogram();
    let mut tick = send_every.map(|every| {
        // Spread first sends across one interval so peers do not fire in lockstep.
        let offset = every.mul_f64(fastrand_fraction(&room, first_ball));
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        t
    });
    if send_every.is_none() && first_ball {
        let now = start.elapsed().as_micros() as u64;
        if ws
            .send(Message::Text(candidate(&room, now).into()))
            .await
            .is_err()
        {
            return hist;
        }
    }
    loop {
        if window.stop.load(Ordering::Relaxed) {
            break;
        }
        let tick_fut = async {
            match tick.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = tick_fut => {
                let now = start.elapsed().as_micros() as u64;
                if ws.send(Message::Text(candidate(&room, now).into())).await.is_err() {
                    break;
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let now = start.elapsed().as_micros() as u64;
                    if let Some(sent) = timestamp_of(&t)
                        && window.measuring.load(Ordering::Relaxed)
                    {
                        window.received.fetch_add(1, Ordering::Relaxed);
                        let _ = hist.record(now.saturating_sub(sent).max(1));
                    }
                    if send_every.is_none() && ws.send(Message::Text(candidate(&room, now).into())).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    let _ = ws.close(None).await;
    hist
}

/// A deterministic fraction in [0, 1) from the room name, so runs are repeatable.
fn fastrand_fraction(room: &str, salt: bool) -> f64 {
    let mut h: u64 = if salt {
        0x9e37_79b9_7f4a_7c15
    } else {
        0xc2b2_ae3d_27d4_eb4f
    };
    for b in room.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    // One thread: the load generator takes one core, the server the other.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    match args.mode {
        Mode::Hold => hold(&args).await,
        Mode::Paced | Mode::Pingpong => traffic(&args).await,
        Mode::Attack => attack(&args).await,
        Mode::Turn => turn_load::turn(&args).await,
    }
}

/// A WebSocket from 127.0.0.2 (another loopback address than the attacker's), optionally
/// with a small receive buffer.
async fn connect_from(url: &str, local: [u8; 4], recv_buffer: Option<u32>) -> anyhow::Result<Ws> {
    let addr = socket_addr(url)?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(std::net::SocketAddr::from((local, 0)))?;
    let stream = socket.connect(addr).await?;
    let (ws, _) =
        tokio_tungstenite::client_async_tls_with_config(url, stream, None, connector(url)?).await?;
    Ok(ws)
}

/// One dripping connection: TLS handshake first for `wss://`, then the request head one byte
/// every 500 ms. Returns how long the server kept it from the TCP connect, or `None` when it
/// was refused before any byte of the head went out, or is still open at `stop`.
async fn drip_one(url: String, stop: Arc<AtomicBool>) -> anyhow::Result<Option<Duration>> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = socket_addr(&url)?;
    let tcp = TcpStream::connect(addr).await?;
    let opened = Instant::now();
    let mut stream: Box<dyn Stream> = if url.starts_with("wss://") {
        let tls = tokio_rustls::TlsConnector::from(tls::any_certificate()?);
        let name = rustls::pki_types::ServerName::from(addr.ip());
        match tls.connect(name, tcp).await {
            Ok(s) => Box::new(s),
            Err(_) => return Ok(None),
        }
    } else {
        Box::new(tcp)
    };
    let head = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         X-Padding: {}\r\n\r\n",
        "p".repeat(4000)
    );
    let mut buf = [0u8; 512];
    for (i, byte) in head.bytes().enumerate() {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if stream.write_all(&[byte]).await.is_err() {
            return Ok((i > 0).then(|| opened.elapsed()));
        }
        // Anything the server answers (an error page), or its close, ends the drip.
        match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Ok(Some(opened.elapsed())),
            Ok(Ok(n)) => {
                // Refused at accept (pending caps): not a connection the server held.
                let answer = &buf[..n];
                if answer.starts_with(b"HTTP/1.1 429") || answer.starts_with(b"HTTP/1.1 503") {
                    return Ok(None);
                }
                // Read on until the close.
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return Ok(Some(opened.elapsed())),
                        Ok(_) => {}
                    }
                }
            }
            Err(_) => {}
        }
    }
    Ok(None)
}

/// A byte stream, plain or TLS.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

async fn join_pair(url: &str, room: &str, from: [u8; 4], slow: bool) -> anyhow::Result<(Ws, Ws)> {
    let mut a = connect_from(url, from, None).await?;
    let mut b = connect_from(url, from, slow.then_some(4096)).await?;
    let join = format!(r#"{{"type":"join","room":"{room}"}}"#);
    a.send(Message::Text(join.clone().into())).await?;
    b.send(Message::Text(join.into())).await?;
    recv_type(&mut a, "ready").await?;
    recv_type(&mut b, "ready").await?;
    Ok((a, b))
}

/// Runs `--attack` for `--duration` seconds while a legitimate pair from 127.0.0.2 bounces a
/// candidate 20 times a second each way; samples the server every 100 ms.
async fn attack(args: &Args) -> anyhow::Result<()> {
    let pid = args.server_pid;
    let before = sample(pid);
    let (legit_a, legit_b) = join_pair(&args.url, "legit", [127, 0, 0, 2], false).await?;
    let window = Arc::new(Window {
        measuring: AtomicBool::new(true),
        received: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let start = Instant::now();
    let ta = tokio::spawn(peer(
        legit_a,
        "legit".into(),
        start,
        None,
        true,
        window.clone(),
    ));
    let tb = tokio::spawn(peer(
        legit_b,
        "legit".into(),
        start,
        None,
        false,
        window.clone(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let url = args.url.clone();
    let (kind, rooms, conns) = (args.attack, args.rooms, args.connections);
    let stop2 = stop.clone();
    let attacker = tokio::spawn(async move {
        let result: anyhow::Result<u64> = match kind {
            Attack::PingFlood => async {
                let mut ws = connect(&url).await?;
                let mut sent = 0u64;
                while !stop2.load(Ordering::Relaxed) {
                    let ping = ws.send(Message::Ping(vec![0x5a; 125].into()));
                    match tokio::time::timeout(Duration::from_secs(1), ping).await {
                        Ok(Ok(())) => sent += 1,
                        _ => {
                            // Closed by the server: open another connection and go on.
                            ws = connect(&url).await?;
                        }
                    }
                    if sent.is_multiple_of(64) {
                        tokio::task::yield_now().await;
                    }
                }
                Ok(sent)
            }
            .await,
            Attack::SlowReaders => async {
                let mut pairs = Vec::new();
                for i in 0..rooms {
                    pairs.push(join_pair(&url, &format!("slow-{i}"), [127, 0, 0, 1], true).await?);
                }
                let sdp = "s".repeat(64 * 1024 - 200);
                let mut sent = 0u64;
                'outer: for _ in 0..400 {
                    for (i, (a, _)) in pairs.iter_mut().enumerate() {
                        if stop2.load(Ordering::Relaxed) {
                            break 'outer;
                        }
                        let msg = format!(
                            r#"{{"type":"offer","room":"slow-{i}","offer":{{"type":"offer","sdp":"{sdp}"}}}}"#
                        );
                        if a.send(Message::Text(msg.into())).await.is_ok() {
                            sent += 1;
                        }
                    }
                }
                Ok(sent)
            }
            .await,
            Attack::Silent => async {
                let mut held = Vec::new();
                for _ in 0..conns {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(s) = TcpStream::connect(socket_addr(&url)?).await {
                        held.push(s);
                    }
                }
                while !stop2.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(held.len() as u64)
            }
            .await,
            Attack::Drip => async {
                let drips: Vec<_> = (0..conns)
                    .map(|_| tokio::spawn(drip_one(url.clone(), stop2.clone())))
                    .collect();
                let mut held = Vec::new();
                for drip in drips {
                    if let Ok(Ok(Some(lasted))) = drip.await {
                        held.push(lasted);
                    }
                }
                held.sort();
                if let (Some(first), Some(last)) = (held.first(), held.last()) {
                    println!(
                        "DRIP closed_by_server={} held_min_s={:.2} held_median_s={:.2} held_max_s={:.2}",
                        held.len(),
                        first.as_secs_f64(),
                        held[held.len() / 2].as_secs_f64(),
                        last.as_secs_f64()
                    );
                }
                Ok(held.len() as u64)
            }
            .await,
        };
        result
    });
    let mut peak = before.map_or(0, |s| s.rss_kib);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(args.duration) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(s) = sample(pid) {
            peak = peak.max(s.rss_kib);
        }
    }
    let during = sample(pid);
    stop.store(true, Ordering::Relaxed);
    let sent = attacker.await.map_err(|e| anyhow::anyhow!("{e}"))??;
    let elapsed = t0.elapsed().as_secs_f64();
    window.stop.store(true, Ordering::Relaxed);
    let mut hist = new_histogram();
    for t in [ta, tb] {
        if let Ok(h) = t.await {
            let _ = hist.add(h);
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = sample(pid);
    let cpu_pct = cpu_percent(before, during, elapsed);
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "RESULT mode=attack attack={:?} label={} attack_units={sent} rss_before_kib={} rss_peak_kib={peak} rss_after_kib={} server_cpu_pct={cpu_pct} legit_relayed={} legit_p50_ms={:.3} legit_p99_ms={:.3} legit_max_ms={:.3}",
        args.attack,
        args.label,
        before.map_or(0, |s| s.rss_kib),
        after.map_or(0, |s| s.rss_kib),
        hist.len(),
        ms(0.5),
        ms(0.99),
        hist.max() as f64 / 1000.0,
    );
    if hist.is_empty() {
        bail!("the legitimate pair relayed nothing during the attack");
    }
    Ok(())
}

async fn hold(args: &Args) -> anyhow::Result<()> {
    let before = sample(args.server_pid);
    let mut sockets = Vec::with_capacity(args.connections);
    let t0 = Instant::now();
    for i in 0..args.connections {
        let mut ws = connect(&args.url).await?;
        let join = format!(r#"{{"type":"join","room":"hold-{}"}}"#, i / 2);
        ws.send(Message::Text(join.into())).await?;
        sockets.push(ws);
    }
    // Let the server settle, then read every socket's pending `ready`.
    for ws in sockets.iter_mut().step_by(1) {
        let _ = tokio::time::timeout(Duration::from_millis(50), ws.next()).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = sample(args.server_pid);
    let connect_s = t0.elapsed().as_secs_f64();
    let per_conn = match (before, after) {
        (Some(b), Some(a)) => format!(
            "{:.2}",
            (a.rss_kib.saturating_sub(b.rss_kib)) as f64 / args.connections as f64
        ),
        _ => "n/a".to_owned(),
    };
    println!(
        "RESULT mode=hold label={} connections={} held=yes connect_s={connect_s:.1} rss_before_kib={} rss_after_kib={} rss_kib_per_conn={per_conn}",
        args.label,
        args.connections,
        before.map_or(0, |s| s.rss_kib),
        after.map_or(0, |s| s.rss_kib),
    );
    for mut ws in sockets {
        let _ = ws.close(None).await;
    }
    Ok(())
}

async fn traffic(args: &Args) -> anyhow::Result<()> {
    let start = Instant::now();
    let rooms = open_rooms(&args.url, args.rooms).await?;
    let window = Arc::new(Window {
        measuring: AtomicBool::new(false),
        received: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let send_every = match args.mode {
        Mode::Paced => {
            let per_peer = args.rate as f64 / (2 * args.rooms) as f64;
            Some(Duration::from_secs_f64(1.0 / per_peer.max(0.001)))
        }
        _ => None,
    };
    let mut tasks = Vec::with_capacity(2 * rooms.len());
    for (room, a, b) in rooms {
        tasks.push(tokio::spawn(peer(
            a,
            room.clone(),
            start,
            send_every,
            true,
            window.clone(),
        )));
        tasks.push(tokio::spawn(peer(
            b,
            room,
            start,
            send_every,
            false,
            window.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let cpu0 = sample(args.server_pid);
    let t0 = Instant::now();
    window.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    window.measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = sample(args.server_pid);
    let received = window.received.load(Ordering::Relaxed);
    window.stop.store(true, Ordering::Relaxed);
    let mut hist = new_histogram();
    for t in tasks {
        if let Ok(h) = t.await {
            let _ = hist.add(h);
        }
    }
    let rate = received as f64 / elapsed;
    let cpu_us_per_msg = match (cpu0, cpu1) {
        (Some(a), Some(b)) if received > 0 => {
            format!(
                "{:.2}",
                (b.cpu_ticks - a.cpu_ticks) as f64 / TICKS_PER_SEC * 1e6 / received as f64
            )
        }
        _ => "n/a".to_owned(),
    };
    let user_us_per_msg = match (cpu0, cpu1) {
        (Some(a), Some(b)) if received > 0 => format!(
            "{:.2}",
            (b.user_ticks - a.user_ticks) as f64 / TICKS_PER_SEC * 1e6 / received as f64
        ),
        _ => "n/a".to_owned(),
    };
    let cpu_pct = cpu_percent(cpu0, cpu1, elapsed);
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "RESULT mode={:?} label={} rooms={} target_rate={} relayed_per_s={rate:.0} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} server_cpu_pct={cpu_pct} server_cpu_us_per_msg={cpu_us_per_msg} server_user_us_per_msg={user_us_per_msg} server_rss_kib={}",
        args.mode,
        args.label,
        args.rooms,
        if args.mode == Mode::Paced {
            args.rate.to_string()
        } else {
            "max".to_owned()
        },
        ms(0.5),
        ms(0.99),
        ms(0.999),
        cpu1.map_or(0, |s| s.rss_kib),
    );
    if received == 0 {
        bail!("no message was relayed during the measurement window");
    }
    Ok(())
}
