//! Finding (or starting) the PulseAudio server of `scripts/pulse-null-sink.sh` and running a
//! test against it, plus private null sinks a test can load and unload without disturbing
//! other tests that share the server.

use std::path::{Path, PathBuf};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Printed by a test body that ran against a server, checked by the parent.
pub const RAN: &str = "PULSE-TEST-RAN";

/// True under `DUET_REQUIRE_PULSE=1`: no server is a failure, not a skip.
pub fn required() -> bool {
    std::env::var("DUET_REQUIRE_PULSE").is_ok_and(|v| v == "1")
}

/// True when the environment points at a live server socket.
pub fn env_has_pulse() -> bool {
    let socket_in = |var: &str, suffix: &str| {
        std::env::var_os(var).is_some_and(|v| PathBuf::from(v).join(suffix).exists())
    };
    std::env::var("PULSE_SERVER")
        .ok()
        .and_then(|s| s.strip_prefix("unix:").map(|p| Path::new(p).exists()))
        .unwrap_or(false)
        || socket_in("PULSE_RUNTIME_PATH", "native")
        || socket_in("XDG_RUNTIME_DIR", "pulse/native")
}

/// Runs scripts/pulse-null-sink.sh and returns the runtime dir it reports.
fn start_test_server() -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pulse-null-sink.sh");
    let has_binary = std::process::Command::new("sh")
        .args(["-c", "command -v pulseaudio"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_binary && !required() {
        return Err("pulseaudio is not installed (run scripts/pulse-null-sink.sh)".into());
    }
    let output = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("export XDG_RUNTIME_DIR="))
        .map(|v| v.trim_matches('\'').to_owned())
        .ok_or_else(|| format!("no XDG_RUNTIME_DIR in: {stdout}"))
}

/// Runs `body` against a PulseAudio server: the environment's, or the test server started
/// here, in which case test `module::name` (pass `module_path!()`) is re-run in a child process
/// pointed at it. Without any server the test is skipped loudly, unless [`required`].
/// `body` must print [`RAN`] when it has run.
pub fn with_pulse(module: &str, name: &str, body: impl FnOnce()) {
    // One sound-server test at a time: they measure real-time behaviour, and the server is one
    // more process on a small machine.
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if env_has_pulse() {
        body();
        return;
    }
    if super::is_child() {
        panic!("child started without a reachable PulseAudio server");
    }
    match start_test_server() {
        Ok(runtime) => {
            let (ok, output) = super::run_in_child(
                module,
                name,
                &[("XDG_RUNTIME_DIR", &runtime)],
                &["PULSE_SERVER", "PULSE_RUNTIME_PATH"],
            );
            eprintln!("{output}");
            assert!(ok, "{name} failed against the test server");
            assert!(output.contains(RAN), "child did not run {name}");
        }
        Err(why) if required() => panic!("DUET_REQUIRE_PULSE=1 but no PulseAudio: {why}"),
        Err(why) => {
            eprintln!("\n**************************************************************");
            eprintln!("SKIPPED: {name}: no PulseAudio server ({why}).");
            eprintln!("Start one with scripts/pulse-null-sink.sh; CI sets DUET_REQUIRE_PULSE=1.");
            eprintln!("**************************************************************\n");
        }
    }
}

/// Runs `pactl` against the server of the environment.
pub fn pactl(args: &[&str]) -> Result<String, String> {
    let output = std::process::Command::new("pactl")
        .args(args)
        .output()
        .map_err(|e| format!("pactl: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "pactl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A null sink only this test uses (its own name and description), unloaded on drop, so tests
/// sharing the server do not hear each other.
pub struct PrivateSink {
    /// The sink's description: the name `Speaker::open` finds it by.
    pub description: String,
    /// The sink's PulseAudio name (what `pactl` takes).
    pub name: String,
    module: Option<String>,
}

impl PrivateSink {
    /// Loads `module-null-sink` named after `tag` and this process, with extra `args`
    /// (e.g. `rate=48000 channels=1`).
    pub fn load(tag: &str, args: &[&str]) -> Self {
        let id = format!("{tag}{}", std::process::id());
        let description = format!("Duet{id}");
        let sink_name = format!("duet_{}", id.to_lowercase());
        let name = format!("sink_name={sink_name}");
        let props = format!("sink_properties=device.description={description}");
        let mut full = vec!["load-module", "module-null-sink", &name, &props];
        full.extend_from_slice(args);
        let module = pactl(&full).expect("load a private null sink");
        Self {
            description,
            name: sink_name,
            module: Some(module),
        }
    }

    /// The name of the sink's monitor source (what `Microphone` opens).
    pub fn monitor(&self) -> String {
        format!("Monitor of {}", self.description)
    }

    /// Unloads the sink now: its streams lose their device (the "unplug").
    pub fn unload(&mut self) -> Result<(), String> {
        match self.module.take() {
            Some(module) => pactl(&["unload-module", &module]).map(|_| ()),
            None => Ok(()),
        }
    }
}

impl Drop for PrivateSink {
    fn drop(&mut self) {
        let _ = self.unload();
    }
}
