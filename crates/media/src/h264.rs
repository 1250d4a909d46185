//! H.264 on openh264: [`H264Encoder`] produces constrained-baseline Annex-B access units suitable
//! for WebRTC's `profile-level-id=42e01f;packetization-mode=1`; [`H264Decoder`] turns access units
//! back into [`VideoFrame`]s and tracks whether it needs a keyframe (for PLI).
//!
//! Both are plain single-threaded objects: the call's video-send thread owns an encoder, and
//! [`crate::DecodeWorker`] puts a decoder on a thread of its own.

use openh264::OpenH264API;
use openh264::Timestamp;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig as OpenH264Config, FrameRate, FrameType,
    IntraFramePeriod, Level, Profile, RateControlMode, SpsPpsStrategy, UsageType,
};
use openh264::formats::YUVSlices;

use crate::video_codec::KeyframeGate;
use crate::{EncodedFrame, EncoderConfig, Error, VideoFrame};

/// NAL unit type of an IDR slice.
const NAL_IDR: u8 = 5;
/// NAL unit type of a non-IDR slice.
const NAL_SLICE: u8 = 1;

/// NAL unit types (the low 5 bits of each NAL header) of an Annex-B buffer, in order.
#[must_use]
pub fn nal_unit_types(annex_b: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut i = 0;
    while i + 3 < annex_b.len() {
        if annex_b[i] == 0 && annex_b[i + 1] == 0 && annex_b[i + 2] == 1 {
            types.push(annex_b[i + 3] & 0x1F);
            i += 3;
        } else {
            i += 1;
        }
    }
    types
}

/// openh264 encoder configured for real-time calls: constrained baseline, one thread, one slice,
/// bitrate rate control with frame skipping.
pub struct H264Encoder {
    inner: Option<Encoder>,
    config: EncoderConfig,
    dimensions: Option<(u32, u32)>,
    keyframe_pending: bool,
    skipped: u64,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("config", &self.config)
            .field("dimensions", &self.dimensions)
            .field("keyframe_pending", &self.keyframe_pending)
            .finish_non_exhaustive()
    }
}

fn encoder_error(e: impl std::fmt::Display) -> Error {
    Error::Encoder(format!("H.264: {e}"))
}

impl H264Encoder {
    /// Creates an encoder; the resolution is taken from the first frame.
    ///
    /// # Errors
    /// [`Error::Encoder`] for a zero bitrate or frame rate.
    pub fn new(config: EncoderConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            inner: None,
            config,
            dimensions: None,
            keyframe_pending: true,
            skipped: 0,
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

    /// Makes the next encoded frame an IDR (answer to PLI/FIR).
    pub fn request_keyframe(&mut self) {
        self.keyframe_pending = true;
    }

    /// Changes the target bitrate, effective from the next frame, without a keyframe.
    ///
    /// # Errors
    /// [`Error::Encoder`] for 0 or if openh264 rejects the value.
    pub fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), Error> {
        EncoderConfig {
            bitrate_bps,
            ..self.config
        }
        .validate()?;
        if let Some(encoder) = self.inner.as_mut() {
            raw::set_bitrate(encoder, self.config.bitrate_bps, bitrate_bps)?;
        }
        self.config.bitrate_bps = bitrate_bps;
        Ok(())
    }

    /// Changes the nominal frame rate, effective from the next frame, without a keyframe.
    ///
    /// # Errors
    /// [`Error::Encoder`] for a non-positive rate or if openh264 rejects it.
    pub fn set_fps(&mut self, fps: f32) -> Result<(), Error> {
        EncoderConfig { fps, ..self.config }.validate()?;
        if let Some(encoder) = self.inner.as_mut() {
            raw::set_fps(encoder, fps)?;
        }
        self.config.fps = fps;
        Ok(())
    }

    fn build(&self) -> Result<Encoder, Error> {
        let config = OpenH264Config::new()
            .profile(Profile::Baseline)
            .level(Level::Level_3_1)
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(self.config.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(self.config.fps))
            .skip_frames(true)
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            .intra_frame_period(IntraFramePeriod::from_num_frames(
                self.config.keyframe_interval,
            ))
            .complexity(Complexity::Low)
            .num_threads(1);
        Encoder::with_api_config(OpenH264API::from_source(), config).map_err(encoder_error)
    }

