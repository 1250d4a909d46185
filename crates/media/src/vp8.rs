//! VP8 on the system libvpx (through `env-libvpx-sys`): [`Vp8Encoder`] makes real-time frames
//! (one pass, CBR, error resilient, no lag, keyframes only at start and on request) and
//! [`Vp8Decoder`] turns them back into [`VideoFrame`]s, tracking whether it needs a keyframe
//! (for PLI) the way [`crate::H264Decoder`] does.
//!
//! VP8 is the codec every browser has: Firefox gets H.264 only from a plugin it downloads on
//! first use, and some Chromium builds ship without H.264. Both types are plain
//! single-threaded objects, like their H.264 counterparts.
//!
//! All FFI lives in the `ffi` module below; the rest is safe code.

use crate::video_codec::KeyframeGate;
use crate::{EncodedFrame, EncoderConfig, Error, VideoFrame};

/// Whether a VP8 frame is a keyframe: bit 0 of its first byte is 0 for a keyframe (RFC 6386
/// §9.1), and a keyframe carries the start code 9d 01 2a and its size after the 3-byte tag.
#[must_use]
pub fn vp8_is_keyframe(frame: &[u8]) -> bool {
    frame.len() >= 10 && frame[0] & 1 == 0 && frame[3..6] == [0x9d, 0x01, 0x2a]
}

/// VP8 encoder for real-time calls.
pub struct Vp8Encoder {
    inner: Option<ffi::Encoder>,
    config: EncoderConfig,
    dimensions: Option<(u32, u32)>,
    keyframe_pending: bool,
    skipped: u64,
    /// Capture time (µs) of the first frame: libvpx wants increasing timestamps from zero.
    first_us: Option<u64>,
    last_pts_ms: Option<i64>,
}

impl std::fmt::Debug for Vp8Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vp8Encoder")
            .field("config", &self.config)
            .field("dimensions", &self.dimensions)
            .field("keyframe_pending", &self.keyframe_pending)
            .finish_non_exhaustive()
    }
}

impl Vp8Encoder {
    /// Creates an encoder; the resolution is taken from the first frame.
    ///
    /// # Errors
    /// [`Error::Encoder`] for a bitrate or frame rate out of range.
    pub fn new(config: EncoderConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            inner: None,
            config,
            dimensions: None,
            keyframe_pending: true,
            skipped: 0,
            first_us: None,
            last_pts_ms: None,
        })
    }

    /// Current settings.
    #[must_use]
    pub fn config(&self) -> EncoderConfig {
        self.config
    }

    /// Frames dropped by rate control so far.
    #[must_use]
    pub fn skipped_frames(&self) -> u64 {
        self.skipped
    }

    /// Makes the next encoded frame a keyframe (answer to PLI/FIR).
    pub fn request_keyframe(&mut self) {
        self.keyframe_pending = true;
    }

    /// Changes the target bitrate, effective from the next frame, without a keyframe.
    ///
    /// # Errors
    /// [`Error::Encoder`] for a value out of range or if libvpx rejects it.
    pub fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), Error> {
        let config = EncoderConfig {
            bitrate_bps,
            ..self.config
        };
        config.validate()?;
        if let Some(encoder) = self.inner.as_mut() {
            encoder.set_bitrate_kbps(bitrate_bps / 1000)?;
        }
        self.config = config;
        Ok(())
    }

    /// Changes the nominal frame rate (libvpx's rate control uses the frames' timestamps, so
    /// this only records it).
    ///
    /// # Errors
    /// [`Error::Encoder`] for a non-positive rate.
    pub fn set_fps(&mut self, fps: f32) -> Result<(), Error> {
        let config = EncoderConfig { fps, ..self.config };
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Encodes one frame. Returns `None` when rate control dropped it; a pending keyframe
    /// request then applies to the next frame that is encoded. A change of resolution restarts
    /// the encoder and yields a keyframe.
    ///
    /// # Errors
    /// [`Error::Encoder`] if libvpx fails.
    pub fn encode(&mut self, frame: &VideoFrame) -> Result<Option<EncodedFrame>, Error> {
        let dims = (frame.width(), frame.height());
        if self.dimensions != Some(dims) || self.inner.is_none() {
            self.inner = Some(ffi::Encoder::new(dims, &self.config)?);
            self.dimensions = Some(dims);
            self.keyframe_pending = true;
        }
        let Some(encoder) = self.inner.as_mut() else {
            return Err(Error::Encoder("encoder not initialised".into()));
        };
        let first = *self.first_us.get_or_insert(frame.capture_time_us);
        // Milliseconds since the first frame, strictly increasing (a source that repeats a
        // capture time would otherwise confuse the rate control).
        let mut pts = (frame.capture_time_us.saturating_sub(first) / 1000) as i64;
        if let Some(last) = self.last_pts_ms
            && pts <= last
        {
            pts = last + 1;
        }
        self.last_pts_ms = Some(pts);
        let duration = (1000.0 / self.config.fps).round().max(1.0) as u64;
        let out = encoder.encode(frame, pts, duration, self.keyframe_pending)?;
        let Some((data, keyframe)) = out else {
            self.skipped += 1;
            return Ok(None);
        };
        if keyframe {
            self.keyframe_pending = false;
        }
        Ok(Some(EncodedFrame {
            data,
            keyframe,
            capture_time_us: frame.capture_time_us,
            width: dims.0,
            height: dims.1,
        }))
    }
}

