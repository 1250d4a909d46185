//! The synthetic test pattern and its machine-readable stamp.
//!
//! [`TestPattern`] draws moving, colourful content (so the encoder has real work) and, in the top
//! sixth of the picture, a grid of black/white blocks that encodes a [`Stamp`]: the frame counter
//! and the wall-clock capture time. [`read_pattern_stamp`] reads it back from a decoded frame and
//! [`read_pattern_stamp_rgba`] from a screenshot region showing the (possibly scaled) video.
//!
//! Code layout, in coordinates relative to the picture so that scaling does not matter: the top
//! [`CODE_ROWS`] of 24 equal-height rows, each split into 32 equal-width cells (20×20 px at
//! 640×480, 40×30 px at 1280×720). In every code row, cell 0 is white and cell 1 black (local
//! references for the threshold); cells 2..32 carry 30 bits, most significant first. The 120 bits
//! are: magic byte `0xA5`, counter (32 bits), capture time in µs (64 bits), CRC-16/CCITT over the
//! preceding 13 bytes. A wrong read fails the magic or CRC check and yields `None`.

use crate::capture::{Capture, FrameSender, VideoSource, spawn_named};
use crate::{Error, VideoFrame, unix_time_us};
use std::time::{Duration, Instant};

const COLS: u32 = 32;
const ROW_DIV: u32 = 24;
/// Number of code rows at the top of the picture.
const CODE_ROWS: u32 = 4;
const DATA_COLS: u32 = COLS - 2;
const PAYLOAD_BITS: usize = (CODE_ROWS * DATA_COLS) as usize;
const MAGIC: u8 = 0xA5;
const WHITE_Y: u8 = 235;
const BLACK_Y: u8 = 16;

/// What the test pattern carries in its code blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// Frame number since the source started (wraps at `u32::MAX`).
    pub counter: u32,
    /// Wall-clock capture time, microseconds since the UNIX epoch.
    pub capture_time_us: u64,
}

/// Where the video picture appears inside a larger RGBA image (pixels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatternRect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width of the displayed picture.
    pub width: u32,
    /// Height of the displayed picture.
    pub height: u32,
}

/// A synthetic video source: moving colour gradients and bouncing boxes, plus the stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestPattern {
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Frames per second when run as a [`VideoSource`].
    pub fps: u32,
}

fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn payload_bytes(stamp: Stamp) -> [u8; 15] {
    let mut bytes = [0u8; 15];
    bytes[0] = MAGIC;
    bytes[1..5].copy_from_slice(&stamp.counter.to_be_bytes());
    bytes[5..13].copy_from_slice(&stamp.capture_time_us.to_be_bytes());
    let crc = crc16(&bytes[..13]);
    bytes[13..15].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn payload_bit(bytes: &[u8; 15], i: usize) -> bool {
    bytes[i / 8] & (0x80 >> (i % 8)) != 0
}

/// Cell value in the code grid: `true` is white.
fn cell_is_white(bytes: &[u8; 15], row: u32, col: u32) -> bool {
    match col {
        0 => true,
        1 => false,
        _ => payload_bit(bytes, (row * DATA_COLS + col - 2) as usize),
    }
}

/// A pseudo-random texel in 0..12, constant over 2-pixel runs.
fn texel(x: u32) -> u8 {
    let mut h = (x / 2).wrapping_mul(0x9E37_79B9);
    h ^= h >> 15;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    (h % 12) as u8
}

/// Triangle wave with period `period`, amplitude 0..=`amp`.
fn tri(pos: u32, period: u32, amp: u32) -> u32 {
    let p = pos % period;
    let half = period / 2;
    if p < half {
        p * amp / half.max(1)
    } else {
        (period - p) * amp / half.max(1)
    }
}

/// Position bouncing between 0 and `range` (inclusive), moving `pos` pixels in total.
fn bounce(pos: u32, range: u32) -> u32 {
    if range == 0 {
        return 0;
    }
    let p = pos % (2 * range);
    if p <= range { p } else { 2 * range - p }
}

impl TestPattern {
    /// A pattern of the given size and rate.
    #[must_use]
    pub fn new(width: u32, height: u32, fps: u32) -> Self {
        Self { width, height, fps }
    }

    /// Renders frame number `counter`, stamped with `capture_time_us`. Pure: the same inputs
    /// give the same picture, and motion depends only on `counter`.
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] if the size is zero, odd or too large.
    pub fn render(&self, counter: u32, capture_time_us: u64) -> Result<VideoFrame, Error> {
        let mut frame = VideoFrame::new_black(self.width, self.height, capture_time_us)?;
        let (w, h) = (self.width, self.height);
        let (cw, ch) = (w / 2, h / 2);
        let t = counter;
        let code_bottom = CODE_ROWS * h / ROW_DIV;
        let (ys, us, vs) = frame.planes_mut();

        // Moving gradients: luma is the sum of two scrolling triangle waves, chroma two more.
        let lut_x: Vec<u32> = (0..w).map(|x| tri(x + 3 * t, w, 90)).collect();
        let lut_y: Vec<u32> = (0..h).map(|y| tri(y + 2 * t, h, 80)).collect();
        // Plus a fine texture panning 2 px per frame, standing in for camera detail: without it
        // the picture would be unrealistically easy to compress.
        let texture: Vec<u8> = (0..w).map(|x| texel(x + 2 * t)).collect();
        for (y, row) in ys.chunks_exact_mut(w as usize).enumerate() {
            let ly = lut_y[y];
            let shift = (y as u32 / 2).wrapping_mul(2_654_435_761) as usize % w as usize;
            for (x, (px, lx)) in row.iter_mut().zip(&lut_x).enumerate() {
                let tex = u32::from(texture[(x + shift) % w as usize]);
                *px = (34 + lx + ly + tex) as u8;
            }
        }
        let lut_u: Vec<u32> = (0..cw).map(|x| tri(x + t, cw, 160)).collect();
        let lut_v: Vec<u32> = (0..ch).map(|y| tri(y + 2 * t, ch, 160)).collect();
        for row_u in us.chunks_exact_mut(cw as usize) {
            row_u
                .iter_mut()
                .zip(&lut_u)
                .for_each(|(p, u)| *p = (48 + u) as u8);
        }
        for (y, row_v) in vs.chunks_exact_mut(cw as usize).enumerate() {
            let v = (48 + lut_v[y]) as u8;
            row_v.iter_mut().for_each(|p| *p = v);
        }

        // Bouncing boxes (even-aligned so luma and chroma edges coincide).
        let bw = (w / 8) & !1;
        let bh = (h / 6) & !1;
        let area_h = h.saturating_sub(code_bottom + bh);
        let boxes: [(u32, u32, [u8; 3]); 3] = [
            (5, 3, [82, 90, 240]),  // red
            (7, 4, [145, 54, 34]),  // green
            (4, 6, [41, 240, 110]), // blue
        ];
        for (i, (sx, sy, [by, bu, bv])) in boxes.into_iter().enumerate() {
            let phase = i as u32 * w / 3;
            let x0 = bounce(t * sx + phase, w.saturating_sub(bw)) & !1;
            let y0 = (code_bottom + bounce(t * sy + phase, area_h)) & !1;
            for y in y0..(y0 + bh).min(h) {
                let start = (y * w + x0) as usize;
                let end = (y * w + (x0 + bw).min(w)) as usize;
                ys[start..end].fill(by);
            }
            for y in y0 / 2..((y0 + bh) / 2).min(ch) {
                let start = (y * cw + x0 / 2) as usize;
                let end = (y * cw + ((x0 + bw) / 2).min(cw)) as usize;
                us[start..end].fill(bu);
                vs[start..end].fill(bv);
            }
        }

        // The stamp.
        let bytes = payload_bytes(Stamp {
            counter,
            capture_time_us,
        });
        for row in 0..CODE_ROWS {
            let (y0, y1) = (row * h / ROW_DIV, (row + 1) * h / ROW_DIV);
            for col in 0..COLS {
                let (x0, x1) = (col * w / COLS, (col + 1) * w / COLS);
                let luma = if cell_is_white(&bytes, row, col) {
                    WHITE_Y
                } else {
                    BLACK_Y
                };
                for y in y0..y1 {
                    let base = (y * w) as usize;
                    ys[base + x0 as usize..base + x1 as usize].fill(luma);
                }
                for y in y0 / 2..y1.div_ceil(2).min(ch) {
                    let base = (y * cw) as usize;
                    let (a, b) = (x0 / 2, x1.div_ceil(2).min(cw));
                    us[base + a as usize..base + b as usize].fill(128);
                    vs[base + a as usize..base + b as usize].fill(128);
                }
            }
        }
        Ok(frame)
    }
}

