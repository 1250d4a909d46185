//! The device pickers' choices: real cameras, microphones and speakers (listed on a background
//! thread, since asking the sound server or the camera driver can take seconds) plus the
//! synthetic sources.

use std::sync::mpsc;

/// One entry of a picker: the value stored in the settings (`duet call` flag syntax) and what
/// people see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// `test`, `camera:0`, `mic:NAME`, `device:NAME`, ...
    pub key: String,
    /// What the picker shows.
    pub label: String,
}

impl Choice {
    fn new(key: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            key: key.into(),
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
    pub fn video_choices(&self) -> Vec<Choice> {
        let mut list: Vec<Choice> = self
            .cameras
            .iter()
            .map(|(index, name)| Choice::new(format!("camera:{index}"), name.clone()))
            .collect();
        list.push(Choice::new("test", "Test pattern"));
        list.push(Choice::new("none", "No video"));
        list
    }

    /// Microphone picker: the system default, the microphones, a tone and none.
    pub fn audio_choices(&self) -> Vec<Choice> {
        let mut list = vec![Choice::new("mic", "Default microphone")];
        list.extend(
            self.microphones
                .iter()
                .map(|name| Choice::new(format!("mic:{name}"), name.clone())),
        );
        list.push(Choice::new("tone", "Tone (440 Hz)"));
        list.push(Choice::new("none", "None (muted)"));
        list
    }

    /// Speaker picker: the system default, the speakers and none.
    pub fn speaker_choices(&self) -> Vec<Choice> {
        let mut list = vec![Choice::new("default", "Default speaker")];
        list.extend(
            self.speakers
                .iter()
                .map(|name| Choice::new(format!("device:{name}"), name.clone())),
        );
        list.push(Choice::new("null", "None (silent)"));
        list
    }
}

/// The label for `key` in `choices`, or a readable fallback for a device that is gone.
pub fn label_for(choices: &[Choice], key: &str) -> String {
    choices
        .iter()
        .find(|c| c.key == key)
        .map(|c| c.label.clone())
        .unwrap_or_else(|| {
            let name = key.split_once(':').map_or(key, |(_, n)| n);
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
