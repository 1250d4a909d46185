//! One video encoder/decoder interface over the codecs duet speaks: [`VideoCodec`] names one,
//! [`VideoEncoder`] and [`VideoDecoder`] hold either. The call's send and receive paths use
//! these and never branch on the codec themselves.

use crate::{Error, H264Decoder, H264Encoder, VideoFrame, Vp8Decoder, Vp8Encoder};

/// The video codecs duet can send and receive, in duet's order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 constrained baseline (openh264), packetization mode 1.
    H264,
    /// VP8 (libvpx): the codec every browser has.
    Vp8,
}

impl VideoCodec {
    /// Every codec, preferred first.
    pub const ALL: [VideoCodec; 2] = [VideoCodec::H264, VideoCodec::Vp8];

    /// The RTP/SDP MIME type (`video/H264`, `video/VP8`).
    #[must_use]
    pub fn mime_type(self) -> &'static str {
        match self {
            VideoCodec::H264 => "video/H264",
            VideoCodec::Vp8 => "video/VP8",
        }
    }

    /// The codec for a MIME type or an SDP encoding name, case-insensitively (`VP8`,
    /// `video/vp8`); `None` for one duet does not speak.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.strip_prefix("video/").unwrap_or(name);
        VideoCodec::ALL
            .into_iter()
            .find(|c| c.mime_type()["video/".len()..].eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VideoCodec::H264 => "H.264",
            VideoCodec::Vp8 => "VP8",
        })
    }
}

/// Encoder settings, the same for every codec. All can be changed during a call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EncoderConfig {
    /// Target bitrate in bits per second.
    pub bitrate_bps: u32,
    /// Nominal frame rate (rate control uses it with the frames' capture times).
    pub fps: f32,
    /// Periodic keyframe interval in frames; 0 = keyframes only on request (and at start).
    pub keyframe_interval: u32,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            bitrate_bps: 1_500_000,
            fps: 30.0,
            keyframe_interval: 0,
        }
    }
}

impl EncoderConfig {
    /// The limits every encoder enforces: 10 kbit/s..50 Mbit/s and 1..240 frames a second.
    ///
    /// # Errors
    /// [`Error::Encoder`] naming the value out of range.
    pub fn validate(&self) -> Result<(), Error> {
        if self.bitrate_bps < 10_000 || self.bitrate_bps > 50_000_000 {
            return Err(Error::Encoder(format!(
                "bitrate {} bps outside 10 kbps..50 Mbps",
                self.bitrate_bps
            )));
        }
        if !(self.fps.is_finite() && self.fps >= 1.0 && self.fps <= 240.0) {
            return Err(Error::Encoder(format!(
                "frame rate {} outside 1..240",
                self.fps
            )));
        }
        Ok(())
    }
}

/// One encoded picture, ready for RTP packetization by its codec's payloader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFrame {
    /// H.264: an Annex-B access unit (start codes included; SPS and PPS precede every IDR).
    /// VP8: one frame as libvpx wrote it.
    pub data: Vec<u8>,
    /// True for a keyframe (an IDR for H.264): decodable on its own.
    pub keyframe: bool,
    /// The source frame's capture time (UNIX µs).
    pub capture_time_us: u64,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
}

/// The keyframe rule both decoders follow: nothing is shown until a keyframe has been taken.
/// After a decode error or reported loss the engine sends PLI until the next keyframe; a codec
/// that cannot conceal errors shows nothing meanwhile (a delta frame would only show garbage),
/// while one that can ([`KeyframeGate::concealing`]) goes on decoding delta frames on its last
/// good picture for at most `conceal_limit` pictures, so a lost frame costs a blemish instead of
/// a freeze until the next keyframe; plus the counts.
#[derive(Debug)]
pub(crate) struct KeyframeGate {
    needs_keyframe: bool,
    /// A keyframe has been decoded since the codec was created: there is a picture to
    /// conceal from.
    has_reference: bool,
    /// Pictures shown while waiting for a keyframe, at most this many (0: none).
    conceal_limit: u32,
    /// Pictures shown since the wait began.
    concealing: u32,
    decoded: u64,
    concealed: u64,
    errors: u64,
}

impl KeyframeGate {
    /// A gate for a codec that cannot conceal: nothing is shown while a keyframe is needed.
    pub(crate) fn new() -> Self {
        Self::concealing(0)
    }

    /// A gate for a codec that conceals errors in delta frames: after a loss up to
    /// `conceal_limit` pictures are shown before it waits for the keyframe.
    pub(crate) fn concealing(conceal_limit: u32) -> Self {
        Self {
            needs_keyframe: true,
            has_reference: false,
            conceal_limit,
            concealing: 0,
            decoded: 0,
            concealed: 0,
            errors: 0,
        }
    }

    pub(crate) fn needs_keyframe(&self) -> bool {
        self.needs_keyframe
    }

