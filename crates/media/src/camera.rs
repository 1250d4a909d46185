//! Real cameras through nokhwa (V4L2 on Linux, Media Foundation on Windows, AVFoundation on
//! macOS).
//!
//! [`list_cameras`] names the devices and their modes; [`Camera`] opens one by index at the mode
//! nearest to the request and converts MJPEG, YUYV, NV12 or RGB frames to I420 with the `yuv`
//! crate (MJPEG is first decompressed by nokhwa's JPEG decoder); a mode larger than the request
//! (the nearest a camera has) is scaled down to fit it, keeping its shape ([`Scaler`]). A missing or busy camera is an
//! error from [`VideoSource::start`]; one that fails later (unplugged) ends the capture and the
//! error comes back from [`Capture::stop`](crate::Capture::stop).

use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};
use yuv::{BufferStoreMut, YuvPackedImage, YuvPlanarImageMut};

use crate::capture::{Capture, FrameSender, VideoSource, spawn_named};
use crate::{Error, Scaler, VideoFrame, camera_platform, unix_time_us};

/// Pixel formats we can convert from.
const USABLE: [FrameFormat; 4] = [
    FrameFormat::NV12,
    FrameFormat::YUYV,
    FrameFormat::MJPEG,
    FrameFormat::RAWRGB,
];

/// Pixel format a camera delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CameraPixelFormat {
    /// Motion JPEG.
    Mjpeg,
    /// Packed YUV 4:2:2.
    Yuyv,
    /// Y plane plus interleaved UV plane, 4:2:0.
    Nv12,
    /// Packed 8-bit RGB.
    Rgb,
}

impl CameraPixelFormat {
    fn from_nokhwa(format: FrameFormat) -> Option<Self> {
        match format {
            FrameFormat::MJPEG => Some(Self::Mjpeg),
            FrameFormat::YUYV => Some(Self::Yuyv),
            FrameFormat::NV12 => Some(Self::Nv12),
            FrameFormat::RAWRGB => Some(Self::Rgb),
            FrameFormat::GRAY | FrameFormat::RAWBGR => None,
        }
    }
}

/// One mode a camera supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CameraMode {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Pixel format on the wire.
    pub format: CameraPixelFormat,
}

/// A camera found by [`list_cameras`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraInfo {
    /// Index to open it with ([`Camera::index`]).
    pub index: u32,
    /// Human-readable name.
    pub name: String,
    /// Platform description (device path and so on).
    pub description: String,
    /// Modes it reported (empty if the camera could not be opened to ask, e.g. busy). Nodes
    /// that open but have no usable mode (V4L metadata and infrared nodes) are not listed.
    pub modes: Vec<CameraMode>,
}

/// Lists the cameras of the system. An empty list is normal (no camera, or a server).
///
/// # Errors
/// [`Error::Camera`] if the platform's camera API itself fails.
pub fn list_cameras() -> Result<Vec<CameraInfo>, Error> {
    camera_platform::prepare()?;
    let infos = nokhwa::query(ApiBackend::Auto).map_err(|e| Error::Camera {
        index: 0,
        reason: format!("listing cameras failed: {e}"),
    })?;
    Ok(infos
        .into_iter()
        .filter_map(|info| {
            let index = info.index().as_index().ok()?;
            let modes = listed_modes(index, query_modes(index))?;
            Some(CameraInfo {
                index,
                name: info.human_name(),
                description: info.description().to_owned(),
                modes,
            })
        })
        .collect())
}

/// What the list shows of a device: its modes; an empty list if it could not be opened to
/// ask (busy in another program: it is still a camera); `None` (hidden) if it opened and has
/// no mode duet can use, as V4L's metadata and infrared nodes beside a webcam.
fn listed_modes(index: u32, queried: Result<Vec<CameraMode>, Error>) -> Option<Vec<CameraMode>> {
    match queried {
        Ok(modes) if modes.is_empty() => {
            tracing::debug!(index, "hiding a camera node with no usable mode");
            None
        }
        Ok(modes) => Some(modes),
        Err(error) => {
            tracing::debug!(index, %error, "could not read camera modes");
            Some(Vec::new())
        }
    }
}

