//! Screen sharing in the real window under Xvfb. `duet --join` is in a call with the same
//! engine on the far side, which sends its own test pattern as its camera; the app's camera
//! is the test pattern too (counters from 0). Pressing S in the app (the button's shortcut,
//! typed through XTEST) shares the screen; then a window showing the moving test pattern
//! (counters from 1 000 000) comes up over the whole virtual display, as if the person
//! switched to the window they want to show. The far side decodes 1280×720 pictures whose
//! counters are that window's and keep increasing. The window goes away (back to duet),
//! S again brings the camera back: the far side decodes the app's own 640×480 pattern.
//!
//! The app's screenshot while sharing is kept as `target/duet-screen-share.png`
//! (docs/images/screen-share.png is one).

use crate::common;

use std::time::{Duration, Instant};

use call::{CallState, CallStats, Engine, Event};
use common::xvfb::{PatternWindow, press_key, read_png, start_xvfb};
use common::{KillOnDrop, target_dir, unique_room};
use duet::screenshot::ScreenshotLayout;
use media::{PatternRect, read_pattern_stamp_rgba};

/// The shared window's counters start here; the app's own test pattern counts from 0.
const SCREEN_COUNTERS: u32 = 1_000_000;

/// Follows the far side's stats until `done` holds for the newest, or `timeout`.
fn watch(
    far: &Engine,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&CallStats) -> bool,
) -> CallStats {
    let deadline = Instant::now() + timeout;
    let mut last = CallStats::default();
    while Instant::now() < deadline {
        match far.events().recv_timeout(Duration::from_millis(200)) {
            Ok(Event::Stats(s)) => {
                if done(&s) {
                    return *s;
                }
                last = *s;
            }
            Ok(Event::State(CallState::Failed(why))) => panic!("the far side failed: {why}"),
            _ => {}
        }
    }
    panic!(
        "timed out waiting for {what}: pattern {:?}..{:?} ({} frames), received {:?}",
        last.pattern_first, last.pattern_last, last.pattern_frames, last.recv_resolution
    );
}

/// Waits until the far side decodes counters on the `screen` side of [`SCREEN_COUNTERS`] at
/// `size`, and then sees them go up by at least 5.
fn decodes(far: &Engine, screen: bool, size: (u32, u32), what: &str) -> (u32, u32) {
    let ours = |s: &CallStats| {
        s.recv_resolution == size
            && s.pattern_last
                .is_some_and(|c| (c >= SCREEN_COUNTERS) == screen)
    };
    let first = watch(far, Duration::from_secs(30), what, ours)
        .pattern_last
        .unwrap_or_default();
    let later = watch(far, Duration::from_secs(30), what, |s| {
        ours(s) && s.pattern_last.is_some_and(|c| c >= first + 5)
    })
    .pattern_last
    .unwrap_or_default();
    (first, later)
}

