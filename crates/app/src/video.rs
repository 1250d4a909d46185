//! Getting decoded frames onto the screen: one texture per stream, re-filled in place when the
//! engine's frame slot has a newer picture; and the aspect-ratio arithmetic of the layout.

use call::FrameSlot;
use egui::{ColorImage, Context, Rect, TextureHandle, TextureOptions, Vec2};

/// One video stream's texture. Created on the first frame, then updated with
/// [`TextureHandle::set`] — never re-allocated per frame.
pub struct VideoTexture {
    name: &'static str,
    handle: Option<TextureHandle>,
    seq: u64,
    size: [usize; 2],
    rgba: Vec<u8>,
    frames_shown: u64,
}

impl std::fmt::Debug for VideoTexture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoTexture")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("frames_shown", &self.frames_shown)
            .finish_non_exhaustive()
    }
}

impl VideoTexture {
    /// An empty texture slot; `name` is the egui texture's debug name.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            handle: None,
            seq: u64::MAX,
            size: [0, 0],
            rgba: Vec::new(),
            frames_shown: 0,
        }
    }

    /// Uploads the slot's newest frame if it changed since the last call. Cheap when nothing
    /// changed (one atomic load).
    pub fn update(&mut self, ctx: &Context, slot: &FrameSlot) {
        if slot.seq() == self.seq {
            return;
        }
        let (seq, frame) = slot.latest();
        self.seq = seq;
        let Some(frame) = frame else {
            // The stream ended: show the placeholder instead of a frozen picture.
            self.handle = None;
            return;
        };
        let size = [frame.width() as usize, frame.height() as usize];
        self.rgba.resize(size[0] * size[1] * 4, 0);
        if let Err(e) = frame.write_rgba(&mut self.rgba) {
            tracing::debug!(error = %e, stream = self.name, "cannot convert a frame");
            return;
        }
        let image = ColorImage::from_rgba_unmultiplied(size, &self.rgba);
        match &mut self.handle {
            Some(handle) => handle.set(image, TextureOptions::LINEAR),
            None => {
                self.handle = Some(ctx.load_texture(self.name, image, TextureOptions::LINEAR));
            }
        }
        self.size = size;
        self.frames_shown += 1;
    }

    /// The texture, once a frame arrived.
    pub fn handle(&self) -> Option<&TextureHandle> {
        self.handle.as_ref()
    }

    /// The current picture's size in pixels.
    pub fn size(&self) -> Vec2 {
        Vec2::new(self.size[0] as f32, self.size[1] as f32)
    }

    /// How many pictures were uploaded so far.
    pub fn frames_shown(&self) -> u64 {
        self.frames_shown
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
