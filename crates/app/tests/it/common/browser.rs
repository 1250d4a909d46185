//! Browsers in the network lab: the project's page, opened by `tests/browser/lab-peer.js`
//! inside a home's namespace, in Chromium (duet's test pattern as its fake camera) or Firefox
//! (its own fake camera; ICE on the home's interface, which it needs: it never gathers on
//! loopback). It prints one JSON line at the end with getStats samples once a second
//! (`history`) and the last one (`final`).
//!
//! What it needs (Chromium, node, `npm ci` in tests/browser, the pattern files) is installed by
//! `scripts/browser-deps.sh`, which `scripts/test.sh` runs before `cargo test` and then sets
//! `DUET_REQUIRE_BROWSER=1`: from then on a missing piece is a failure, not a skip.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use netlab::Home;
use serde_json::Value;

use super::lab::{SERVER_IP, SIGNAL_PORT};
use super::target_dir;

/// The files a lab browser peer needs.
pub struct BrowserKit {
    lab_peer_js: PathBuf,
}

/// Where the lab's browser scripts are.
fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// The kit, or `None` (after a loud message) where it is not installed, unless
/// `DUET_REQUIRE_BROWSER=1` makes that a failure.
pub fn browser_kit(y4m: &[&str]) -> Option<BrowserKit> {
    kit(y4m, false)
}

/// The kit with Firefox too (Debian's firefox-esr), as [`browser_kit`].
pub fn firefox_kit(y4m: &[&str]) -> Option<BrowserKit> {
    kit(y4m, true)
}

fn kit(y4m: &[&str], firefox: bool) -> Option<BrowserKit> {
    let browser_dir = browser_dir();
    let mut missing = Vec::new();
    if firefox
        && !["/usr/bin/firefox-esr", "/usr/bin/firefox"]
            .iter()
            .any(|p| Path::new(p).exists())
    {
        missing.push("firefox-esr".to_owned());
    }
    if !browser_dir.join("node_modules/playwright-core").is_dir() {
        missing.push("tests/browser/node_modules (npm ci)".to_owned());
    }
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node {
        missing.push("node".to_owned());
    }
    for name in y4m {
        if !pattern_file(name).exists() {
            missing.push(format!("target/{name}"));
        }
    }
    if missing.is_empty() {
        return Some(BrowserKit {
            lab_peer_js: browser_dir.join("lab-peer.js"),
        });
    }
    let why = format!(
        "missing {}: run scripts/browser-deps.sh",
        missing.join(", ")
    );
    assert!(
        std::env::var("DUET_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "the lab's browser tests are required (DUET_REQUIRE_BROWSER=1): {why}"
    );
    eprintln!("*** SKIPPED: no browser for the lab: {why} ***");
    None
}

/// `target/NAME`, a Y4M file of duet's test pattern made by `scripts/browser-deps.sh`.
pub fn pattern_file(name: &str) -> PathBuf {
    target_dir().join(name)
}

/// Which browser a lab peer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Browser {
    Chromium,
    Firefox,
    /// Firefox refusing the page camera and microphone (a person who clicked "Block").
    FirefoxMediaBlocked,
}

/// A browser page in a home, and where its JSON line goes.
pub struct BrowserPeer {
    name: String,
    child: Child,
    out: PathBuf,
}

/// Opens the page `signal` serves on the lab's public host in `home`, in `browser`, in
/// `room`, for `seconds`, with `y4m` (a [`pattern_file`] name) as Chromium's camera (Firefox
/// has its own fake camera). `query` is appended to the page's URL (for example `&stun=…`).
#[allow(clippy::too_many_arguments)]
pub fn start_page(
    kit: &BrowserKit,
    browser: Browser,
    home: &Home,
    name: &str,
    room: &str,
    seconds: u32,
    y4m: &str,
    query: &str,
) -> BrowserPeer {
    let which = match browser {
        Browser::Chromium => "chromium",
        Browser::Firefox => "firefox",
        Browser::FirefoxMediaBlocked => "firefox-media-blocked",
    };
    let out = target_dir().join(format!("lab-{room}-{name}-{which}.json"));
    let stdout = std::fs::File::create(&out).expect("browser output file");
    let url = format!("http://{SERVER_IP}:{SIGNAL_PORT}/?room={room}{query}");
    let child = home
        .host()
        .command("node")
        .arg(&kit.lab_peer_js)
        .args(["--url", &url, "--seconds", &seconds.to_string()])
        .args(["--browser", which])
        .arg("--y4m")
        .arg(pattern_file(y4m))
        .stdout(stdout)
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("node starts in the lab");
    BrowserPeer {
        name: name.to_owned(),
        child,
        out,
    }
}

/// `tests/browser/lab-ui.js` in `home`: Firefox walks through the page's controls in `room`
/// while the other peer stays about `peer_leaves_after` seconds; [`finish_browser`] reads its
/// report (`steps`).
pub fn start_ui_walk(home: &Home, room: &str, peer_leaves_after: u32) -> BrowserPeer {
    let out = target_dir().join(format!("lab-{room}-firefox-ui.json"));
    let url = format!("http://{SERVER_IP}:{SIGNAL_PORT}/?room={room}");
    let child = home
        .host()
        .command("node")
        .arg(browser_dir().join("lab-ui.js"))
        .args(["--url", &url])
        .args(["--peer-leaves-after", &peer_leaves_after.to_string()])
        .stdout(std::fs::File::create(&out).expect("browser output file"))
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("node starts in the lab");
    BrowserPeer {
        name: "firefox-ui".to_owned(),
        child,
        out,
    }
}

