//! Scaling pictures to the size a call wants: a camera may only offer modes larger than asked
//! (a 1280×720-only webcam in a 640×480 call), and its pictures are then scaled down, keeping
//! their shape, before they reach the encoder. Each plane is resized on its own by
//! `fast_image_resize` (bilinear convolution, SIMD where the CPU has it).

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::{Error, VideoFrame};

/// The largest even size of `width`×`height`'s shape that fits in `max_width`×`max_height`;
/// a picture that already fits keeps its (even) size: pictures are never enlarged. Never
/// below 2×2.
#[must_use]
pub fn fit_within(width: u32, height: u32, max_width: u32, max_height: u32) -> (u32, u32) {
    let (width, height) = (width.max(2), height.max(2));
    let (max_width, max_height) = (max_width.max(2), max_height.max(2));
    if width <= max_width && height <= max_height {
        return (width & !1, height & !1);
    }
    // Scale by the tighter of the two ratios, in integers: w' = w * k, h' = h * k.
    let (w, h) =
        if u64::from(width) * u64::from(max_height) >= u64::from(height) * u64::from(max_width) {
            let h = u64::from(height) * u64::from(max_width) / u64::from(width);
            (u64::from(max_width), h)
        } else {
            let w = u64::from(width) * u64::from(max_height) / u64::from(height);
            (w, u64::from(max_height))
        };
    let even = |v: u64| (u32::try_from(v).unwrap_or(u32::MAX) & !1).max(2);
    (even(w), even(h))
}

/// Scales [`VideoFrame`]s; keeps its buffers between pictures.
pub struct Scaler {
    resizer: Resizer,
    options: ResizeOptions,
}

impl std::fmt::Debug for Scaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scaler").finish_non_exhaustive()
    }
}

impl Default for Scaler {
    fn default() -> Self {
        Self::new()
    }
}

impl Scaler {
    #[must_use]
    pub fn new() -> Self {
        Self {
            resizer: Resizer::new(),
            options: ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        }
    }

    /// `frame` scaled to fit in `max_width`×`max_height` with its shape kept
    /// ([`fit_within`]); a frame that fits comes back as it is.
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] if the scaler rejects a plane (it should not for a valid frame).
    pub fn fit(
        &mut self,
        frame: VideoFrame,
        max_width: u32,
        max_height: u32,
    ) -> Result<VideoFrame, Error> {
        let (w, h) = fit_within(frame.width(), frame.height(), max_width, max_height);
        if (w, h) == (frame.width(), frame.height()) {
            return Ok(frame);
        }
        self.scale(&frame, w, h)
    }

    /// `frame` scaled to exactly `width`×`height` (even, at least 2×2).
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] for odd or zero sizes, or if the scaler rejects a plane.
    pub fn scale(
        &mut self,
        frame: &VideoFrame,
        width: u32,
        height: u32,
    ) -> Result<VideoFrame, Error> {
        let mut out = VideoFrame::new_black(width, height, frame.capture_time_us)?;
        let (sw, sh) = (frame.width(), frame.height());
        let sources = [
            (frame.y(), sw, sh),
            (frame.u(), sw / 2, sh / 2),
            (frame.v(), sw / 2, sh / 2),
        ];
        let (y, u, v) = out.planes_mut();
        let targets = [
            (y, width, height),
            (u, width / 2, height / 2),
            (v, width / 2, height / 2),
        ];
        for ((src, src_w, src_h), (dst, dst_w, dst_h)) in sources.into_iter().zip(targets) {
            let src = ImageRef::new(src_w, src_h, src, PixelType::U8).map_err(invalid)?;
            let mut dst =
                Image::from_slice_u8(dst_w, dst_h, dst, PixelType::U8).map_err(invalid)?;
            self.resizer
                .resize(&src, &mut dst, &self.options)
                .map_err(invalid)?;
        }
        Ok(out)
    }
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::InvalidFrame(format!("scaling: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TestPattern, read_pattern_stamp};

    #[test]
    fn sizes_keep_their_shape_and_are_never_enlarged() {
        assert_eq!(fit_within(1280, 720, 640, 480), (640, 360));
        assert_eq!(fit_within(1920, 1080, 1280, 720), (1280, 720));
        assert_eq!(fit_within(640, 480, 1280, 720), (640, 480));
        assert_eq!(fit_within(1600, 1200, 640, 360), (480, 360));
        assert_eq!(fit_within(1280, 720, 320, 240), (320, 180));
        // Odd results round down to even; degenerate requests stay at least 2×2.
        assert_eq!(fit_within(1000, 333, 500, 500), (500, 166));
        assert_eq!(fit_within(4000, 2, 10, 10), (10, 2));
        assert_eq!(fit_within(0, 0, 0, 0), (2, 2));
        assert_eq!(fit_within(u32::MAX, u32::MAX, 8192, 8192), (8192, 8192));
    }

    #[test]
    fn a_large_mode_is_scaled_to_the_call_and_still_readable() -> Result<(), Error> {
        let frame = TestPattern::new(1280, 720, 30).render(4242, 99)?;
        let mut scaler = Scaler::new();
        let scaled = scaler.fit(frame.clone(), 640, 480)?;
        assert_eq!((scaled.width(), scaled.height()), (640, 360));
        assert_eq!(scaled.capture_time_us, 99);
        let stamp = read_pattern_stamp(&scaled).map(|s| s.counter);
        assert_eq!(stamp, Some(4242), "the scaled picture is the same picture");
        // Against a reference made by exact halving, bilinear scaling is close.
        assert!(scaled.psnr(&frame.half_size())? > 30.0);
        // A frame that fits is passed through untouched.
        let small = TestPattern::new(320, 240, 30).render(7, 1)?;
        assert_eq!(scaler.fit(small.clone(), 640, 480)?, small);
        Ok(())
    }
}
