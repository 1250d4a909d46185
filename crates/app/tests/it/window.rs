//! The real window under Xvfb: `duet --join R --video test --audio tone` against a headless
//! `duet call` peer. The app saves a screenshot once connected (DUET_SCREENSHOT) plus where it
//! drew the two videos; the test decodes the test pattern's stamp from both regions. The peer
//! sends 16:9 and the app 4:3, so the regions' shapes also tell which stream is where.
//!
//! The PNG is kept as `target/duet-window.png` for people to look at.

use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::xvfb::{read_png, start_xvfb, unmirrored};
use common::{KillOnDrop, duet, target_dir, unique_room};
use duet::screenshot::ScreenshotLayout;

use media::{PatternRect, Stamp, read_pattern_stamp_rgba};

fn decode(
    rgba: &[u8],
    layout: &ScreenshotLayout,
    rect: duet::screenshot::PixelRect,
) -> Option<Stamp> {
    read_pattern_stamp_rgba(
        rgba,
        layout.width,
        layout.height,
        PatternRect {
            x: rect.x,
            y: rect.y,
            width: rect.width,
            height: rect.height,
        },
    )
}

#[test]
fn window_shows_remote_and_local_test_patterns() {
    // A real call: not at the same time as a lab test measuring frame rates.
    let _slot = crate::common::slots::call_slot();
    let signal = common::hosted_signal();
    let url = signal.local_url();
    let room = unique_room("window");
    let _peer = KillOnDrop(
        duet()
            .args(["call", &room, "--signal", &url, "--loopback"])
            .args(["--video", "test", "--audio", "tone", "--size", "640x360"])
            .args(["--duration", "60", "--stats-every", "0"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start the headless peer"),
    );
    let (_xvfb, display) = start_xvfb("1280x800");
    let config = tempfile::tempdir().expect("tempdir");
    let png_path = target_dir().join("duet-window.png");
    let json_path = png_path.with_extension("json");
    let _ = std::fs::remove_file(&png_path);
    let _ = std::fs::remove_file(&json_path);
    let started_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut app = KillOnDrop(
        common::window_app(&room, &url, &display, config.path(), &png_path)
            .env("DUET_SCREENSHOT_AFTER_S", "4")
            .env("DUET_SCREENSHOT_EXIT", "1")
            .spawn()
            .expect("start the app"),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = app.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the app did not take its screenshot in time"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "the app exited with {status}");

    let layout: ScreenshotLayout =
        serde_json::from_slice(&std::fs::read(&json_path).expect("layout json")).expect("json");
    let (rgba, width, height) = read_png(&png_path);
    assert_eq!((width, height), (layout.width, layout.height));
    assert!(
        width >= 600 && height >= 400,
        "a real window: {width}x{height}"
    );
    assert_eq!(layout.room, room);

    let remote = decode(&rgba, &layout, layout.remote).unwrap_or_else(|| {
        panic!(
            "no test-pattern stamp in the remote video at {:?}",
            layout.remote
        )
    });
    // The self-view is mirrored, as in every call app: its stamp reads only the right way
    // round.
    let l = layout.local;
    assert_eq!(
        decode(&rgba, &layout, l),
        None,
        "the self-view is not mirrored"
    );
    let flipped = unmirrored(&rgba, layout.width, l.x, l.y, l.width, l.height);
    let local = read_pattern_stamp_rgba(
        &flipped,
        l.width,
        l.height,
        PatternRect {
            x: 0,
            y: 0,
            width: l.width,
            height: l.height,
        },
    )
    .unwrap_or_else(|| panic!("no test-pattern stamp in the mirrored self-view at {l:?}"));
    // Drawn by the GPU path (planes uploaded, colour made in a shader), which Mesa runs here.
    assert_eq!(layout.renderer, "gpu", "video drawn on the GPU");
    // Both pictures are live frames from this run.
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    for (name, stamp) in [("remote", remote), ("local", local)] {
        assert!(
            stamp.capture_time_us >= started_us.saturating_sub(120_000_000)
                && stamp.capture_time_us <= now_us,
            "{name} stamp from another time: {stamp:?}"
        );
        assert!(
            stamp.counter > 30,
            "{name} video has run for a while: {stamp:?}"
        );
    }
    // The peer's 16:9 stream fills the window; the app's own 4:3 camera is the self-view.
    let aspect = |r: duet::screenshot::PixelRect| f64::from(r.width) / f64::from(r.height);
    assert!(
        (aspect(layout.remote) - 16.0 / 9.0).abs() < 0.05,
        "remote region is the peer's 16:9 picture: {:?}",
        layout.remote
    );
    assert!(
        (aspect(layout.local) - 4.0 / 3.0).abs() < 0.05,
        "self-view is the local 4:3 picture: {:?}",
        layout.local
    );
    assert!(
        layout.remote.width > layout.local.width * 2,
        "remote video fills the window, self-view is small"
    );
    assert_ne!(remote, local, "two different streams");
    eprintln!(
        "screenshot {} ({width}x{height}): remote {remote:?} at {:?}, local {local:?} at {:?}",
        png_path.display(),
        layout.remote,
        layout.local
    );
}
