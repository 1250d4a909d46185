//! What the app remembers between runs: the last room, where the signal server comes from,
//! the devices, the video size and the ICE servers. Stored as JSON in the platform's config
//! directory (`~/.config/duet/settings.json` on Linux), or in `$DUET_CONFIG_DIR`.

use std::io;
use std::path::{Path, PathBuf};

use call::{AudioChoice, IceServer, SpeakerChoice, VideoChoice};
use serde::{Deserialize, Serialize};

use crate::devices::CameraKey;

/// The settings file's name inside the config directory.
pub const FILE_NAME: &str = "settings.json";

/// Environment variable that overrides the config directory (tests, portable installs).
pub const CONFIG_DIR_ENV: &str = "DUET_CONFIG_DIR";

/// Video sizes offered on the start screen.
pub const RESOLUTIONS: &[(u32, u32)] = &[(320, 240), (640, 480), (960, 540), (1280, 720)];

/// Where the signal server comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerMode {
    /// Run one inside the app, reachable from the local network.
    Host,
    /// Use a server elsewhere.
    Connect,
}

/// One STUN or TURN server as typed on the start screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct IceServerSetting {
    /// `stun:host:port` or `turn:host:port?transport=udp`.
    pub url: String,
    /// TURN user name.
    pub username: String,
    /// TURN password (stored in plain text in the settings file).
    pub credential: String,
}

/// Everything the start screen remembers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The last room joined (or typed).
    pub room: String,
    /// Host a signal server, or connect to one.
    pub server_mode: ServerMode,
    /// The server for [`ServerMode::Connect`] (`ws://` or `wss://`).
    pub server_url: String,
    /// Video source, stored in `duet call --video` syntax (`test`, `camera:N`, `none`); an
    /// unreadable value reads as the test pattern.
    #[serde(deserialize_with = "lenient::video")]
    pub video: VideoChoice,
    /// The camera `video` names, by name and path: on the next start `camera:N` is moved to
    /// wherever that camera is listed then ([`crate::devices::resolve_camera`]).
    pub camera: CameraKey,
    /// Audio source, stored in `duet call --audio` syntax (`mic`, `mic:NAME`, `tone`,
    /// `none`); an unreadable value reads as the default microphone.
    #[serde(deserialize_with = "lenient::audio")]
    pub audio: AudioChoice,
    /// Audio output, stored in `duet call --speaker` syntax (`default`, `device:NAME`,
    /// `null`); an unreadable value reads as the default speaker.
    #[serde(deserialize_with = "lenient::speaker")]
    pub speaker: SpeakerChoice,
    /// Capture and send width.
    pub width: u32,
    /// Capture and send height.
    pub height: u32,
    /// STUN/TURN servers besides the ones the signal server hands out.
    pub ice_servers: Vec<IceServerSetting>,
    /// Echo cancellation, noise suppression and gain control on the microphone.
    pub audio_processing: bool,
}

/// Device choices that no longer parse (written by a future version, edited by hand) fall
/// back one field at a time instead of discarding the whole file.
mod lenient {
    use call::{AudioChoice, SpeakerChoice, VideoChoice};
    use serde::{Deserialize, Deserializer};

    fn parse_or<'de, D: Deserializer<'de>, T: std::str::FromStr>(
        deserializer: D,
        fallback: T,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(text.parse().unwrap_or_else(|_| {
            tracing::info!(setting = %text, "unreadable device setting; using the fallback");
            fallback
        }))
    }

    pub fn video<'de, D: Deserializer<'de>>(d: D) -> Result<VideoChoice, D::Error> {
        parse_or(d, VideoChoice::TestPattern)
    }

    pub fn audio<'de, D: Deserializer<'de>>(d: D) -> Result<AudioChoice, D::Error> {
        parse_or(d, AudioChoice::Microphone(None))
    }

    pub fn speaker<'de, D: Deserializer<'de>>(d: D) -> Result<SpeakerChoice, D::Error> {
        parse_or(d, SpeakerChoice::Device(None))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            room: String::new(),
            server_mode: ServerMode::Host,
            server_url: "ws://127.0.0.1:8080/".to_owned(),
            video: VideoChoice::Camera(0),
            camera: CameraKey::default(),
            audio: AudioChoice::Microphone(None),
            speaker: SpeakerChoice::Device(None),
            width: 640,
            height: 480,
            ice_servers: call::config::default_ice_servers()
                .into_iter()
                .flat_map(|s| {
                    s.urls.into_iter().map(move |url| IceServerSetting {
                        url,
                        username: s.username.clone(),
                        credential: s.credential.clone(),
                    })
                })
                .collect(),
            audio_processing: true,
        }
    }
}

