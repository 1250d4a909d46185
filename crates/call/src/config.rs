//! What a call is made of: where the signal server is, which room, which devices, which ICE
//! servers. Plain data, parsed from flags or the app's settings.

use std::fmt;
use std::str::FromStr;

/// Where video comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoChoice {
    /// The synthetic test pattern (carries a frame counter and timestamp).
    TestPattern,
    /// A camera, by index in [`media::list_cameras`].
    Camera(u32),
    /// A screen (whole monitor) by index in [`media::list_screens`]: sent at its own size up
    /// to 1080p, at a low frame rate (see `media_io::video_send::SCREEN_FPS`).
    Screen(u32),
    /// No video is sent (video from the other side is still received).
    None,
}

impl FromStr for VideoChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "test" => Ok(Self::TestPattern),
            "none" => Ok(Self::None),
            "camera" => Ok(Self::Camera(0)),
            "screen" => Ok(Self::Screen(0)),
            _ => {
                if let Some(Ok(i)) = s.strip_prefix("camera:").map(str::parse) {
                    return Ok(Self::Camera(i));
                }
                if let Some(Ok(i)) = s.strip_prefix("screen:").map(str::parse) {
                    return Ok(Self::Screen(i));
                }
                Err(format!(
                    "unknown video source {s:?}: use test, camera, camera:N, screen, screen:N or none"
                ))
            }
        }
    }
}

impl fmt::Display for VideoChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TestPattern => f.write_str("test"),
            Self::Camera(i) => write!(f, "camera:{i}"),
            Self::Screen(i) => write!(f, "screen:{i}"),
            Self::None => f.write_str("none"),
        }
    }
}

/// Where sound comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioChoice {
    /// A sine tone at this frequency.
    Tone(f32),
    /// A tone warbled ±10 % around this frequency (what echo tests send: cancellers leave a
    /// steady sine alone).
    Warble(f32),
    /// Timed bursts of a tone at this frequency, one at the start of every wall-clock second
    /// (the receiver measures mouth-to-ear latency from them).
    Bursts(f32),
    /// A microphone by device name; `None` = the default input.
    Microphone(Option<String>),
    /// Nothing is sent.
    None,
}

impl FromStr for AudioChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tone" => Ok(Self::Tone(440.0)),
            "mic" => Ok(Self::Microphone(None)),
            "none" => Ok(Self::None),
            _ => {
                let frequency = |hz: &str| {
                    hz.parse::<f32>()
                        .ok()
                        .filter(|hz| (20.0..=20_000.0).contains(hz))
                        .ok_or_else(|| format!("bad tone frequency {hz:?} (20–20000 Hz)"))
                };
                if let Some(hz) = s.strip_prefix("tone:") {
                    return frequency(hz).map(Self::Tone);
                }
                if let Some(hz) = s.strip_prefix("warble:") {
                    return frequency(hz).map(Self::Warble);
                }
                if let Some(hz) = s.strip_prefix("bursts:") {
                    return frequency(hz).map(Self::Bursts);
                }
                if let Some(name) = s.strip_prefix("mic:") {
                    return Ok(Self::Microphone(Some(name.to_owned())));
                }
                Err(format!(
                    "unknown audio source {s:?}: use tone, tone:HZ, warble:HZ, bursts:HZ, mic, mic:NAME or none"
                ))
            }
        }
    }
}

impl fmt::Display for AudioChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tone(hz) => write!(f, "tone:{hz}"),
            Self::Warble(hz) => write!(f, "warble:{hz}"),
            Self::Bursts(hz) => write!(f, "bursts:{hz}"),
            Self::Microphone(None) => f.write_str("mic"),
            Self::Microphone(Some(name)) => write!(f, "mic:{name}"),
            Self::None => f.write_str("none"),
        }
    }
}

/// Where received sound goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpeakerChoice {
    /// A speaker by device name; `None` = the default output. Falls back to `Null` (with a
    /// warning event) when no device works.
    Device(Option<String>),
    /// Decoded and counted, not played.
    Null,
}

