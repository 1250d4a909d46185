//! Shared helpers of the app's tests: apps and harnesses that only use loopback, waiting with
//! a deadline, child processes that are killed when a test ends.

#![allow(dead_code)]

pub mod browser;
pub mod lab;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use call::{AudioChoice, SpeakerChoice, VideoChoice};
use duet::settings::{ServerMode, Settings};
use duet::{AppOptions, DuetApp};
use egui_kittest::Harness;

/// An app for UI tests: settings in `dir`, loopback only, hosting on 127.0.0.1 (any port),
/// no device scan.
pub fn test_app(dir: &Path) -> DuetApp {
    DuetApp::new(AppOptions {
        config_dir: Some(dir.to_path_buf()),
        loopback_only: true,
        host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        host_port: 0,
        scan_devices: false,
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
