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

/// The devices found on this machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceLists {
    /// `(index, name)` of each camera.
    pub cameras: Vec<(u32, String)>,
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
            Ok(list) => list.into_iter().map(|c| (c.index, c.name)).collect(),
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
            .map(|(index, name)| Choice::new(VideoChoice::Camera(*index), name.clone()))
            .collect();
        list.push(Choice::new(VideoChoice::TestPattern, "Test pattern"));
        list.push(Choice::new(VideoChoice::None, "No video"));
        list
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

    #[test]
    fn pickers_select_typed_values_and_name_a_missing_device() {
        let lists = DeviceLists {
            cameras: vec![(0, "Integrated Camera".into())],
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
