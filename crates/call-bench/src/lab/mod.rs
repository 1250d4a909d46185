//! `call-bench lab`: duet next to Chromium on impaired links, in the network lab (`netlab`).
//!
//! For each [`Condition`] a fresh lab is built the way the app's lab tests build theirs: two
//! homes behind cone NATs (symmetric ones for [`Condition::SymmetricCoturn`]), and on the
//! public host `signal` (in-process, serving the browser page too) and coturn as a STUN server
//! (and as the TURN server whose credentials signal hands out, for the symmetric condition).
//! In it, one after the other, a duet ↔ duet call (`duet call` in each home) and a Chromium ↔
//! Chromium call (`tests/browser/lab-peer.js` in each home: headless Chromium on the page, its
//! fake camera playing duet's test pattern) run for the same time under the same impairment;
//! the browser → duet condition runs one mixed call instead, and the symmetric condition a
//! third call, duet ↔ duet through the `signal` binary's own TURN server. Each condition
//! prints a Markdown table ([`table`]).
//!
//! It owns the conditions, the schedule of a call and the table; not the lab (netlab), nor
//! what the peers measure (their own reports). Nothing leaves the lab's namespaces.

mod metrics;
mod peers;
mod table;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use netlab::{Home, Lab, LabError, Nat};

use peers::{CallSetup, PeerKind};
use table::{CallRun, Links, Step};

/// The public server's address in the lab (as in the app's lab tests).
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const SIGNAL_PORT: u16 = 8080;
const STUN_PORT: u16 = 3478;
/// The `signal` binary with its own STUN/TURN, beside the in-process one and coturn.
const TURN_SIGNAL_PORT: u16 = 8081;
const TURN_SIGNAL_TURN_PORT: u16 = 3479;
/// Extra time a peer gets beyond its own duration before it is killed.
const GRACE: Duration = Duration::from_secs(45);

/// One link condition of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Condition {
    /// No impairment.
    Clean,
    /// 1 Mbit/s each way on both homes.
    Cap1000,
    /// 500 kbit/s each way on both homes.
    Cap500,
    /// 3 % random UDP loss both ways on home A's link.
    Loss3,
    /// 10 % random UDP loss both ways on home A's link.
    Loss10,
    /// 3 Mbit/s, then 500 kbit/s, then 3 Mbit/s again (a third of the call each).
    Step,
    /// Chromium in home A calls `duet call` in home B, no impairment.
    BrowserToDuet,
    /// Chromium in home A and `duet call` in home B, 1 Mbit/s each way on both homes.
    BrowserToDuetCap1000,
    /// Chromium in home A and `duet call` in home B, 3 % loss both ways on home A's link.
    BrowserToDuetLoss3,
    /// Both homes behind symmetric NATs: calls go through coturn as a TURN server, whose
    /// credentials `signal` hands out on `ready` (as with `--turn-url`); no impairment.
    SymmetricCoturn,
}

impl Condition {
    /// Every condition, in the table's order.
    pub const ALL: [Condition; 10] = [
        Condition::Clean,
        Condition::Cap1000,
        Condition::Cap500,
        Condition::Loss3,
        Condition::Loss10,
        Condition::Step,
        Condition::BrowserToDuet,
        Condition::BrowserToDuetCap1000,
        Condition::BrowserToDuetLoss3,
        Condition::SymmetricCoturn,
    ];