impl VideoSource for TestPattern {
    fn name(&self) -> String {
        format!(
            "Test pattern {}x{} @ {} fps",
            self.width, self.height, self.fps
        )
    }

    fn start(self, capacity: usize) -> Result<Capture<VideoFrame>, Error> {
        // Reject bad sizes synchronously rather than from the thread.
        VideoFrame::new_black(self.width, self.height, 0)?;
        let period = Duration::from_secs_f64(1.0 / f64::from(self.fps.clamp(1, 240)));
        spawn_named(
            "duet-testpattern",
            capacity,
            move |tx: FrameSender<VideoFrame>| {
                let start = Instant::now();
                let mut counter: u32 = 0;
                while !tx.should_stop() {
                    let deadline = start + period * counter;
                    let now = Instant::now();
                    if deadline > now {
                        std::thread::sleep(deadline - now);
                    }
                    let frame = self.render(counter, unix_time_us())?;
                    if !tx.push(frame) {
                        break;
                    }
                    counter = counter.wrapping_add(1);
                }
                Ok(())
            },
        )
    }
}

/// Reads the stamp of a decoded (or original) test-pattern frame.
///
/// Returns `None` when the code is unreadable or fails its check (not a test pattern, or too
/// damaged); never a wrong value except with CRC-16 odds.
#[must_use]
pub fn read_pattern_stamp(frame: &VideoFrame) -> Option<Stamp> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let y = frame.y();
    let sample = |x0: f64, y0: f64, x1: f64, y1: f64| -> Option<f64> {
        mean_in(x0, y0, x1, y1, w, h, |px, py| f64::from(y[py * w + px]))
    };
    let rect = (0.0, 0.0, w as f64, h as f64);
    decode_tolerant(rect, &sample)
}

/// Reads the stamp from an RGBA screenshot (`image_width*4` bytes per row) in which the video
/// picture is shown, possibly scaled, in `rect`. Tolerates small misplacements of `rect`
/// (a fraction of a code cell) by trying nearby positions; every candidate must pass the CRC.
#[must_use]
pub fn read_pattern_stamp_rgba(
    rgba: &[u8],
    image_width: u32,
    image_height: u32,
    rect: PatternRect,
) -> Option<Stamp> {
    let (w, h) = (image_width as usize, image_height as usize);
    if rgba.len() < w * h * 4 || rect.width < COLS || rect.height < ROW_DIV {
        return None;
    }
    let sample = |x0: f64, y0: f64, x1: f64, y1: f64| -> Option<f64> {
        mean_in(x0, y0, x1, y1, w, h, |px, py| {
            let i = (py * w + px) * 4;
            (f64::from(rgba[i]) + f64::from(rgba[i + 1]) + f64::from(rgba[i + 2])) / 3.0
        })
    };
    let r = (
        f64::from(rect.x),
        f64::from(rect.y),
        f64::from(rect.width),
        f64::from(rect.height),
    );
    decode_tolerant(r, &sample)
}

