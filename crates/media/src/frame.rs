//! [`VideoFrame`]: the one picture type of the crate (planar I420, tightly packed) and its
//! conversions. Colour conversion is delegated to the `yuv` crate (BT.601, limited range, which
//! is what H.264 decoders assume when the stream does not say otherwise).

use std::time::{SystemTime, UNIX_EPOCH};

use yuv::{YuvConversionMode, YuvPlanarImage, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

use crate::Error;

const MATRIX: YuvStandardMatrix = YuvStandardMatrix::Bt601;
const RANGE: YuvRange = YuvRange::Limited;

/// Wall-clock time as microseconds since the UNIX epoch (0 if the clock is before 1970).
///
/// This is the time base of [`VideoFrame::capture_time_us`] and of the test pattern's stamp, so
/// two processes on one machine can measure glass-to-glass latency.
#[must_use]
pub fn unix_time_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A picture in I420 (YUV 4:2:0 planar, 8 bit): a full-resolution Y plane and quarter-size U
/// and V planes, each tightly packed (stride = plane width). Width and height are even.
#[derive(Clone, PartialEq, Eq)]
pub struct VideoFrame {
    width: u32,
    height: u32,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    /// Wall-clock capture time, microseconds since the UNIX epoch (see [`unix_time_us`]).
    /// Decoded frames carry 0 unless the caller sets it.
    pub capture_time_us: u64,
    /// A decoder built this picture on a lost or broken reference while it waited for a
    /// keyframe: a guess at what was sent (it may show parts of an older picture), shown so a
    /// loss costs a blemish instead of a freeze. Always `false` for pictures not decoded.
    pub concealed: bool,
}

impl std::fmt::Debug for VideoFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoFrame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("capture_time_us", &self.capture_time_us)
            .field("concealed", &self.concealed)
            .finish_non_exhaustive()
    }
}

fn check_dimensions(width: u32, height: u32) -> Result<(), Error> {
    if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(Error::InvalidFrame(format!(
            "{width}x{height}: width and height must be even and non-zero"
        )));
    }
    if width > 8192 || height > 8192 {
        return Err(Error::InvalidFrame(format!(
            "{width}x{height}: larger than 8192 pixels"
        )));
    }
    Ok(())
}

fn copy_plane(
    name: &str,
    src: &[u8],
    stride: usize,
    width: usize,
    height: usize,
) -> Result<Vec<u8>, Error> {
    if stride < width || src.len() < stride * (height - 1) + width {
        return Err(Error::InvalidFrame(format!(
            "{name} plane: {} bytes with stride {stride} cannot hold {width}x{height}",
            src.len()
        )));
    }
    let mut out = Vec::with_capacity(width * height);
    for row in src.chunks(stride).take(height) {
        out.extend_from_slice(&row[..width]);
    }
    Ok(out)
}