    fn title(self) -> &'static str {
        match self {
            Condition::Clean => "No impairment",
            Condition::Cap1000 => "1 Mbit/s cap (both homes, each way)",
            Condition::Cap500 => "500 kbit/s cap (both homes, each way)",
            Condition::Loss3 => "3 % loss each way (home A's link, both directions)",
            Condition::Loss10 => "10 % loss each way (home A's link, both directions)",
            Condition::Step => "3 Mbit/s → 500 kbit/s → 3 Mbit/s (both homes)",
            Condition::BrowserToDuet => {
                "Browser → duet (Chromium in A, duet call in B), no impairment"
            }
            Condition::BrowserToDuetCap1000 => {
                "Browser ↔ duet (Chromium in A, duet call in B), 1 Mbit/s cap (both homes, each way)"
            }
            Condition::BrowserToDuetLoss3 => {
                "Browser ↔ duet (Chromium in A, duet call in B), 3 % loss each way (home A's link)"
            }
            Condition::SymmetricCoturn => {
                "Both homes behind symmetric NATs, through coturn's TURN (credentials from signal)"
            }
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Condition::Clean => "clean",
            Condition::Cap1000 => "cap1000",
            Condition::Cap500 => "cap500",
            Condition::Loss3 => "loss3",
            Condition::Loss10 => "loss10",
            Condition::Step => "step",
            Condition::BrowserToDuet => "b2d",
            Condition::BrowserToDuetCap1000 => "b2d_cap1000",
            Condition::BrowserToDuetLoss3 => "b2d_loss3",
            Condition::SymmetricCoturn => "sym_coturn",
        }
    }

    fn calls(self) -> &'static [(PeerKind, PeerKind, Via)] {
        match self {
            Condition::BrowserToDuet
            | Condition::BrowserToDuetCap1000
            | Condition::BrowserToDuetLoss3 => &[(PeerKind::Chromium, PeerKind::Duet, Via::Lab)],
            Condition::SymmetricCoturn => &[
                (PeerKind::Duet, PeerKind::Duet, Via::Lab),
                (PeerKind::Chromium, PeerKind::Chromium, Via::Lab),
                (PeerKind::Duet, PeerKind::Duet, Via::SignalTurn),
            ],
            _ => &[
                (PeerKind::Duet, PeerKind::Duet, Via::Lab),
                (PeerKind::Chromium, PeerKind::Chromium, Via::Lab),
            ],
        }
    }

    /// The homes' NATs.
    fn nat(self) -> Nat {
        match self {
            Condition::SymmetricCoturn => Nat::Symmetric,
            _ => Nat::Cone,
        }
    }

    /// Whether coturn serves TURN (not only STUN) and signal hands out its credentials.
    fn coturn_relays(self) -> bool {
        self == Condition::SymmetricCoturn
    }

    fn cap_kbit(self) -> Option<u32> {
        match self {
            Condition::Cap1000 | Condition::BrowserToDuetCap1000 => Some(1000),
            Condition::Cap500 => Some(500),
            _ => None,
        }
    }

    /// Sets the links for the start of a call.
    fn apply(self, a: &Home, b: &Home) -> Result<(), LabError> {
        for h in [a, b] {
            h.set_rate_kbit(self.cap_kbit())?;
            h.set_loss_permille(0, 0)?;
        }
        match self {
            Condition::Loss3 | Condition::BrowserToDuetLoss3 => a.set_loss_permille(30, 30),
            Condition::Loss10 => a.set_loss_permille(100, 100),
            Condition::Step => {
                a.set_rate_kbit(Some(3000))?;
                b.set_rate_kbit(Some(3000))
            }
            _ => Ok(()),
        }
    }

    /// The rate changes during a call: (seconds after its start, kbit/s on both homes).
    fn schedule(self, seconds: u32) -> Vec<(f64, u32)> {
        match self {
            Condition::Step => {
                let third = f64::from(seconds) / 3.0;
                vec![(third, 500), (2.0 * third, 3000)]
            }
            _ => Vec::new(),
        }
    }
}

/// Which signal server a call joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The lab's in-process signal (ICE servers: coturn's, where the condition has any).
    Lab,
    /// The `signal` binary with its own STUN/TURN server (on `ready`).
    SignalTurn,
}

/// What `call-bench lab` is given.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `duet` binary.
    pub duet: PathBuf,
    /// The `signal` binary (its TURN server, for [`Condition::SymmetricCoturn`]).
    pub signal: PathBuf,
    /// The `pattern_y4m` example, to make the Y4M when it is missing.
    pub pattern_y4m: PathBuf,
    /// The pattern Y4M for Chromium's fake camera (320×240).
    pub y4m: PathBuf,
    /// `tests/browser/lab-peer.js`.
    pub lab_peer_js: PathBuf,
    /// Where peers' logs and reports go.
    pub out_dir: PathBuf,
    /// Seconds per call.
    pub seconds: u32,
    /// The conditions to run.
    pub conditions: Vec<Condition>,
}

