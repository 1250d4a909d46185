//! The device pickers' choices: real cameras, microphones and speakers (listed on a background
//! thread, since asking the sound server or the camera driver can take seconds) plus the
//! synthetic sources.

use std::sync::mpsc;

use call::{AudioChoice, SpeakerChoice, VideoChoice};

/// One entry of a picker: the value it selects and what people see.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice<T> {
    /// The camera, microphone, speaker (or size) this entry selects.
    pub value: T,
    /// What the picker shows.
    pub label: String,
}

impl<T> Choice<T> {
    /// An entry showing `label` for `value`.
    pub fn new(value: T, label: impl Into<String>) -> Self {
        Self {
            value,
            label: label.into(),
        }
    }
}

/// One camera found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraEntry {
    /// What it is opened by now; it changes when cameras come and go.
    pub index: u32,
    /// Its name (the driver's card name on Linux).
    pub name: String,
    /// Where the platform has it (on Linux the description holds `/dev/videoN`).
    pub path: String,
}

impl CameraEntry {
    /// What the settings remember of it.
    pub fn key(&self) -> CameraKey {
        CameraKey {
            name: self.name.clone(),
            path: self.path.clone(),
        }
    }
}

/// Which camera was chosen, by name and path rather than index: indices move when a camera
/// is plugged in or out, the name does not (and the path rarely).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CameraKey {
    /// [`CameraEntry::name`].
    pub name: String,
    /// [`CameraEntry::path`].
    pub path: String,
}

impl CameraKey {
    /// Nothing remembered (settings from before the key existed, or no camera chosen yet).
    pub fn is_empty(&self) -> bool {
        self.name.is_empty() && self.path.is_empty()
    }
}

/// Where the camera remembered as `key` (last opened at `last_index`) is in `cameras` now: the
/// one with the same name and path, else the same name (of several, the nearest index), else
/// none.
pub fn resolve_camera(key: &CameraKey, last_index: u32, cameras: &[CameraEntry]) -> Option<u32> {
    if let Some(same) = cameras
        .iter()
        .find(|c| c.name == key.name && c.path == key.path)
    {
        return Some(same.index);
    }
    cameras
        .iter()
        .filter(|c| c.name == key.name)
        .min_by_key(|c| c.index.abs_diff(last_index))
        .map(|c| c.index)
}

/// The index `camera:last_index` should move to after a scan, if it should move: to where
/// the camera remembered as `key` is listed now, or, when it is not there, to the first camera
/// listed. Settings without a key (written before it was kept) keep their index.
pub fn camera_after_scan(key: &CameraKey, last_index: u32, cameras: &[CameraEntry]) -> Option<u32> {
    if key.is_empty() {
        return None;
    }
    resolve_camera(key, last_index, cameras)
        .or_else(|| cameras.first().map(|c| c.index))
        .filter(|&now| now != last_index)
}

/// The devices found on this machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceLists {
    /// Each camera.
    pub cameras: Vec<CameraEntry>,
    /// Microphone names.
    pub microphones: Vec<String>,
    /// Speaker names.
    pub speakers: Vec<String>,
    /// Whether the lists come from a scan (false: not scanned yet, or scanning disabled).
    pub scanned: bool,
}

impl DeviceLists {
    /// Asks the system (slow: call off the UI thread).
    pub fn scan() -> Self {
        let cameras = match media::list_cameras() {
            Ok(list) => list
                .into_iter()
                .map(|c| CameraEntry {
                    index: c.index,
                    name: c.name,
                    path: c.description,
                })
                .collect(),
            Err(e) => {
                tracing::info!(error = %e, "cannot list cameras");
                Vec::new()
            }
        };
        let real = |list: Vec<media::AudioDeviceInfo>| {
            list.into_iter()
                .filter(|d| d.kind == media::AudioDeviceKind::Device)
                .map(|d| d.name)
                .collect()
        };
        Self {
            cameras,
            microphones: real(media::list_audio_inputs()),
            speakers: real(media::list_audio_outputs()),
            scanned: true,
        }
    }

    /// Camera picker: the cameras, then the test pattern and "no video".
    pub fn video_choices(&self) -> Vec<Choice<VideoChoice>> {
        let mut list: Vec<_> = self
            .cameras
            .iter()
            .map(|c| Choice::new(VideoChoice::Camera(c.index), c.name.clone()))
            .collect();
        list.push(Choice::new(VideoChoice::TestPattern, "Test pattern"));
        list.push(Choice::new(VideoChoice::None, "No video"));
        list
    }

    /// The camera opened by `index` now.
    pub fn camera(&self, index: u32) -> Option<&CameraEntry> {
        self.cameras.iter().find(|c| c.index == index)
    }

    /// Microphone picker: the system default, the microphones, a tone and none.
    pub fn audio_choices(&self) -> Vec<Choice<AudioChoice>> {
        let mut list = vec![Choice::new(
            AudioChoice::Microphone(None),
            "Default microphone",
        )];
        list.extend(
            self.microphones
                .iter()
                .map(|name| Choice::new(AudioChoice::Microphone(Some(name.clone())), name.clone())),
        );
        list.push(Choice::new(AudioChoice::Tone(440.0), "Tone (440 Hz)"));
        list.push(Choice::new(AudioChoice::None, "None (muted)"));
        list
    }