impl VideoFrame {
    /// A black frame.
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] if a dimension is zero, odd or above 8192.
    pub fn new_black(width: u32, height: u32, capture_time_us: u64) -> Result<Self, Error> {
        check_dimensions(width, height)?;
        let (w, h) = (width as usize, height as usize);
        let chroma = (w / 2) * (h / 2);
        Ok(Self {
            width,
            height,
            y: vec![16; w * h],
            u: vec![128; chroma],
            v: vec![128; chroma],
            capture_time_us,
            concealed: false,
        })
    }

    /// Takes ownership of tightly packed planes (Y: `width*height`, U and V:
    /// `width/2*height/2` bytes each).
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] if dimensions or plane lengths do not match.
    pub fn from_planes(
        width: u32,
        height: u32,
        y: Vec<u8>,
        u: Vec<u8>,
        v: Vec<u8>,
        capture_time_us: u64,
    ) -> Result<Self, Error> {
        check_dimensions(width, height)?;
        let (w, h) = (width as usize, height as usize);
        let chroma = (w / 2) * (h / 2);
        if y.len() != w * h || u.len() != chroma || v.len() != chroma {
            return Err(Error::InvalidFrame(format!(
                "{width}x{height}: plane sizes {}/{}/{} do not match",
                y.len(),
                u.len(),
                v.len()
            )));
        }
        Ok(Self {
            width,
            height,
            y,
            u,
            v,
            capture_time_us,
            concealed: false,
        })
    }

    /// Copies planes that have row strides (as decoders and cameras deliver them).
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] if a plane is too short for its stride and size.
    pub fn from_strided_planes(
        width: u32,
        height: u32,
        (y, y_stride): (&[u8], usize),
        (u, u_stride): (&[u8], usize),
        (v, v_stride): (&[u8], usize),
        capture_time_us: u64,
    ) -> Result<Self, Error> {
        check_dimensions(width, height)?;
        let (w, h) = (width as usize, height as usize);
        Ok(Self {
            width,
            height,
            y: copy_plane("Y", y, y_stride, w, h)?,
            u: copy_plane("U", u, u_stride, w / 2, h / 2)?,
            v: copy_plane("V", v, v_stride, w / 2, h / 2)?,
            capture_time_us,
            concealed: false,
        })
    }

    /// Converts an RGBA image (4 bytes per pixel, rows of `width*4` bytes) to I420.
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] for bad dimensions or a short buffer.
    pub fn from_rgba(
        width: u32,
        height: u32,
        rgba: &[u8],
        capture_time_us: u64,
    ) -> Result<Self, Error> {
        Self::from_packed_rgb(width, height, rgba, 4, capture_time_us)
    }

    /// Converts an RGB image (3 bytes per pixel, rows of `width*3` bytes) to I420.
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] for bad dimensions or a short buffer.
    pub fn from_rgb(
        width: u32,
        height: u32,
        rgb: &[u8],
        capture_time_us: u64,
    ) -> Result<Self, Error> {
        Self::from_packed_rgb(width, height, rgb, 3, capture_time_us)
    }

    fn from_packed_rgb(
        width: u32,
        height: u32,
        data: &[u8],
        bytes_per_pixel: u32,
        capture_time_us: u64,
    ) -> Result<Self, Error> {
        let mut frame = Self::new_black(width, height, capture_time_us)?;
        let needed = (width * height * bytes_per_pixel) as usize;
        if data.len() < needed {
            return Err(Error::InvalidFrame(format!(
                "{width}x{height} image needs {needed} bytes, got {}",
                data.len()
            )));
        }
        let mut planar = YuvPlanarImageMut {
            y_plane: yuv::BufferStoreMut::Borrowed(&mut frame.y),
            y_stride: width,
            u_plane: yuv::BufferStoreMut::Borrowed(&mut frame.u),
            u_stride: width / 2,
            v_plane: yuv::BufferStoreMut::Borrowed(&mut frame.v),
            v_stride: width / 2,
            width,
            height,
        };
        let stride = width * bytes_per_pixel;
        let result = if bytes_per_pixel == 4 {
            yuv::rgba_to_yuv420(
                &mut planar,
                data,
                stride,
                RANGE,
                MATRIX,
                YuvConversionMode::Balanced,
            )
        } else {
            yuv::rgb_to_yuv420(
                &mut planar,
                data,
                stride,
                RANGE,
                MATRIX,
                YuvConversionMode::Balanced,
            )
        };
        result.map_err(|e| Error::Conversion(e.to_string()))?;
        Ok(frame)
    }

    /// Width in pixels.
    #[must_use]
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    #[must_use]
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The luma plane, `width` bytes per row.
    #[must_use]
    pub fn y(&self) -> &[u8] {
        &self.y
    }

    /// The blue-difference chroma plane, `width/2` bytes per row.
    #[must_use]
    pub fn u(&self) -> &[u8] {
        &self.u
    }

    /// The red-difference chroma plane, `width/2` bytes per row.
    #[must_use]
    pub fn v(&self) -> &[u8] {
        &self.v
    }

    /// All three planes, mutably (Y, U, V).
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        (&mut self.y, &mut self.u, &mut self.v)
    }

    /// Row strides of the Y, U and V planes in bytes (the planes are tightly packed).
    #[must_use]
    pub fn strides(&self) -> (usize, usize, usize) {
        let w = self.width as usize;
        (w, w / 2, w / 2)
    }

    /// Converts to RGBA (4 bytes per pixel, alpha 255) for display.
    ///
    /// # Errors
    /// [`Error::Conversion`] if the conversion library rejects the frame.
    pub fn to_rgba(&self) -> Result<Vec<u8>, Error> {
        let mut out = vec![0; self.width as usize * self.height as usize * 4];
        self.write_rgba(&mut out)?;
        Ok(out)
    }

    /// Converts to RGBA into a caller-provided buffer of `width*height*4` bytes.
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] if `out` has the wrong size.
    pub fn write_rgba(&self, out: &mut [u8]) -> Result<(), Error> {
        let needed = self.width as usize * self.height as usize * 4;
        if out.len() != needed {
            return Err(Error::InvalidFrame(format!(
                "RGBA buffer has {} bytes, {needed} needed",
                out.len()
            )));
        }
        let planar = self.as_yuv();
        yuv::yuv420_to_rgba(&planar, out, self.width * 4, RANGE, MATRIX)
            .map_err(|e| Error::Conversion(e.to_string()))
    }

    fn as_yuv(&self) -> YuvPlanarImage<'_, u8> {
        YuvPlanarImage {
            y_plane: &self.y,
            y_stride: self.width,
            u_plane: &self.u,
            u_stride: self.width / 2,
            v_plane: &self.v,
            v_stride: self.width / 2,
            width: self.width,
            height: self.height,
        }
    }

    /// The picture at half its width and height (each output pixel the mean of a 2×2 block),
    /// for sending a smaller video on a narrow link. Sizes round down to even; a picture
    /// smaller than 4×4 comes back unchanged.
    #[must_use]
    pub fn half_size(&self) -> VideoFrame {
        let (w, h) = (self.width as usize, self.height as usize);
        let (hw, hh) = ((w / 2) & !1, (h / 2) & !1);
        if hw < 2 || hh < 2 {
            return self.clone();
        }
        let halve = |plane: &[u8], pw: usize, ow: usize, oh: usize| {
            let mut out = Vec::with_capacity(ow * oh);
            for y in 0..oh {
                let r0 = &plane[(2 * y) * pw..];
                let r1 = &plane[(2 * y + 1) * pw..];
                for x in 0..ow {
                    let sum = u16::from(r0[2 * x])
                        + u16::from(r0[2 * x + 1])
                        + u16::from(r1[2 * x])
                        + u16::from(r1[2 * x + 1]);
                    out.push(((sum + 2) / 4) as u8);
                }
            }
            out
        };
        VideoFrame {
            width: hw as u32,
            height: hh as u32,
            y: halve(&self.y, w, hw, hh),
            u: halve(&self.u, w / 2, hw / 2, hh / 2),
            v: halve(&self.v, w / 2, hw / 2, hh / 2),
            capture_time_us: self.capture_time_us,
            concealed: self.concealed,
        }
    }

    /// Peak signal-to-noise ratio in dB against `other`, over all Y, U and V samples
    /// (infinite for identical frames).
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] if the sizes differ.
    pub fn psnr(&self, other: &VideoFrame) -> Result<f64, Error> {
        if self.width != other.width || self.height != other.height {
            return Err(Error::InvalidFrame(format!(
                "PSNR of {}x{} against {}x{}",
                self.width, self.height, other.width, other.height
            )));
        }
        let mut sum_sq: u64 = 0;
        let mut count: u64 = 0;
        for (a, b) in [
            (&self.y, &other.y),
            (&self.u, &other.u),
            (&self.v, &other.v),
        ] {
            for (x, y) in a.iter().zip(b.iter()) {
                let d = u64::from(x.abs_diff(*y));
                sum_sq += d * d;
            }
            count += a.len() as u64;
        }
        if sum_sq == 0 {
            return Ok(f64::INFINITY);
        }
        let mse = sum_sq as f64 / count as f64;
        Ok(10.0 * (255.0 * 255.0 / mse).log10())
    }
}
