//! Screen sharing as a [`VideoSource`]: a whole monitor, captured with the `xcap` crate.
//!
//! - On X11 each picture is one `GetImage` of the monitor's area of the root window (xcb), taken
//!   on the `duet-screen` thread at the requested rate.
//! - On Wayland (xcap decides by `XDG_SESSION_TYPE` / `WAYLAND_DISPLAY`) pictures come from the
//!   xdg-desktop-portal ScreenCast session over PipeWire; the desktop asks the user which screen
//!   to share. The newest picture is taken at the requested rate; older ones are dropped.
//!
//! Pictures are RGBA; they are cropped to even sizes and halved until they fit
//! [`MAX_SCREEN_WIDTH`]×[`MAX_SCREEN_HEIGHT`] (so a 4K screen is sent at 1080p, a 1440p one at
//! 720p), then converted to I420.

use std::time::{Duration, Instant};

use crate::capture::{Capture, FrameSender, VideoSource, spawn_named};
use crate::{Error, VideoFrame, unix_time_us};

/// The widest picture a screen share sends.
pub const MAX_SCREEN_WIDTH: u32 = 1920;
/// The tallest picture a screen share sends.
pub const MAX_SCREEN_HEIGHT: u32 = 1080;
/// The frame rates a screen share may run at (text changes rarely; every picture is big).
pub const SCREEN_FPS_RANGE: std::ops::RangeInclusive<u32> = 5..=15;

/// A monitor to share, by index in [`list_screens`], at `fps` pictures a second (clamped to
/// [`SCREEN_FPS_RANGE`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Screen {
    /// Index in [`list_screens`] (0 = the first monitor the system lists).
    pub index: u32,
    /// Pictures per second.
    pub fps: u32,
}

/// A monitor that can be shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenInfo {
    /// Index for [`Screen::index`].
    pub index: u32,
    /// The system's name for it.
    pub name: String,
    /// Size in pixels.
    pub width: u32,
    /// Size in pixels.
    pub height: u32,
    /// Whether it is the primary monitor.
    pub primary: bool,
}

fn screen_error(reason: impl std::fmt::Display) -> Error {
    Error::Screen(reason.to_string())
}

/// The monitors on this desktop. An error when there is no display to capture (no `DISPLAY`
/// nor Wayland session) or the display server refuses.
///
/// # Errors
/// [`Error::Screen`] with what the platform said.
pub fn list_screens() -> Result<Vec<ScreenInfo>, Error> {
    Ok(monitors()?
        .iter()
        .enumerate()
        .map(|(i, m)| ScreenInfo {
            index: i as u32,
            name: m.name().unwrap_or_else(|_| format!("Screen {}", i + 1)),
            width: m.width().unwrap_or(0),
            height: m.height().unwrap_or(0),
            primary: m.is_primary().unwrap_or(false),
        })
        .collect())
}

/// The monitors as xcap sees them; an error without a display.
fn monitors() -> Result<Vec<xcap::Monitor>, Error> {
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        return Err(screen_error(
            "no display to share (neither DISPLAY nor WAYLAND_DISPLAY is set)",
        ));
    }
    xcap::Monitor::all().map_err(screen_error)
}

impl Screen {
    /// Monitor `index` at `fps` (clamped to [`SCREEN_FPS_RANGE`]).
    #[must_use]
    pub fn new(index: u32, fps: u32) -> Self {
        Self {
            index,
            fps: fps.clamp(*SCREEN_FPS_RANGE.start(), *SCREEN_FPS_RANGE.end()),
        }
    }
}

impl VideoSource for Screen {
    fn name(&self) -> String {
        format!("Screen {}", self.index + 1)
    }