fn camera_error(index: u32, e: impl std::fmt::Display) -> Error {
    Error::Camera {
        index,
        reason: e.to_string(),
    }
}

fn open_any(index: u32) -> Result<nokhwa::Camera, Error> {
    let request = RequestedFormat::with_formats(RequestedFormatType::None, &USABLE);
    nokhwa::Camera::new(CameraIndex::Index(index), request).map_err(|e| camera_error(index, e))
}

fn query_modes(index: u32) -> Result<Vec<CameraMode>, Error> {
    let mut camera = open_any(index)?;
    let formats = camera
        .compatible_camera_formats()
        .map_err(|e| camera_error(index, e))?;
    Ok(formats.into_iter().filter_map(to_mode).collect())
}

fn to_mode(format: CameraFormat) -> Option<CameraMode> {
    Some(CameraMode {
        width: format.width(),
        height: format.height(),
        fps: format.frame_rate(),
        format: CameraPixelFormat::from_nokhwa(format.format())?,
    })
}

/// The supported format nearest to the request: closest resolution (by pixel distance), then
/// closest frame rate, then the cheapest pixel format to convert.
fn nearest(formats: &[CameraFormat], width: u32, height: u32, fps: u32) -> Option<CameraFormat> {
    formats
        .iter()
        .filter(|f| USABLE.contains(&f.format()))
        .min_by_key(|f| {
            let dw = i64::from(f.width()) - i64::from(width);
            let dh = i64::from(f.height()) - i64::from(height);
            let dfps = (i64::from(f.frame_rate()) - i64::from(fps)).abs();
            let cost = USABLE.iter().position(|u| *u == f.format()).unwrap_or(9);
            (dw * dw + dh * dh, dfps, cost)
        })
        .copied()
}

/// A camera to capture from, by index ([`CameraInfo::index`]) with a requested mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Camera {
    /// Index from [`list_cameras`].
    pub index: u32,
    /// Requested width (the nearest supported mode is used).
    pub width: u32,
    /// Requested height.
    pub height: u32,
    /// Requested frame rate.
    pub fps: u32,
}

impl Camera {
    /// A request for camera `index` at about `width`×`height` and `fps`.
    #[must_use]
    pub fn new(index: u32, width: u32, height: u32, fps: u32) -> Self {
        Self {
            index,
            width,
            height,
            fps,
        }
    }
}

impl VideoSource for Camera {
    fn name(&self) -> String {
        format!("Camera {}", self.index)
    }

    /// Opens the camera on the `duet-camera` thread and starts streaming.
    ///
    /// # Errors
    /// [`Error::CameraNotFound`] if no camera has this index, [`Error::Camera`] if it cannot be
    /// opened (busy, no usable format).
    fn start(self, capacity: usize) -> Result<Capture<VideoFrame>, Error> {
        camera_platform::prepare()?;
        let cameras = nokhwa::query(ApiBackend::Auto).map_err(|e| camera_error(self.index, e))?;
        let exists = cameras
            .iter()
            .any(|c| c.index().as_index().ok() == Some(self.index));
        if !exists {
            return Err(Error::CameraNotFound {
                index: self.index,
                available: cameras.len(),
            });
        }
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), Error>>(1);
        let capture = spawn_named("duet-camera", capacity, move |tx| match open_camera(self) {
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                Ok(())
            }
            Ok(camera) => {
                let _ = ready_tx.send(Ok(()));
                run_camera(camera, self, &tx)
            }
        })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(capture),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::ThreadPanicked("duet-camera".into())),
        }
    }
}

