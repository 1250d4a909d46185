//! Small signal analysis to check what is heard: the dominant frequency of a block of audio
//! (Goertzel power scanned coarse-to-fine). Used by the call engine's stats and by tests.

/// Power of `freq_hz` in `samples` at `rate_hz` (Goertzel algorithm).
#[must_use]
pub fn goertzel_power(samples: &[f32], freq_hz: f64, rate_hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq_hz / rate_hz;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// The strongest frequency between 50 Hz and 4 kHz, to within about 1 Hz; `None` for
/// silence or blocks shorter than 10 ms. Looks at the last 200 ms of `samples`.
#[must_use]
pub fn dominant_frequency_hz(samples: &[f32], rate_hz: f64) -> Option<f64> {
    if samples.len() < (rate_hz / 100.0) as usize {
        return None;
    }
    // 200 ms is plenty for a stable estimate and keeps the scan cheap.
    let block = &samples[samples.len().saturating_sub((rate_hz / 5.0) as usize)..];
    let energy: f64 = block
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        / block.len() as f64;
    if energy < 1e-8 {
        return None;
    }
    let scan = |from: f64, to: f64, step: f64| {
        let mut best = (from, f64::MIN);
        let mut f = from;
        while f <= to {
            let p = goertzel_power(block, f, rate_hz);
            if p > best.1 {
                best = (f, p);
            }
            f += step;
        }
        best.0
    };
    let coarse = scan(50.0, 4000.0, 10.0);
    Some(scan((coarse - 10.0).max(1.0), coarse + 10.0, 0.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_tone() {
        let rate = 48_000.0;
        let tone: Vec<f32> = (0..9600)
            .map(|i| (2.0 * std::f64::consts::PI * 440.0 * i as f64 / rate).sin() as f32 * 0.3)
            .collect();
        let f = dominant_frequency_hz(&tone, rate).unwrap_or(0.0);
        assert!((f - 440.0).abs() < 2.0, "{f}");
        assert_eq!(dominant_frequency_hz(&vec![0.0; 9600], rate), None);
    }
}