/// Runs every condition of `options` and prints their tables; a condition whose lab cannot be
/// built is reported and skipped.
pub fn run(options: &Options) -> anyhow::Result<()> {
    for (path, what) in [
        (&options.duet, "the duet binary"),
        (&options.lab_peer_js, "lab-peer.js"),
    ] {
        if !path.exists() {
            bail!("{what} not found at {}", path.display());
        }
    }
    ensure_y4m(&options.pattern_y4m, &options.y4m)?;
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("creating {}", options.out_dir.display()))?;
    println!(
        "Each call {} s; fps and utilisation from {} s on; utilisation = received video payload / cap \
         (audio and packet overhead not counted); the step's RTT is the selected candidate pair's.\n",
        options.seconds,
        table::SETTLED_S
    );
    for &condition in &options.conditions {
        match run_condition(options, condition) {
            Ok(text) => println!("{text}"),
            Err(e) => println!("#### {}\n\nnot measured: {e:#}\n", condition.title()),
        }
    }
    Ok(())
}

fn ensure_y4m(generator: &Path, y4m: &Path) -> anyhow::Result<()> {
    if y4m.exists() {
        return Ok(());
    }
    // 15 s at 30 fps, as the browser tests make it; the fake camera loops it.
    let status = std::process::Command::new(generator)
        .arg(y4m)
        .args(["320", "240", "450", "30"])
        .status()
        .with_context(|| {
            format!(
                "running {} (cargo build -p media --example pattern_y4m)",
                generator.display()
            )
        })?;
    if !status.success() {
        bail!("{} failed: {status}", generator.display());
    }
    Ok(())
}

/// Kills a server process when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The secret coturn and signal share in [`Condition::SymmetricCoturn`] (lab only).
const LAB_TURN_SECRET: &str = "duet-lab-bench";

fn run_condition(options: &Options, condition: Condition) -> anyhow::Result<String> {
    let lab = Lab::new(&format!("b_{}", condition.tag())).context("building the lab")?;
    let server = lab.public_host("srv", SERVER_IP)?;
    let addr = SocketAddr::from((SERVER_IP, SIGNAL_PORT));
    let config = signal::Config {
        pages: Some(signal::web::pages()),
        ice: condition.coturn_relays().then(|| signal::IceConfig {
            offer: signal::IceOffer::External {
                urls: vec![format!("turn:{SERVER_IP}:{STUN_PORT}?transport=udp")],
            },
            secret: signal::TurnSecret::new(LAB_TURN_SECRET),
            credential_ttl: Duration::from_secs(3600),
        }),
        ..signal::Config::default()
    };
    let _signal = server
        .run(move || signal::HostedSignal::start(addr, config))?
        .context("starting signal in the lab")?;
    let coturn_log = options
        .out_dir
        .join(format!("{}-coturn.log", condition.tag()));
    let mut coturn = server.command("turnserver");
    coturn
        .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--simple-log"])
        .arg(format!("--listening-ip={SERVER_IP}"))
        .arg(format!("--listening-port={STUN_PORT}"))
        .arg(format!("--log-file={}", coturn_log.display()));
    if condition.coturn_relays() {
        coturn
            .arg(format!("--relay-ip={SERVER_IP}"))
            .args(["--min-port=40000", "--max-port=45000", "--realm=duet"])
            .args([
                "--use-auth-secret",
                "--no-tcp-relay",
                "--no-multicast-peers",
            ])
            .arg(format!("--static-auth-secret={LAB_TURN_SECRET}"));
    } else {
        coturn.arg("--stun-only");
    }
    let _stun = KillOnDrop(
        coturn
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting coturn (turnserver)")?,
    );
    let _turn_signal = if condition.calls().iter().any(|c| c.2 == Via::SignalTurn) {
        Some(start_turn_signal(&server, options, condition)?)
    } else {
        None
    };
    let a = lab.home("a", condition.nat())?;
    let b = lab.home("b", condition.nat())?;
    let mut calls = Vec::new();
    let mut step = None;
    for (i, &(ka, kb, via)) in condition.calls().iter().enumerate() {
        condition.apply(&a, &b)?;
        // Let the previous call's state (NAT mappings, queues) drain.
        std::thread::sleep(Duration::from_secs(1));
        let setup = CallSetup {
            duet: &options.duet,
            lab_peer_js: &options.lab_peer_js,
            y4m: &options.y4m,
            signal_url: match via {
                Via::Lab => format!("ws://{SERVER_IP}:{SIGNAL_PORT}/"),
                Via::SignalTurn => format!("ws://{SERVER_IP}:{TURN_SIGNAL_PORT}/"),
            },
            page_origin: format!("http://{SERVER_IP}:{SIGNAL_PORT}"),
            stun: format!("{SERVER_IP}:{STUN_PORT}"),
            room: format!("bench-{}-{i}-{}", condition.tag(), std::process::id()),
            seconds: options.seconds,
            dir: &options.out_dir,
            prefix: format!("{}-{i}-{}-{}", condition.tag(), ka.label(), kb.label()),
        };
        eprintln!(
            "{}: {} ↔ {} for {} s",
            condition.title(),
            ka.label(),
            kb.label(),
            options.seconds
        );
        let (mut run, s) = run_call(condition, &a, &b, ka, kb, &setup)?;
        if via == Via::SignalTurn {
            run.label.push_str(", signal's TURN");
        }
        step = step.or(s);
        calls.push(run);
    }
    let links = Links {
        cap_kbit: condition.cap_kbit(),
        step,
    };
    let text = table::render(condition.title(), &links, &calls);
    drop(lab);
    Ok(text)
}

