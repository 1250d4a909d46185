//! The audio processing stage of the capture path: echo cancellation (AEC3), noise suppression,
//! automatic gain control (AGC2, adaptive digital) and a high-pass filter, from `sonora`, a
//! pure-Rust port of WebRTC's audio processing module.
//!
//! [`AudioProcessor`] works on 48 kHz mono in 10 ms chunks ([`PROCESSING_CHUNK_SAMPLES`]): the
//! far-end reference goes in through [`AudioProcessor::process_render`] (exactly what the
//! speaker is given), the microphone through [`AudioProcessor::process_capture`], in place.
//! [`AudioFrame`] helpers cover the crate's 20 ms frames. The processor is pure computation: no
//! threads, no clock, no device. When render and capture run on different threads, a
//! [`RenderTap`] carries render chunks to the capture thread through a bounded channel (the
//! shape of WebRTC's own render queue), so neither side takes a lock.
//!
//! It owns no device and no policy: whether processing is on and which device is used is the
//! call engine's decision.

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use sonora::config::{
    AdaptiveDigital, EchoCanceller, GainController2, HighPassFilter, NoiseSuppression,
    NoiseSuppressionLevel,
};
use sonora::{AudioProcessing, Config, StreamConfig};

use crate::Error;
use crate::audio::{AudioFrame, SAMPLE_RATE_HZ, SAMPLES_PER_FRAME};

/// Samples in one processing chunk: 10 ms of 48 kHz mono.
pub const PROCESSING_CHUNK_SAMPLES: usize = 480;

/// Render chunks a [`RenderTap`] may hold before the capture side drains them (1 s).
const RENDER_QUEUE_CHUNKS: usize = 100;

/// Which parts of the processing run. [`ProcessingConfig::default`] is everything on (what a
/// call should use); each part can be switched on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessingConfig {
    /// Acoustic echo cancellation (AEC3): removes what the speaker played from the microphone.
    pub echo_cancellation: bool,
    /// Stationary noise suppression (moderate, about 12 dB).
    pub noise_suppression: bool,
    /// Automatic gain control (AGC2 adaptive digital gain with a limiter).
    pub gain_control: bool,
    /// High-pass filter (removes rumble and DC below about 80 Hz).
    pub high_pass_filter: bool,
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        Self {
            echo_cancellation: true,
            noise_suppression: true,
            gain_control: true,
            high_pass_filter: true,
        }
    }
}

impl ProcessingConfig {
    /// Every part off (the processor still runs, as a pass-through through WebRTC's buffers).
    pub const NONE: Self = Self {
        echo_cancellation: false,
        noise_suppression: false,
        gain_control: false,
        high_pass_filter: false,
    };

    /// Echo cancellation only.
    pub const ECHO_ONLY: Self = Self {
        echo_cancellation: true,
        ..Self::NONE
    };

    fn to_sonora(self) -> Config {
        Config {
            high_pass_filter: self.high_pass_filter.then(HighPassFilter::default),
            echo_canceller: self.echo_cancellation.then_some(EchoCanceller {
                // Our switch decides about the high-pass filter, not the canceller.
                enforce_high_pass_filtering: false,
                // The default ("legacy") transparent-mode detector took a 0 dB echo path that
                // converges slowly (a null sink's monitor) for "no echo, a headset" in 7 of 11
                // calls and stopped suppressing; the HMM classifier did in 2 of 9
                // (docs/benchmarks.md, "Audio processing").
                transparent_mode: sonora::config::TransparentModeType::Hmm,
            }),
            noise_suppression: self.noise_suppression.then(|| NoiseSuppression {
                level: NoiseSuppressionLevel::Moderate,
                ..NoiseSuppression::default()
            }),
            gain_controller2: self.gain_control.then(|| GainController2 {
                input_volume_controller: false,
                adaptive_digital: Some(AdaptiveDigital::default()),
                ..GainController2::default()
            }),
            ..Config::default()
        }
    }
}

/// What the processor knows about the echo and what it was fed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessingStats {
    /// Echo return loss enhancement estimated by AEC3, dB (how much echo it removes); `None`
    /// while echo cancellation is off or before the first capture chunk.
    pub erle_db: Option<f64>,
    /// Echo return loss estimated by AEC3, dB (how much quieter the echo is than the far end).
    pub echo_return_loss_db: Option<f64>,
    /// The render→capture delay AEC3 has found, ms.
    pub delay_ms: Option<i32>,
    /// Render chunks fed to the canceller.
    pub render_chunks: u64,
    /// Capture chunks processed (or passed through when disabled).
    pub capture_chunks: u64,
    /// Render chunks a [`RenderTap`] dropped because the capture side did not drain them.
    pub render_dropped: u64,
    /// Non-finite samples (NaN, ±∞) found in the input and replaced by silence.
    pub non_finite_samples: u64,
}

