//! TEMPORARY: sonora 0.2 against aec3 0.4 on the synthetic echo path of the tests (40 ms delay,
//! 100 ms tail, −6 dB). Prints ERLE over several windows, near-end level in double-talk and
//! processing time per 10 ms chunk. Results: docs/media.md, "Audio processing".
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use aec3::nodes::audio::AudioFormat;
use aec3::pipelines::linear;
use media::echo_sim::{EchoPath, energy_ratio_db, speech_like};
use media::{AudioProcessor, PROCESSING_CHUNK_SAMPLES, ProcessingConfig};

const RATE: u32 = 48_000;
const SECONDS: usize = 10;

/// (far-end chunk, microphone chunk, output chunk).
type Engine = Box<dyn FnMut(&[f32], &[f32], &mut [f32])>;

fn main() {
    let len = RATE as usize * SECONDS;
    let far = speech_like(1, len, RATE);
    let mut near = speech_like(2, len, RATE);
    // Near end talks only from 4 s to 8 s (double-talk); far end talks all the time.
    for (i, s) in near.iter_mut().enumerate() {
        if !(4 * RATE as usize..8 * RATE as usize).contains(&i) {
            *s = 0.0;
        }
    }
    let echo = EchoPath::new(40, 100, -6.0, RATE).apply(&far);
    let mic: Vec<f32> = echo.iter().zip(&near).map(|(e, n)| e + n).collect();

    let engines: Vec<(&str, Engine)> = vec![
        (
            "sonora AEC only",
            sonora_engine(ProcessingConfig::ECHO_ONLY),
        ),
        ("sonora full", sonora_engine(ProcessingConfig::default())),
        (
            "sonora no AGC",
            sonora_engine(ProcessingConfig {
                gain_control: false,
                ..ProcessingConfig::default()
            }),
        ),
        ("aec3 AEC only", aec3_engine(false)),
        ("aec3 full", aec3_engine(true)),
    ];
    for (name, mut engine) in engines {
        let mut out = vec![0.0f32; len];
        let mut busy = Duration::ZERO;
        for ((f, m), o) in far
            .chunks_exact(PROCESSING_CHUNK_SAMPLES)
            .zip(mic.chunks_exact(PROCESSING_CHUNK_SAMPLES))
            .zip(out.chunks_exact_mut(PROCESSING_CHUNK_SAMPLES))
        {
            let t = Instant::now();
            engine(f, m, o);
            busy += t.elapsed();
        }
        let s = |a: f64, b: f64| (a * f64::from(RATE)) as usize..(b * f64::from(RATE)) as usize;
        let erle = |r: std::ops::Range<usize>| energy_ratio_db(&echo[r.clone()], &out[r]);
        let chunks = len / PROCESSING_CHUNK_SAMPLES;
        let per_chunk_ms = busy.as_secs_f64() * 1000.0 / chunks as f64;
        println!(
            "{name:16} ERLE 0-1 s {:5.1} dB, 1-2 s {:5.1}, 2-4 s {:5.1}, 8-10 s {:5.1}; \
             near end 5-8 s {:+5.1} dB; {per_chunk_ms:.3} ms/chunk ({:.2} % of a core)",
            erle(s(0.0, 1.0)),
            erle(s(1.0, 2.0)),
            erle(s(2.0, 4.0)),
            erle(s(8.0, 10.0)),
            energy_ratio_db(&out[s(5.0, 8.0)], &near[s(5.0, 8.0)]),
            per_chunk_ms / 10.0 * 100.0,
        );
        let windows: Vec<String> = (0..20)
            .map(|w| format!("{:.0}", erle(s(f64::from(w) * 0.5, f64::from(w + 1) * 0.5))))
            .collect();
        println!("    ERLE per 0.5 s: {}", windows.join(" "));
    }
}

fn sonora_engine(config: ProcessingConfig) -> Engine {
    let mut p = AudioProcessor::new(config);
    Box::new(move |far, mic, out| {
        p.process_render(far).unwrap();
        out.copy_from_slice(mic);
        p.process_capture(out).unwrap();
    })
}

fn aec3_engine(full: bool) -> Engine {
    let format = AudioFormat::ten_ms(RATE, 1);
    let mut p = linear::builder(format, format)
        .enable_noise_suppression(full)
        .enable_gain_controller2(full)
        .enable_high_pass_filter(full)
        .enable_post_filter(full)
        .build()
        .unwrap();
    Box::new(move |far, mic, out| {
        p.handle_render_frame(far).unwrap();
        let produced = p.process_capture_frame(mic, out).unwrap();
        assert!(produced);
    })
}
