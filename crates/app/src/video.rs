//! Getting decoded frames onto the screen, and the aspect-ratio arithmetic of the layout.
//!
//! Two ways to draw a stream ([`Renderer`]):
//! - **GPU** (the default): the frame's Y, U and V planes go to the GPU as they are and a shader
//!   makes the colours ([`crate::gpu_video`]); the UI thread only hands the frame over.
//! - **CPU**: I420 → RGBA, then a `ColorImage`, then egui re-uploads the whole RGBA texture.
//!   Used where the GPU path is not available (old GL, a renderer without paint callbacks)
//!   and for comparison (`DUET_VIDEO_RENDERER=cpu`; docs/benchmarks.md).

use std::sync::Arc;
use std::time::Instant;

use call::FrameSlot;
use egui::{Color32, ColorImage, Context, Painter, Rect, TextureHandle, TextureOptions, Vec2};
use media::VideoFrame;

use crate::gpu_video::{GlVideo, GpuVideo, SharedGlVideo};

/// How video is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renderer {
    /// Planes uploaded as they are, colour made in a shader.
    Gpu,
    /// Converted to RGBA on the UI thread and uploaded as an egui texture.
    Cpu,
}

impl Renderer {
    /// `DUET_VIDEO_RENDERER=cpu|gpu`; GPU unless told otherwise.
    pub fn from_env() -> Self {
        match std::env::var("DUET_VIDEO_RENDERER").as_deref() {
            Ok("cpu") => Self::Cpu,
            _ => Self::Gpu,
        }
    }
}

/// One video stream on screen. Takes the engine's newest frame when it changed (one atomic
/// load otherwise) and draws it.
pub struct VideoTexture {
    name: &'static str,
    renderer: Renderer,
    gpu: GpuVideo,
    handle: Option<TextureHandle>,
    has_picture: bool,
    seq: u64,
    size: [usize; 2],
    rgba: Vec<u8>,
    frames_shown: u64,
    cpu_us: u64,
}

impl std::fmt::Debug for VideoTexture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoTexture")
            .field("name", &self.name)
            .field("renderer", &self.renderer)
            .field("size", &self.size)
            .field("frames_shown", &self.frames_shown)
            .finish_non_exhaustive()
    }
}

impl VideoTexture {
    /// An empty stream; `name` names its texture(s).
    pub fn new(name: &'static str, renderer: Renderer) -> Self {
        Self {
            name,
            renderer,
            gpu: GpuVideo::new(name),
            handle: None,
            has_picture: false,
            seq: u64::MAX,
            size: [0, 0],
            rgba: Vec::new(),
            frames_shown: 0,
            cpu_us: 0,
        }
    }

    /// Takes the slot's newest frame if it changed since the last call.
    pub fn update(&mut self, ctx: &Context, gl_video: &SharedGlVideo, slot: &FrameSlot) {
        if self.renderer == Renderer::Gpu
            && let Some(why) = GlVideo::unsupported(gl_video)
        {
            tracing::debug!(%why, stream = self.name, "drawing video on the CPU");
            self.renderer = Renderer::Cpu;
            self.seq = u64::MAX; // upload the current picture again, the CPU way
        }
        if slot.seq() == self.seq {
            return;
        }
        let (seq, frame) = slot.latest();
        self.seq = seq;
        let Some(frame) = frame else {
            // The stream ended: show the placeholder instead of a frozen picture.
            self.handle = None;
            self.has_picture = false;
            return;
        };
        let started = Instant::now();
        self.size = [frame.width() as usize, frame.height() as usize];
        match self.renderer {
            Renderer::Gpu => self.gpu.set(frame),
            Renderer::Cpu => {
                if let Err(e) = self.upload_rgba(ctx, &frame) {
                    tracing::debug!(error = %e, stream = self.name, "cannot convert a frame");
                    return;
                }
            }
        }
        self.cpu_us += started.elapsed().as_micros() as u64;
        self.has_picture = true;
        self.frames_shown += 1;
    }

    fn upload_rgba(&mut self, ctx: &Context, frame: &Arc<VideoFrame>) -> Result<(), media::Error> {
        let size = self.size;
        self.rgba.resize(size[0] * size[1] * 4, 0);
        frame.write_rgba(&mut self.rgba)?;
        let image = ColorImage::from_rgba_unmultiplied(size, &self.rgba);
        match &mut self.handle {
            Some(handle) => handle.set(image, TextureOptions::LINEAR),
            None => self.handle = Some(ctx.load_texture(self.name, image, TextureOptions::LINEAR)),
        }
        Ok(())
    }