/// The capture-path processor: 48 kHz mono, 10 ms chunks. See the [module docs](self).
pub struct AudioProcessor {
    apm: AudioProcessing,
    config: ProcessingConfig,
    enabled: bool,
    render_in: Sender<Vec<f32>>,
    render_queue: Receiver<Vec<f32>>,
    render_dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
    scratch: Vec<f32>,
    stats: ProcessingStats,
}

impl std::fmt::Debug for AudioProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioProcessor")
            .field("config", &self.config)
            .field("enabled", &self.enabled)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Default for AudioProcessor {
    fn default() -> Self {
        Self::new(ProcessingConfig::default())
    }
}

fn check_chunk(what: &str, len: usize) -> Result<(), Error> {
    if len == PROCESSING_CHUNK_SAMPLES {
        Ok(())
    } else {
        Err(Error::InvalidAudio(format!(
            "{what} chunk of {len} samples; {PROCESSING_CHUNK_SAMPLES} (10 ms of 48 kHz mono) expected"
        )))
    }
}

/// Replaces NaN and ±∞ by 0 in place; returns how many there were.
fn sanitize(samples: &mut [f32]) -> u64 {
    let mut bad = 0;
    for s in samples.iter_mut().filter(|s| !s.is_finite()) {
        *s = 0.0;
        bad += 1;
    }
    bad
}

impl AudioProcessor {
    /// A processor, enabled, with the parts `config` switches on.
    #[must_use]
    pub fn new(config: ProcessingConfig) -> Self {
        let stream = StreamConfig::new(SAMPLE_RATE_HZ, 1);
        let apm = AudioProcessing::builder()
            .config(config.to_sonora())
            .capture_config(stream)
            .render_config(stream)
            .build();
        let (render_in, render_queue) = bounded(RENDER_QUEUE_CHUNKS);
        Self {
            apm,
            config,
            enabled: true,
            render_in,
            render_queue,
            render_dropped: std::sync::Arc::default(),
            scratch: vec![0.0; PROCESSING_CHUNK_SAMPLES],
            stats: ProcessingStats::default(),
        }
    }

