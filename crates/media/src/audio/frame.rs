//! [`AudioFrame`]: the unit of audio inside duet (48 kHz, 20 ms, f32, mono or stereo).

use std::time::Duration;

use crate::Error;

/// The sample rate of every [`AudioFrame`].
pub const SAMPLE_RATE_HZ: u32 = 48_000;
/// Samples per channel in one [`AudioFrame`] (20 ms at 48 kHz).
pub const SAMPLES_PER_FRAME: usize = 960;
/// Duration of one [`AudioFrame`] in microseconds.
pub const FRAME_DURATION_US: u64 = 20_000;
/// Most channels an [`AudioFrame`] may have.
pub const CHANNELS_MAX: u8 = 2;

/// One frame's duration, for sources paced by the clock.
pub(super) const FRAME_PERIOD: Duration = Duration::from_millis(20);

/// 20 ms of 48 kHz audio, f32 samples in -1..1, interleaved when stereo.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioFrame {
    pub(super) channels: u8,
    pub(super) samples: Vec<f32>,
    /// Wall-clock capture time of the first sample, UNIX µs (0 when unknown).
    pub capture_time_us: u64,
}

/// Refuses a channel count other than 1 or 2.
pub(super) fn check_channels(channels: u8) -> Result<(), Error> {
    if channels == 0 || channels > CHANNELS_MAX {
        return Err(Error::InvalidAudio(format!(
            "{channels} channels (1 or 2 supported)"
        )));
    }
    Ok(())
}

impl AudioFrame {
    /// Wraps `SAMPLES_PER_FRAME * channels` interleaved samples.
    ///
    /// # Errors
    /// [`Error::InvalidAudio`] for a channel count other than 1 or 2 or a wrong length.
    pub fn new(channels: u8, samples: Vec<f32>, capture_time_us: u64) -> Result<Self, Error> {
        check_channels(channels)?;
        if samples.len() != SAMPLES_PER_FRAME * usize::from(channels) {
            return Err(Error::InvalidAudio(format!(
                "{} samples for {channels} channel(s); {} expected",
                samples.len(),
                SAMPLES_PER_FRAME * usize::from(channels)
            )));
        }
        Ok(Self {
            channels,
            samples,
            capture_time_us,
        })
    }

    /// A silent frame.
    ///
    /// # Errors
    /// [`Error::InvalidAudio`] for a channel count other than 1 or 2.
    pub fn silence(channels: u8, capture_time_us: u64) -> Result<Self, Error> {
        check_channels(channels)?;
        Ok(Self {
            channels,
            samples: vec![0.0; SAMPLES_PER_FRAME * usize::from(channels)],
            capture_time_us,
        })
    }

    /// 1 (mono) or 2 (stereo).
    #[must_use]
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// Interleaved samples.
    #[must_use]
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// Interleaved samples, mutably.
    pub fn samples_mut(&mut self) -> &mut [f32] {
        &mut self.samples
    }

    /// Root-mean-square level over all samples (0 for silence, ≈0.707 × amplitude for a sine).
    #[must_use]
    pub fn rms(&self) -> f32 {
        let sum: f32 = self.samples.iter().map(|s| s * s).sum();
        (sum / self.samples.len().max(1) as f32).sqrt()
    }

    /// The same audio with `channels` channels (mono is duplicated, stereo averaged).
    ///
    /// # Errors
    /// [`Error::InvalidAudio`] for a channel count other than 1 or 2.
    pub fn to_channels(&self, channels: u8) -> Result<AudioFrame, Error> {
        check_channels(channels)?;
        let samples = remix(
            &self.samples,
            usize::from(self.channels),
            usize::from(channels),
        );
        Ok(AudioFrame {
            channels,
            samples,
            capture_time_us: self.capture_time_us,
        })
    }
}

/// Converts interleaved audio between channel counts: to mono by averaging, to more channels by
/// copying the first channels (mono is duplicated).
pub(super) fn remix(input: &[f32], from: usize, to: usize) -> Vec<f32> {
    if from == to || from == 0 {
        return input.to_vec();
    }
    let frames = input.len() / from;
    let mut out = Vec::with_capacity(frames * to);
    for frame in input.chunks_exact(from) {
        if to == 1 {
            out.push(frame.iter().sum::<f32>() / from as f32);
        } else {
            for c in 0..to {
                out.push(frame[c.min(from - 1)]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remix_mono_to_stereo_and_back() {
        let mono = [0.1, 0.2];
        let stereo = remix(&mono, 1, 2);
        assert_eq!(stereo, vec![0.1, 0.1, 0.2, 0.2]);
        assert_eq!(remix(&stereo, 2, 1), vec![0.1, 0.2]);
    }
}