impl Settings {
    /// The ICE servers with a URL, one entry each.
    pub fn ice_server_list(&self) -> Vec<IceServer> {
        self.ice_servers
            .iter()
            .filter(|s| !s.url.trim().is_empty())
            .map(|s| IceServer {
                urls: vec![s.url.trim().to_owned()],
                username: s.username.clone(),
                credential: s.credential.clone(),
            })
            .collect()
    }

    /// Reads `dir/settings.json`. A missing file gives the defaults; an unreadable one gives
    /// the defaults and the reason (for a banner), and is left alone until the next save.
    pub fn load(dir: &Path) -> (Self, Option<String>) {
        let path = dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(settings) => (settings, None),
                Err(e) => (
                    Self::default(),
                    Some(format!(
                        "{} is not valid ({e}); using the defaults",
                        path.display()
                    )),
                ),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => (Self::default(), None),
            Err(e) => (
                Self::default(),
                Some(format!("cannot read {}: {e}", path.display())),
            ),
        }
    }

    /// Writes `dir/settings.json` (creating `dir`), atomically: a crash never leaves half a
    /// file. Readable by the owner only (it may hold a TURN password).
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp)?;
            io::Write::write_all(&mut file, &json)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(FILE_NAME))
    }
}

/// Where settings live: `$DUET_CONFIG_DIR` if set, else the platform's config directory
/// (`$XDG_CONFIG_HOME/duet`, `~/Library/Application Support/duet`, `%APPDATA%\duet\config`).
pub fn default_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "duet").map(|d| d.config_dir().to_path_buf())
}

/// `WxH` for people.
pub fn resolution_label((width, height): (u32, u32)) -> String {
    format!("{width}×{height}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = Settings {
            room: "team".into(),
            server_mode: ServerMode::Connect,
            server_url: "wss://x.example/".into(),
            video: VideoChoice::Camera(3),
            camera: CameraKey {
                name: "USB Camera".into(),
                path: "Video4Linux Device @ /dev/video3".into(),
            },
            ..Settings::default()
        };
        settings.ice_servers.push(IceServerSetting {
            url: "turn:t.example:3478".into(),
            username: "u".into(),
            credential: "p".into(),
        });
        settings.save(dir.path()).expect("save");
        let (loaded, warning) = Settings::load(dir.path());
        assert_eq!(warning, None);
        assert_eq!(loaded, settings);
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).expect("read");
        assert!(text.contains(r#""video": "camera:3""#), "{text}");
        assert!(text.contains(r#""name": "USB Camera""#), "{text}");
        // The default has no third-party server; the one added here is kept.
        assert_eq!(loaded.ice_server_list().len(), 1);
        assert!(loaded.audio_processing, "on unless turned off");
    }

    #[test]
    fn missing_and_broken_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Settings::load(dir.path()), (Settings::default(), None));
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").expect("write");
        let (settings, warning) = Settings::load(dir.path());
        assert_eq!(settings, Settings::default());
        assert!(warning.is_some());
        // Unknown and missing fields are tolerated.
        std::fs::write(dir.path().join(FILE_NAME), br#"{"room":"r","future":1}"#).expect("w");
        let (settings, warning) = Settings::load(dir.path());
        assert_eq!(warning, None);
        assert_eq!(settings.room, "r");
        assert_eq!(settings.width, 640);
        // A device choice that does not parse falls back alone; the rest is kept.
        std::fs::write(
            dir.path().join(FILE_NAME),
            br#"{"room":"r","video":"webcam","audio":"mic:USB","speaker":"device:HDMI"}"#,
        )
        .expect("w");
        let (settings, warning) = Settings::load(dir.path());
        assert_eq!(warning, None);
        assert_eq!(settings.video, VideoChoice::TestPattern);
        assert_eq!(settings.audio, AudioChoice::Microphone(Some("USB".into())));
        assert_eq!(settings.speaker, SpeakerChoice::Device(Some("HDMI".into())));
    }
}
