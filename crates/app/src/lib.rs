//! `duet`, the desktop app: an egui window around the `call` engine.
//!
//! The app owns UI state only. Calls run in [`call::Engine`] (its own runtime and threads);
//! the UI drains the engine's events each frame, sends commands over its channel, and is woken
//! by the engine's `request_repaint`. "Host on this computer" runs a `signal` server in-process
//! ([`signal::HostedSignal`]).
//!
//! - [`app`]: [`DuetApp`], the start screen and the switch into a call and back.
//! - [`call_view`]: the in-call screen.
//! - [`settings`]: what is remembered between runs, and where.
//! - [`share`]: hosting, the LAN address and the share links.
//! - [`room`], [`devices`], [`video`], [`stats`]: room names, device pickers, video
//!   textures and layout, the stats overlay.
//! - [`screenshot`]: the test hook that saves a screenshot of a connected call.
//!
//! The headless peer (`duet call`) lives in [`headless`]; `main.rs` only parses flags.

#![deny(unsafe_code)]

pub mod app;
pub mod call_view;
pub mod devices;
pub mod frame_times;
// OpenGL calls are `unsafe` in glow: the one module allowed them, each block with its reason.
#[allow(unsafe_code)]
pub mod gpu_video;
pub mod headless;
pub mod room;
pub mod screenshot;
pub mod settings;
pub mod share;
pub mod stats;
pub mod video;

pub use app::{AppOptions, DuetApp, LaunchCall};

/// The window's icon (the same picture as the desktop entry's).
const ICON_PNG: &[u8] = include_bytes!("../../../assets/icons/duet-256.png");

/// Opens the window and runs until it is closed.
pub fn run_window(options: AppOptions) -> anyhow::Result<()> {
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("duet")
        .with_app_id("duet")
        .with_inner_size([1024.0, 720.0])
        .with_min_inner_size([560.0, 420.0]);
    match eframe::icon_data::from_png_bytes(ICON_PNG) {
        Ok(icon) => viewport = viewport.with_icon(icon),
        Err(e) => tracing::debug!(error = %e, "no window icon"),
    }
    let native = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Glow,
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        "duet",
        native,
        Box::new(move |_cc| Ok(Box::new(DuetApp::new(options)))),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}
