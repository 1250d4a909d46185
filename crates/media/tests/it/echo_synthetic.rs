//! Echo cancellation on a synthetic echo path, in-process: far-end speech is "played", the
//! microphone hears it 40 ms later through a 100 ms decaying tail at −6 dB, plus near-end
//! speech from 4 s to 8 s (double-talk). With the default processing (echo cancellation, noise
//! suppression, gain control, high-pass filter) the echo must lose ≥ 25 dB once the canceller
//! has had 2 s, and the near-end talker must lose ≤ 6 dB while both talk.

use crate::common::{echo_scenario, run_processor, seconds};
use media::echo_sim::energy_ratio_db;
use media::{AudioProcessor, ProcessingConfig};

#[test]
fn echo_is_25_db_lower_after_two_seconds() {
    let s = echo_scenario();
    let mut processor = AudioProcessor::new(ProcessingConfig::default());
    let out = run_processor(&mut processor, &s.far, &s.mic);
    // Far-end single talk: everything in the output is residual echo.
    let erle = |from, to| {
        let r = seconds(from, to);
        energy_ratio_db(&s.echo[r.clone()], &out[r])
    };
    let (after_2s, after_double_talk) = (erle(2.0, 4.0), erle(8.5, 10.0));
    let stats = processor.stats();
    eprintln!(
        "ERLE 0-1 s {:.1} dB, 1-2 s {:.1} dB, 2-4 s {after_2s:.1} dB, 8.5-10 s {after_double_talk:.1} dB; \
         AEC3's own estimate {:?} dB, delay {:?} ms",
        erle(0.0, 1.0),
        erle(1.0, 2.0),
        stats.erle_db,
        stats.delay_ms
    );
    assert!(after_2s >= 25.0, "ERLE 2-4 s: {after_2s:.1} dB");
    assert!(
        after_double_talk >= 25.0,
        "ERLE after double-talk: {after_double_talk:.1} dB"
    );
    assert_eq!(stats.capture_chunks, 1000);
    assert_eq!(stats.render_chunks, 1000);
    // AEC3 found the 40 ms path (it reports the delay in whole blocks).
    let delay = stats.delay_ms.expect("AEC3 reports a delay");
    assert!((30..=50).contains(&delay), "delay estimate {delay} ms");
}

#[test]
fn near_end_speech_survives_double_talk() {
    let s = echo_scenario();
    // The canceller alone (its suppressor is what could eat the near end) and the full chain
    // (whose gain control raises a quiet talker).
    // The waveform check applies to the canceller alone: gain control's varying gain and
    // limiter reshape the waveform (correlation ~0.3) while keeping the talker audible.
    for (name, config, min_correlation) in [
        ("echo cancellation only", ProcessingConfig::ECHO_ONLY, 0.6),
        ("default", ProcessingConfig::default(), 0.0),
    ] {
        let mut processor = AudioProcessor::new(config);
        let out = run_processor(&mut processor, &s.far, &s.mic);
        // 5–8 s: both talk, the canceller has converged; the output is the near end plus residue.
        let r = seconds(5.0, 8.0);
        let kept_db = energy_ratio_db(&out[r.clone()], &s.near[r.clone()]);
        // What is kept is the near end, not echo: the output follows the near-end waveform.
        let (lag, correlation) = best_correlation(&out[r.clone()], &s.near[r.clone()]);
        let (_, with_echo) = best_correlation(&out[r.clone()], &s.echo[r.clone()]);
        let (_, mic_with_echo) = best_correlation(&s.mic[r.clone()], &s.echo[r]);
        eprintln!(
            "{name}: near end in double-talk {kept_db:+.1} dB; output correlates {correlation:.2} \
             with the near end (at {lag} samples), {with_echo:.2} with the echo (mic: {mic_with_echo:.2})"
        );
        assert!(
            kept_db >= -6.0,
            "{name}: near end attenuated by {:.1} dB",
            -kept_db
        );
        assert!(
            correlation >= min_correlation && with_echo <= 0.1,
            "{name}: output correlates {correlation:.2} with the near end, {with_echo:.2} with the echo"
        );
    }
}

/// The highest normalised correlation of `out` with `reference` delayed by 0..20 ms, and that
/// delay in samples. `out` and `reference` have the same length.
///
/// The dot products of every delay come from one cross-correlation by FFT (zero-padded, so no
/// delay wraps around), the energies from running sums: the direct sum over 960 delays took
/// about 30 s in a debug build.
fn best_correlation(out: &[f32], reference: &[f32]) -> (usize, f64) {
    const LAGS: usize = 960;
    assert_eq!(out.len(), reference.len());
    let n = out.len();
    let size = (n + LAGS).next_power_of_two();
    let mut planner = realfft::RealFftPlanner::<f64>::new();
    let (forward, inverse) = (
        planner.plan_fft_forward(size),
        planner.plan_fft_inverse(size),
    );
    let spectrum = |x: &[f32]| {
        let mut input = forward.make_input_vec();
        for (i, &v) in input.iter_mut().zip(x) {
            *i = f64::from(v);
        }
        let mut output = forward.make_output_vec();
        forward.process(&mut input, &mut output).expect("fft");
        output
    };
    // cross[lag] = Σ out[i + lag] · reference[i]: the spectrum of out times the conjugate of
    // reference's.
    let (o, r) = (spectrum(out), spectrum(reference));
    let mut product: Vec<_> = o.iter().zip(&r).map(|(a, b)| a * b.conj()).collect();
    // Real input: the first and last bins are real (rounding can leave a trace).
    product[0].im = 0.0;
    let last = product.len() - 1;
    product[last].im = 0.0;
    let mut cross = inverse.make_output_vec();
    inverse
        .process(&mut product, &mut cross)
        .expect("inverse fft");
    // energy(x[a..b]) from running sums of squares.
    let running = |x: &[f32]| {
        let mut sums = Vec::with_capacity(x.len() + 1);
        sums.push(0.0);
        for &v in x {
            sums.push(sums.last().copied().unwrap_or(0.0) + f64::from(v) * f64::from(v));
        }
        sums
    };
    let (out_energy, reference_energy) = (running(out), running(reference));
    (0..LAGS)
        .map(|lag| {
            let dot = cross[lag] / size as f64; // the inverse FFT is not normalised
            let energies = (out_energy[n] - out_energy[lag]) * reference_energy[n - lag];
            (lag, dot / energies.sqrt())
        })
        .fold((0, f64::MIN), |best, c| if c.1 > best.1 { c } else { best })
}
