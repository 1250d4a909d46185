//! Helpers shared by the media integration tests: synthetic timing, signal analysis and the
//! child-process trick used to run a test under a different environment.
#![allow(dead_code)]

pub mod pulse;

use media::{
    EncodedFrame, EncoderConfig, H264Encoder, TestPattern, VideoCodec, VideoEncoder, VideoFrame,
};

/// A fixed, plausible wall-clock origin so stamps are deterministic (2025-12-06).
pub const T0_US: u64 = 1_765_000_000_000_000;

/// Capture time of frame `n` at `fps`, starting at [`T0_US`].
pub fn frame_time_us(n: u32, fps: u32) -> u64 {
    T0_US + u64::from(n) * 1_000_000 / u64::from(fps)
}

/// Renders frame `n` of `pattern` with its synthetic capture time.
pub fn pattern_frame(pattern: &TestPattern, n: u32) -> VideoFrame {
    pattern
        .render(n, frame_time_us(n, pattern.fps))
        .expect("test pattern renders")
}

/// An encoder at `bitrate_bps` and 30 fps.
pub fn encoder(bitrate_bps: u32) -> H264Encoder {
    H264Encoder::new(EncoderConfig {
        bitrate_bps,
        fps: 30.0,
        keyframe_interval: 0,
    })
    .expect("encoder config is valid")
}

/// `frames` frames of the 640×480 pattern encoded in `codec` at 1.5 Mbit/s, a keyframe
/// requested at frame `keyframe_at`; each with its frame number (rate control may skip some).
pub fn encode_stream(codec: VideoCodec, frames: u32, keyframe_at: u32) -> Vec<(u32, EncodedFrame)> {
    let pattern = TestPattern::new(640, 480, 30);
    let mut enc = VideoEncoder::new(
        codec,
        EncoderConfig {
            bitrate_bps: 1_500_000,
            ..EncoderConfig::default()
        },
    )
    .expect("encoder config is valid");
    let mut out = Vec::new();
    for n in 0..frames {
        if n == keyframe_at {
            enc.request_keyframe();
        }
        if let Some(e) = enc.encode(&pattern_frame(&pattern, n)).expect("encode") {
            out.push((n, e));
        }
    }
    out
}

/// The frequency with the most energy between 50 Hz and 4 kHz (see
/// [`media::dominant_frequency_hz`]); 0 for silence.
pub fn dominant_frequency(samples: &[f32]) -> f64 {
    media::dominant_frequency_hz(samples, 48_000.0).unwrap_or(0.0)
}

/// RMS of a slice.
pub fn rms(samples: &[f32]) -> f32 {
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}

/// Longest run of consecutive silent `window`-sample windows (RMS below `threshold`),
/// in samples.
pub fn longest_silence(samples: &[f32], window: usize, threshold: f32) -> usize {
    let (mut longest, mut run) = (0, 0);
    for chunk in samples.chunks(window) {
        if rms(chunk) < threshold {
            run += chunk.len();
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// Runs test `module::name` (pass `module_path!()`) of the current test binary in a child process with `env` set and `remove`
/// unset, plus `DUET_TEST_CHILD=1`; returns whether it passed and its combined output.
pub fn run_in_child(
    module: &str,
    name: &str,
    env: &[(&str, &str)],
    remove: &[&str],
) -> (bool, String) {
    // Test names in the one test binary are `module::function`, without the crate name.
    let module = module.split_once("::").map_or("", |(_, m)| m);
    let test = format!("{module}::{name}");
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = std::process::Command::new(exe);
    cmd.args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env("DUET_TEST_CHILD", "1");
    for key in remove {
        cmd.env_remove(key);
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    let output = cmd.output().expect("spawn the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// True inside a child started by [`run_in_child`].
pub fn is_child() -> bool {
    std::env::var_os("DUET_TEST_CHILD").is_some()
}

/// The synthetic room of the echo tests: 10 s of far-end speech (talker 1, all the time) heard
/// through a 40 ms / 100 ms-tail / −6 dB echo path, and near-end speech (talker 2) from 4 s to
/// 8 s only (double-talk).
pub struct EchoScenario {
    /// What the speaker plays (the render reference).
    pub far: Vec<f32>,
    /// The near-end talker alone.
    pub near: Vec<f32>,
    /// The echo alone, as the microphone hears it.
    pub echo: Vec<f32>,
    /// What the microphone hears: echo + near end.
    pub mic: Vec<f32>,
}

/// Sample range of `from_s..to_s` seconds at 48 kHz.
pub fn seconds(from_s: f64, to_s: f64) -> std::ops::Range<usize> {
    (from_s * 48_000.0) as usize..(to_s * 48_000.0) as usize
}

/// Builds the [`EchoScenario`].
pub fn echo_scenario() -> EchoScenario {
    use media::echo_sim::{EchoPath, speech_like};
    let len = 10 * 48_000;
    let far = speech_like(1, len, 48_000);
    let mut near = speech_like(2, len, 48_000);
    let talking = seconds(4.0, 8.0);
    for (i, s) in near.iter_mut().enumerate() {
        if !talking.contains(&i) {
            *s = 0.0;
        }
    }
    let echo = EchoPath::new(40, 100, -6.0, 48_000).apply(&far);
    let mic = echo.iter().zip(&near).map(|(e, n)| e + n).collect();
    EchoScenario {
        far,
        near,
        echo,
        mic,
    }
}

/// Runs `mic` through `processor` in 10 ms chunks, feeding the matching chunk of `far` as the
/// render reference first; returns the processed capture.
pub fn run_processor(processor: &mut media::AudioProcessor, far: &[f32], mic: &[f32]) -> Vec<f32> {
    let mut out = mic.to_vec();
    for (f, o) in far
        .chunks_exact(media::PROCESSING_CHUNK_SAMPLES)
        .zip(out.chunks_exact_mut(media::PROCESSING_CHUNK_SAMPLES))
    {
        processor.process_render(f).expect("render chunk");
        processor.process_capture(o).expect("capture chunk");
    }
    out
}