    /// Starts sharing on the `duet-screen` thread. It waits up to [`SCREEN_READY_WAIT`] for the
    /// first picture, so a display that cannot be captured (X11) is an error here, not a dark
    /// stream. A portal that is still asking the person which screen to share (Wayland) does not
    /// hold the caller longer: pictures then arrive once they have chosen, and a refusal ends
    /// the capture with its error.
    ///
    /// # Errors
    /// [`Error::Screen`]: no display, no such monitor, or the capture was refused.
    fn start(self, capacity: usize) -> Result<Capture<VideoFrame>, Error> {
        let monitors = monitors()?;
        let count = monitors.len();
        let monitor = monitors
            .into_iter()
            .nth(self.index as usize)
            .ok_or_else(|| screen_error(format!("no screen {} ({count} found)", self.index + 1)))?;
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), Error>>(1);
        let capture = spawn_named("duet-screen", capacity, move |tx| {
            run_screen(&monitor, self.fps, &tx, &ready_tx)
        })?;
        match ready_rx.recv_timeout(SCREEN_READY_WAIT) {
            Ok(Ok(())) | Err(crossbeam_channel::RecvTimeoutError::Timeout) => Ok(capture),
            Ok(Err(e)) => Err(e),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                Err(Error::ThreadPanicked("duet-screen".into()))
            }
        }
    }
}

/// How long [`Screen::start`] waits for the first picture. An X11 capture takes tens of
/// milliseconds; a Wayland portal waits for a person, for as long as they take (found in a
/// headless sway session whose portal never answered: a `start` that waited for it froze the
/// call at connect, since the call waits for the preview to release its source).
pub const SCREEN_READY_WAIT: Duration = Duration::from_secs(3);

/// Where the pictures come from: one capture per picture (X11), or the newest picture of a
/// portal ScreenCast stream (Wayland).
enum Grabber {
    Direct(xcap::Monitor),
    Stream {
        recorder: xcap::VideoRecorder,
        frames: std::sync::mpsc::Receiver<xcap::Frame>,
    },
}

impl Grabber {
    fn open(monitor: &xcap::Monitor) -> Result<Self, Error> {
        let wayland = std::env::var_os("WAYLAND_DISPLAY").is_some()
            || std::env::var("XDG_SESSION_TYPE").is_ok_and(|t| t.eq_ignore_ascii_case("wayland"));
        if !wayland {
            return Ok(Self::Direct(monitor.clone()));
        }
        let (recorder, frames) = monitor.video_recorder().map_err(screen_error)?;
        recorder.start().map_err(screen_error)?;
        Ok(Self::Stream { recorder, frames })
    }

    /// The next picture as (width, height, RGBA); `wait` bounds how long a stream may take.
    fn grab(&self, wait: Duration) -> Result<Option<(u32, u32, Vec<u8>)>, Error> {
        match self {
            Self::Direct(monitor) => {
                let image = monitor.capture_image().map_err(screen_error)?;
                let (w, h) = image.dimensions();
                Ok(Some((w, h, image.into_raw())))
            }
            Self::Stream { frames, .. } => {
                let mut newest = match frames.recv_timeout(wait) {
                    Ok(f) => f,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return Ok(None),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        return Err(screen_error("the screen cast ended"));
                    }
                };
                while let Ok(f) = frames.try_recv() {
                    newest = f;
                }
                Ok(Some((newest.width, newest.height, newest.raw)))
            }
        }
    }
}

impl Drop for Grabber {
    fn drop(&mut self) {
        if let Self::Stream { recorder, .. } = self {
            let _ = recorder.stop();
        }
    }
}

/// Captures that fail one after another before the share is given up. A single capture can
/// fail now and then (xcap opens an X connection per capture; measured here: about 1 in 20
/// first captures fails with a connection error, the next one works).
const MAX_FAILED_CAPTURES: u32 = 10;

