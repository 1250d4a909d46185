//! Sample-rate conversion between a device's rate and duet's 48 kHz (rubato sinc).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Resampler, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

use crate::Error;

/// Streaming sample-rate converter (rubato sinc) for interleaved f32 audio; a pass-through when
/// the rates are equal.
pub(super) struct StreamResampler {
    inner: Option<Async<f32>>,
    channels: usize,
    pending: Vec<f32>,
    scratch: Vec<f32>,
}

impl StreamResampler {
    pub(super) fn new(from_hz: u32, to_hz: u32, channels: usize) -> Result<Self, Error> {
        let inner = if from_hz == to_hz {
            None
        } else {
            let params = SincInterpolationParameters {
                sinc_len: 128,
                f_cutoff: None,
                oversampling_factor: 128,
                interpolation: SincInterpolationType::Linear,
                window: WindowFunction::BlackmanHarris2,
            };
            let chunk = (from_hz / 100).max(1) as usize; // 10 ms of input per step
            Some(
                Async::<f32>::new_sinc(
                    f64::from(to_hz) / f64::from(from_hz),
                    1.1,
                    &params,
                    chunk,
                    channels,
                    FixedAsync::Input,
                )
                .map_err(|e| Error::Resample(e.to_string()))?,
            )
        };
        Ok(Self {
            inner,
            channels,
            pending: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// Feeds interleaved `input`, appends whatever output is ready to `out`.
    pub(super) fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), Error> {
        let Some(inner) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return Ok(());
        };
        let ch = self.channels;
        self.pending.extend_from_slice(input);
        loop {
            let need = inner.input_frames_next();
            if self.pending.len() < need * ch {
                return Ok(());
            }
            let max_out = inner.output_frames_next();
            self.scratch.resize(max_out * ch, 0.0);
            let input = InterleavedSlice::new(&self.pending[..need * ch], ch, need)
                .map_err(|e| Error::Resample(e.to_string()))?;
            let mut output = InterleavedSlice::new_mut(&mut self.scratch[..], ch, max_out)
                .map_err(|e| Error::Resample(e.to_string()))?;
            let (used, produced) = inner
                .process_into_buffer(&input, &mut output, None)
                .map_err(|e| Error::Resample(e.to_string()))?;
            out.extend_from_slice(&self.scratch[..produced * ch]);
            self.pending.drain(..used * ch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampler_keeps_the_rate_ratio() -> Result<(), Error> {
        let mut r = StreamResampler::new(44_100, 48_000, 1)?;
        let mut out = Vec::new();
        let input = vec![0.0f32; 44_100];
        for chunk in input.chunks(441) {
            r.process(chunk, &mut out)?;
        }
        // One second in, about one second out (minus the filter delay).
        assert!((47_000..=48_100).contains(&out.len()), "{}", out.len());
        Ok(())
    }
}
