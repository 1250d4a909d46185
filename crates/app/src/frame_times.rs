//! A measurement hook: how much UI-thread time video costs per displayed picture, for
//! docs/benchmarks.md (`cargo bench -p duet --bench ui_video`). Enabled by
//! `DUET_FRAME_TIMES=path.json`: once a call has been connected for
//! `DUET_FRAME_TIMES_AFTER_S` (default 3 s), it measures for `DUET_FRAME_TIMES_FOR_S`
//! (default 10 s), writes the JSON and closes the window.
//!
//! Two numbers per renderer: the video work the app does itself on the UI thread (taking the
//! pictures, and converting them on the CPU path, or uploading the planes on the GPU path),
//! per picture; and eframe's whole frame time (build, tessellate, paint, not the buffer swap) of
//! frames that showed a new remote picture, which also holds the CPU path's RGBA upload.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::call_view::CallView;

/// What is written.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct FrameTimesReport {
    /// "gpu" or "cpu".
    pub renderer: String,
    /// The remote picture's size.
    pub width: u32,
    /// The remote picture's size.
    pub height: u32,
    /// Pictures taken (both streams) during the measurement.
    pub pictures: u64,
    /// The app's own video work on the UI thread per picture, µs.
    pub video_us_per_picture: f64,
    /// Whole-frame times of frames that showed a new remote picture, ms.
    pub frame_ms_mean: f64,
    /// Median of the same.
    pub frame_ms_p50: f64,
    /// 95th percentile of the same.
    pub frame_ms_p95: f64,
    /// How many frames those are.
    pub frames: usize,
}

/// Collects the numbers during one call.
#[derive(Debug)]
pub struct FrameTimes {
    path: PathBuf,
    after: Duration,
    length: Duration,
    start: Option<(Instant, u64, u64)>,
    last_remote_shown: u64,
    showed_remote: bool,
    frame_ms: Vec<f64>,
    done: bool,
}

impl FrameTimes {
    /// From `DUET_FRAME_TIMES` (and its `_AFTER_S`, `_FOR_S`); `None` when not asked for.
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os("DUET_FRAME_TIMES").filter(|p| !p.is_empty())?;
        let secs = |name: &str, default: f64| {
            std::env::var(name)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(default)
        };
        Some(Self {
            path: PathBuf::from(path),
            after: Duration::from_secs_f64(secs("DUET_FRAME_TIMES_AFTER_S", 3.0)),
            length: Duration::from_secs_f64(secs("DUET_FRAME_TIMES_FOR_S", 10.0)),
            start: None,
            last_remote_shown: 0,
            showed_remote: false,
            frame_ms: Vec::new(),
            done: false,
        })
    }

    /// Called every frame during a call with eframe's time for the previous frame.
    pub fn poll(&mut self, ctx: &egui::Context, view: &CallView, last_frame_s: Option<f32>) {
        if self.done {
            return;
        }
        let Some(connected) = view.connected_since() else {
            return;
        };
        ctx.request_repaint_after(Duration::from_millis(50));
        if connected.elapsed() < self.after {
            return;
        }
        let (us, pictures) = view.video_ui_cost();
        let (started, us0, pictures0) = *self.start.get_or_insert((Instant::now(), us, pictures));
        // The frame that took a new remote picture is reported one frame later.
        if self.showed_remote
            && let Some(s) = last_frame_s
        {
            self.frame_ms.push(f64::from(s) * 1000.0);
        }
        let shown = view.remote_frames_shown();
        self.showed_remote = shown > self.last_remote_shown;
        self.last_remote_shown = shown;
        if started.elapsed() < self.length {
            return;
        }
        self.done = true;
        let taken = pictures - pictures0;
        let mut sorted = self.frame_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let pick = |q: f64| {
            sorted
                .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        let size = view.remote_size();
        let report = FrameTimesReport {
            renderer: format!("{:?}", view.renderer()).to_lowercase(),
            width: size.0,
            height: size.1,
            pictures: taken,
            video_us_per_picture: (us - us0) as f64 / taken.max(1) as f64,
            frame_ms_mean: sorted.iter().sum::<f64>() / sorted.len().max(1) as f64,
            frame_ms_p50: pick(0.5),
            frame_ms_p95: pick(0.95),
            frames: sorted.len(),
        };
        let written = serde_json::to_vec_pretty(&report)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(&self.path, json));
        if let Err(e) = written {
            tracing::error!(path = %self.path.display(), error = %e, "frame times not written");
        }
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }
}
