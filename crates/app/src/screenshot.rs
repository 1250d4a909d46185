//! A test hook: once a call has been connected for a while, save a screenshot of the window
//! (PNG) and where the two videos are in it (JSON, pixels), then optionally close. Enabled by
//! `DUET_SCREENSHOT=path.png`; the real-window test reads both files and decodes the test
//! pattern's counters from the two regions.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use egui::{ColorImage, Rect};
use serde::Serialize;

use crate::call_view::CallView;

/// When and where to take the screenshot.
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenshotPlan {
    /// The PNG's path; the layout goes next to it with the extension `.json`.
    pub path: PathBuf,
    /// How long the call must have been connected (with remote pictures arriving).
    pub after_connected: Duration,
    /// Close the window once the files are written.
    pub exit_after: bool,
    /// Wait until the screen has been shared for a while (the screen-sharing test).
    pub while_sharing: bool,
}

impl ScreenshotPlan {
    /// `DUET_SCREENSHOT=path.png` (required), `DUET_SCREENSHOT_AFTER_S` (default 3),
    /// `DUET_SCREENSHOT_EXIT` (default 1), `DUET_SCREENSHOT_WHILE_SHARING` (default 0).
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os("DUET_SCREENSHOT").filter(|p| !p.is_empty())?;
        let after_s = std::env::var("DUET_SCREENSHOT_AFTER_S")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(3.0);
        let exit_after = std::env::var("DUET_SCREENSHOT_EXIT").map_or(true, |v| v != "0");
        let while_sharing = std::env::var("DUET_SCREENSHOT_WHILE_SHARING").is_ok_and(|v| v == "1");
        Some(Self {
            path: PathBuf::from(path),
            after_connected: Duration::from_secs_f64(after_s),
            exit_after,
            while_sharing,
        })
    }

    /// The layout file that goes with the PNG.
    pub fn layout_path(&self) -> PathBuf {
        self.path.with_extension("json")
    }
}

/// A rectangle in screenshot pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PixelRect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl PixelRect {
    fn from_points(rect: Rect, pixels_per_point: f32) -> Self {
        let px = |v: f32| (v * pixels_per_point).round().max(0.0) as u32;
        Self {
            x: px(rect.min.x),
            y: px(rect.min.y),
            width: px(rect.width()),
            height: px(rect.height()),
        }
    }
}

/// What is written next to the PNG.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ScreenshotLayout {
    /// The screenshot's size.
    pub width: u32,
    /// The screenshot's size.
    pub height: u32,
    /// Scale between egui points and pixels.
    pub pixels_per_point: f32,
    /// Where the remote video is.
    pub remote: PixelRect,
    /// Where the self-view is.
    pub local: PixelRect,
    /// The room of the call.
    pub room: String,
    /// How video was drawn: "gpu" or "cpu".
    #[serde(default)]
    pub renderer: String,
    /// Whether the screen was being shared.
    #[serde(default)]
    pub sharing_screen: bool,
}

/// Takes the planned screenshot once.
#[derive(Debug)]
pub struct ScreenshotTaker {
    plan: ScreenshotPlan,
    requested: bool,
}

impl ScreenshotTaker {
    /// Waits for the right moment of the first connected call.
    pub fn new(plan: ScreenshotPlan) -> Self {
        Self {
            plan,
            requested: false,
        }
    }

    /// Whether the screenshot has been asked for.
    pub fn is_done(&self) -> bool {
        self.requested
    }

    /// Called every frame during a call; asks for the screenshot when the call is ready.
    pub fn poll(&mut self, ctx: &egui::Context, view: &CallView) {
        if self.requested {
            return;
        }
        let layout = view.layout();
        let ready = view
            .connected_since()
            .is_some_and(|t| t.elapsed() >= self.plan.after_connected)
            && view.remote_frames_shown() >= 10
            && (!self.plan.while_sharing
                || view.sharing_screen_for() >= Some(Duration::from_secs(2)));
        let (Some(remote), Some(local), true) = (layout.remote, layout.local, ready) else {
            if view.connected_since().is_some() {
                // Keep frames coming until the moment arrives, even without new video.
                ctx.request_repaint_after(Duration::from_millis(100));
            }
            return;
        };
        self.requested = true;
        let ppp = ctx.pixels_per_point();
        let plan = self.plan.clone();
        let room = view.room().to_owned();
        let renderer = format!("{:?}", view.renderer()).to_lowercase();
        let sharing_screen = view.sharing_screen();
        let close = ctx.clone();
        ctx.request_screenshot(move |image: Arc<ColorImage>| {
            let layout = ScreenshotLayout {
                width: image.size[0] as u32,
                height: image.size[1] as u32,
                pixels_per_point: ppp,
                remote: PixelRect::from_points(remote, ppp),
                local: PixelRect::from_points(local, ppp),
                room,
                renderer,
                sharing_screen,
            };
            match write_files(&plan, &image, &layout) {
                Ok(()) => tracing::info!(path = %plan.path.display(), "screenshot written"),
                Err(e) => {
                    tracing::error!(path = %plan.path.display(), error = %e, "screenshot failed")
                }
            }
            if plan.exit_after {
                close.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            close.request_repaint();
        });
    }
}

fn write_files(
    plan: &ScreenshotPlan,
    image: &ColorImage,
    layout: &ScreenshotLayout,
) -> std::io::Result<()> {
    write_png(&plan.path, image)?;
    let json = serde_json::to_vec_pretty(layout).map_err(std::io::Error::other)?;
    std::fs::write(plan.layout_path(), json)
}

/// Writes an RGBA image as PNG.
pub fn write_png(path: &Path, image: &ColorImage) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, image.size[0] as u32, image.size[1] as u32);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
    writer
        .write_image_data(image.as_raw())
        .map_err(std::io::Error::other)?;
    writer.finish().map_err(std::io::Error::other)
}