    pub(crate) fn report_loss(&mut self) {
        self.needs_keyframe = true;
    }

    pub(crate) fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Pictures shown while a keyframe was needed (built on a lost or broken reference).
    pub(crate) fn concealed(&self) -> u64 {
        self.concealed
    }

    /// Whether concealment may show one more picture.
    fn may_conceal(&self) -> bool {
        self.has_reference && self.concealing < self.conceal_limit
    }

    /// Whether a delta frame is held back (not given to the codec) while a keyframe is needed.
    pub(crate) fn holds_back(&self, delta: bool, keyframe: bool) -> bool {
        self.needs_keyframe && delta && !keyframe && !self.may_conceal()
    }

    /// Counts `error`; with `wait`, nothing is shown again until the next keyframe (or only
    /// what concealment allows).
    pub(crate) fn fail(&mut self, error: Error, wait: bool) -> Error {
        self.errors += 1;
        self.needs_keyframe |= wait;
        error
    }

    /// Books a picture the codec says it concealed (it found a reference or data missing):
    /// a keyframe is needed from now on, and the picture is shown while concealment allows.
    pub(crate) fn conceal(&mut self, picture: Option<VideoFrame>) -> Option<VideoFrame> {
        self.needs_keyframe = true;
        self.show_while_waiting(picture)
    }

    fn show_while_waiting(&mut self, picture: Option<VideoFrame>) -> Option<VideoFrame> {
        let mut picture = picture.filter(|_| self.may_conceal())?;
        self.concealing += 1;
        self.concealed += 1;
        self.decoded += 1;
        picture.concealed = true;
        Some(picture)
    }

    /// Books what the codec made of a frame: a picture is counted; a keyframe the codec took
    /// ends the wait even when it holds its picture back (some encoders' streams, browsers'
    /// among them, come out one call later: the reference is there); a delta frame's picture
    /// while waiting is a concealed one; an error waits again.
    pub(crate) fn settle(
        &mut self,
        keyframe: bool,
        result: Result<Option<VideoFrame>, Error>,
    ) -> Result<Option<VideoFrame>, Error> {
        match result {
            Ok(picture) if self.needs_keyframe && !keyframe => Ok(self.show_while_waiting(picture)),
            Ok(picture) => {
                if picture.is_some() {
                    self.decoded += 1;
                }
                if keyframe {
                    self.needs_keyframe = false;
                    self.has_reference = true;
                    self.concealing = 0;
                }
                Ok(picture)
            }
            Err(e) => Err(self.fail(e, true)),
        }
    }
}

/// An encoder for any [`VideoCodec`].
#[derive(Debug)]
pub enum VideoEncoder {
    /// openh264 (boxed: its wrapper holds a large parameter struct inline).
    H264(Box<H264Encoder>),
    /// libvpx VP8.
    Vp8(Vp8Encoder),
}

impl VideoEncoder {
    /// An encoder for `codec`; the resolution is taken from the first frame.
    ///
    /// # Errors
    /// [`Error::Encoder`] for settings out of range.
    pub fn new(codec: VideoCodec, config: EncoderConfig) -> Result<Self, Error> {
        Ok(match codec {
            VideoCodec::H264 => VideoEncoder::H264(Box::new(H264Encoder::new(config)?)),
            VideoCodec::Vp8 => VideoEncoder::Vp8(Vp8Encoder::new(config)?),
        })
    }

    /// Which codec this is.
    #[must_use]
    pub fn codec(&self) -> VideoCodec {
        match self {
            VideoEncoder::H264(_) => VideoCodec::H264,
            VideoEncoder::Vp8(_) => VideoCodec::Vp8,
        }
    }

    /// Current settings.
    #[must_use]
    pub fn config(&self) -> EncoderConfig {
        match self {
            VideoEncoder::H264(e) => e.config(),
            VideoEncoder::Vp8(e) => e.config(),
        }
    }

    /// Frames dropped by rate control so far.
    #[must_use]
    pub fn skipped_frames(&self) -> u64 {
        match self {
            VideoEncoder::H264(e) => e.skipped_frames(),
            VideoEncoder::Vp8(e) => e.skipped_frames(),
        }
    }

    /// Makes the next encoded frame a keyframe (answer to PLI/FIR).
    pub fn request_keyframe(&mut self) {
        match self {
            VideoEncoder::H264(e) => e.request_keyframe(),
            VideoEncoder::Vp8(e) => e.request_keyframe(),
        }
    }