fn open_camera(request: Camera) -> Result<nokhwa::Camera, Error> {
    // The camera is opened and read on its own thread, which needs its own preparation.
    camera_platform::prepare()?;
    let index = request.index;
    let mut camera = open_any(index)?;
    let formats = camera
        .compatible_camera_formats()
        .map_err(|e| camera_error(index, e))?;
    let chosen = nearest(&formats, request.width, request.height, request.fps)
        .ok_or_else(|| camera_error(index, "no MJPEG, YUYV, NV12 or RGB mode"))?;
    camera
        .set_camera_requset(RequestedFormat::new::<RgbFormat>(
            RequestedFormatType::Exact(chosen),
        ))
        .map_err(|e| camera_error(index, e))?;
    camera.open_stream().map_err(|e| camera_error(index, e))?;
    tracing::debug!(index, format = %chosen, "camera open");
    Ok(camera)
}

fn run_camera(
    mut camera: nokhwa::Camera,
    request: Camera,
    tx: &FrameSender<VideoFrame>,
) -> Result<(), Error> {
    let index = request.index;
    // A mode larger than asked for (the nearest one a camera has) is scaled down to fit.
    let mut scaler = Scaler::new();
    while !tx.should_stop() {
        let buffer = camera.frame().map_err(|e| camera_error(index, e))?;
        let captured = unix_time_us();
        let resolution = buffer.resolution();
        let frame = convert(
            buffer.buffer(),
            buffer.source_frame_format(),
            resolution.width(),
            resolution.height(),
            captured,
        )
        .and_then(|frame| scaler.fit(frame, request.width, request.height));
        match frame {
            Ok(frame) => {
                if !tx.push(frame) {
                    break;
                }
            }
            // One bad frame (a torn MJPEG) is skipped, not fatal.
            Err(error) => tracing::debug!(index, %error, "dropping undecodable camera frame"),
        }
    }
    let _ = camera.stop_stream();
    Ok(())
}

/// Converts one camera buffer to I420 (odd sizes are cropped by one pixel).
fn convert(
    data: &[u8],
    format: FrameFormat,
    width: u32,
    height: u32,
    capture_time_us: u64,
) -> Result<VideoFrame, Error> {
    let (w, h) = (width & !1, height & !1);
    match format {
        FrameFormat::YUYV => {
            let mut frame = VideoFrame::new_black(w, h, capture_time_us)?;
            let packed = YuvPackedImage {
                yuy: data,
                yuy_stride: width * 2,
                width: w,
                height: h,
            };
            {
                let (y, u, v) = frame.planes_mut();
                let mut planar = YuvPlanarImageMut {
                    y_plane: BufferStoreMut::Borrowed(y),
                    y_stride: w,
                    u_plane: BufferStoreMut::Borrowed(u),
                    u_stride: w / 2,
                    v_plane: BufferStoreMut::Borrowed(v),
                    v_stride: w / 2,
                    width: w,
                    height: h,
                };
                yuv::yuyv422_to_yuv420(&mut planar, &packed)
                    .map_err(|e| Error::Conversion(e.to_string()))?;
            }
            Ok(frame)
        }
        FrameFormat::NV12 => {
            // Same samples, different layout: the interleaved UV plane is split into U and V.
            let (yw, uvw) = (width as usize, (width as usize).div_ceil(2) * 2);
            let y_len = yw * height as usize;
            if data.len() < y_len + uvw * (height as usize / 2) {
                return Err(Error::InvalidFrame("short NV12 buffer".into()));
            }
            let (y_plane, uv_plane) = data.split_at(y_len);
            let mut frame = VideoFrame::new_black(w, h, capture_time_us)?;
            {
                let (y, u, v) = frame.planes_mut();
                for (row, dst) in y_plane.chunks(yw).zip(y.chunks_mut(w as usize)) {
                    dst.copy_from_slice(&row[..w as usize]);
                }
                let cw = (w / 2) as usize;
                for (r, row) in uv_plane.chunks(uvw).take(h as usize / 2).enumerate() {
                    for c in 0..cw {
                        u[r * cw + c] = row[2 * c];
                        v[r * cw + c] = row[2 * c + 1];
                    }
                }
            }
            Ok(frame)
        }
        FrameFormat::MJPEG => {
            // mozjpeg reports some corrupt input by unwinding (`resume_unwind`, so no panic
            // message is printed): contain it, a torn camera frame must not kill the thread.
            let rgb = std::panic::catch_unwind(|| nokhwa::utils::mjpeg_to_rgb(data, false))
                .map_err(|_| Error::Conversion("corrupt MJPEG frame".into()))?
                .map_err(|e| Error::Conversion(e.to_string()))?;
            crop_rgb(&rgb, width, height, w, h, capture_time_us)
        }
        FrameFormat::RAWRGB => crop_rgb(data, width, height, w, h, capture_time_us),
        FrameFormat::GRAY | FrameFormat::RAWBGR => Err(Error::Conversion(format!(
            "camera format {format} is not supported"
        ))),
    }
}