/// Mean of `value` over the pixel window `[x0, x1) × [y0, y1)`, clipped to the image.
fn mean_in(
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
    w: usize,
    h: usize,
    value: impl Fn(usize, usize) -> f64,
) -> Option<f64> {
    let clamp = |v: f64, max: usize| (v.max(0.0) as usize).min(max);
    let (xa, xb) = (clamp(x0.floor(), w), clamp(x1.ceil(), w));
    let (ya, yb) = (clamp(y0.floor(), h), clamp(y1.ceil(), h));
    if xa >= xb || ya >= yb {
        return None;
    }
    let mut sum = 0.0;
    for py in ya..yb {
        for px in xa..xb {
            sum += value(px, py);
        }
    }
    Some(sum / ((xb - xa) * (yb - ya)) as f64)
}

type Sampler<'a> = dyn Fn(f64, f64, f64, f64) -> Option<f64> + 'a;

/// Tries the nominal placement, then small shifts and scalings of the rectangle.
fn decode_tolerant(rect: (f64, f64, f64, f64), sample: &Sampler<'_>) -> Option<Stamp> {
    let (x, y, w, h) = rect;
    let cell_w = w / f64::from(COLS);
    let cell_h = h / f64::from(ROW_DIV);
    const SHIFTS: [f64; 5] = [0.0, -0.25, 0.25, -0.45, 0.45];
    const SCALES: [f64; 3] = [1.0, 0.97, 1.03];
    for scale in SCALES {
        for dy in SHIFTS {
            for dx in SHIFTS {
                let r = (x + dx * cell_w, y + dy * cell_h, w * scale, h * scale);
                if let Some(stamp) = decode_at(r, sample) {
                    return Some(stamp);
                }
            }
        }
    }
    None
}

fn decode_at(rect: (f64, f64, f64, f64), sample: &Sampler<'_>) -> Option<Stamp> {
    let (x, y, w, h) = rect;
    let cell_w = w / f64::from(COLS);
    let cell_h = h / f64::from(ROW_DIV);
    // Sample the middle 40% of each cell: far from edges blurred by scaling and compression.
    let cell = |row: u32, col: u32| -> Option<f64> {
        let cx = x + (f64::from(col) + 0.5) * cell_w;
        let cy = y + (f64::from(row) + 0.5) * cell_h;
        let (hw, hh) = ((cell_w * 0.2).max(0.5), (cell_h * 0.2).max(0.5));
        sample(cx - hw, cy - hh, cx + hw, cy + hh)
    };
    let mut bytes = [0u8; 15];
    for row in 0..CODE_ROWS {
        let white = cell(row, 0)?;
        let black = cell(row, 1)?;
        if white - black < 40.0 {
            return None;
        }
        let threshold = (white + black) / 2.0;
        for col in 2..COLS {
            let i = (row * DATA_COLS + col - 2) as usize;
            if cell(row, col)? > threshold {
                bytes[i / 8] |= 0x80 >> (i % 8);
            }
        }
    }
    debug_assert_eq!(PAYLOAD_BITS, bytes.len() * 8);
    if bytes[0] != MAGIC {
        return None;
    }
    let crc = u16::from_be_bytes([bytes[13], bytes[14]]);
    if crc16(&bytes[..13]) != crc {
        return None;
    }
    let counter = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let mut time = [0u8; 8];
    time.copy_from_slice(&bytes[5..13]);
    Some(Stamp {
        counter,
        capture_time_us: u64::from_be_bytes(time),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_on_the_raw_frame() -> Result<(), Error> {
        let pattern = TestPattern::new(640, 480, 30);
        let frame = pattern.render(123_456, 1_765_000_000_123_456)?;
        assert_eq!(
            read_pattern_stamp(&frame),
            Some(Stamp {
                counter: 123_456,
                capture_time_us: 1_765_000_000_123_456
            })
        );
        Ok(())
    }

    #[test]
    fn a_blank_frame_has_no_stamp() -> Result<(), Error> {
        let frame = VideoFrame::new_black(640, 480, 0)?;
        assert_eq!(read_pattern_stamp(&frame), None);
        Ok(())
    }
}