    /// Whether a picture arrived (and the stream has not ended since).
    pub fn has_picture(&self) -> bool {
        self.has_picture
    }

    /// Draws the picture into `rect`, mirrored (left and right swapped) if asked.
    pub fn paint(&self, painter: &Painter, gl_video: &SharedGlVideo, rect: Rect, mirror: bool) {
        match self.renderer {
            Renderer::Gpu => {
                painter.add(self.gpu.paint(gl_video, rect, mirror));
            }
            Renderer::Cpu => {
                if let Some(texture) = &self.handle {
                    let uv = if mirror {
                        Rect::from_min_max(egui::pos2(1.0, 0.0), egui::pos2(0.0, 1.0))
                    } else {
                        Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0))
                    };
                    painter.image(texture.id(), rect, uv, Color32::WHITE);
                }
            }
        }
    }

    /// The current picture's size in pixels.
    pub fn size(&self) -> Vec2 {
        Vec2::new(self.size[0] as f32, self.size[1] as f32)
    }

    /// How many pictures were taken so far.
    pub fn frames_shown(&self) -> u64 {
        self.frames_shown
    }

    /// How the stream is drawn (the GPU falls back to the CPU where it cannot run).
    pub fn renderer(&self) -> Renderer {
        self.renderer
    }

    /// Microseconds of UI-thread work spent on this stream's pictures so far: taking them
    /// (and, on the CPU path, converting and copying them) plus uploading them on the GPU path.
    /// The CPU path's RGBA upload happens inside egui's painter and is not counted here.
    pub fn ui_thread_us(&self) -> u64 {
        self.cpu_us + self.gpu.upload_us()
    }
}

/// The largest rectangle of `content`'s aspect ratio that fits in `outer`, centred.
pub fn fit_aspect(outer: Rect, content: Vec2) -> Rect {
    if content.x <= 0.0 || content.y <= 0.0 || outer.width() <= 0.0 || outer.height() <= 0.0 {
        return outer;
    }
    let scale = (outer.width() / content.x).min(outer.height() / content.y);
    Rect::from_center_size(outer.center(), content * scale)
}

/// Where the self-view goes: the bottom-right corner of `outer`, about a quarter of its width
/// (at least 160 and at most 360 points wide), with `margin` around it.
pub fn self_view_rect(outer: Rect, content: Vec2, margin: f32) -> Rect {
    let aspect = if content.x > 0.0 && content.y > 0.0 {
        content.y / content.x
    } else {
        3.0 / 4.0
    };
    let width = (outer.width() * 0.25)
        .clamp(160.0, 360.0)
        .min(outer.width() - 2.0 * margin);
    let size = Vec2::new(width, width * aspect);
    Rect::from_min_size(outer.max - size - Vec2::splat(margin), size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::pos2;

    #[test]
    fn fits_keeping_the_aspect_ratio() {
        let outer = Rect::from_min_max(pos2(0.0, 0.0), pos2(1000.0, 500.0));
        let r = fit_aspect(outer, Vec2::new(640.0, 480.0));
        assert!((r.height() - 500.0).abs() < 1e-3);
        assert!((r.width() - 500.0 * 4.0 / 3.0).abs() < 1e-3);
        assert!((r.center().x - 500.0).abs() < 1e-3);
        let tall = Rect::from_min_max(pos2(0.0, 0.0), pos2(400.0, 1000.0));
        let r = fit_aspect(tall, Vec2::new(640.0, 480.0));
        assert!((r.width() - 400.0).abs() < 1e-3);
        assert!((r.height() - 300.0).abs() < 1e-3);
    }

    #[test]
    fn self_view_sits_in_the_corner() {
        let outer = Rect::from_min_max(pos2(0.0, 0.0), pos2(1280.0, 720.0));
        let r = self_view_rect(outer, Vec2::new(640.0, 480.0), 16.0);
        assert!((r.width() - 320.0).abs() < 1e-3);
        assert!((r.height() - 240.0).abs() < 1e-3);
        assert!((r.max.x - 1264.0).abs() < 1e-3 && (r.max.y - 704.0).abs() < 1e-3);
    }
}
