//! Calls in the network lab (`netlab`): a public net with `signal` and a STUN server, homes
//! behind NAT routers, and `duet call` processes running inside the homes.
//!
//! Lab tests take a [`call_slot`] (a [`browser_call_slot`] when a browser takes part) so that
//! only as many calls run at once as the machine carries without changing what they measure
//! (frame rates under loss or a cap).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use netlab::{Home, Host, Lab, LabError, Nat};
use serde_json::Value;

use super::slots::{Slot, browser_call_slot, call_slot};
use super::{KillOnDrop, target_dir, unique_room};

/// The public server's address in the lab.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// Where `signal` listens on it.
pub const SIGNAL_PORT: u16 = 8080;
/// Where the STUN server (coturn, `--stun-only`) listens on it.
pub const STUN_PORT: u16 = 3478;

/// A new lab, or `None` (after a loud message) where namespaces cannot be made, unless
/// `DUET_REQUIRE_NETNS=1` (set by `scripts/test.sh` when it runs as root) makes that a failure.
pub fn lab(tag: &str) -> Option<Lab> {
    match Lab::new(tag) {
        Ok(lab) => Some(lab),
        Err(LabError::Unavailable(why)) => {
            assert!(
                std::env::var("DUET_REQUIRE_NETNS").as_deref() != Ok("1"),
                "the network lab is required (DUET_REQUIRE_NETNS=1) but unavailable: {why}"
            );
            eprintln!("*** SKIPPED: the network lab is unavailable here: {why} ***");
            None
        }
        Err(e) => panic!("building the lab failed: {e}"),
    }
}

/// The public net's servers: `signal` (in-process, on a thread inside the namespace) and
/// coturn as a STUN server.
pub struct Servers {
    pub host: Host,
    signal: Option<signal::HostedSignal>,
    _stun: KillOnDrop,
}

impl Servers {
    /// `ws://` URL of the signal server.
    pub fn signal_url(&self) -> String {
        format!("ws://{SERVER_IP}:{SIGNAL_PORT}/")
    }

    /// The STUN server's URL.
    pub fn stun_url(&self) -> String {
        format!("stun:{SERVER_IP}:{STUN_PORT}")
    }

    /// Stops `signal` (its clients see the connection close), waits `down`, and starts a new
    /// one on the same address, with none of the old one's state.
    pub fn restart_signal(&mut self, down: Duration) {
        drop(self.signal.take());
        std::thread::sleep(down);
        self.signal = Some(start_signal(&self.host));
    }
}

fn start_signal(host: &Host) -> signal::HostedSignal {
    let addr = SocketAddr::from((SERVER_IP, SIGNAL_PORT));
    host.run(move || signal::HostedSignal::start(addr, signal::Config::default()))
        .expect("enter the public namespace")
        .expect("signal starts in the lab")
}