/// The `signal` binary on the public host with its own STUN/TURN (UDP only, as the native
/// client relays), allowed to relay to the lab's public net; killed when dropped.
fn start_turn_signal(
    server: &netlab::Host,
    options: &Options,
    condition: Condition,
) -> anyhow::Result<KillOnDrop> {
    let log_path = options
        .out_dir
        .join(format!("{}-signal-turn.log", condition.tag()));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let child = KillOnDrop(
        server
            .command(&options.signal)
            .args(["--listen", &format!("{SERVER_IP}:{TURN_SIGNAL_PORT}")])
            .args(["--turn-port", &TURN_SIGNAL_TURN_PORT.to_string()])
            .args(["--turn-allow-peer", "203.0.113.0/24"])
            .args(["--turn-relay-ports", "46000-46999", "--no-turn-tcp"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", options.signal.display()))?,
    );
    if !server.wait_for_tcp(
        SocketAddr::from((SERVER_IP, TURN_SIGNAL_PORT)),
        Duration::from_secs(10),
    ) {
        bail!("signal did not start; log at {}", log_path.display());
    }
    Ok(child)
}

fn unix_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// One call: both peers started at once, the schedule applied, both collected.
fn run_call(
    condition: Condition,
    a: &Home,
    b: &Home,
    ka: PeerKind,
    kb: PeerKind,
    setup: &CallSetup<'_>,
) -> anyhow::Result<(CallRun, Option<Step>)> {
    let start = Instant::now();
    let start_ms = unix_ms(SystemTime::now());
    let pa = peers::start(ka, a, "a", setup, start)?;
    let pb = peers::start(kb, b, "b", setup, start)?;
    let mut changes = Vec::new();
    for (at_s, kbit) in condition.schedule(setup.seconds) {
        let wait = Duration::from_secs_f64(at_s).saturating_sub(start.elapsed());
        std::thread::sleep(wait);
        for h in [a, b] {
            h.set_rate_kbit(Some(kbit))?;
        }
        changes.push((start.elapsed().as_secs_f64(), kbit));
    }
    let step = match changes.as_slice() {
        [(down_s, low_kbit), (up_s, _)] => Some(Step {
            down_s: *down_s,
            up_s: *up_s,
            low_kbit: *low_kbit,
        }),
        _ => None,
    };
    let limit = Duration::from_secs(u64::from(setup.seconds)) + GRACE;
    let ra = pa.finish(limit, start_ms);
    let rb = pb.finish(limit, start_ms);
    let run = CallRun {
        label: format!("{} ↔ {}", ka.label(), kb.label()),
        a: ra,
        b: rb,
    };
    Ok((run, step))
}