    /// Switches all processing on or off. Off, capture audio passes through untouched (bit for
    /// bit) and render audio is ignored; back on, the echo canceller re-converges within about
    /// a second.
    pub fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }

    /// True when processing is on.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Which parts run.
    #[must_use]
    pub fn config(&self) -> ProcessingConfig {
        self.config
    }

    /// Switches parts on or off while running (the changed parts restart their adaptation).
    pub fn set_config(&mut self, config: ProcessingConfig) {
        if config != self.config {
            self.config = config;
            self.apm.apply_config(config.to_sonora());
        }
    }

    /// A hint for the render→capture delay (speaker buffer + acoustic path + microphone
    /// buffer), clamped to 0..=500 ms. Optional: AEC3 finds the delay itself.
    pub fn set_stream_delay_ms(&mut self, delay_ms: u32) {
        // Clamping is reported as an error by sonora; the clamped value is what we want.
        let _ = self
            .apm
            .set_stream_delay_ms(i32::try_from(delay_ms).unwrap_or(i32::MAX));
    }

    /// Feeds 10 ms of the far-end reference: exactly the samples the speaker is given.
    ///
    /// # Errors
    /// [`Error::InvalidAudio`] unless `far_end` has [`PROCESSING_CHUNK_SAMPLES`] samples.
    /// Non-finite samples are replaced by silence and counted, not rejected.
    pub fn process_render(&mut self, far_end: &[f32]) -> Result<(), Error> {
        check_chunk("render", far_end.len())?;
        if !self.enabled {
            return Ok(());
        }
        self.scratch.copy_from_slice(far_end);
        self.stats.non_finite_samples += sanitize(&mut self.scratch);
        self.analyze_render_scratch()
    }

    fn analyze_render_scratch(&mut self) -> Result<(), Error> {
        // The render output is only a copy of the input (no render-side processing is on).
        let mut out = [0.0f32; PROCESSING_CHUNK_SAMPLES];
        self.apm
            .process_render_f32(&[&self.scratch], &mut [&mut out])
            .map_err(|e| Error::Processing(e.to_string()))?;
        self.stats.render_chunks += 1;
        Ok(())
    }

    /// Processes 10 ms of microphone audio in place: echo removed, noise suppressed, gain
    /// adjusted, low frequencies filtered, as configured. Render chunks queued by a
    /// [`RenderTap`] are fed first.
    ///
    /// # Errors
    /// [`Error::InvalidAudio`] unless `mic` has [`PROCESSING_CHUNK_SAMPLES`] samples (the audio
    /// is then left as it was). Non-finite samples are replaced by silence and counted.
    pub fn process_capture(&mut self, mic: &mut [f32]) -> Result<(), Error> {
        check_chunk("capture", mic.len())?;
        self.drain_render_queue()?;
        self.stats.capture_chunks += 1;
        if !self.enabled {
            return Ok(());
        }
        self.stats.non_finite_samples += sanitize(mic);
        self.scratch.copy_from_slice(mic);
        self.apm
            .process_capture_f32(&[&self.scratch], &mut [mic])
            .map_err(|e| Error::Processing(e.to_string()))?;
        Ok(())
    }

    fn drain_render_queue(&mut self) -> Result<(), Error> {
        while let Ok(chunk) = self.render_queue.try_recv() {
            if self.enabled {
                self.scratch.copy_from_slice(&chunk);
                self.stats.non_finite_samples += sanitize(&mut self.scratch);
                self.analyze_render_scratch()?;
            }
        }
        Ok(())
    }

    /// Feeds a 20 ms [`AudioFrame`] of far-end audio (stereo is mixed to mono).
    ///
    /// # Errors
    /// As [`AudioProcessor::process_render`].
    pub fn process_render_frame(&mut self, frame: &AudioFrame) -> Result<(), Error> {
        for chunk in mono(frame).chunks_exact(PROCESSING_CHUNK_SAMPLES) {
            self.process_render(chunk)?;
        }
        Ok(())
    }

    /// Processes a 20 ms [`AudioFrame`] of microphone audio in place. A stereo frame is mixed
    /// to mono, processed, and written back to both channels.
    ///
    /// # Errors
    /// As [`AudioProcessor::process_capture`].
    pub fn process_capture_frame(&mut self, frame: &mut AudioFrame) -> Result<(), Error> {
        let channels = usize::from(frame.channels());
        if channels == 1 {
            for chunk in frame
                .samples_mut()
                .chunks_exact_mut(PROCESSING_CHUNK_SAMPLES)
            {
                self.process_capture(chunk)?;
            }
            return Ok(());
        }
        let mut mixed = mono(frame);
        for chunk in mixed.chunks_exact_mut(PROCESSING_CHUNK_SAMPLES) {
            self.process_capture(chunk)?;
        }
        for (out, value) in frame.samples_mut().chunks_exact_mut(channels).zip(mixed) {
            out.fill(value);
        }
        Ok(())
    }

    /// A handle that feeds render audio from another thread (the speaker's). Chunks wait in a
    /// bounded queue (1 s) until the next [`AudioProcessor::process_capture`]; when it is full
    /// the newest chunk is dropped and counted.
    #[must_use]
    pub fn render_tap(&self) -> RenderTap {
        RenderTap {
            tx: self.render_in.clone(),
            dropped: std::sync::Arc::clone(&self.render_dropped),
            pending: Vec::new(),
        }
    }

    /// Current estimates and counters.
    #[must_use]
    pub fn stats(&self) -> ProcessingStats {
        let apm = self.apm.statistics();
        let aec = self.enabled && self.config.echo_cancellation;
        ProcessingStats {
            erle_db: apm.echo_return_loss_enhancement.filter(|_| aec),
            echo_return_loss_db: apm.echo_return_loss.filter(|_| aec),
            delay_ms: apm.delay_ms.filter(|_| aec),
            render_dropped: self
                .render_dropped
                .load(std::sync::atomic::Ordering::Relaxed),
            ..self.stats.clone()
        }
    }
}

fn mono(frame: &AudioFrame) -> Vec<f32> {
    let channels = usize::from(frame.channels()).max(1);
    if channels == 1 {
        return frame.samples().to_vec();
    }
    frame
        .samples()
        .chunks_exact(channels)
        .map(|c| c.iter().sum::<f32>() / channels as f32)
        .collect()
}

/// Feeds far-end audio to an [`AudioProcessor`] from another thread; `Send` and cheap. Accepts
/// any length and cuts it into 10 ms chunks (a remainder waits for the next call).
#[derive(Debug)]
pub struct RenderTap {
    tx: Sender<Vec<f32>>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pending: Vec<f32>,
}

impl RenderTap {
    /// Queues 48 kHz mono far-end samples. Never blocks.
    pub fn push(&mut self, far_end: &[f32]) {
        self.pending.extend_from_slice(far_end);
        while self.pending.len() >= PROCESSING_CHUNK_SAMPLES {
            let chunk: Vec<f32> = self.pending.drain(..PROCESSING_CHUNK_SAMPLES).collect();
            match self.tx.try_send(chunk) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => {
                    self.dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }

    /// Queues a 20 ms frame (stereo is mixed to mono).
    pub fn push_frame(&mut self, frame: &AudioFrame) {
        debug_assert_eq!(frame.samples().len() % SAMPLES_PER_FRAME, 0);
        self.push(&mono(frame));
    }
}
