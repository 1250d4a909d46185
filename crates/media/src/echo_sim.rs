//! Synthetic speech and a synthetic room, for the echo-cancellation tests, benchmarks and
//! examples: no recordings, fully deterministic.
//!
//! [`speech_like`] is a voiced, syllable-shaped signal (a gliding fundamental with harmonics up
//! to 4 kHz shaped by moving formants, plus a little breath noise), and [`EchoPath`] is what a
//! loudspeaker-to-microphone path does to it: a delay, a decaying tail of reflections and an
//! attenuation. Neither is used on a real call.

/// A small deterministic PRNG (xorshift64*), so signals are reproducible without a dependency.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..1.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// `len` samples at `rate_hz` of speech-like audio: syllables of 120–280 ms separated by short
/// gaps, a longer pause every few syllables, RMS about 0.1 (−20 dBFS) while voiced. Different
/// `seed`s give different "talkers" (fundamental 100–220 Hz).
#[must_use]
pub fn speech_like(seed: u64, len: usize, rate_hz: u32) -> Vec<f32> {
    let rate = f64::from(rate_hz);
    let mut rng = Rng::new(seed);
    let base_f0 = rng.range(100.0, 220.0);
    let mut out = vec![0.0f32; len];
    let mut pos = 0usize;
    let mut syllables = 0u32;
    let mut phase = 0.0f64;
    while pos < len {
        let dur = (rng.range(0.12, 0.28) * rate) as usize;
        let f0_start = base_f0 * rng.range(0.85, 1.2);
        let f0_end = f0_start * rng.range(0.8, 1.15);
        let formants = [
            rng.range(300.0, 900.0),
            rng.range(900.0, 2200.0),
            rng.range(2200.0, 3200.0),
        ];
        let end = (pos + dur).min(len);
        for (i, sample) in out[pos..end].iter_mut().enumerate() {
            let t = i as f64 / dur as f64;
            let f0 = f0_start + (f0_end - f0_start) * t;
            phase = (phase + f0 / rate).fract();
            // Raised-cosine envelope over the syllable.
            let env = 0.5 - 0.5 * (std::f64::consts::TAU * t).cos();
            let mut voiced = 0.0;
            let harmonics = (4000.0 / f0) as usize;
            for k in 1..=harmonics {
                let fk = f0 * k as f64;
                let shape: f64 = formants
                    .iter()
                    .map(|&f| (-((fk - f) / 250.0).powi(2)).exp())
                    .sum::<f64>()
                    + 0.05;
                voiced += shape / k as f64 * (std::f64::consts::TAU * phase * k as f64).sin();
            }
            let breath = rng.range(-1.0, 1.0) * 0.03;
            *sample = (0.22 * env * (voiced + breath)) as f32;
        }
        pos = end;
        syllables += 1;
        let gap = if syllables.is_multiple_of(6) {
            rng.range(0.25, 0.4)
        } else {
            rng.range(0.03, 0.08)
        };
        pos += (gap * rate) as usize;
    }
    out
}

/// `len` samples of a warbled tone: `freq_hz` swept ±10 % five times a second (a siren),
/// peak `amplitude`. A steady sine is the wrong probe for an echo canceller: AEC3 deliberately
/// does not adapt on narrow-band render (a steady sine's echo changes by −2 to +9 dB), while
/// this one, still a "tone" a test can find by frequency, is cancelled like speech.
#[must_use]
pub fn warble_tone(freq_hz: f32, amplitude: f32, len: usize, rate_hz: u32) -> Vec<f32> {
    let rate = f64::from(rate_hz);
    let mut phase = 0.0f64;
    (0..len)
        .map(|i| {
            let sweep = (std::f64::consts::TAU * 5.0 * i as f64 / rate).sin();
            let f = f64::from(freq_hz) * (1.0 + 0.1 * sweep);
            phase = (phase + f / rate).fract();
            (f64::from(amplitude) * (std::f64::consts::TAU * phase).sin()) as f32
        })
        .collect()
}