/// Starts `signal` and a STUN server on [`SERVER_IP`].
pub fn servers(lab: &Lab) -> Servers {
    let host = lab.public_host("srv", SERVER_IP).expect("public host");
    let signal = start_signal(&host);
    let log = target_dir().join(format!("lab-coturn-{}.log", std::process::id()));
    let stun = host
        .command("turnserver")
        .args([
            "-n",
            "--stun-only",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "--simple-log",
        ])
        .arg(format!("--listening-ip={SERVER_IP}"))
        .arg(format!("--listening-port={STUN_PORT}"))
        .arg(format!("--log-file={}", log.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("coturn (turnserver) starts: scripts/deps.sh test installs it");
    Servers {
        host,
        signal: Some(signal),
        _stun: KillOnDrop(stun),
    }
}

/// The real `signal` binary on the public host, with its built-in STUN/TURN on
/// [`SERVER_IP`]:3478 (relaying allowed to the lab's public net, which is a TEST-NET range
/// the default policy refuses), handing out ICE servers with `ready`.
pub struct SignalBinary {
    _child: Option<KillOnDrop>,
}

impl SignalBinary {
    /// `ws://` URL of the signal server.
    pub fn signal_url(&self) -> String {
        format!("ws://{SERVER_IP}:{SIGNAL_PORT}/")
    }
}

/// Starts `target/debug/signal` on `host` and waits for its `/healthz`.
pub fn signal_binary(host: &Host) -> SignalBinary {
    let bin = target_dir().join("debug/signal");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p signal`",
        bin.display()
    );
    let log = target_dir().join(format!("lab-signal-{}.log", std::process::id()));
    let log_file = std::fs::File::create(&log).expect("signal log");
    let child = host
        .command(&bin)
        .args(["--listen", &format!("{SERVER_IP}:{SIGNAL_PORT}")])
        .args(["--turn-allow-peer", "203.0.113.0/24"])
        .args(["--turn-relay-ports", "40000-40999"])
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("signal starts");
    let child = KillOnDrop(child);
    // Ready when its port answers.
    assert!(
        host.wait_for_tcp(
            SocketAddr::from((SERVER_IP, SIGNAL_PORT)),
            Duration::from_secs(10)
        ),
        "signal did not start; log at {}",
        log.display()
    );
    SignalBinary {
        _child: Some(child),
    }
}

/// A lab with only the real `signal` binary on the public net and two homes, `a` and `b`,
/// behind `nat`; holds a call slot ([`signal_lab`], [`browser_lab`]). Dropped in reverse order:
/// homes, signal, then the lab.
pub struct SignalLab {
    pub a: Home,
    pub b: Home,
    pub signal: SignalBinary,
    host: Host,
    _lab: Lab,
    _slot: Slot<'static>,
}

impl SignalLab {
    /// Kills the `signal` binary, waits `down`, and starts a fresh one (no state kept).
    pub fn restart_signal(&mut self, down: Duration) {
        let old = std::mem::replace(&mut self.signal, SignalBinary { _child: None });
        drop(old);
        std::thread::sleep(down);
        self.signal = signal_binary(&self.host);
    }

    /// `duet call` in home `b` for `seconds` in `room` (the test pattern, a 660 Hz tone), with
    /// only the ICE servers signal hands out.
    pub fn duet_in_b(&self, room: &str, seconds: u32) -> Peer {
        start_bare_peer(
            &self.b,
            &self.signal.signal_url(),
            "b",
            &PeerOptions {
                room,
                tone: "tone:660",
                seconds,
                extra: &[],
            },
        )
    }

    /// Waits until signal counts `rooms` rooms with a member (its `GET /metrics`, asked from
    /// the public host): how a test knows the first peer is seated, and so offers.
    pub fn wait_rooms(&self, rooms: u64, timeout: Duration) -> bool {
        use std::io::{Read, Write};
        let count = || -> Option<u64> {
            self.host
                .run(|| {
                    let mut s = std::net::TcpStream::connect((SERVER_IP, SIGNAL_PORT)).ok()?;
                    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")
                        .ok()?;
                    let mut text = String::new();
                    s.read_to_string(&mut text).ok()?;
                    text.lines()
                        .find_map(|l| l.strip_prefix("signal_rooms "))
                        .and_then(|v| v.trim().parse().ok())
                })
                .ok()
                .flatten()
        };
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if count() == Some(rooms) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// `duet call` in both homes for `seconds`, with no ICE servers of their own (only what
    /// signal hands out), in a fresh room named after `tag`; what each reported.
    pub fn call(&self, tag: &str, seconds: u32) -> (Finished, Finished) {
        let room = unique_room(tag);
        let options = |tone| PeerOptions {
            room: &room,
            tone,
            seconds,
            extra: &[],
        };
        let url = self.signal.signal_url();
        let pa = start_bare_peer(&self.a, &url, "a", &options("bursts:880"));
        let pb = start_bare_peer(&self.b, &url, "b", &options("bursts:660"));
        let limit = Duration::from_secs(u64::from(seconds) + 35);
        (finish(pa, limit), finish(pb, limit))
    }
}

/// See [`SignalLab`]; `None` where the lab is unavailable (see [`lab`]). For duet peers: holds
/// a [`call_slot`].
pub fn signal_lab(tag: &str, nat: Nat) -> Option<SignalLab> {
    signal_lab_in(tag, nat, call_slot())
}

/// [`signal_lab`] for a call with a browser in it: holds a [`browser_call_slot`].
pub fn browser_lab(tag: &str, nat: Nat) -> Option<SignalLab> {
    signal_lab_in(tag, nat, browser_call_slot())
}

fn signal_lab_in(tag: &str, nat: Nat, slot: Slot<'static>) -> Option<SignalLab> {
    let lab = lab(tag)?;
    let host = lab.public_host("srv", SERVER_IP).expect("public host");
    let signal = signal_binary(&host);
    let a = lab.home("a", nat).expect("home a");
    let b = lab.home("b", nat).expect("home b");
    Some(SignalLab {
        a,
        b,
        signal,
        host,
        _lab: lab,
        _slot: slot,
    })
}

/// A running `duet call` in a home, and where its report goes.
pub struct Peer {
    pub name: String,
    pid: u32,
    /// The process's exit and output, read from the start: a peer whose output nobody read
    /// would stall on a full pipe while the test waits for the other one.
    output: std::sync::mpsc::Receiver<std::io::Result<Output>>,
    pub report: PathBuf,
}

/// Options of one lab peer.
pub struct PeerOptions<'a> {
    pub room: &'a str,
    pub tone: &'a str,
    pub seconds: u32,
    pub extra: &'a [&'a str],
}

/// Starts `duet call` inside `home`'s host with the test pattern at 320×240 and a tone, with
/// the lab's STUN server.
pub fn start_peer(home: &Home, servers: &Servers, name: &str, o: &PeerOptions<'_>) -> Peer {
    spawn_peer(
        home,
        &servers.signal_url(),
        Some(&servers.stun_url()),
        name,
        o,
    )
}

/// Starts `duet call` in `home` against `signal_url` with no ICE servers of its own.
pub fn start_bare_peer(home: &Home, signal_url: &str, name: &str, o: &PeerOptions<'_>) -> Peer {
    spawn_peer(home, signal_url, None, name, o)
}

fn spawn_peer(
    home: &Home,
    signal_url: &str,
    ice_server: Option<&str>,
    name: &str,
    o: &PeerOptions<'_>,
) -> Peer {
    let report = target_dir().join(format!("lab-{}-{name}.json", o.room));
    let _ = std::fs::remove_file(&report);
    let ice: Vec<&str> = ice_server
        .map(|s| vec!["--ice-server", s])
        .unwrap_or_default();
    let child = home
        .host()
        .command(env!("CARGO_BIN_EXE_duet"))
        .args(["call", o.room, "--signal", signal_url])
        .args(&ice)
        .args(["--video", "test", "--audio", o.tone, "--speaker", "null"])
        .args(default_size(o.extra))
        .args(["--stats-every", "0"])
        .args(["--duration", &o.seconds.to_string(), "--stats-json"])
        .arg(&report)
        .args(o.extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("duet call starts in the lab");
    let pid = child.id();
    let (tx, output) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    Peer {
        name: name.to_owned(),
        pid,
        output,
        report,
    }
}

/// `--size 320x240` unless the test's own flags pick a size.
fn default_size(extra: &[&str]) -> &'static [&'static str] {
    if extra.contains(&"--size") {
        &[]
    } else {
        &["--size", "320x240"]
    }
}

/// What a peer reported when its call ended.
pub struct Finished {
    pub name: String,
    pub success: bool,
    pub output: String,
    pub report: Value,
}

impl Finished {
    /// A number from the report's last stats snapshot (0 when absent).
    pub fn stat(&self, key: &str) -> f64 {
        self.report["stats"][key].as_f64().unwrap_or(0.0)
    }

    /// A string from the report's last stats snapshot.
    pub fn stat_str(&self, key: &str) -> String {
        self.report["stats"][key].as_str().unwrap_or("").to_owned()
    }
}

/// Waits for `peer` to finish (it stops itself after its `--duration`; killed after `limit`).
pub fn finish(peer: Peer, limit: Duration) -> Finished {
    let Peer {
        name,
        pid,
        output,
        report,
    } = peer;
    let output = match output.recv_timeout(limit) {
        Ok(out) => out.expect("duet call output"),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            panic!("{name}: duet call did not end within {limit:?}");
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = std::fs::read_to_string(&report)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| panic!("{name}: no report at {}\n{text}", report.display()));
    Finished {
        name,
        success: output.status.success(),
        output: text,
        report,
    }
}

/// Two homes with `nat`, both calling for `seconds` through [`servers`]; `setup` runs once
/// both peers have started (to change the links mid-call, say). Returns both reports.
pub fn call_between_homes(
    tag: &str,
    nat: Nat,
    seconds: u32,
    extra: &[&str],
    impair: impl FnOnce(&Home, &Home),
) -> Option<(Finished, Finished)> {
    let _slot = call_slot();
    let lab = lab(tag)?;
    let servers = servers(&lab);
    let a = lab.home("a", nat).expect("home a");
    let b = lab.home("b", nat).expect("home b");
    let room = unique_room(tag);
    let peer_a = start_peer(
        &a,
        &servers,
        "a",
        &PeerOptions {
            room: &room,
            // Timed bursts: each side reports the other's mouth-to-ear latency.
            tone: "bursts:880",
            seconds,
            extra,
        },
    );
    let peer_b = start_peer(
        &b,
        &servers,
        "b",
        &PeerOptions {
            room: &room,
            tone: "bursts:660",
            seconds,
            extra,
        },
    );
    impair(&a, &b);
    let limit = Duration::from_secs(u64::from(seconds) + 30);
    let fa = finish(peer_a, limit);
    let fb = finish(peer_b, limit);
    Some((fa, fb))
}

/// Asserts what a user sees in a working call: the other side's pattern arrived, in order.
pub fn assert_pictures_arrived(f: &Finished, min_frames: f64) {
    assert!(
        f.success,
        "{}: the call failed: {}\n{}",
        f.name, f.report["failure"], f.output
    );
    let frames = f.stat("pattern_frames");
    assert!(
        frames >= min_frames,
        "{}: only {frames} pattern frames decoded (want ≥ {min_frames}): {}\n{}",
        f.name,
        f.report["stats"],
        f.output
    );
    assert_eq!(
        f.stat("pattern_out_of_order"),
        0.0,
        "{}: pictures out of order: {}",
        f.name,
        f.report["stats"]
    );
    assert!(
        f.stat("pattern_last") > f.stat("pattern_first"),
        "{}: the counter did not advance: {}",
        f.name,
        f.report["stats"]
    );
}

/// The stats snapshots of a finished peer, oldest first.
pub fn history(f: &Finished) -> Vec<Value> {
    f.report["history"].as_array().cloned().unwrap_or_default()
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(0.0)
}

/// Frames decoded per second between the first snapshot at or after `from_s` (seconds since
/// the engine started) and the last snapshot.
pub fn fps_after(f: &Finished, from_s: f64) -> f64 {
    fps_between(f, from_s, f64::MAX)
}

/// Frames decoded per second between the first snapshot at or after `from_s` and the last one
/// before `to_s`.
pub fn fps_between(f: &Finished, from_s: f64, to_s: f64) -> f64 {
    let h: Vec<Value> = window(f, from_s, to_s).collect();
    let (Some(start), Some(end)) = (h.first(), h.last()) else {
        return 0.0;
    };
    let dt = num(end, "elapsed_s") - num(start, "elapsed_s");
    if dt <= 0.0 {
        return 0.0;
    }
    (num(end, "frames_decoded") - num(start, "frames_decoded")) / dt
}

/// The largest value of `key` over snapshots with `from_s <= elapsed_s < to_s`.
pub fn max_between(f: &Finished, key: &str, from_s: f64, to_s: f64) -> f64 {
    window(f, from_s, to_s)
        .map(|s| num(&s, key))
        .fold(f64::NAN, f64::max)
}

/// The median of `key` over snapshots with `from_s <= elapsed_s < to_s` (NaN when none).
pub fn median_between(f: &Finished, key: &str, from_s: f64, to_s: f64) -> f64 {
    super::median(window(f, from_s, to_s).map(|s| num(&s, key)).collect())
}

/// The smallest value of `key` over snapshots with `from_s <= elapsed_s < to_s`.
pub fn min_between(f: &Finished, key: &str, from_s: f64, to_s: f64) -> f64 {
    window(f, from_s, to_s)
        .map(|s| num(&s, key))
        .fold(f64::NAN, f64::min)
}

fn window(f: &Finished, from_s: f64, to_s: f64) -> impl Iterator<Item = Value> {
    history(f).into_iter().filter(move |s| {
        let t = num(s, "elapsed_s");
        t >= from_s && t < to_s
    })
}

/// The link change of the step tests, run once both peers have started: both homes at
/// 3 Mbit/s, down to 500 kbit/s from about 8 s to 16 s, then 3 Mbit/s again.
pub fn step_down_and_back_up(a: &Home, b: &Home) {
    for h in [a, b] {
        h.set_rate_kbit(Some(3000)).expect("cap");
    }
    std::thread::sleep(Duration::from_secs(8));
    for h in [a, b] {
        h.set_rate_kbit(Some(500)).expect("step down");
    }
    std::thread::sleep(Duration::from_secs(8));
    for h in [a, b] {
        h.set_rate_kbit(Some(3000)).expect("step up");
    }
}

/// What a duet peer that sent 640×480 through [`step_down_and_back_up`] (for about 30 s) to
/// another duet peer must have done: [`assert_sent_through_the_step`], and the video it
/// received from its duet peer kept moving through the narrow spell and after it.
pub fn assert_rode_the_step(f: &Finished) {
    assert_sent_through_the_step(f);
    assert!(
        fps_after(f, 20.0) >= 15.0,
        "{}: video did not come back smoothly after the step",
        f.name
    );
    // The narrow spell itself: video keeps moving once the overflow has passed (with every
    // NACKed packet sent again up to five times, the pacer filled with resends and one side
    // decoded 2-3 frames a second from 9 s to 15 s).
    let narrow_fps = fps_between(f, 11.0, 16.0);
    assert!(
        narrow_fps >= 12.0,
        "{}: {narrow_fps:.1} fps under the 500 kbit/s cap",
        f.name
    );
}

/// What a duet peer's sending side must have done through [`step_down_and_back_up`] (a call
/// of about 30 s at 640×480): its encoder and picture size went down under the cap and came
/// back up after it.
pub fn assert_sent_through_the_step(f: &Finished) {
    let before = max_between(f, "encoder_bitrate_bps", 5.0, 8.0);
    let during = min_between(f, "encoder_bitrate_bps", 9.0, 16.5);
    let after = max_between(f, "encoder_bitrate_bps", 20.0, f64::MAX);
    assert!(
        during < 500_000.0 && during < before,
        "{}: the encoder did not step down under the 500 kbit/s cap (before {before:.0}, during {during:.0})",
        f.name
    );
    // Probing finds the widened link within seconds (the estimate climbing 8 % a second
    // on its own reached about 450 kbit/s by the end of the call).
    assert!(
        after > during * 1.3 && after >= 1_000_000.0,
        "{}: the encoder did not recover after the cap was lifted (during {during:.0}, after {after:.0})",
        f.name
    );
    // 640×480 does not fit 500 kbit/s: the picture went down the ladder meanwhile.
    let rung = max_between(f, "video_rung", 9.0, 16.5);
    assert!(rung >= 1.0, "{}: the resolution never stepped down", f.name);
    // ...and back up to the call's first rung once the link widened again (about 8 s after
    // the step up in the lab runs since probing).
    let rung_late = min_between(f, "video_rung", 24.0, f64::MAX);
    assert!(
        rung_late == 0.0,
        "{}: the resolution did not come back up after the step (rung {rung_late} from 24 s)",
        f.name
    );
}

/// Freezes of the remote video that ended at or after `from_s`: their durations in ms.
pub fn freezes_after(f: &Finished, from_s: f64) -> Vec<f64> {
    f.report["stats"]["freezes"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|e| e[0].as_f64().unwrap_or(0.0) >= from_s)
                .map(|e| e[1].as_f64().unwrap_or(0.0))
                .collect()
        })
        .unwrap_or_default()
}

/// One line of numbers for the test log (and the benchmark notes).
pub fn summary(f: &Finished) -> String {
    let s = &f.report["stats"];
    format!(
        "{}: decoded {} frames (pattern {}), fps after 6 s {:.1}, target {:.0} kbit/s, encoder {:.0} kbit/s, freezes {} ({:.0} ms, longest {:.0} ms), frames lost {}, concealed {}, packets recovered {}, PLIs sent {}, keyframes sent {}, g2g p50/p95 {}/{} ms, mouth to ear p50/p95 {}/{} ms ({} bursts, jitter buffer {} ms), rtt {} ms, setup {} ms, remote {}",
        f.name,
        s["frames_decoded"],
        s["pattern_frames"],
        fps_after(f, 6.0),
        num(s, "target_bitrate_bps") / 1000.0,
        num(s, "encoder_bitrate_bps") / 1000.0,
        s["freeze_count"],
        num(s, "freeze_total_ms"),
        num(s, "freeze_longest_ms"),
        s["video_frames_lost"],
        s["video_frames_concealed"],
        s["video_packets_recovered"],
        s["plis_sent"],
        s["keyframes_sent"],
        s["glass_to_glass_p50_ms"],
        s["glass_to_glass_p95_ms"],
        s["mouth_to_ear_p50_ms"],
        s["mouth_to_ear_p95_ms"],
        s["mouth_to_ear_bursts"],
        s["audio_jitter_delay_ms"],
        s["rtt_ms"],
        s["setup_ms"],
        s["ice_remote_candidate"],
    )
}
