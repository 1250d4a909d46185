//! Per-frame costs of the media hot paths, single-threaded: H.264 (openh264) and VP8 (libvpx)
//! encode and decode of the test pattern at 640×480 and 1280×720 (1.5 Mbit/s, 30 fps), in the
//! same run, Opus encode/decode of a 20 ms frame,
//! I420↔RGBA conversion, scaling a picture to fit a smaller call (and the ladder's exact halving
//! beside it), and the audio processor (echo cancellation, noise suppression, gain
//! control, high-pass) per 10 ms chunk on the synthetic echo path of the tests. Results and
//! targets: docs/benchmarks.md (media section, "Audio processing (issue 15)").

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use media::echo_sim::{EchoPath, speech_like};
use media::{
    AudioProcessor, EncoderConfig, OpusDecoder, OpusEncoder, PROCESSING_CHUNK_SAMPLES,
    ProcessingConfig, Scaler, TestPattern, Tone, VideoCodec, VideoDecoder, VideoEncoder,
    VideoFrame,
};

const SIZES: [(u32, u32); 2] = [(640, 480), (1280, 720)];
/// Distinct source frames cycled through, so the encoder always sees motion.
const FRAMES: u32 = 60;

fn frames(width: u32, height: u32) -> Vec<VideoFrame> {
    let pattern = TestPattern::new(width, height, 30);
    (0..FRAMES)
        .map(|n| {
            pattern
                .render(n, u64::from(n) * 33_333)
                .expect("pattern renders")
        })
        .collect()
}

fn video(c: &mut Criterion) {
    for (w, h) in SIZES {
        let frames = frames(w, h);
        for codec in VideoCodec::ALL {
            codec_pair(c, codec, w, h, &frames);
        }
        let mut group = c.benchmark_group(format!("convert_{w}x{h}"));
        group.sample_size(30);
        let frame = &frames[0];
        let mut rgba = vec![0u8; (w * h * 4) as usize];
        group.bench_function("i420_to_rgba", |b| {
            b.iter(|| frame.write_rgba(black_box(&mut rgba)).expect("convert"));
        });
        let rgba = frame.to_rgba().expect("rgba");
        group.bench_function("rgba_to_i420", |b| {
            b.iter(|| VideoFrame::from_rgba(w, h, black_box(&rgba), 0).expect("convert"));
        });
        // A camera mode larger than the call asks for, scaled to fit the next size down.
        let (fit_w, fit_h) = (w / 2, h / 2);
        let mut scaler = Scaler::new();
        group.bench_function(format!("scale_to_fit_{fit_w}x{fit_h}"), |b| {
            b.iter(|| {
                scaler
                    .fit(black_box(frame.clone()), fit_w, fit_h)
                    .expect("scale")
            });
        });
        group.bench_function("half_size", |b| b.iter(|| black_box(frame).half_size()));
        group.finish();
    }
}

/// Encode and decode of `codec` at `w`×`h`, benchmark group `h264_WxH` or `vp8_WxH`.
fn codec_pair(c: &mut Criterion, codec: VideoCodec, w: u32, h: u32, frames: &[VideoFrame]) {
    let encoder = || VideoEncoder::new(codec, EncoderConfig::default()).expect("encoder");
    let name = match codec {
        VideoCodec::H264 => "h264",
        VideoCodec::Vp8 => "vp8",
    };
    {
        let mut group = c.benchmark_group(format!("{name}_{w}x{h}"));
        group.sample_size(30);

        let mut enc = encoder();
        let mut n: u32 = 0;
        group.bench_function("encode", |b| {
            b.iter(|| {
                // Advance capture times monotonically so rate control sees 30 fps.
                let mut frame = frames[(n % FRAMES) as usize].clone();
                frame.capture_time_us = u64::from(n) * 33_333;
                n += 1;
                black_box(enc.encode(&frame).expect("encode"))
            });
        });

        // Decode a pre-encoded one-keyframe stream, restarting it when it runs out.
        let mut enc = encoder();
        let stream: Vec<Vec<u8>> = (0..300u32)
            .filter_map(|i| {
                let mut frame = frames[(i % FRAMES) as usize].clone();
                frame.capture_time_us = u64::from(i) * 33_333;
                enc.encode(&frame).expect("encode").map(|e| e.data)
            })
            .collect();
        let mut dec = VideoDecoder::new(codec).expect("decoder");
        let mut i = 0;
        group.bench_function("decode", |b| {
            b.iter(|| {
                if i == stream.len() {
                    dec = VideoDecoder::new(codec).expect("decoder");
                    i = 0;
                }
                let out = dec.decode(&stream[i]).expect("decode");
                i += 1;
                black_box(out)
            });
        });
        group.finish();
    }
}