/// VP8 decoder that reports when the stream cannot continue without a keyframe.
pub struct Vp8Decoder {
    inner: ffi::Decoder,
    gate: KeyframeGate,
}

impl std::fmt::Debug for Vp8Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vp8Decoder")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl Vp8Decoder {
    /// Creates a decoder. It needs a keyframe before it can show anything.
    ///
    /// # Errors
    /// [`Error::Decoder`] if libvpx fails to initialise.
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            inner: ffi::Decoder::new()?,
            gate: KeyframeGate::new(),
        })
    }

    /// True until a keyframe has been decoded, and again after any decode error or reported
    /// loss. While true the engine should send PLI; delta frames are not decoded.
    #[must_use]
    pub fn needs_keyframe(&self) -> bool {
        self.gate.needs_keyframe()
    }

    /// Tells the decoder that data was lost: it will wait for the next keyframe.
    pub fn report_loss(&mut self) {
        self.gate.report_loss();
    }

    /// Pictures decoded so far.
    #[must_use]
    pub fn decoded_frames(&self) -> u64 {
        self.gate.decoded()
    }

    /// Decodes one VP8 frame. Returns `Ok(None)` for a delta frame while waiting for a
    /// keyframe.
    ///
    /// # Errors
    /// [`Error::Decoder`] for data libvpx cannot decode, or a picture it marks corrupt; the
    /// decoder then waits for the next keyframe.
    pub fn decode(&mut self, data: &[u8]) -> Result<Option<VideoFrame>, Error> {
        if data.len() < 3 {
            let e = Error::Decoder(format!("VP8: {} bytes is no frame", data.len()));
            return Err(self.gate.fail(e, true));
        }
        let keyframe = vp8_is_keyframe(data);
        if self.gate.holds_back(!keyframe, keyframe) {
            return Ok(None);
        }
        let result = self.inner.decode(data);
        self.gate.settle(keyframe, result)
    }
}

/// The libvpx calls, each with what makes it sound.
#[allow(unsafe_code)]
mod ffi {
    use std::ffi::CStr;
    use std::mem::MaybeUninit;
    use std::ptr;

    use vpx_sys::{
        VPX_DECODER_ABI_VERSION, VPX_DL_REALTIME, VPX_EFLAG_FORCE_KF, VPX_ENCODER_ABI_VERSION,
        VPX_ERROR_RESILIENT_DEFAULT, VPX_FRAME_IS_KEY, vp8_dec_control_id, vp8e_enc_control_id,
        vpx_codec_ctx_t, vpx_codec_cx_pkt_kind, vpx_codec_enc_cfg_t, vpx_codec_err_t,
        vpx_codec_iter_t, vpx_enc_pass, vpx_image_t, vpx_img_fmt, vpx_kf_mode, vpx_rc_mode,
    };

    use crate::{EncoderConfig, Error, VideoFrame};

    /// libvpx's message for the last error on `ctx`.
    fn last_error(ctx: &mut vpx_codec_ctx_t, what: &str) -> String {
        // SAFETY: `ctx` is an initialised context; the returned strings are static or owned by
        // it and valid until the next call on it, and are copied here at once.
        unsafe {
            let msg = vpx_sys::vpx_codec_error(ctx);
            let detail = vpx_sys::vpx_codec_error_detail(ctx);
            let msg = if msg.is_null() {
                String::new()
            } else {
                CStr::from_ptr(msg).to_string_lossy().into_owned()
            };
            let detail = if detail.is_null() {
                String::new()
            } else {
                format!(" ({})", CStr::from_ptr(detail).to_string_lossy())
            };
            format!("VP8 {what}: {msg}{detail}")
        }
    }