fn crop_rgb(
    rgb: &[u8],
    width: u32,
    height: u32,
    w: u32,
    h: u32,
    capture_time_us: u64,
) -> Result<VideoFrame, Error> {
    if (w, h) == (width, height) {
        return VideoFrame::from_rgb(w, h, rgb, capture_time_us);
    }
    let mut cropped = Vec::with_capacity((w * h * 3) as usize);
    for row in rgb.chunks((width * 3) as usize).take(h as usize) {
        cropped.extend_from_slice(row.get(..(w * 3) as usize).unwrap_or(row));
    }
    VideoFrame::from_rgb(w, h, &cropped, capture_time_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_without_usable_modes_are_hidden_but_busy_cameras_are_not() {
        let mode = CameraMode {
            width: 640,
            height: 480,
            fps: 30,
            format: CameraPixelFormat::Mjpeg,
        };
        assert_eq!(listed_modes(0, Ok(vec![mode])), Some(vec![mode]));
        assert_eq!(listed_modes(1, Ok(Vec::new())), None, "a metadata node");
        let busy = Err(camera_error(2, "Device or resource busy"));
        assert_eq!(
            listed_modes(2, busy),
            Some(Vec::new()),
            "busy is still a camera"
        );
    }

    #[test]
    fn nearest_mode_prefers_resolution_then_fps() {
        let formats = [
            CameraFormat::new_from(1920, 1080, FrameFormat::MJPEG, 30),
            CameraFormat::new_from(1280, 720, FrameFormat::MJPEG, 30),
            CameraFormat::new_from(1280, 720, FrameFormat::YUYV, 10),
            CameraFormat::new_from(640, 480, FrameFormat::YUYV, 30),
        ];
        let chosen = nearest(&formats, 1280, 720, 30);
        assert_eq!(
            chosen,
            Some(CameraFormat::new_from(1280, 720, FrameFormat::MJPEG, 30))
        );
        let chosen = nearest(&formats, 1200, 700, 15);
        assert_eq!(
            chosen,
            Some(CameraFormat::new_from(1280, 720, FrameFormat::YUYV, 10))
        );
    }

    #[test]
    fn yuyv_and_nv12_convert_to_i420() -> Result<(), Error> {
        // A mid-grey 4x2 YUYV image: Y=128, U=V=128.
        let yuyv = vec![128u8; 4 * 2 * 2];
        let frame = convert(&yuyv, FrameFormat::YUYV, 4, 2, 7)?;
        assert!(frame.y().iter().all(|&y| y == 128));
        assert!(frame.u().iter().all(|&u| u == 128));
        let mut nv12 = vec![100u8; 4 * 2];
        nv12.extend_from_slice(&[10, 20, 30, 40]);
        let frame = convert(&nv12, FrameFormat::NV12, 4, 2, 7)?;
        assert_eq!(frame.u(), &[10, 30]);
        assert_eq!(frame.v(), &[20, 40]);
        assert!(frame.y().iter().all(|&y| y == 100));
        Ok(())
    }

    #[test]
    fn short_buffers_are_errors_not_panics() {
        assert!(convert(&[0; 3], FrameFormat::NV12, 640, 480, 0).is_err());
        assert!(convert(&[0; 3], FrameFormat::YUYV, 640, 480, 0).is_err());
        assert!(convert(&[0; 3], FrameFormat::MJPEG, 640, 480, 0).is_err());
        assert!(convert(&[0; 3], FrameFormat::RAWRGB, 640, 480, 0).is_err());
    }
}