fn opus(c: &mut Criterion) {
    let mut group = c.benchmark_group("opus_48k_20ms");
    for channels in [1u8, 2] {
        let tone = Tone {
            channels,
            ..Tone::new(440.0)
        };
        let frames: Vec<_> = (0..50).map(|i| tone.frame(i, 0)).collect();
        let bitrate = 32_000 * u32::from(channels);
        let mut enc = OpusEncoder::new(channels, bitrate).expect("encoder");
        let mut n = 0;
        group.bench_function(format!("encode_{channels}ch"), |b| {
            b.iter(|| {
                n += 1;
                black_box(enc.encode(&frames[n % frames.len()]).expect("encode"))
            });
        });
        // libopus' default complexity, for comparison with ours (5).
        let mut best = OpusEncoder::new(channels, bitrate).expect("encoder");
        best.set_complexity(10).expect("complexity");
        group.bench_function(format!("encode_{channels}ch_complexity10"), |b| {
            b.iter(|| {
                n += 1;
                black_box(best.encode(&frames[n % frames.len()]).expect("encode"))
            });
        });
        let packets: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| enc.encode(f).expect("encode"))
            .collect();
        let mut dec = OpusDecoder::new(channels).expect("decoder");
        group.bench_function(format!("decode_{channels}ch"), |b| {
            b.iter(|| {
                n += 1;
                black_box(dec.decode(&packets[n % packets.len()]).expect("decode"))
            });
        });
    }
    group.finish();
}

/// One 10 ms step of a call's capture path: the far-end chunk in, the microphone chunk
/// processed. Far end and near end both talk (speech-like, 10 s cycled), the echo comes through
/// the tests' 40 ms / 100 ms-tail / −6 dB path: the canceller's busiest case.
fn processor(c: &mut Criterion) {
    let len = 10 * 48_000;
    let far = speech_like(1, len, 48_000);
    let near = speech_like(2, len, 48_000);
    let echo = EchoPath::new(40, 100, -6.0, 48_000).apply(&far);
    let mic: Vec<f32> = echo.iter().zip(&near).map(|(e, n)| e + n).collect();
    let chunks = len / PROCESSING_CHUNK_SAMPLES;
    let mut group = c.benchmark_group("processor_48k_10ms");
    for (name, config, enabled) in [
        ("full", ProcessingConfig::default(), true),
        ("echo_only", ProcessingConfig::ECHO_ONLY, true),
        ("disabled", ProcessingConfig::default(), false),
    ] {
        let mut processor = AudioProcessor::new(config);
        processor.set_enabled(enabled);
        let mut chunk = vec![0.0f32; PROCESSING_CHUNK_SAMPLES];
        let mut n = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let at = (n % chunks) * PROCESSING_CHUNK_SAMPLES;
                n += 1;
                let span = at..at + PROCESSING_CHUNK_SAMPLES;
                processor
                    .process_render(&far[span.clone()])
                    .expect("render");
                chunk.copy_from_slice(&mic[span]);
                processor
                    .process_capture(black_box(&mut chunk))
                    .expect("capture");
            });
        });
    }
    group.finish();
}

criterion_group!(benches, video, opus, processor);
criterion_main!(benches);
