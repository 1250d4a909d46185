//! Synthetic audio: the [`Tone`], [`Warble`], [`Bursts`] and [`Silence`] sources, paced by the
//! clock, and the
//! [`NullSink`], which counts what it is given. They stand in where there is no sound card.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::frame::{FRAME_PERIOD, check_channels};
use super::{AudioFrame, AudioSink, AudioSource, CHANNELS_MAX, SAMPLE_RATE_HZ, SAMPLES_PER_FRAME};
use crate::capture::{Capture, FrameSender, spawn_named};
use crate::{Error, unix_time_us};

/// A sine wave (synthetic microphone).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tone {
    /// Frequency in Hz.
    pub freq_hz: f32,
    /// Peak amplitude, 0..=1.
    pub amplitude: f32,
    /// 1 or 2.
    pub channels: u8,
}

impl Tone {
    /// A mono tone at half amplitude.
    #[must_use]
    pub fn new(freq_hz: f32) -> Self {
        Self {
            freq_hz,
            amplitude: 0.5,
            channels: 1,
        }
    }

    /// Frame number `index` of the tone (phase-continuous across indices). Pure.
    #[must_use]
    pub fn frame(&self, index: u64, capture_time_us: u64) -> AudioFrame {
        let channels = self.channels.clamp(1, CHANNELS_MAX);
        let first = index * SAMPLES_PER_FRAME as u64;
        let freq = f64::from(self.freq_hz);
        let rate = f64::from(SAMPLE_RATE_HZ);
        let mut samples = Vec::with_capacity(SAMPLES_PER_FRAME * usize::from(channels));
        for n in first..first + SAMPLES_PER_FRAME as u64 {
            // Reduce the phase modulo one cycle in f64 so that long runs stay exact.
            let cycles = (n as f64 * freq / rate).fract();
            let value = (f64::from(self.amplitude) * (cycles * std::f64::consts::TAU).sin()) as f32;
            for _ in 0..channels {
                samples.push(value);
            }
        }
        AudioFrame {
            channels,
            samples,
            capture_time_us,
        }
    }
}

impl AudioSource for Tone {
    fn name(&self) -> String {
        format!("Test tone ({} Hz)", self.freq_hz)
    }

    fn start(self, capacity: usize) -> Result<Capture<AudioFrame>, Error> {
        spawn_paced("duet-tone", capacity, move |i| {
            self.frame(i, unix_time_us())
        })
    }
}

/// A warbled tone (synthetic microphone for echo tests): `freq_hz` swept ±10 % five times a
/// second, as [`crate::echo_sim::warble_tone`]. Echo cancellers deliberately leave a steady
/// sine alone; this is cancelled like speech and is still found by its frequency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Warble {
    /// Centre frequency in Hz.
    pub freq_hz: f32,
    /// Peak amplitude, 0..=1.
    pub amplitude: f32,
}

impl Warble {
    /// A mono warble around `freq_hz` at half amplitude.
    #[must_use]
    pub fn new(freq_hz: f32) -> Self {
        Self {
            freq_hz,
            amplitude: 0.5,
        }
    }

    /// Frame number `index` (phase-continuous across indices). Pure: the phase of the swept
    /// sine has a closed form, `f·t − (0.1·f / 2π·5)·cos(2π·5·t)`.
    #[must_use]
    pub fn frame(&self, index: u64, capture_time_us: u64) -> AudioFrame {
        let rate = f64::from(SAMPLE_RATE_HZ);
        let f = f64::from(self.freq_hz);
        let depth = 0.1 * f / (std::f64::consts::TAU * 5.0);
        let first = index * SAMPLES_PER_FRAME as u64;
        mono_frame(capture_time_us, |n| {
            let t = (first + n) as f64 / rate;
            let cycles = (f * t).fract() - depth * (std::f64::consts::TAU * 5.0 * t).cos();
            (f64::from(self.amplitude) * (std::f64::consts::TAU * cycles).sin()) as f32
        })
    }
}

impl AudioSource for Warble {
    fn name(&self) -> String {
        format!("Warbled tone ({} Hz)", self.freq_hz)
    }

    fn start(self, capacity: usize) -> Result<Capture<AudioFrame>, Error> {
        spawn_paced("duet-warble", capacity, move |i| {
            self.frame(i, unix_time_us())
        })
    }
}

/// Timed tone bursts (synthetic microphone for latency measurements): `freq_hz` for the first
/// [`Bursts::BURST_MS`] of every wall-clock second, silence otherwise. A receiver on a machine
/// with the same clock (one host, or the network lab) reads mouth-to-ear latency as how far
/// into the second a burst starts when it is played.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bursts {
    /// Frequency in Hz.
    pub freq_hz: f32,
    /// Peak amplitude, 0..=1.
    pub amplitude: f32,
}

impl Bursts {
    /// How long each burst lasts, ms.
    pub const BURST_MS: u64 = 100;

    /// Bursts of `freq_hz` at half amplitude.
    #[must_use]
    pub fn new(freq_hz: f32) -> Self {
        Self {
            freq_hz,
            amplitude: 0.5,
        }
    }

