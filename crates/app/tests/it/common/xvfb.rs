//! The virtual display of the real-window tests and the UI benchmark (`benches/ui_video.rs`
//! includes this file): Xvfb on a free display number, a window showing the test pattern,
//! keys typed into a window, and the PNGs the app writes.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Xvfb process and its display number. Dropping it kills the process and removes its
/// lock file and socket, which a killed Xvfb leaves behind: 110 of them once filled every
/// display number this helper tries.
pub struct Xvfb(pub Child, u32);

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        // Only this server's files: one that lost the display to a rival leaves the
        // rival's alone.
        let (lock, _) = display_files(self.1);
        if lock_pid(&lock) == Some(self.0.id()) {
            remove_display_files(self.1);
        }
    }
}

/// Removes display `:n`'s lock file and socket.
fn remove_display_files(n: u32) {
    let (lock, socket) = display_files(n);
    let _ = std::fs::remove_file(lock);
    let _ = std::fs::remove_file(socket);
}

/// The lock file and the socket of display `:n`.
fn display_files(n: u32) -> (PathBuf, PathBuf) {
    (
        PathBuf::from(format!("/tmp/.X{n}-lock")),
        PathBuf::from(format!("/tmp/.X11-unix/X{n}")),
    )
}

/// The process id written in an X server's lock file.
fn lock_pid(lock: &Path) -> Option<u32> {
    std::fs::read_to_string(lock).ok()?.trim().parse().ok()
}

/// Starts `Xvfb` on a free display number; returns the process and `:N`. A display whose lock
/// names a process that no longer runs (an X server killed before it could clean up) is free:
/// its files are removed first.
pub fn start_xvfb(size: &str) -> (Xvfb, String) {
    let xvfb = Path::new("/usr/bin/Xvfb");
    assert!(
        xvfb.exists(),
        "Xvfb is missing: run scripts/deps.sh test (or scripts/test.sh), which installs xvfb"
    );
    for n in 90..200 {
        let (lock, socket) = display_files(n);
        if lock.exists() {
            match lock_pid(&lock) {
                Some(pid) if !Path::new(&format!("/proc/{pid}")).exists() => {
                    remove_display_files(n);
                }
                _ => continue,
            }
        } else if socket.exists() {
            continue;
        }
        let child = Command::new(xvfb)
            .args([
                &format!(":{n}"),
                "-screen",
                "0",
                &format!("{size}x24"),
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let mut child = Xvfb(child, n);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.0.try_wait().ok().flatten().is_some() {
                break; // Lost a race for this display number; try the next.
            }
            // Ready once the socket is there and the lock is this server's (not a rival's).
            if socket.exists() && lock_pid(&lock) == Some(child.0.id()) {
                return (child, format!(":{n}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("no free X display number for Xvfb");
}

/// Reads an RGBA PNG: the pixels, the width and the height.
pub fn read_png(path: &Path) -> (Vec<u8>, u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("open png"),
    ));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("png size")];
    let info = reader.next_frame(&mut buf).expect("png data");
    assert_eq!(info.color_type, png::ColorType::Rgba, "RGBA screenshot");
    buf.truncate(info.buffer_size());
    (buf, info.width, info.height)
}

/// The pixels of `rect` of an RGBA image of `width` columns, left and right swapped: what a
/// mirrored picture looks like the right way round.
pub fn unmirrored(rgba: &[u8], width: u32, x: u32, y: u32, w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((w * h * 4) as usize);
    for row in y..y + h {
        for col in (x..x + w).rev() {
            let i = ((row * width + col) * 4) as usize;
            out.extend_from_slice(&rgba[i..i + 4]);
        }
    }
    out
}

/// A window covering the whole virtual display and showing the moving test pattern, its
/// counters starting at `first_counter`: what a shared screen shows the other side. It stays
/// on top (override-redirect, raised with every picture). Closed when dropped.
pub struct PatternWindow {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PatternWindow {
    /// Shows the pattern on `display` (`:N`), `width`×`height` (the screen's size), at `fps`.
    pub fn show(display: &str, width: u16, height: u16, first_counter: u32, fps: u32) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        use x11rb::connection::{Connection as _, RequestConnection as _};
        use x11rb::protocol::xproto::{
            ConfigureWindowAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, ImageFormat,
            StackMode, WindowClass,
        };
        use x11rb::wrapper::ConnectionExt as _;
        let (conn, screen_num) = x11rb::connect(Some(display)).expect("connect to Xvfb");
        let screen = conn.setup().roots[screen_num].clone();
        assert_eq!(screen.root_depth, 24, "a 24-bit display");
        let window = conn.generate_id().expect("id");
        conn.create_window(
            screen.root_depth,
            window,
            screen.root,
            0,
            0,
            width,
            height,
            0,
            WindowClass::INPUT_OUTPUT,
            screen.root_visual,
            &CreateWindowAux::new()
                .override_redirect(1)
                .background_pixel(screen.black_pixel),
        )
        .expect("create window");
        let gc = conn.generate_id().expect("id");
        conn.create_gc(gc, window, &CreateGCAux::new())
            .expect("create gc");
        conn.map_window(window).expect("map");
        conn.flush().expect("flush");
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let pattern = media::TestPattern::new(u32::from(width), u32::from(height), fps);
            let period = Duration::from_secs_f64(1.0 / f64::from(fps.max(1)));
            // One PutImage must fit the server's request limit: send strips of rows.
            let row_bytes = usize::from(width) * 4;
            let rows_per_put = ((conn.maximum_request_bytes() - 64) / row_bytes).max(1);
            let mut counter = first_counter;
            let start = Instant::now();
            let mut n = 0u32;
            while !stopping.load(Ordering::Relaxed) {
                let Ok(frame) = pattern.render(counter, media::unix_time_us()) else {
                    break;
                };
                let Ok(rgba) = frame.to_rgba() else { break };
                // ZPixmap at depth 24 is 32 bits a pixel, blue first.
                let mut bgrx = rgba;
                for px in bgrx.chunks_exact_mut(4) {
                    px.swap(0, 2);
                }
                for (i, strip) in bgrx.chunks(rows_per_put * row_bytes).enumerate() {
                    let rows = (strip.len() / row_bytes) as u16;
                    let y = (i * rows_per_put) as i16;
                    if conn
                        .put_image(
                            ImageFormat::Z_PIXMAP,
                            window,
                            gc,
                            width,
                            rows,
                            0,
                            y,
                            0,
                            24,
                            strip,
                        )
                        .is_err()
                    {
                        return;
                    }
                }
                let _ = conn.configure_window(
                    window,
                    &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE),
                );
                let _ = conn.sync();
                counter = counter.wrapping_add(1);
                n += 1;
                let next = start + period * n;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for PatternWindow {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Presses `key` in the window titled `title` on `display` (xdotool: focus, then XTEST).
pub fn press_key(display: &str, title: &str, key: &str) {
    let xdotool = Path::new("/usr/bin/xdotool");
    assert!(
        xdotool.exists(),
        "xdotool is missing: run scripts/deps.sh test (or scripts/test.sh), which installs it"
    );
    let found = Command::new(xdotool)
        .args(["search", "--sync", "--name", title])
        .env("DISPLAY", display)
        .output()
        .expect("run xdotool");
    let window = String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no window titled {title:?} on {display}"));
    let status = Command::new(xdotool)
        .args(["windowfocus", "--sync", &window, "key", key])
        .env("DISPLAY", display)
        .status()
        .expect("run xdotool");
    assert!(status.success(), "xdotool key {key} failed");
}
