//! The programs of a lab call and their lifetimes: `duet call` and `tests/browser/lab-peer.js`
//! (headless Chromium) run inside a home's namespace, their output goes to files under the
//! run's directory, and each is killed if it outlives its deadline or the call is abandoned.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use netlab::Home;

use super::metrics::PeerRun;

/// Which program a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    /// `duet call` with the test pattern and a tone.
    Duet,
    /// Headless Chromium on the page `signal` serves, its fake camera playing the pattern Y4M.
    Chromium,
}

impl PeerKind {
    /// How the table names it.
    pub fn label(self) -> &'static str {
        match self {
            PeerKind::Duet => "duet",
            PeerKind::Chromium => "Chromium",
        }
    }
}

/// What every peer of a call needs to know.
pub struct CallSetup<'a> {
    /// The `duet` binary.
    pub duet: &'a Path,
    /// `tests/browser/lab-peer.js`.
    pub lab_peer_js: &'a Path,
    /// The pattern Y4M for Chromium's fake camera.
    pub y4m: &'a Path,
    /// `ws://ADDR:PORT/` of the lab's signal server.
    pub signal_url: String,
    /// `http://ADDR:PORT` (the page's origin).
    pub page_origin: String,
    /// `ADDR:PORT` of the STUN server.
    pub stun: String,
    /// The room.
    pub room: String,
    /// Seconds each peer runs.
    pub seconds: u32,
    /// Where output and reports go; file names start with `prefix`.
    pub dir: &'a Path,
    /// A prefix for the file names (condition and call).
    pub prefix: String,
}

/// A started peer: killed when dropped unless it has been collected.
pub struct Running {
    kind: PeerKind,
    child: Option<Child>,
    started: Instant,
    /// Seconds from the call's start to this peer's spawn.
    pub started_s: f64,
    report: PathBuf,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts a peer of `kind` in `home`; `call_start` is the call's clock.
pub fn start(
    kind: PeerKind,
    home: &Home,
    name: &str,
    setup: &CallSetup<'_>,
    call_start: Instant,
) -> anyhow::Result<Running> {
    let base = setup.dir.join(format!("{}-{name}", setup.prefix));
    let log = base.with_extension("log");
    let report = base.with_extension("json");
    let _ = std::fs::remove_file(&report);
    let stderr = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = match kind {
        PeerKind::Duet => {
            let mut cmd = home.host().command(setup.duet);
            cmd.args(["call", &setup.room, "--signal", &setup.signal_url])
                .arg("--ice-server")
                .arg(format!("stun:{}", setup.stun))
                .args(["--video", "test", "--audio", "tone", "--speaker", "null"])
                .args(["--size", "320x240", "--stats-every", "0"])
                .args(["--duration", &setup.seconds.to_string(), "--stats-json"])
                .arg(&report)
                .stdout(stderr.try_clone()?);
            cmd
        }
        PeerKind::Chromium => {
            let url = format!(
                "{}/?room={}&stun={}",
                setup.page_origin, setup.room, setup.stun
            );
            let stdout =
                File::create(&report).with_context(|| format!("creating {}", report.display()))?;
            let mut cmd = home.host().command("node");
            cmd.arg(setup.lab_peer_js)
                .args(["--url", &url, "--seconds", &setup.seconds.to_string()])
                .arg("--y4m")
                .arg(setup.y4m)
                .stdout(stdout);
            cmd
        }
    };
    let child = cmd
        .stdin(Stdio::null())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting the {} peer {name}", kind.label()))?;
    Ok(Running {
        kind,
        child: Some(child),
        started: Instant::now(),
        started_s: call_start.elapsed().as_secs_f64(),
        report,
        log,
    })
}

impl Running {
    /// Waits for the peer to end by itself (killing it at `limit` after its start) and reads
    /// what it reported. `call_start_ms` is the call's start as Unix milliseconds.
    pub fn finish(mut self, limit: Duration, call_start_ms: f64) -> PeerRun {
        let label = self.kind.label();
        let Some(mut child) = self.child.take() else {
            return PeerRun::failed(label, "already collected");
        };
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if self.started.elapsed() < limit => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(None) | Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let log = self.log.display();
        let Some(status) = status else {
            return PeerRun::failed(label, format!("killed after {limit:?}; see {log}"));
        };
        let text = std::fs::read_to_string(&self.report).unwrap_or_default();
        let json = match self.kind {
            PeerKind::Duet => serde_json::from_str(&text).ok(),
            PeerKind::Chromium => text
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()),
        };
        let Some(json) = json else {
            return PeerRun::failed(
                label,
                format!(
                    "no report ({status}); see {log} and {}",
                    self.report.display()
                ),
            );
        };
        match self.kind {
            PeerKind::Duet => PeerRun::from_duet(&json, self.started_s),
            PeerKind::Chromium => PeerRun::from_chromium(&json, call_start_ms),
        }
    }
}
