//! Shared helpers of the app's tests: apps and harnesses that only use loopback, waiting with
//! a deadline, child processes that are killed when a test ends.

#![allow(dead_code)]

pub mod browser;
pub mod lab;
pub mod slots;
pub mod xvfb;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use call::{AudioChoice, SpeakerChoice, VideoChoice};
use duet::settings::{ServerMode, Settings};
use duet::{AppOptions, DuetApp};
use egui_kittest::Harness;

/// The median of `v` (the upper one of an even count; NaN when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// An app for UI tests: settings in `dir`, loopback only, hosting on 127.0.0.1 (any port),
/// no device scan.
pub fn test_app(dir: &Path) -> DuetApp {
    test_app_with(dir, false)
}

/// [`test_app`], listing the real devices when `scan_devices`.
pub fn test_app_with(dir: &Path, scan_devices: bool) -> DuetApp {
    DuetApp::new(AppOptions {
        config_dir: Some(dir.to_path_buf()),
        loopback_only: true,
        host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        host_port: 0,
        scan_devices,
        launch: None,
        screenshot: None,
    })
}

/// Settings that need no device: test pattern, tone, no speaker.
pub fn synthetic_settings(room: &str) -> Settings {
    Settings {
        room: room.to_owned(),
        server_mode: ServerMode::Host,
        video: VideoChoice::TestPattern,
        audio: AudioChoice::Tone(440.0),
        speaker: SpeakerChoice::Null,
        width: 320,
        height: 240,
        ice_servers: Vec::new(),
        ..Settings::default()
    }
}

/// A harness running `app` in a 1000×800 window.
pub fn harness(app: DuetApp) -> Harness<'static, DuetApp> {
    Harness::builder()
        .with_size([1000.0, 800.0])
        .build_ui_state(|ui, app: &mut DuetApp| app.ui(ui), app)
}

/// Steps the UI (in real time: the engine runs on its own threads) until `done` holds.
pub fn step_until(
    harness: &mut Harness<'static, DuetApp>,
    what: &str,
    mut done: impl FnMut(&Harness<'static, DuetApp>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(harness) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `signal` server on 127.0.0.1 (any free port) with the default configuration.
pub fn hosted_signal() -> signal::HostedSignal {
    signal::HostedSignal::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        signal::Config::default(),
    )
    .expect("signal server")
}

/// An engine configuration that needs no device: the test pattern at `width`×`height`, a
/// 440 Hz tone, no speaker, media over loopback only.
pub fn synthetic_call(url: &str, room: &str, width: u32, height: u32) -> call::CallConfig {
    let mut c = call::CallConfig::new(url, room);
    c.video = VideoChoice::TestPattern;
    c.audio = AudioChoice::Tone(440.0);
    c.speaker = SpeakerChoice::Null;
    c.width = width;
    c.height = height;
    c.ice_servers.clear();
    c.loopback_only = true;
    c
}

/// A child process killed when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `duet` binary.
pub fn duet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_duet"))
}

/// `duet --join ROOM` in a real window on `display`: test pattern at 640×480, tone, no
/// speaker, loopback, settings in `config`, and a screenshot to `png` once connected (the
/// caller adds when).
pub fn window_app(room: &str, url: &str, display: &str, config: &Path, png: &Path) -> Command {
    let mut app = duet();
    app.args(["--join", room, "--signal", url, "--loopback"])
        .args(["--video", "test", "--audio", "tone", "--speaker", "null"])
        .args(["--size", "640x480"])
        .env("DISPLAY", display)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("XDG_SESSION_TYPE")
        .env("DUET_CONFIG_DIR", config)
        .env("DUET_SCREENSHOT", png);
    app
}

/// The workspace's `target/` directory.
pub fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// A room name no other test uses.
pub fn unique_room(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Whether a PulseAudio server is there (`scripts/test.sh` starts one); says so loudly when
/// not, and fails instead when `DUET_REQUIRE_PULSE=1`.
pub fn pulse_available() -> bool {
    let socket = |var: &str, suffix: &str| {
        std::env::var_os(var).is_some_and(|v| std::path::PathBuf::from(v).join(suffix).exists())
    };
    let found = std::env::var("PULSE_SERVER")
        .ok()
        .and_then(|s| {
            s.strip_prefix("unix:")
                .map(|p| std::path::Path::new(p).exists())
        })
        .unwrap_or(false)
        || socket("PULSE_RUNTIME_PATH", "native")
        || socket("XDG_RUNTIME_DIR", "pulse/native");
    if !found {
        assert!(
            std::env::var("DUET_REQUIRE_PULSE").as_deref() != Ok("1"),
            "DUET_REQUIRE_PULSE=1 but no PulseAudio server in the environment"
        );
        eprintln!("*** SKIPPED: no PulseAudio server (run scripts/pulse-null-sink.sh) ***");
    }
    found
}

/// Runs `pactl` and returns its output; a failure fails the test.
pub fn pactl(args: &[&str]) -> String {
    let out = std::process::Command::new("pactl")
        .args(args)
        .output()
        .expect("pactl runs");
    assert!(
        out.status.success(),
        "pactl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