impl FromStr for SpeakerChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "default" => Ok(Self::Device(None)),
            "null" | "none" => Ok(Self::Null),
            _ => s
                .strip_prefix("device:")
                .map(|n| Self::Device(Some(n.to_owned())))
                .ok_or_else(|| format!("unknown speaker {s:?}: use default, device:NAME or null")),
        }
    }
}

impl fmt::Display for SpeakerChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Device(None) => f.write_str("default"),
            Self::Device(Some(name)) => write!(f, "device:{name}"),
            Self::Null => f.write_str("null"),
        }
    }
}

/// The device choices travel as their `duet call` flag text (`camera:0`, `mic:NAME`,
/// `device:NAME`, ...): in the app's settings file and anywhere else they are stored.
macro_rules! serde_as_flag_text {
    ($($choice:ty),*) => {$(
        impl serde::Serialize for $choice {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $choice {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_as_flag_text!(VideoChoice, AudioChoice, SpeakerChoice);

/// A STUN or TURN server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IceServer {
    /// `stun:host:port` or `turn:host:port?transport=udp`.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default)]
    pub username: String,
    /// TURN password.
    #[serde(default)]
    pub credential: String,
}

/// The STUN/TURN servers configured locally by default: none. The signal server a call joins
/// hands out its own (STUN and TURN with fresh credentials, on `ready`), so no third party
/// learns who calls whom; settings and `--ice-server` add more, e.g. for a seed-protocol server
/// that offers none.
pub fn default_ice_servers() -> Vec<IceServer> {
    Vec::new()
}

/// Everything a call needs.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// `ws://host:port/` or `wss://...` of the signal server.
    pub signal_url: String,
    /// The room to join.
    pub room: String,
    /// Optional room token (for servers started with a room secret).
    pub token: Option<String>,
    /// Video source.
    pub video: VideoChoice,
    /// Audio source.
    pub audio: AudioChoice,
    /// Audio output.
    pub speaker: SpeakerChoice,
    /// Capture and send size.
    pub width: u32,
    /// Capture and send size.
    pub height: u32,
    /// Capture frame rate.
    pub fps: u32,
    /// Video bitrate.
    pub video_bitrate_bps: u32,
    /// Opus bitrate.
    pub audio_bitrate_bps: u32,
    /// STUN/TURN servers.
    pub ice_servers: Vec<IceServer>,
    /// Echo cancellation, noise suppression, gain control and a high-pass filter on the
    /// microphone (on by default; the far-end reference is exactly what the speaker plays).
    pub audio_processing: bool,
    /// Gather only 127.0.0.1 candidates and ignore non-loopback remote candidates (tests, and
    /// calls between two programs on one machine).
    pub loopback_only: bool,
    /// The video codecs offered and accepted, preferred first (default: H.264, then VP8).
    /// Never empty when valid; see [`parse_video_codecs`].
    pub video_codecs: Vec<media::VideoCodec>,
}

impl CallConfig {
    /// A config with sensible defaults for `room` on `signal_url`.
    pub fn new(signal_url: impl Into<String>, room: impl Into<String>) -> Self {
        Self {
            signal_url: signal_url.into(),
            room: room.into(),
            token: None,
            video: VideoChoice::TestPattern,
            audio: AudioChoice::Tone(440.0),
            speaker: SpeakerChoice::Device(None),
            width: 640,
            height: 480,
            fps: 30,
            video_bitrate_bps: 1_500_000,
            audio_bitrate_bps: 32_000,
            ice_servers: default_ice_servers(),
            audio_processing: true,
            loopback_only: false,
            video_codecs: media::VideoCodec::ALL.to_vec(),
        }
    }
}

/// Parses a codec list such as `h264,vp8` or `vp8` (case-insensitive, no repeats).
///
/// # Errors
/// A message naming the codec duet does not speak, a repeat, or an empty list.
pub fn parse_video_codecs(s: &str) -> Result<Vec<media::VideoCodec>, String> {
    let mut codecs = Vec::new();
    for name in s.split(',').map(str::trim) {
        let codec = media::VideoCodec::from_name(&name.replace(['.', '-'], ""))
            .ok_or_else(|| format!("unknown video codec {name:?} (duet speaks h264 and vp8)"))?;
        if codecs.contains(&codec) {
            return Err(format!("video codec {name:?} is listed twice"));
        }
        codecs.push(codec);
    }
    if codecs.is_empty() {
        return Err("no video codec given".into());
    }
    Ok(codecs)
}

/// Parses `WxH`.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("size {s:?} is not WIDTHxHEIGHT"))?;
    let w: u32 = w
        .trim()
        .parse()
        .map_err(|_| format!("bad width in {s:?}"))?;
    let h: u32 = h
        .trim()
        .parse()
        .map_err(|_| format!("bad height in {s:?}"))?;
    if !(16..=3840).contains(&w)
        || !(16..=2160).contains(&h)
        || !w.is_multiple_of(2)
        || !h.is_multiple_of(2)
    {
        return Err(format!(
            "size {s:?} must be even and between 16x16 and 3840x2160"
        ));
    }
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_codec_lists_parse_strictly() {
        use media::VideoCodec::{H264, Vp8};
        assert_eq!(parse_video_codecs("h264,vp8"), Ok(vec![H264, Vp8]));
        assert_eq!(parse_video_codecs("VP8"), Ok(vec![Vp8]));
        assert_eq!(parse_video_codecs("vp8, H.264"), Ok(vec![Vp8, H264]));
        for bad in ["", "vp9", "h264,h264", "vp8,", "av1,vp8"] {
            assert!(parse_video_codecs(bad).is_err(), "{bad:?}");
        }
        assert_eq!(CallConfig::new("ws://x", "r").video_codecs, vec![H264, Vp8]);
    }

    #[test]
    fn parses_choices() {
        assert_eq!("camera:2".parse(), Ok(VideoChoice::Camera(2)));
        assert_eq!("test".parse(), Ok(VideoChoice::TestPattern));
        assert_eq!("screen".parse(), Ok(VideoChoice::Screen(0)));
        assert_eq!("screen:1".parse(), Ok(VideoChoice::Screen(1)));
        assert!("cam".parse::<VideoChoice>().is_err());
        assert!("screen:x".parse::<VideoChoice>().is_err());
        assert_eq!("tone:1000".parse(), Ok(AudioChoice::Tone(1000.0)));
        assert!("tone:5".parse::<AudioChoice>().is_err());
        assert_eq!("null".parse(), Ok(SpeakerChoice::Null));
        assert_eq!(parse_size("1280x720"), Ok((1280, 720)));
        assert!(parse_size("1281x720").is_err());
        assert!(parse_size("big").is_err());
    }

    #[test]
    fn choices_round_trip_through_their_text_and_json() {
        let videos = [
            VideoChoice::TestPattern,
            VideoChoice::Camera(3),
            VideoChoice::Screen(1),
            VideoChoice::None,
        ];
        for v in videos {
            assert_eq!(v.to_string().parse(), Ok(v.clone()));
            let json = serde_json::to_string(&v).expect("json");
            assert_eq!(serde_json::from_str::<VideoChoice>(&json).ok(), Some(v));
        }
        let audios = [
            AudioChoice::Tone(523.5),
            AudioChoice::Warble(1000.0),
            AudioChoice::Bursts(880.0),
            AudioChoice::Microphone(None),
            AudioChoice::Microphone(Some("USB: mic:2".into())),
            AudioChoice::None,
        ];
        for a in audios {
            assert_eq!(a.to_string().parse(), Ok(a.clone()));
            let json = serde_json::to_string(&a).expect("json");
            assert_eq!(serde_json::from_str::<AudioChoice>(&json).ok(), Some(a));
        }
        let speakers = [
            SpeakerChoice::Device(None),
            SpeakerChoice::Device(Some("Built-in Audio Analog Stereo".into())),
            SpeakerChoice::Null,
        ];
        for sp in speakers {
            assert_eq!(sp.to_string().parse(), Ok(sp.clone()));
            let json = serde_json::to_string(&sp).expect("json");
            assert_eq!(serde_json::from_str::<SpeakerChoice>(&json).ok(), Some(sp));
        }
        let bad = serde_json::from_str::<VideoChoice>("\"webcam\"").expect_err("refused");
        assert!(bad.to_string().contains("unknown video source"), "{bad}");
    }
}