    /// Encodes one frame. Returns `None` when rate control skipped it (the bitrate budget is
    /// spent); a pending keyframe request then applies to the next frame that is encoded.
    /// A change of resolution restarts the encoder and yields an IDR.
    ///
    /// # Errors
    /// [`Error::Encoder`] if openh264 fails.
    pub fn encode(&mut self, frame: &VideoFrame) -> Result<Option<EncodedFrame>, Error> {
        let dims = (frame.width(), frame.height());
        if self.dimensions != Some(dims) || self.inner.is_none() {
            self.inner = Some(self.build()?);
            self.dimensions = Some(dims);
            self.keyframe_pending = true;
        }
        let Some(encoder) = self.inner.as_mut() else {
            return Err(Error::Encoder("H.264: encoder not initialised".into()));
        };
        if self.keyframe_pending {
            encoder.force_intra_frame();
        }
        let (ys, us, vs) = frame.strides();
        let source = YUVSlices::new(
            (frame.y(), frame.u(), frame.v()),
            (dims.0 as usize, dims.1 as usize),
            (ys, us, vs),
        );
        let timestamp = Timestamp::from_millis(frame.capture_time_us / 1000);
        let bitstream = encoder
            .encode_at(&source, timestamp)
            .map_err(encoder_error)?;
        let keyframe = match bitstream.frame_type() {
            FrameType::Skip => {
                self.skipped += 1;
                return Ok(None);
            }
            FrameType::Invalid => {
                return Err(Error::Encoder(
                    "H.264: openh264 returned an invalid frame".into(),
                ));
            }
            FrameType::IDR => true,
            FrameType::I | FrameType::P | FrameType::IPMixed => false,
        };
        let data = bitstream.to_vec();
        if data.is_empty() {
            self.skipped += 1;
            return Ok(None);
        }
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

/// The two runtime settings the safe openh264 wrapper does not expose.
#[allow(unsafe_code)]
mod raw {
    use openh264::decoder::Decoder;
    use openh264::encoder::Encoder;
    use openh264_sys2::{
        DECODER_OPTION_ERROR_CON_IDC, DECODER_OPTION_NUM_OF_FRAMES_REMAINING_IN_BUFFER,
        ENCODER_OPTION_BITRATE, ENCODER_OPTION_FRAME_RATE, ENCODER_OPTION_MAX_BITRATE,
        ERROR_CON_SLICE_MV_COPY_CROSS_IDR_FREEZE_RES_CHANGE, SBitrateInfo, SBufferInfo,
        SPATIAL_LAYER_0, SPATIAL_LAYER_ALL, dsDataErrorConcealed, dsErrorFree, dsFramePending,
    };

    use crate::{Error, VideoFrame};

    /// Turns on openh264's error concealment: a slice whose data or reference is missing is
    /// filled in by copying motion vectors and pixels from the last good picture, across IDRs,
    /// and the output freezes instead when the resolution changes (its new IDR is awaited). The
    /// Rust wrapper has no setter for it (its `DecoderConfig` leaves it off).
    pub(super) fn conceal_errors(decoder: &mut Decoder) -> Result<(), Error> {
        let mut idc = ERROR_CON_SLICE_MV_COPY_CROSS_IDR_FREEZE_RES_CHANGE;
        // SAFETY: the decoder is initialised; DECODER_OPTION_ERROR_CON_IDC takes a pointer to an
        // int that lives for the call. The wrapper caches nothing that depends on it.
        let rc = unsafe {
            decoder
                .raw_api()
                .set_option(DECODER_OPTION_ERROR_CON_IDC, (&raw mut idc).cast())
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::Decoder(format!(
                "H.264: openh264 refused error concealment (code {rc})"
            )))
        }
    }

    /// What one access unit gave.
    pub(super) struct Decoded {
        /// openh264 concealed something: in this unit (with `damaged`), or in a reference it
        /// was built on, or in a unit left incomplete before it.
        pub(super) concealed: bool,
        /// This unit itself had a reference or data missing, or corrupt.
        pub(super) damaged: bool,
        pub(super) picture: Option<VideoFrame>,
    }

    /// Decodes one access unit as `Decoder::decode` does (no delay, then a flush if a picture
    /// is still held), but keeps the picture openh264 returns together with a "concealed"
    /// status, which the wrapper turns into an error and drops.
    pub(super) fn decode(decoder: &mut Decoder, access_unit: &[u8]) -> Result<Decoded, Error> {
        let len = i32::try_from(access_unit.len())
            .map_err(|_| Error::Decoder("H.264: access unit too large".into()))?;
        let mut dst = [std::ptr::null_mut::<u8>(); 3];
        let mut info = SBufferInfo::default();
        // SAFETY: the decoder is initialised; openh264 reads `len` bytes of `access_unit` and
        // writes three plane pointers into `dst` and the picture's description into `info`,
        // both of which live for the call.
        let mut state = unsafe {
            decoder.raw_api().decode_frame_no_delay(
                access_unit.as_ptr(),
                len,
                (&raw mut dst).cast(),
                &raw mut info,
            )
        };
        if info.iBufferStatus != 1 && state & !dsFramePending == dsErrorFree {
            let mut remaining = 0i32;
            // SAFETY: the option takes a pointer to an int that lives for the call.
            let rc = unsafe {
                decoder.raw_api().get_option(
                    DECODER_OPTION_NUM_OF_FRAMES_REMAINING_IN_BUFFER,
                    (&raw mut remaining).cast(),
                )
            };
            if rc == 0 && remaining > 0 {
                // SAFETY: as for the decode above.
                state |= unsafe {
                    decoder
                        .raw_api()
                        .flush_frame((&raw mut dst).cast(), &raw mut info)
                };
            }
        }
        let concealed = state & dsDataErrorConcealed != 0;
        let picture = if info.iBufferStatus == 1 {
            // SAFETY: a buffer status of 1 means `dst` and `info` describe a picture in the
            // decoder's own buffers, valid until the next call into it (we copy it out first).
            unsafe { picture(&dst, &info)? }
        } else {
            None
        };
        let damaged = state & !(dsFramePending | dsDataErrorConcealed) != dsErrorFree;
        if damaged && !concealed {
            return Err(Error::Decoder(format!(
                "H.264: openh264 could not decode (state {state:#x})"
            )));
        }
        Ok(Decoded {
            concealed,
            damaged,
            picture,
        })
    }

    /// Copies out the picture openh264 returned.
    ///
    /// # Safety
    /// `dst` and `info` must come from a decode or flush that reported a buffer status of 1,
    /// with no call into the decoder since.
    unsafe fn picture(dst: &[*mut u8; 3], info: &SBufferInfo) -> Result<Option<VideoFrame>, Error> {
        if dst.iter().any(|p| p.is_null()) {
            return Ok(None);
        }
        // SAFETY: the only member of the union, written by the decoder with the picture.
        let system = unsafe { info.UsrData.sSystemBuffer };
        let dims = |v: i32| usize::try_from(v).unwrap_or(0);
        // A cropped stream can have an odd size; show it one pixel smaller.
        let (w, h) = (dims(system.iWidth) & !1, dims(system.iHeight) & !1);
        let (ys, uvs) = (dims(system.iStride[0]), dims(system.iStride[1]));
        if w == 0 || h == 0 || ys < w || uvs < w / 2 {
            return Ok(None);
        }
        // SAFETY: openh264's planes hold at least `h` rows of `ys` bytes (Y) and `h / 2` rows
        // of `uvs` bytes (U, V): its buffers are allocated for the padded, macroblock-aligned
        // picture, larger than the display size reported here.
        let (y, u, v) = unsafe {
            (
                std::slice::from_raw_parts(dst[0], h * ys),
                std::slice::from_raw_parts(dst[1], h / 2 * uvs),
                std::slice::from_raw_parts(dst[2], h / 2 * uvs),
            )
        };
        let width =
            u32::try_from(w).map_err(|_| Error::Decoder("H.264: picture too wide".into()))?;
        let height =
            u32::try_from(h).map_err(|_| Error::Decoder("H.264: picture too tall".into()))?;
        VideoFrame::from_strided_planes(width, height, (y, ys), (u, uvs), (v, uvs), 0).map(Some)
    }

    fn bitrate_option(
        encoder: &mut Encoder,
        option: i32,
        layer: i32,
        bps: u32,
    ) -> Result<(), Error> {
        let mut info = SBitrateInfo {
            iLayer: layer,
            iBitrate: i32::try_from(bps).map_err(|e| Error::Encoder(format!("H.264: {e}")))?,
        };
        // SAFETY: the encoder is initialised (it has encoded a frame); ENCODER_OPTION_BITRATE and
        // ENCODER_OPTION_MAX_BITRATE take a pointer to an SBitrateInfo that lives for the call.
        // Neither changes state the wrapper caches (it only caches dimensions).
        let rc = unsafe { encoder.raw_api().set_option(option, (&raw mut info).cast()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::Encoder(format!(
                "H.264: openh264 rejected bitrate {bps} (code {rc})"
            )))
        }
    }

    pub(super) fn set_bitrate(encoder: &mut Encoder, old_bps: u32, bps: u32) -> Result<(), Error> {
        // openh264 checks target <= max for the (single) spatial layer after every call, so
        // raise the maxima first when going up and lower them last when going down.
        let maxima = |encoder: &mut Encoder| {
            bitrate_option(encoder, ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_ALL, bps)?;
            bitrate_option(encoder, ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0, bps)
        };
        if bps > old_bps {
            maxima(encoder)?;
            bitrate_option(encoder, ENCODER_OPTION_BITRATE, SPATIAL_LAYER_ALL, bps)
        } else {
            bitrate_option(encoder, ENCODER_OPTION_BITRATE, SPATIAL_LAYER_ALL, bps)?;
            maxima(encoder)
        }
    }

    pub(super) fn set_fps(encoder: &mut Encoder, fps: f32) -> Result<(), Error> {
        let mut value = fps;
        // SAFETY: ENCODER_OPTION_FRAME_RATE takes a pointer to a float that lives for the call.
        let rc = unsafe {
            encoder
                .raw_api()
                .set_option(ENCODER_OPTION_FRAME_RATE, (&raw mut value).cast())
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::Encoder(format!(
                "H.264: openh264 rejected frame rate {fps} (code {rc})"
            )))
        }
    }
}