    pub(super) struct Encoder {
        ctx: Box<vpx_codec_ctx_t>,
        cfg: Box<vpx_codec_enc_cfg_t>,
    }

    // SAFETY: the context is used from one thread at a time (`&mut self` everywhere); libvpx
    // keeps no thread-local state for it.
    unsafe impl Send for Encoder {}

    impl Encoder {
        pub(super) fn new((w, h): (u32, u32), config: &EncoderConfig) -> Result<Self, Error> {
            let mut defaults = MaybeUninit::<vpx_codec_enc_cfg_t>::uninit();
            // SAFETY: libvpx writes its whole default configuration into `defaults` (the
            // struct holds enums with no zero value, so it cannot start zeroed); the interface
            // pointer is libvpx's static VP8 encoder.
            let rc = unsafe {
                vpx_sys::vpx_codec_enc_config_default(
                    vpx_sys::vpx_codec_vp8_cx(),
                    defaults.as_mut_ptr(),
                    0,
                )
            };
            if rc != vpx_codec_err_t::VPX_CODEC_OK {
                return Err(Error::Encoder(format!("VP8 default configuration: {rc:?}")));
            }
            // SAFETY: initialised by the successful call above.
            let mut cfg = Box::new(unsafe { defaults.assume_init() });
            cfg.g_w = w;
            cfg.g_h = h;
            cfg.g_timebase.num = 1;
            cfg.g_timebase.den = 1000;
            cfg.g_threads = 1;
            cfg.g_lag_in_frames = 0;
            cfg.g_pass = vpx_enc_pass::VPX_RC_ONE_PASS;
            cfg.g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT;
            cfg.rc_end_usage = vpx_rc_mode::VPX_CBR;
            cfg.rc_target_bitrate = (config.bitrate_bps / 1000).max(1);
            // libwebrtc's real-time settings: quantiser range, a 1 s buffer, frame dropping
            // when the buffer runs low, undershoot allowed, little overshoot.
            cfg.rc_min_quantizer = 2;
            cfg.rc_max_quantizer = 56;
            cfg.rc_undershoot_pct = 100;
            cfg.rc_overshoot_pct = 15;
            cfg.rc_buf_initial_sz = 500;
            cfg.rc_buf_optimal_sz = 600;
            cfg.rc_buf_sz = 1000;
            cfg.rc_dropframe_thresh = 30;
            cfg.rc_resize_allowed = 0;
            if config.keyframe_interval == 0 {
                cfg.kf_mode = vpx_kf_mode::VPX_KF_DISABLED;
            } else {
                cfg.kf_mode = vpx_kf_mode::VPX_KF_AUTO;
                cfg.kf_min_dist = config.keyframe_interval;
                cfg.kf_max_dist = config.keyframe_interval;
            }
            let mut ctx: Box<vpx_codec_ctx_t> = Box::new(unsafe {
                // SAFETY: a zeroed context is what vpx_codec_enc_init expects to fill in.
                std::mem::zeroed()
            });
            // SAFETY: `ctx` and `cfg` are valid for the call; the ABI version is the one the
            // bindings were generated for.
            let rc = unsafe {
                vpx_sys::vpx_codec_enc_init_ver(
                    &mut *ctx,
                    vpx_sys::vpx_codec_vp8_cx(),
                    &*cfg,
                    0,
                    VPX_ENCODER_ABI_VERSION as i32,
                )
            };
            if rc != vpx_codec_err_t::VPX_CODEC_OK {
                return Err(Error::Encoder(format!(
                    "VP8 encoder for {w}x{h} cannot start: {rc:?}"
                )));
            }
            let mut encoder = Self { ctx, cfg };
            // Real-time speed (libwebrtc uses -6 on desktops), no noise reduction, one token
            // partition, and keyframes capped at 3× an average frame (they must not flood a
            // narrow link).
            encoder.control(vp8e_enc_control_id::VP8E_SET_CPUUSED as i32, -6)?;
            encoder.control(vp8e_enc_control_id::VP8E_SET_NOISE_SENSITIVITY as i32, 0)?;
            encoder.control(vp8e_enc_control_id::VP8E_SET_STATIC_THRESHOLD as i32, 1)?;
            encoder.control(
                vp8e_enc_control_id::VP8E_SET_MAX_INTRA_BITRATE_PCT as i32,
                300,
            )?;
            Ok(encoder)
        }