    /// The frame whose first sample is captured at `capture_time_us` (UNIX µs). Pure.
    #[must_use]
    pub fn frame(&self, capture_time_us: u64) -> AudioFrame {
        let f = f64::from(self.freq_hz);
        mono_frame(capture_time_us, |n| {
            let t_us = capture_time_us + n * 1_000_000 / u64::from(SAMPLE_RATE_HZ);
            if t_us % 1_000_000 >= Self::BURST_MS * 1000 {
                return 0.0;
            }
            let t = (t_us % 1_000_000) as f64 / 1e6;
            (f64::from(self.amplitude) * (std::f64::consts::TAU * f * t).sin()) as f32
        })
    }
}

impl AudioSource for Bursts {
    fn name(&self) -> String {
        format!("Timed tone bursts ({} Hz)", self.freq_hz)
    }

    fn start(self, capacity: usize) -> Result<Capture<AudioFrame>, Error> {
        spawn_paced("duet-bursts", capacity, move |_| self.frame(unix_time_us()))
    }
}

/// A mono frame whose sample `n` (0..960) is `sample(n)`.
fn mono_frame(capture_time_us: u64, sample: impl FnMut(u64) -> f32) -> AudioFrame {
    AudioFrame {
        channels: 1,
        samples: (0..SAMPLES_PER_FRAME as u64).map(sample).collect(),
        capture_time_us,
    }
}

/// Silence (synthetic microphone, or "mute").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Silence {
    /// 1 or 2.
    pub channels: u8,
}

impl AudioSource for Silence {
    fn name(&self) -> String {
        "Silence".to_owned()
    }

    fn start(self, capacity: usize) -> Result<Capture<AudioFrame>, Error> {
        check_channels(self.channels)?;
        let channels = self.channels;
        spawn_paced("duet-silence", capacity, move |_| AudioFrame {
            channels,
            samples: vec![0.0; SAMPLES_PER_FRAME * usize::from(channels)],
            capture_time_us: unix_time_us(),
        })
    }
}

/// Runs `make(i)` every 20 ms on a named thread (absolute schedule, no drift).
fn spawn_paced(
    name: &str,
    capacity: usize,
    make: impl Fn(u64) -> AudioFrame + Send + 'static,
) -> Result<Capture<AudioFrame>, Error> {
    spawn_named(name, capacity, move |tx: FrameSender<AudioFrame>| {
        let start = Instant::now();
        let mut index: u64 = 0;
        loop {
            let deadline = start + FRAME_PERIOD * u32::try_from(index).unwrap_or(u32::MAX);
            let now = Instant::now();
            if deadline > now {
                std::thread::sleep(deadline - now);
            }
            if !tx.push(make(index)) {
                return Ok(());
            }
            index += 1;
        }
    })
}

/// Counters of a [`NullSink`], readable from any thread.
#[derive(Debug, Default)]
pub struct NullSinkStats {
    frames: AtomicU64,
    samples: AtomicU64,
}

impl NullSinkStats {
    /// Frames played.
    #[must_use]
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Samples per channel played.
    #[must_use]
    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }
}

/// A sink that discards audio and counts it (headless peers, tests).
#[derive(Debug, Default, Clone)]
pub struct NullSink {
    stats: Arc<NullSinkStats>,
}

impl NullSink {
    /// A new sink with zeroed counters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters (shared: keep a clone to read them after moving the sink away).
    #[must_use]
    pub fn stats(&self) -> Arc<NullSinkStats> {
        Arc::clone(&self.stats)
    }
}

impl AudioSink for NullSink {
    fn play(&mut self, frame: &AudioFrame) -> Result<(), Error> {
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        let per_channel = frame.samples.len() / usize::from(frame.channels.max(1));
        self.stats
            .samples
            .fetch_add(per_channel as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_start_on_the_second_and_last_100_ms() {
        let b = Bursts::new(1000.0);
        // A frame starting 10 ms before a second boundary: silent, then the burst.
        let frame = b.frame(4_990_000);
        let first_loud = frame.samples().iter().position(|s| s.abs() > 0.01);
        // 10 ms = 480 samples; the sine's first samples are near 0, the burst shows within 1 ms.
        assert!(
            matches!(first_loud, Some(i) if (480..530).contains(&i)),
            "{first_loud:?}"
        );
        assert!(frame.samples()[..480].iter().all(|&s| s == 0.0));
        // Inside the burst, loud; after it, silent.
        assert!(b.frame(5_040_000).rms() > 0.3);
        assert_eq!(b.frame(5_100_000).rms(), 0.0);
        assert_eq!(b.frame(5_500_000).rms(), 0.0);
    }

    #[test]
    fn warble_is_phase_continuous_and_loud() {
        let w = Warble::new(1000.0);
        let (a, b) = (w.frame(10, 0), w.frame(11, 0));
        let jump = (a.samples()[SAMPLES_PER_FRAME - 1] - b.samples()[0]).abs();
        assert!(jump < 0.15, "no click between frames: {jump}");
        assert!((a.rms() - 0.354).abs() < 0.02, "{}", a.rms());
    }
}