/// openh264 decoder that reports when the stream cannot continue without a keyframe.
pub struct H264Decoder {
    inner: Decoder,
    gate: KeyframeGate,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Decoder")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

/// Pictures concealed after a loss before the decoder stops showing them and waits for the
/// keyframe: about 3 s at 30 fps. The engine asks for a keyframe at once and at most once a
/// round trip, so this is only reached when keyframes are lost again and again; by then the
/// errors have spread too far for the picture to be worth showing.
pub const CONCEAL_LIMIT_FRAMES: u32 = 90;

impl H264Decoder {
    /// Creates a decoder. It needs a keyframe before it can show anything; after that, lost
    /// data is concealed (see [`H264Decoder::needs_keyframe`]).
    ///
    /// # Errors
    /// [`Error::Decoder`] if openh264 fails to initialise.
    pub fn new() -> Result<Self, Error> {
        let mut inner = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(|e| Error::Decoder(format!("H.264: {e}")))?;
        raw::conceal_errors(&mut inner)?;
        Ok(Self {
            inner,
            gate: KeyframeGate::concealing(CONCEAL_LIMIT_FRAMES),
        })
    }

    /// True until an IDR has been decoded, and again after any decode error or reported loss,
    /// until the next IDR: while true the engine should send PLI. Meanwhile delta frames are
    /// still decoded, with openh264's error concealment filling in what the lost data would
    /// have drawn (motion vectors and pixels copied from the last good picture), for at most
    /// [`CONCEAL_LIMIT_FRAMES`] pictures; before the first IDR nothing is shown.
    #[must_use]
    pub fn needs_keyframe(&self) -> bool {
        self.gate.needs_keyframe()
    }