/// A loudspeaker-to-microphone echo path: the direct sound after `delay_ms`, then reflections
/// over `tail_ms` decaying by 60 dB, all scaled so the path's energy gain is `gain_db`.
#[derive(Clone, Debug, PartialEq)]
pub struct EchoPath {
    /// (offset in samples, gain) of each tap.
    taps: Vec<(usize, f32)>,
}

impl EchoPath {
    /// A path with a fixed, seeded set of reflections (one every ~2.5 ms) at `rate_hz`.
    #[must_use]
    pub fn new(delay_ms: u32, tail_ms: u32, gain_db: f32, rate_hz: u32) -> Self {
        let mut rng = Rng::new(0xEC40);
        let per_ms = f64::from(rate_hz) / 1000.0;
        let delay = (f64::from(delay_ms) * per_ms) as usize;
        let tail = (f64::from(tail_ms) * per_ms).max(1.0);
        // Direct sound, then a reflection every ~2.5 ms with random sign and jitter.
        let mut taps: Vec<(usize, f64)> = vec![(delay, 1.0)];
        let step = 2.5 * per_ms;
        let mut t = step;
        while t < tail {
            let offset = t + rng.range(-0.4, 0.4) * step;
            // exp(-6.9 t / tail) is −60 dB at the end of the tail.
            let amplitude = 0.6 * (-6.9 * offset / tail).exp();
            let sign = if rng.unit() < 0.5 { -1.0 } else { 1.0 };
            taps.push((delay + offset as usize, sign * amplitude));
            t += step;
        }
        let energy: f64 = taps.iter().map(|(_, g)| g * g).sum();
        let scale = (10f64.powf(f64::from(gain_db) / 10.0) / energy).sqrt();
        Self {
            taps: taps
                .into_iter()
                .map(|(o, g)| (o, (g * scale) as f32))
                .collect(),
        }
    }

    /// The echo `far_end` produces at the microphone (same length as the input).
    #[must_use]
    pub fn apply(&self, far_end: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; far_end.len()];
        for &(offset, gain) in &self.taps {
            if offset >= far_end.len() {
                continue;
            }
            for (o, &x) in out[offset..].iter_mut().zip(far_end) {
                *o += gain * x;
            }
        }
        out
    }

    /// The path's energy gain in dB (the `gain_db` it was built with).
    #[must_use]
    pub fn gain_db(&self) -> f32 {
        let energy: f32 = self.taps.iter().map(|(_, g)| g * g).sum();
        10.0 * energy.log10()
    }
}

/// 10·log10 of the energy of `a` over the energy of `b` (both summed, so silence in parts of
/// the signals does not matter); `f64::INFINITY` when `b` is silent.
#[must_use]
pub fn energy_ratio_db(a: &[f32], b: &[f32]) -> f64 {
    let energy = |s: &[f32]| s.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>();
    let (ea, eb) = (energy(a), energy(b));
    if eb <= f64::MIN_POSITIVE {
        return f64::INFINITY;
    }
    10.0 * (ea.max(f64::MIN_POSITIVE) / eb).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_is_deterministic_and_at_the_expected_level() {
        let a = speech_like(1, 48_000, 48_000);
        assert_eq!(a, speech_like(1, 48_000, 48_000));
        assert_ne!(a, speech_like(2, 48_000, 48_000));
        let rms = (a.iter().map(|x| x * x).sum::<f32>() / a.len() as f32).sqrt();
        assert!((0.03..0.2).contains(&rms), "{rms}");
        assert!(a.iter().all(|x| x.abs() < 1.0));
    }

    #[test]
    fn echo_path_has_its_gain_and_delay() {
        let path = EchoPath::new(40, 100, -6.0, 48_000);
        assert!((path.gain_db() + 6.0).abs() < 0.01);
        let mut impulse = vec![0.0f32; 9600];
        impulse[0] = 1.0;
        let response = path.apply(&impulse);
        let first = response.iter().position(|x| x.abs() > 0.0);
        assert_eq!(first, Some(1920));
        assert!(response[1920 + 4800..].iter().all(|x| *x == 0.0));
    }
}