        fn control(&mut self, id: i32, value: i32) -> Result<(), Error> {
            // SAFETY: every control used here takes one int argument.
            let rc = unsafe { vpx_sys::vpx_codec_control_(&mut *self.ctx, id, value) };
            if rc == vpx_codec_err_t::VPX_CODEC_OK {
                Ok(())
            } else {
                Err(Error::Encoder(last_error(&mut self.ctx, "control")))
            }
        }

        pub(super) fn set_bitrate_kbps(&mut self, kbps: u32) -> Result<(), Error> {
            self.cfg.rc_target_bitrate = kbps.max(1);
            // SAFETY: `cfg` is the configuration the encoder was made with, changed in a field
            // libvpx allows to change at run time.
            let rc = unsafe { vpx_sys::vpx_codec_enc_config_set(&mut *self.ctx, &*self.cfg) };
            if rc == vpx_codec_err_t::VPX_CODEC_OK {
                Ok(())
            } else {
                Err(Error::Encoder(last_error(&mut self.ctx, "bitrate")))
            }
        }

        /// Encodes `frame`; `Some((bytes, keyframe))`, or `None` when rate control dropped it.
        pub(super) fn encode(
            &mut self,
            frame: &VideoFrame,
            pts: i64,
            duration: u64,
            keyframe: bool,
        ) -> Result<Option<(Vec<u8>, bool)>, Error> {
            let (w, h) = (frame.width(), frame.height());
            let (ys, us, vs) = frame.strides();
            let mut img = MaybeUninit::<vpx_image_t>::zeroed();
            // SAFETY: vpx_img_wrap only fills in the descriptor (it neither reads nor keeps the
            // pixels); the planes and strides are then pointed at the frame's own planes, which
            // outlive the encode call below. libvpx reads them as const input.
            let img = unsafe {
                let wrapped = vpx_sys::vpx_img_wrap(
                    img.as_mut_ptr(),
                    vpx_img_fmt::VPX_IMG_FMT_I420,
                    w,
                    h,
                    1,
                    frame.y().as_ptr().cast_mut(),
                );
                if wrapped.is_null() {
                    return Err(Error::Encoder(format!("VP8: cannot wrap a {w}x{h} image")));
                }
                let mut img = img.assume_init();
                img.planes[0] = frame.y().as_ptr().cast_mut();
                img.planes[1] = frame.u().as_ptr().cast_mut();
                img.planes[2] = frame.v().as_ptr().cast_mut();
                img.stride[0] = ys as i32;
                img.stride[1] = us as i32;
                img.stride[2] = vs as i32;
                img
            };
            let flags = if keyframe {
                i64::from(VPX_EFLAG_FORCE_KF)
            } else {
                0
            };
            // SAFETY: `img` describes planes that are valid for the call; the context is
            // initialised.
            let rc = unsafe {
                vpx_sys::vpx_codec_encode(
                    &mut *self.ctx,
                    &img,
                    pts,
                    duration as _,
                    flags as _,
                    u64::from(VPX_DL_REALTIME) as _,
                )
            };
            if rc != vpx_codec_err_t::VPX_CODEC_OK {
                return Err(Error::Encoder(last_error(&mut self.ctx, "encode")));
            }
            let mut out: Option<(Vec<u8>, bool)> = None;
            let mut iter: vpx_codec_iter_t = ptr::null();
            loop {
                // SAFETY: the iterator starts null and is advanced only by libvpx; each packet
                // is valid until the next call on the context, and its bytes are copied at once.
                let pkt = unsafe { vpx_sys::vpx_codec_get_cx_data(&mut *self.ctx, &mut iter) };
                if pkt.is_null() {
                    break;
                }
                // SAFETY: non-null packets point at a valid vpx_codec_cx_pkt_t; for frame
                // packets the `frame` union member is the one libvpx wrote.
                unsafe {
                    if (*pkt).kind != vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                        continue;
                    }
                    let f = (*pkt).data.frame;
                    let bytes = std::slice::from_raw_parts(f.buf.cast::<u8>(), f.sz as usize);
                    let key = f.flags & VPX_FRAME_IS_KEY != 0;
                    match out.as_mut() {
                        Some((data, k)) => {
                            data.extend_from_slice(bytes);
                            *k |= key;
                        }
                        None => out = Some((bytes.to_vec(), key)),
                    }
                }
            }
            Ok(out.filter(|(d, _)| !d.is_empty()))
        }
    }

    impl Drop for Encoder {
        fn drop(&mut self) {
            // SAFETY: the context was initialised in `new` and is destroyed once.
            unsafe {
                vpx_sys::vpx_codec_destroy(&mut *self.ctx);
            }
        }
    }

    pub(super) struct Decoder {
        ctx: Box<vpx_codec_ctx_t>,
    }

    // SAFETY: as for the encoder: one thread at a time.
    unsafe impl Send for Decoder {}

    impl Decoder {
        pub(super) fn new() -> Result<Self, Error> {
            // SAFETY: a zeroed context is what vpx_codec_dec_init fills in; a null
            // configuration means libvpx's defaults.
            let mut ctx: Box<vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
            let rc = unsafe {
                vpx_sys::vpx_codec_dec_init_ver(
                    &mut *ctx,
                    vpx_sys::vpx_codec_vp8_dx(),
                    ptr::null(),
                    0,
                    VPX_DECODER_ABI_VERSION as i32,
                )
            };
            if rc != vpx_codec_err_t::VPX_CODEC_OK {
                return Err(Error::Decoder(format!("VP8 decoder cannot start: {rc:?}")));
            }
            Ok(Self { ctx })
        }

        pub(super) fn decode(&mut self, data: &[u8]) -> Result<Option<VideoFrame>, Error> {
            let len = u32::try_from(data.len())
                .map_err(|_| Error::Decoder(format!("VP8: {} bytes is too large", data.len())))?;
            // SAFETY: `data` is valid for `len` bytes for the call; libvpx copies what it keeps.
            let rc = unsafe {
                vpx_sys::vpx_codec_decode(&mut *self.ctx, data.as_ptr(), len, ptr::null_mut(), 0)
            };
            if rc != vpx_codec_err_t::VPX_CODEC_OK {
                return Err(Error::Decoder(last_error(&mut self.ctx, "decode")));
            }
            let mut corrupt: i32 = 0;
            // SAFETY: VP8D_GET_FRAME_CORRUPTED writes one int through the pointer.
            let rc = unsafe {
                vpx_sys::vpx_codec_control_(
                    &mut *self.ctx,
                    vp8_dec_control_id::VP8D_GET_FRAME_CORRUPTED as i32,
                    &raw mut corrupt,
                )
            };
            if rc == vpx_codec_err_t::VPX_CODEC_OK && corrupt != 0 {
                return Err(Error::Decoder("VP8: the picture is corrupt".into()));
            }
            let mut iter: vpx_codec_iter_t = ptr::null();
            let mut picture = None;
            loop {
                // SAFETY: as for the encoder's packets: the image is valid until the next call
                // on the context, and its planes are copied into a VideoFrame at once.
                let img = unsafe { vpx_sys::vpx_codec_get_frame(&mut *self.ctx, &mut iter) };
                if img.is_null() {
                    break;
                }
                // SAFETY: a non-null image from the decoder is a valid I420 picture of
                // d_w × d_h with chroma planes of half that (rounded up), at its strides.
                let frame = unsafe {
                    let img = &*img;
                    if img.fmt != vpx_img_fmt::VPX_IMG_FMT_I420 {
                        return Err(Error::Decoder(format!(
                            "VP8: unexpected picture format {:?}",
                            img.fmt
                        )));
                    }
                    let (w, h) = (img.d_w as usize, img.d_h as usize);
                    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
                    let plane = |i: usize, rows: usize, cols: usize| {
                        let stride = img.stride[i] as usize;
                        let len = stride * (rows - 1) + cols;
                        (std::slice::from_raw_parts(img.planes[i], len), stride)
                    };
                    let y = plane(0, h, w);
                    let u = plane(1, ch, cw);
                    let v = plane(2, ch, cw);
                    // An odd size is shown one pixel smaller, as for H.264.
                    VideoFrame::from_strided_planes((w as u32) & !1, (h as u32) & !1, y, u, v, 0)?
                };
                picture = Some(frame);
            }
            Ok(picture)
        }
    }

    impl Drop for Decoder {
        fn drop(&mut self) {
            // SAFETY: the context was initialised in `new` and is destroyed once.
            unsafe {
                vpx_sys::vpx_codec_destroy(&mut *self.ctx);
            }
        }
    }
}