/// What a browser peer reported.
pub struct BrowserRun {
    pub name: String,
    pub report: Value,
}

impl BrowserRun {
    /// Frames the page decoded (its last sample with an inbound stream).
    pub fn frames_decoded(&self) -> f64 {
        self.report["final"]["in"]["framesDecoded"]
            .as_f64()
            .unwrap_or(0.0)
    }

    /// The codec of the video the page received and of the video it sent (MIME types).
    pub fn codecs(&self) -> (String, String) {
        let f = &self.report["final"];
        let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
        (s(&f["in"]["codec"]), s(&f["out"]["codec"]))
    }

    /// Call setup as the page saw it: `ready` from the server to its first decoded remote
    /// frame, ms (`None` if either is missing).
    pub fn setup_ms(&self) -> Option<f64> {
        let t = &self.report["final"]["timings"];
        Some(t["firstFrameDecoded"].as_f64()? - t["ready"].as_f64()?)
    }

    /// Audio packets the page received (its last sample with an inbound stream).
    pub fn audio_packets_received(&self) -> f64 {
        self.report["final"]["audioIn"]["packetsReceived"]
            .as_f64()
            .unwrap_or(0.0)
    }

    /// Whether the page was the offerer (`None` if it never knew).
    pub fn offerer(&self) -> Option<bool> {
        self.report["final"]["offerer"].as_bool()
    }

    /// The browser and its version, as lab-peer.js reported them.
    pub fn browser(&self) -> String {
        self.report["browser"].as_str().unwrap_or("").to_owned()
    }

    /// The selected candidate pair, `(local, remote)`, as `"type address:port"`.
    pub fn pair(&self) -> (String, String) {
        let pair = &self.report["final"]["pair"];
        let s = |k: &str| pair[k].as_str().unwrap_or("").to_owned();
        (s("local"), s("remote"))
    }

    /// Frames decoded per second from `after_s` seconds after the page connected to its last
    /// sample with an inbound stream (0 when it never connected, or had no sample that late).
    pub fn fps_after_connecting(&self, after_s: f64) -> f64 {
        self.fps_between_after_connecting(after_s, f64::MAX)
    }

    /// Frames decoded per second between the first sample at or after `from_s` seconds after
    /// the page connected and its last sample with an inbound stream before `to_s` (0 when it
    /// never connected, or had no two such samples).
    pub fn fps_between_after_connecting(&self, from_s: f64, to_s: f64) -> f64 {
        let history = self.report["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let at = |s: &Value| s["at"].as_f64().unwrap_or(0.0) / 1000.0;
        let frames = |s: &Value| s["in"]["framesDecoded"].as_f64().unwrap_or(0.0);
        let Some(connected) = history
            .iter()
            .find(|s| s["connection"].as_str() == Some("connected"))
            .map(at)
        else {
            return 0.0;
        };
        let (Some(start), Some(end)) = (
            history.iter().find(|s| at(s) >= connected + from_s),
            history
                .iter()
                .rev()
                .find(|s| at(s) < connected + to_s && s["in"]["framesDecoded"].is_number()),
        ) else {
            return 0.0;
        };
        let seconds = at(end) - at(start);
        if seconds <= 0.0 {
            return 0.0;
        }
        (frames(end) - frames(start)) / seconds
    }

    /// The page's freezes of the remote video (the browser's own count) and their total
    /// duration, seconds.
    pub fn freezes(&self) -> (f64, f64) {
        let i = &self.report["final"]["in"];
        (
            i["freezeCount"].as_f64().unwrap_or(0.0),
            i["totalFreezesDuration"].as_f64().unwrap_or(0.0),
        )
    }

    /// Outbound video bitrates, bit/s, one per second from the first sample whose peer
    /// connection is `connected`.
    pub fn send_bitrates_after_connecting(&self) -> Vec<f64> {
        let history = self.report["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let Some(start) = history
            .iter()
            .position(|s| s["connection"].as_str() == Some("connected"))
        else {
            return Vec::new();
        };
        history[start..]
            .windows(2)
            .map(|w| {
                let bytes = |s: &Value| s["out"]["bytesSent"].as_f64().unwrap_or(0.0);
                let at = |s: &Value| s["at"].as_f64().unwrap_or(0.0);
                let seconds = ((at(&w[1]) - at(&w[0])) / 1000.0).max(1e-3);
                (bytes(&w[1]) - bytes(&w[0])).max(0.0) * 8.0 / seconds
            })
            .collect()
    }
}

/// Waits for the page's script to end (killing it after `limit`) and reads its JSON line.
pub fn finish_browser(peer: BrowserPeer, limit: Duration) -> BrowserRun {
    let BrowserPeer {
        name,
        mut child,
        out,
    } = peer;
    let deadline = std::time::Instant::now() + limit;
    loop {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name}: the browser peer did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let report: Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{name}: no JSON line from lab-peer.js in {}", out.display()));
    if report["ok"].as_bool() != Some(true) {
        let mut brief = report.clone();
        if let Some(o) = brief.as_object_mut() {
            o.remove("history");
        }
        panic!("{name}: the page's call did not work: {brief}");
    }
    BrowserRun { name, report }
}
