//! UI-thread time per displayed video picture, GPU path against CPU path, in the same run.
//!
//! `cargo bench -p duet --bench ui_video` opens the real window under Xvfb (Mesa llvmpipe) in
//! a call with a headless `duet call` peer, both sending the test pattern at the size under
//! test, once with each renderer (`DUET_VIDEO_RENDERER=cpu|gpu`), and reads what the app's
//! frame-times hook measured (`duet::frame_times`): the app's own video work on the UI thread
//! per picture, and eframe's whole frame time of frames that showed a new remote picture.
//! Results go in docs/benchmarks.md.
//!
//! Under `cargo test` (no `--bench` argument) it only says how to run it.

#[path = "../tests/it/common/xvfb.rs"]
mod xvfb;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use duet::frame_times::FrameTimesReport;
use signal::HostedSignal;

const DUET: &str = env!("CARGO_BIN_EXE_duet");

fn measure(
    display: &str,
    url: &str,
    size: (u32, u32),
    renderer: &str,
    n: usize,
) -> FrameTimesReport {
    let room = format!("ui-bench-{}-{n}", std::process::id());
    let size_flag = format!("{}x{}", size.0, size.1);
    let mut peer = Command::new(DUET)
        .args(["call", &room, "--signal", url, "--loopback"])
        .args(["--video", "test", "--audio", "tone", "--speaker", "null"])
        .args([
            "--size",
            &size_flag,
            "--duration",
            "40",
            "--stats-every",
            "0",
        ])
        // 15 fps and 4 Mbit/s: enough bits per pixel that the resolution ladder never halves
        // 720p on loopback.
        .args(["--fps", "15", "--bitrate-kbps", "4000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the peer");
    let dir = std::env::temp_dir().join(format!("duet-ui-bench-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join("frame-times.json");
    let _ = std::fs::remove_file(&json);
    let mut app = Command::new(DUET)
        .args(["--join", &room, "--signal", url, "--loopback"])
        .args(["--video", "test", "--audio", "tone", "--speaker", "null"])
        .args(["--size", &size_flag])
        .env("DISPLAY", display)
        .env_remove("WAYLAND_DISPLAY")
        .env("DUET_CONFIG_DIR", &dir)
        .env("DUET_VIDEO_RENDERER", renderer)
        .env("DUET_FRAME_TIMES", &json)
        .env("DUET_FRAME_TIMES_AFTER_S", "6")
        .env("DUET_FRAME_TIMES_FOR_S", "10")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the app");
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = app.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = peer.kill();
    let _ = peer.wait();
    let report: FrameTimesReport =
        serde_json::from_slice(&std::fs::read(&json).expect("the app wrote no frame times"))
            .expect("frame times json");
    let _ = std::fs::remove_dir_all(&dir);
    report
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "ui_video: run with `cargo bench -p duet --bench ui_video` (opens windows under Xvfb)"
        );
        return;
    }
    let (_xvfb, display) = xvfb::start_xvfb("1600x900");
    let signal = HostedSignal::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        signal::Config::default(),
    )
    .expect("signal server");
    let url = signal.local_url();
    println!(
        "| size | renderer | app's video work per picture (UI thread) | frame time, mean / p50 / p95 (frames with a new remote picture) | pictures |"
    );
    println!("|---|---|---|---|---|");
    let mut n = 0;
    for size in [(640, 480), (1280, 720)] {
        for renderer in ["cpu", "gpu"] {
            n += 1;
            let r = measure(&display, &url, size, renderer, n);
            assert_eq!(
                r.renderer, renderer,
                "the app drew with the renderer asked for"
            );
            assert_eq!(
                (r.width, r.height),
                size,
                "the remote picture has the size under test"
            );
            println!(
                "| {}×{} | {} | {:.0} µs | {:.2} / {:.2} / {:.2} ms ({} frames) | {} |",
                r.width,
                r.height,
                r.renderer,
                r.video_us_per_picture,
                r.frame_ms_mean,
                r.frame_ms_p50,
                r.frame_ms_p95,
                r.frames,
                r.pictures
            );
        }
    }
}