    /// Changes the target bitrate, effective from the next frame, without a keyframe.
    ///
    /// # Errors
    /// [`Error::Encoder`] for a value out of range or one the codec rejects.
    pub fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), Error> {
        match self {
            VideoEncoder::H264(e) => e.set_bitrate(bitrate_bps),
            VideoEncoder::Vp8(e) => e.set_bitrate(bitrate_bps),
        }
    }

    /// Changes the nominal frame rate, without a keyframe.
    ///
    /// # Errors
    /// [`Error::Encoder`] for a rate out of range or one the codec rejects.
    pub fn set_fps(&mut self, fps: f32) -> Result<(), Error> {
        match self {
            VideoEncoder::H264(e) => e.set_fps(fps),
            VideoEncoder::Vp8(e) => e.set_fps(fps),
        }
    }

    /// Encodes one frame; `None` when rate control skipped it.
    ///
    /// # Errors
    /// [`Error::Encoder`] if the codec fails.
    pub fn encode(&mut self, frame: &VideoFrame) -> Result<Option<EncodedFrame>, Error> {
        match self {
            VideoEncoder::H264(e) => e.encode(frame),
            VideoEncoder::Vp8(e) => e.encode(frame),
        }
    }
}

/// A decoder for any [`VideoCodec`].
#[derive(Debug)]
pub enum VideoDecoder {
    /// openh264.
    H264(H264Decoder),
    /// libvpx VP8.
    Vp8(Vp8Decoder),
}

impl VideoDecoder {
    /// A decoder for `codec`. It needs a keyframe before it can show anything.
    ///
    /// # Errors
    /// [`Error::Decoder`] if the codec library fails to initialise.
    pub fn new(codec: VideoCodec) -> Result<Self, Error> {
        Ok(match codec {
            VideoCodec::H264 => VideoDecoder::H264(H264Decoder::new()?),
            VideoCodec::Vp8 => VideoDecoder::Vp8(Vp8Decoder::new()?),
        })
    }

    /// Which codec this is.
    #[must_use]
    pub fn codec(&self) -> VideoCodec {
        match self {
            VideoDecoder::H264(_) => VideoCodec::H264,
            VideoDecoder::Vp8(_) => VideoCodec::Vp8,
        }
    }

    /// True until a keyframe has been decoded, and again after a decode error or reported
    /// loss: the engine should send PLI.
    #[must_use]
    pub fn needs_keyframe(&self) -> bool {
        match self {
            VideoDecoder::H264(d) => d.needs_keyframe(),
            VideoDecoder::Vp8(d) => d.needs_keyframe(),
        }
    }

    /// Tells the decoder that data was lost: it asks for the next keyframe, concealing the loss
    /// until then (H.264) or showing nothing (VP8).
    pub fn report_loss(&mut self) {
        match self {
            VideoDecoder::H264(d) => d.report_loss(),
            VideoDecoder::Vp8(d) => d.report_loss(),
        }
    }

    /// Pictures decoded so far.
    #[must_use]
    pub fn decoded_frames(&self) -> u64 {
        match self {
            VideoDecoder::H264(d) => d.decoded_frames(),
            VideoDecoder::Vp8(d) => d.decoded_frames(),
        }
    }

    /// Of those, pictures concealed: decoded on a lost or broken reference while waiting for
    /// a keyframe (H.264 only; VP8 shows nothing while it waits).
    #[must_use]
    pub fn concealed_frames(&self) -> u64 {
        match self {
            VideoDecoder::H264(d) => d.concealed_frames(),
            VideoDecoder::Vp8(_) => 0,
        }
    }

    /// Decodes one frame (an access unit for H.264); `Ok(None)` when there is nothing to show.
    ///
    /// # Errors
    /// [`Error::Decoder`] for data the codec cannot decode; it then waits for a keyframe.
    pub fn decode(&mut self, data: &[u8]) -> Result<Option<VideoFrame>, Error> {
        match self {
            VideoDecoder::H264(d) => d.decode(data),
            VideoDecoder::Vp8(d) => d.decode(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_codecs_case_insensitively() {
        assert_eq!(VideoCodec::from_name("video/H264"), Some(VideoCodec::H264));
        assert_eq!(VideoCodec::from_name("h264"), Some(VideoCodec::H264));
        assert_eq!(VideoCodec::from_name("video/vp8"), Some(VideoCodec::Vp8));
        assert_eq!(VideoCodec::from_name("VP8"), Some(VideoCodec::Vp8));
        assert_eq!(VideoCodec::from_name("VP9"), None);
        assert_eq!(VideoCodec::from_name(""), None);
        assert_eq!(VideoCodec::from_name("video/"), None);
    }

    #[test]
    fn config_limits_are_explicit() {
        assert!(EncoderConfig::default().validate().is_ok());
        for bad in [
            EncoderConfig {
                bitrate_bps: 9_999,
                ..Default::default()
            },
            EncoderConfig {
                bitrate_bps: 50_000_001,
                ..Default::default()
            },
            EncoderConfig {
                fps: 0.5,
                ..Default::default()
            },
            EncoderConfig {
                fps: f32::NAN,
                ..Default::default()
            },
        ] {
            assert!(matches!(bad.validate(), Err(Error::Encoder(_))), "{bad:?}");
        }
    }
}