#[test]
fn sharing_the_screen_sends_it_and_stopping_brings_the_camera_back() {
    let _slot = crate::common::slots::call_slot();
    let (_xvfb, display) = start_xvfb("1280x720");
    let signal = common::hosted_signal();
    let url = signal.local_url();
    let room = unique_room("share");

    let far = common::synthetic_call(&url, &room, 640, 360);
    let far = Engine::start(far, None).expect("far side");

    let config = tempfile::tempdir().expect("tempdir");
    let png_path = target_dir().join("duet-screen-share.png");
    let json_path = png_path.with_extension("json");
    let _ = std::fs::remove_file(&png_path);
    let _ = std::fs::remove_file(&json_path);
    let _app = KillOnDrop(
        common::window_app(&room, &url, &display, config.path(), &png_path)
            .env("DUET_SCREENSHOT_AFTER_S", "0")
            .env("DUET_SCREENSHOT_WHILE_SHARING", "1")
            .env("DUET_SCREENSHOT_EXIT", "0")
            .spawn()
            .expect("start the app"),
    );

    let camera = decodes(&far, false, (640, 480), "the app's camera (test pattern)");
    press_key(&display, "^duet$", "s");
    let window = PatternWindow::show(&display, 1280, 720, SCREEN_COUNTERS, 10);
    let screen = decodes(&far, true, (1280, 720), "the shared screen");

    // The app's own view while sharing: the screen in the self-view, not mirrored.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !json_path.exists() {
        assert!(Instant::now() < deadline, "no screenshot while sharing");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(300)); // the PNG is written first, then the JSON
    let layout: ScreenshotLayout =
        serde_json::from_slice(&std::fs::read(&json_path).expect("layout json")).expect("json");
    assert!(layout.sharing_screen, "the screenshot shows the share");
    let (rgba, width, height) = read_png(&png_path);
    assert_eq!((width, height), (layout.width, layout.height));
    let region = |r: duet::screenshot::PixelRect| PatternRect {
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
    };
    let own = read_pattern_stamp_rgba(&rgba, width, height, region(layout.local))
        .expect("the self-view shows the shared screen the right way round");
    assert!(
        own.counter >= SCREEN_COUNTERS,
        "self-view shows the screen: {own:?}"
    );
    let remote = read_pattern_stamp_rgba(&rgba, width, height, region(layout.remote))
        .expect("the far side's video is still shown");
    assert!(remote.counter < SCREEN_COUNTERS, "{remote:?}");

    drop(window);
    press_key(&display, "^duet$", "s");
    let back = decodes(
        &far,
        false,
        (640, 480),
        "the camera again after sharing stopped",
    );
    eprintln!(
        "camera counters {camera:?}, screen {screen:?}, camera again {back:?}; screenshot {} \
         (self-view {own:?}, remote {remote:?})",
        png_path.display()
    );
    far.hang_up();
}

/// The video sender's watchdog, on a real source that stalls: `duet call --video screen`
/// shares the virtual display, then the display server is stopped (SIGSTOP), so every capture
/// blocks without failing, as under a camera driver that never returns after an unplug. The
/// sharing side says so within a few seconds and the far side gets black pictures; once the
/// server runs again (SIGCONT) the screen's pictures come back by themselves.
#[test]
fn a_stalled_source_is_reported_and_comes_back() {
    let _slot = crate::common::slots::call_slot();
    let (xvfb, display) = start_xvfb("1280x720");
    let window = PatternWindow::show(&display, 1280, 720, SCREEN_COUNTERS, 10);
    let signal = common::hosted_signal();
    let url = signal.local_url();
    let room = unique_room("stall");
    let far = Engine::start(common::synthetic_call(&url, &room, 640, 360), None).expect("far");
    let mut sharer = common::duet()
        .args(["call", &room, "--signal", &url, "--loopback"])
        .args(["--video", "screen", "--audio", "tone", "--speaker", "null"])
        .args(["--duration", "60", "--stats-every", "0"])
        .env("DISPLAY", &display)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("XDG_SESSION_TYPE")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the sharing peer");
    let (lines_tx, lines) = crossbeam_channel::unbounded::<String>();
    let stdout = sharer.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    let _sharer = KillOnDrop(sharer);
    let said = |what: &str, timeout: Duration| {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(what) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    };

    decodes(&far, true, (1280, 720), "the shared screen");
    let signal_xvfb = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &xvfb.0.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} Xvfb");
    };
    signal_xvfb("-STOP");
    let warned = said("has sent no picture", Duration::from_secs(15));
    // The far side is sent black pictures at the call's size meanwhile.
    let black = watch(&far, Duration::from_secs(15), "black pictures", |s| {
        s.recv_resolution == (640, 480)
    });
    signal_xvfb("-CONT");
    let warned = warned.expect("the sharing side never said its screen stalled");
    assert!(warned.contains("screen:0"), "{warned}");
    assert!(
        said("is sending pictures again", Duration::from_secs(15)).is_some(),
        "the sharing side never said the screen was back"
    );
    let back = decodes(&far, true, (1280, 720), "the screen again after the stall");
    eprintln!(
        "stalled: {warned:?}; far side got {:?} meanwhile; then counters {back:?}",
        black.recv_resolution
    );
    drop(window);
    far.hang_up();
}