    /// Speaker picker: the system default, the speakers and none.
    pub fn speaker_choices(&self) -> Vec<Choice<SpeakerChoice>> {
        let mut list = vec![Choice::new(SpeakerChoice::Device(None), "Default speaker")];
        list.extend(
            self.speakers
                .iter()
                .map(|name| Choice::new(SpeakerChoice::Device(Some(name.clone())), name.clone())),
        );
        list.push(Choice::new(SpeakerChoice::Null, "None (silent)"));
        list
    }
}

/// The label for `value` in `choices`, or a readable fallback for a device that is gone
/// (its name from the flag text, `mic:USB Mic` → "USB Mic (not found)").
pub fn label_for<T: PartialEq + std::fmt::Display>(choices: &[Choice<T>], value: &T) -> String {
    choices
        .iter()
        .find(|c| c.value == *value)
        .map(|c| c.label.clone())
        .unwrap_or_else(|| {
            let text = value.to_string();
            let name = text.split_once(':').map_or(text.as_str(), |(_, n)| n);
            format!("{name} (not found)")
        })
}

/// A scan running on its own thread.
#[derive(Debug)]
pub struct DeviceScan {
    rx: mpsc::Receiver<DeviceLists>,
}

impl DeviceScan {
    /// Starts a scan; `done` is called when it has finished (the UI's `request_repaint`).
    pub fn start(done: impl Fn() + Send + 'static) -> Option<Self> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("duet-devices".into())
            .spawn(move || {
                let _ = tx.send(DeviceLists::scan());
                done();
            })
            .map_err(|e| tracing::warn!(error = %e, "cannot start the device scan"))
            .ok()?;
        Some(Self { rx })
    }

    /// The result, once it is there (never blocks).
    pub fn poll(&self) -> Option<DeviceLists> {
        self.rx.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(index: u32, name: &str, path: &str) -> CameraEntry {
        CameraEntry {
            index,
            name: name.into(),
            path: path.into(),
        }
    }

    #[test]
    fn a_remembered_camera_is_found_by_name_and_path_when_indices_move() {
        let usb = camera(2, "USB Camera", "Video4Linux Device @ /dev/video2");
        let key = usb.key();
        // Plugged in alone after a restart: same name, new node and index.
        let moved = [
            camera(0, "Integrated Camera", "Video4Linux Device @ /dev/video0"),
            camera(4, "USB Camera", "Video4Linux Device @ /dev/video4"),
        ];
        assert_eq!(resolve_camera(&key, 2, &moved), Some(4));
        // Unchanged: the same entry.
        let same = [camera(0, "Integrated Camera", "x"), usb.clone()];
        assert_eq!(resolve_camera(&key, 2, &same), Some(2));
        // Two of the same model: the one with the same path, else the nearest index.
        let twins = [
            camera(1, "USB Camera", "Video4Linux Device @ /dev/video1"),
            camera(2, "USB Camera", "Video4Linux Device @ /dev/video2"),
        ];
        assert_eq!(resolve_camera(&key, 2, &twins), Some(2));
        let twins_moved = [
            camera(1, "USB Camera", "Video4Linux Device @ /dev/video1"),
            camera(5, "USB Camera", "Video4Linux Device @ /dev/video5"),
        ];
        assert_eq!(resolve_camera(&key, 4, &twins_moved), Some(5));
        // Unplugged: nothing, even though another camera now has its index.
        let gone = [camera(0, "Integrated Camera", "a"), camera(2, "Other", "b")];
        assert_eq!(resolve_camera(&key, 2, &gone), None);
        assert_eq!(resolve_camera(&key, 2, &[]), None);

        // What the app does with that after a scan.
        assert_eq!(camera_after_scan(&key, 2, &moved), Some(4));
        assert_eq!(camera_after_scan(&key, 2, &same), None, "stays");
        assert_eq!(
            camera_after_scan(&key, 2, &gone),
            Some(0),
            "gone: the first camera, not whatever now has index 2"
        );
        assert_eq!(camera_after_scan(&key, 2, &[]), None);
        let legacy = CameraKey::default();
        assert_eq!(camera_after_scan(&legacy, 2, &moved), None);
    }

    #[test]
    fn pickers_select_typed_values_and_name_a_missing_device() {
        let lists = DeviceLists {
            cameras: vec![camera(0, "Integrated Camera", "/dev/video0")],
            microphones: vec!["USB Mic".into()],
            speakers: vec![],
            scanned: true,
        };
        let video = lists.video_choices();
        assert_eq!(
            label_for(&video, &VideoChoice::Camera(0)),
            "Integrated Camera"
        );
        assert_eq!(label_for(&video, &VideoChoice::Camera(4)), "4 (not found)");
        let audio = lists.audio_choices();
        let usb = AudioChoice::Microphone(Some("USB Mic".into()));
        assert!(audio.iter().any(|c| c.value == usb));
        let gone = AudioChoice::Microphone(Some("Headset".into()));
        assert_eq!(label_for(&audio, &gone), "Headset (not found)");
        let speakers = lists.speaker_choices();
        assert_eq!(label_for(&speakers, &SpeakerChoice::Null), "None (silent)");
    }
}