    /// Tells the decoder that data was lost (for example an RTP sequence gap): it conceals,
    /// and asks for the next IDR.
    pub fn report_loss(&mut self) {
        self.gate.report_loss();
    }

    /// Pictures decoded so far (concealed ones included).
    #[must_use]
    pub fn decoded_frames(&self) -> u64 {
        self.gate.decoded()
    }

    /// Pictures decoded while waiting for an IDR after a loss: built on a lost or broken
    /// reference, with errors concealed.
    #[must_use]
    pub fn concealed_frames(&self) -> u64 {
        self.gate.concealed()
    }

    /// Decodes one Annex-B access unit. Returns `Ok(None)` when there is nothing to show yet
    /// (parameter sets only, or delta frames while waiting for a keyframe).
    ///
    /// # Errors
    /// [`Error::Decoder`] for input that is not Annex-B H.264, or that openh264 cannot decode
    /// (corrupt or missing references); the decoder then waits for the next IDR.
    pub fn decode(&mut self, access_unit: &[u8]) -> Result<Option<VideoFrame>, Error> {
        let types = nal_unit_types(access_unit);
        if types.is_empty() {
            let e = Error::Decoder(format!(
                "H.264: {} bytes without an Annex-B start code",
                access_unit.len()
            ));
            return Err(self.gate.fail(e, false));
        }
        if types.iter().any(|t| *t == 0 || *t > 23) {
            let e = Error::Decoder("H.264: invalid NAL unit type".into());
            return Err(self.gate.fail(e, true));
        }
        let has_idr = types.contains(&NAL_IDR);
        if self.gate.holds_back(types.contains(&NAL_SLICE), has_idr) {
            return Ok(None);
        }
        match raw::decode(&mut self.inner, access_unit) {
            // An intact IDR needs nothing before it: a "concealed" flag on its picture is left
            // over from an incomplete unit before it (seen after a truncated IDR).
            Ok(raw::Decoded {
                concealed: true,
                damaged: false,
                picture: Some(picture),
            }) if has_idr => self.gate.settle(true, Ok(Some(picture))),
            Ok(raw::Decoded {
                concealed: true,
                picture,
                ..
            }) => Ok(self.gate.conceal(picture)),
            Ok(raw::Decoded { picture, .. }) => self.gate.settle(has_idr, Ok(picture)),
            Err(e) => self.gate.settle(has_idr, Err(e)),
        }
    }
}