/// [`Grabber::grab`], tried again after a failure up to [`MAX_FAILED_CAPTURES`] times in a row.
fn grab_retrying(
    grabber: &Grabber,
    wait: Duration,
    failed: &mut u32,
) -> Result<Option<(u32, u32, Vec<u8>)>, Error> {
    loop {
        match grabber.grab(wait) {
            Ok(picture) => {
                *failed = 0;
                return Ok(picture);
            }
            Err(e) => {
                *failed += 1;
                if *failed >= MAX_FAILED_CAPTURES {
                    return Err(e);
                }
                tracing::debug!(error = %e, "a screen capture failed; trying again");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn run_screen(
    monitor: &xcap::Monitor,
    fps: u32,
    tx: &FrameSender<VideoFrame>,
    ready: &crossbeam_channel::Sender<Result<(), Error>>,
) -> Result<(), Error> {
    let mut failed = 0;
    let first = Grabber::open(monitor).and_then(|g| {
        // A portal stream starts after the user picked a screen: allow them time.
        let first = grab_retrying(&g, Duration::from_secs(60), &mut failed)?;
        Ok((g, first))
    });
    let (grabber, first) = match first {
        Ok(v) => {
            let _ = ready.send(Ok(()));
            v
        }
        Err(e) => {
            // Past SCREEN_READY_WAIT nobody waits for the answer: the capture ends with it.
            return match ready.send(Err(e)) {
                Err(crossbeam_channel::SendError(Err(e))) => Err(e),
                _ => Ok(()),
            };
        }
    };
    let period = Duration::from_secs_f64(1.0 / f64::from(fps.max(1)));
    let start = Instant::now();
    let mut next = first;
    let mut n: u32 = 0;
    while !tx.should_stop() {
        if let Some((w, h, rgba)) = next.take() {
            let frame = screen_frame(w, h, &rgba, unix_time_us())?;
            if !tx.push(frame) {
                break;
            }
        }
        n = n.wrapping_add(1);
        let deadline = start + period * n;
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        next = grab_retrying(&grabber, period, &mut failed)?;
    }
    Ok(())
}

/// An RGBA screen picture as a frame the encoder takes: cropped to even sizes, halved until it
/// fits [`MAX_SCREEN_WIDTH`]×[`MAX_SCREEN_HEIGHT`].
///
/// # Errors
/// [`Error::InvalidFrame`] for a picture smaller than 2×2 or a short buffer.
pub fn screen_frame(
    width: u32,
    height: u32,
    rgba: &[u8],
    capture_time_us: u64,
) -> Result<VideoFrame, Error> {
    let (even_w, even_h) = (width & !1, height & !1);
    let mut frame = if even_w == width {
        VideoFrame::from_rgba(even_w, even_h, rgba, capture_time_us)?
    } else {
        let row = width as usize * 4;
        let keep = even_w as usize * 4;
        let mut cropped = Vec::with_capacity(keep * even_h as usize);
        for y in 0..even_h as usize {
            let line = rgba.get(y * row..y * row + keep).ok_or_else(|| {
                Error::InvalidFrame(format!("{width}x{height} screen picture is short"))
            })?;
            cropped.extend_from_slice(line);
        }
        VideoFrame::from_rgba(even_w, even_h, &cropped, capture_time_us)?
    };
    while frame.width() > MAX_SCREEN_WIDTH || frame.height() > MAX_SCREEN_HEIGHT {
        frame = frame.half_size();
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgba(w: u32, h: u32) -> Vec<u8> {
        vec![128; (w * h * 4) as usize]
    }

    #[test]
    fn a_picture_that_fits_is_kept_at_its_size() {
        let f = screen_frame(1280, 800, &rgba(1280, 800), 7).expect("frame");
        assert_eq!((f.width(), f.height(), f.capture_time_us), (1280, 800, 7));
    }

    #[test]
    fn big_screens_are_halved_until_they_fit_1080p() {
        let f = screen_frame(3840, 2160, &rgba(3840, 2160), 0).expect("4K");
        assert_eq!((f.width(), f.height()), (1920, 1080));
        let f = screen_frame(2560, 1440, &rgba(2560, 1440), 0).expect("1440p");
        assert_eq!((f.width(), f.height()), (1280, 720));
    }

    #[test]
    fn odd_sizes_are_cropped_to_even() {
        let f = screen_frame(1367, 769, &rgba(1367, 769), 0).expect("odd");
        assert_eq!((f.width(), f.height()), (1366, 768));
    }

    #[test]
    fn a_short_buffer_is_an_error() {
        assert!(screen_frame(1367, 769, &rgba(100, 100), 0).is_err());
        assert!(screen_frame(1280, 800, &rgba(100, 100), 0).is_err());
    }

    #[test]
    fn the_rate_is_kept_in_range() {
        assert_eq!(Screen::new(0, 30).fps, 15);
        assert_eq!(Screen::new(0, 1).fps, 5);
        assert_eq!(Screen::new(0, 10).fps, 10);
    }

    #[test]
    fn no_display_is_a_clear_error() {
        if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
            return; // Only meaningful without a display; the Xvfb tests cover the rest.
        }
        let e = Screen::new(0, 10).start(2).expect_err("no display");
        assert!(e.to_string().contains("no display"), "{e}");
    }
}
