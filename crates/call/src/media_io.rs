//! The media paths of a connected call, on named OS threads and short tokio tasks:
//!
//! - `duet-video-send`: source → (preview slot) → H.264 encoder → RTP track, paced by the
//!   capture timestamps; the encoder's bitrate follows the congestion controller's estimate
//!   (every [`RATE_UPDATE_INTERVAL`]); honours keyframe requests (PLI/FIR) and camera
//!   on/off/switch.
//! - `duet-audio-send`: source → Opus encoder → RTP track (silence while muted).
//! - remote video: RTP → [`FrameAssembler`] (reorders, waits about a round trip for NACK
//!   retransmissions) → decode worker → `duet-video-out` (remote slot, pattern stamps,
//!   latency, freezes); PLI only when a frame was lost for good or the decoder needs a
//!   keyframe, at most one per [`PLI_INTERVAL`].
//! - remote audio: RTP → jitter buffer → `duet-audio-out` every 20 ms → Opus decode/conceal →
//!   sink.
//!
//! Every hand-over is a bounded channel or a latest-value slot; a slow stage drops video
//! frames (counted) instead of queueing them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use media::{
    AudioCapture, AudioFrame, AudioSink, AudioSource, Camera, DecodeWorker, H264Config,
    H264Encoder, JitterBuffer, JitterConfig, NullSink, OpusDecoder, OpusEncoder, Playout, Silence,
    Speaker, TestPattern, Tone, VideoCapture, VideoFrame, VideoSource, read_pattern_stamp,
    unix_time_us,
};
use rtc::media::Sample;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::assembler::FrameAssembler;
use crate::config::{AudioChoice, SpeakerChoice, VideoChoice};
use crate::events::FrameSlot;
use crate::peer::BandwidthEstimate;

/// Minimum time between two PLIs sent for the same stream: a keyframe takes a round trip
/// plus its own transmission time to arrive, and asking again sooner only makes the sender
/// spend its budget on keyframes (measured in the lab: a 300 ms interval on a 1 Mbit/s link
/// fed a keyframe-per-request spiral).
pub const PLI_INTERVAL: Duration = Duration::from_millis(500);
/// Minimum time between two keyframes the sender makes on request (or twice the round trip,
/// if longer).
pub const MIN_KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);
/// How often the video sender applies the bandwidth estimate to the encoder.
pub const RATE_UPDATE_INTERVAL: Duration = Duration::from_millis(200);
/// The lowest video bitrate the encoder is asked for, bits per second.
pub const MIN_VIDEO_BPS: u32 = 60_000;
/// Share of the estimate left for RTP/SRTP headers and retransmissions.
pub const OVERHEAD_SHARE: f64 = 0.10;
/// How fast the sender's rate may climb towards a higher estimate, per
/// [`RATE_UPDATE_INTERVAL`] (×1.03 every 200 ms ≈ +16 % a second). Decreases apply at once.
///
/// webrtc-rs 0.21's GCC raises its estimate by a factor per feedback report and has no
/// "application limited" check, so the raw estimate runs far above what the link carries
/// before the delay or loss detector reacts; following it directly overshot a 1 Mbit/s cap
/// within 3 s and collapsed to the minimum (measured in the lab). Ramping the sender's own
/// rate gives the detectors time to see the queue grow.
pub const RAMP_UP_PER_UPDATE: f64 = 1.03;

/// No transport-wide feedback for this long means the estimate is stale (see
/// [`BACKOFF_PER_UPDATE`]).
pub const FEEDBACK_TIMEOUT: Duration = Duration::from_millis(600);
/// While feedback is missing, the sender's rate shrinks by this factor every
/// [`RATE_UPDATE_INTERVAL`] (halving in about 0.8 s).
pub const BACKOFF_PER_UPDATE: f64 = 0.85;

/// The rate the sender allows itself: follows the congestion controller's estimate down at
/// once and up at most [`RAMP_UP_PER_UPDATE`] per update.
#[must_use]
pub fn ramp_toward(current_bps: f64, estimate_bps: f64) -> f64 {
    if estimate_bps <= current_bps {
        estimate_bps
    } else {
        estimate_bps.min(current_bps * RAMP_UP_PER_UPDATE)
    }
}

/// The video encoder's bitrate for a bandwidth estimate: what is left after audio and packet
/// overhead, between [`MIN_VIDEO_BPS`] and the configured maximum.
#[must_use]
pub fn video_bitrate_for(estimate_bps: f64, audio_bps: u32, max_video_bps: u32) -> u32 {
    let available = estimate_bps * (1.0 - OVERHEAD_SHARE) - f64::from(audio_bps);
    (available.max(0.0) as u32).clamp(MIN_VIDEO_BPS.min(max_video_bps), max_video_bps)
}

/// Browsers' definition of a freeze (webrtc-stats `freezeCount`): a gap between two shown
/// frames longer than three average frame intervals and at least 150 ms more than the average.
#[derive(Debug, Default, Clone)]
pub struct FreezeDetector {
    last: Option<Instant>,
    avg_interval_ms: Option<f64>,
    /// Freezes so far.
    pub count: u64,
    /// Their total duration, milliseconds.
    pub total_ms: f64,
    /// The longest one, milliseconds.
    pub longest_ms: f64,
    /// The most recent freezes: when each ended and how long it was (at most
    /// [`FreezeDetector::RECENT`]).
    pub recent: std::collections::VecDeque<(Instant, f64)>,
}

impl FreezeDetector {
    /// How many recent freezes are kept.
    pub const RECENT: usize = 64;

    /// A frame was shown at `now`.
    pub fn frame(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let gap = now.saturating_duration_since(last).as_secs_f64() * 1000.0;
            if let Some(avg) = self.avg_interval_ms
                && gap > (3.0 * avg).max(avg + 150.0)
            {
                self.count += 1;
                self.total_ms += gap;
                self.longest_ms = self.longest_ms.max(gap);
                if self.recent.len() >= Self::RECENT {
                    self.recent.pop_front();
                }
                self.recent.push_back((now, gap));
            }
            // A moving average over about 30 frames, as browsers keep.
            self.avg_interval_ms = Some(match self.avg_interval_ms {
                Some(avg) => avg + (gap - avg) / 30.0,
                None => gap,
            });
        }
        self.last = Some(now);
    }
}

/// A callback that wakes whoever displays frames (the UI's `request_repaint`).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Counters shared by the media threads and read by the stats task.
#[derive(Debug, Default)]
pub struct MediaCounters {
    pub frames_sent: AtomicU64,
    pub video_bytes_sent: AtomicU64,
    pub encode_us_total: AtomicU64,
    pub video_bytes_received: AtomicU64,
    pub frames_decoded: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub audio_played: AtomicU64,
    pub audio_concealed: AtomicU64,
    pub plis_sent: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub keyframes_sent: AtomicU64,
    /// The rate the video sender allows itself (audio and overhead included), bits/s: the
    /// congestion controller's estimate, ramped (see [`ramp_toward`]).
    pub target_bps: AtomicU64,
    /// The congestion controller's raw estimate, bits/s.
    pub estimate_bps: AtomicU64,
    /// The bitrate the video encoder is set to, bits/s.
    pub encoder_bps: AtomicU64,
    /// Video frames the receiver gave up (incomplete after the wait for retransmissions).
    pub frames_lost: AtomicU64,
    /// Video packets that arrived after a later one: reordered, or recovered by NACK.
    pub packets_recovered: AtomicU64,
    /// The receiver's current wait for a missing packet, microseconds.
    pub reorder_wait_us: AtomicU64,
    /// Smoothed round-trip time of the selected candidate pair, microseconds (0 = unknown).
    pub rtt_us: AtomicU64,
    /// Freezes of the remote video (see [`FreezeDetector`]).
    pub freezes: Mutex<FreezeDetector>,
    /// Set by the session to make the video receiver send a PLI now.
    pub send_pli_now: AtomicBool,
    pub want_keyframe: AtomicBool,
    pub send_width: AtomicU64,
    pub send_height: AtomicU64,
    pub recv_width: AtomicU64,
    pub recv_height: AtomicU64,
    pub mic_muted: AtomicBool,
    pub camera_off: AtomicBool,
    pub pattern: Mutex<PatternTrace>,
    pub first_frame_at: Mutex<Option<Instant>>,
    pub dominant_hz: Mutex<Option<f64>>,
}

/// What the receiver saw of the sender's test pattern.
#[derive(Debug, Clone, Default)]
pub struct PatternTrace {
    pub first: Option<u32>,
    pub last: Option<u32>,
    pub frames: u64,
    pub out_of_order: u64,
    /// Glass-to-glass latencies over the whole call, as a histogram: recording is O(1) and a
    /// quantile is O(buckets), whatever the call's length (see [`LatencyHistogram`]).
    pub latencies: LatencyHistogram,
}

impl PatternTrace {
    /// One decoded frame carried `counter`, `latency_ms` after its capture.
    pub fn record(&mut self, counter: u32, latency_ms: f64) {
        // A repeated counter is a repeated picture (a sender re-sending a frame to keep its
        // rate), not disorder; only going backwards counts.
        if let Some(last) = self.last
            && counter < last
        {
            self.out_of_order += 1;
        }
        self.first.get_or_insert(counter);
        self.last = Some(counter);
        self.frames += 1;
        self.latencies.record(latency_ms);
    }

    /// The `q` quantile of the latencies, ms.
    #[must_use]
    pub fn latency_quantile(&self, q: f64) -> Option<f64> {
        self.latencies.quantile(q)
    }
}

/// Milliseconds in fixed buckets: 0.1 ms wide up to [`LatencyHistogram::FINE_MS`], 5 ms wide
/// up to [`LatencyHistogram::MAX_MS`], and one bucket for anything longer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
}

impl LatencyHistogram {
    /// Where the fine buckets end, ms.
    pub const FINE_MS: f64 = 500.0;
    /// Where the coarse buckets end, ms.
    pub const MAX_MS: f64 = 10_000.0;
    const FINE_STEP: f64 = 0.1;
    const COARSE_STEP: f64 = 5.0;
    const FINE: usize = (Self::FINE_MS / Self::FINE_STEP) as usize;
    const COARSE: usize = ((Self::MAX_MS - Self::FINE_MS) / Self::COARSE_STEP) as usize;

    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        Self {
            counts: vec![0; Self::FINE + Self::COARSE + 1],
            total: 0,
        }
    }

    fn bucket(ms: f64) -> usize {
        let ms = if ms.is_finite() {
            ms.max(0.0)
        } else {
            Self::MAX_MS
        };
        if ms < Self::FINE_MS {
            (ms / Self::FINE_STEP) as usize
        } else if ms < Self::MAX_MS {
            Self::FINE + ((ms - Self::FINE_MS) / Self::COARSE_STEP) as usize
        } else {
            Self::FINE + Self::COARSE
        }
    }

    fn midpoint(bucket: usize) -> f64 {
        if bucket < Self::FINE {
            (bucket as f64 + 0.5) * Self::FINE_STEP
        } else if bucket < Self::FINE + Self::COARSE {
            Self::FINE_MS + ((bucket - Self::FINE) as f64 + 0.5) * Self::COARSE_STEP
        } else {
            Self::MAX_MS
        }
    }

    /// Adds one latency (negative counts as 0, NaN or longer than `MAX_MS` as `MAX_MS`).
    pub fn record(&mut self, ms: f64) {
        let b = Self::bucket(ms);
        if let Some(c) = self.counts.get_mut(b) {
            *c += 1;
            self.total += 1;
        }
    }

    /// How many were recorded.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether none were.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The `q` quantile (0–1), to the bucket's middle; `None` when empty.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((self.total - 1) as f64 * q.clamp(0.0, 1.0)).round() as u64;
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen > rank {
                return Some(Self::midpoint(b));
            }
        }
        None
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// RTP sample duration for `delta_us` at `clock_hz`, rounded so webrtc-rs (which truncates
/// `duration * clock`) advances the timestamp by the intended number of ticks.
fn sample_duration(delta_us: u64, clock_hz: u64) -> Duration {
    let ticks = (delta_us * clock_hz + 500_000) / 1_000_000;
    // Ceil to whole nanoseconds so truncation lands exactly on `ticks`.
    Duration::from_nanos((ticks * 1_000_000_000).div_ceil(clock_hz))
}

/// Settings for the video sender.
#[derive(Debug, Clone)]
pub struct VideoSendConfig {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// The most the encoder may use, bits/s (the congestion controller may allow less).
    pub bitrate_bps: u32,
    /// The audio bitrate, left out of the estimate the video gets.
    pub audio_bps: u32,
}

/// Commands to the video send thread.
#[derive(Debug)]
pub enum VideoCmd {
    Switch(VideoChoice),
}

fn open_video(choice: &VideoChoice, cfg: &VideoSendConfig) -> Result<Option<VideoCapture>, String> {
    match choice {
        VideoChoice::TestPattern => TestPattern::new(cfg.width, cfg.height, cfg.fps)
            .start(2)
            .map(Some)
            .map_err(|e| e.to_string()),
        VideoChoice::Camera(i) => Camera::new(*i, cfg.width, cfg.height, cfg.fps)
            .start(2)
            .map(Some)
            .map_err(|e| format!("camera {i} cannot be used: {e}")),
        VideoChoice::None => Ok(None),
    }
}

/// Spawns `duet-preview`: the local source shown in the self-view while no call is connected
/// (waiting for someone, negotiating). Source errors are reported when the call starts sending.
pub fn spawn_preview(
    choice: VideoChoice,
    cfg: VideoSendConfig,
    preview: Arc<FrameSlot>,
    wake: Waker,
) -> std::io::Result<Worker> {
    Worker::spawn("duet-preview", move |stop| {
        let Ok(Some(capture)) = open_video(&choice, &cfg) else {
            return;
        };
        while !stop.load(Ordering::Relaxed) {
            if let Some(frame) = capture.recv_timeout(Duration::from_millis(100)) {
                preview.put(frame);
                wake();
            }
        }
    })
}

/// A running media thread; stopping joins it.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    fn spawn(
        name: &str,
        body: impl FnOnce(Arc<AtomicBool>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || body(flag))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Spawns `duet-video-send`. `warn` reports device problems (the call goes on).
#[allow(clippy::too_many_arguments)]
pub fn spawn_video_sender(
    rt: tokio::runtime::Handle,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    payload_type: u8,
    mut choice: VideoChoice,
    cfg: VideoSendConfig,
    counters: Arc<MediaCounters>,
    preview: Arc<FrameSlot>,
    commands: Receiver<VideoCmd>,
    estimate: Arc<BandwidthEstimate>,
    warn: Arc<dyn Fn(String) + Send + Sync>,
    wake: Waker,
) -> std::io::Result<Worker> {
    Worker::spawn("duet-video-send", move |stop| {
        let mut bitrate_bps =
            video_bitrate_for(estimate.bps(), cfg.audio_bps, cfg.bitrate_bps).max(1);
        let h264 = H264Config {
            bitrate_bps,
            fps: cfg.fps as f32,
            keyframe_interval: 0,
        };
        let mut encoder = match H264Encoder::new(h264) {
            Ok(e) => e,
            Err(e) => {
                warn(format!("the H.264 encoder cannot start: {e}"));
                return;
            }
        };
        let mut capture = match open_video(&choice, &cfg) {
            Ok(c) => c,
            Err(e) => {
                warn(e);
                None
            }
        };
        let black_interval = Duration::from_millis(200);
        let mut last_capture_us: Option<u64> = None;
        let mut next_black = Instant::now();
        let mut dropped_before = 0;
        let mut next_rate_update = Instant::now();
        let mut allowed_bps = estimate.bps();
        let mut last_keyframe: Option<Instant> = None;
        counters
            .encoder_bps
            .store(u64::from(bitrate_bps), Ordering::Relaxed);
        while !stop.load(Ordering::Relaxed) {
            if Instant::now() >= next_rate_update {
                next_rate_update = Instant::now() + RATE_UPDATE_INTERVAL;
                let now = Instant::now();
                let estimated = estimate.bps();
                allowed_bps = match estimate.since_last_report(now) {
                    // No feedback for a while: the link is too congested for it to get
                    // through, and the estimate is stale. Back off until it returns.
                    Some(silence) if silence > FEEDBACK_TIMEOUT => {
                        (allowed_bps * BACKOFF_PER_UPDATE).max(f64::from(MIN_VIDEO_BPS))
                    }
                    _ => ramp_toward(allowed_bps, estimated),
                };
                let target = allowed_bps;
                counters
                    .estimate_bps
                    .store(estimated as u64, Ordering::Relaxed);
                counters.target_bps.store(target as u64, Ordering::Relaxed);
                let want = video_bitrate_for(target, cfg.audio_bps, cfg.bitrate_bps);
                // Small wobbles are not worth a rate-control reset.
                if want.abs_diff(bitrate_bps) > bitrate_bps / 20 {
                    match encoder.set_bitrate(want) {
                        Ok(()) => {
                            bitrate_bps = want;
                            counters
                                .encoder_bps
                                .store(u64::from(want), Ordering::Relaxed);
                        }
                        Err(e) => tracing::debug!(error = %e, "setting the bitrate failed"),
                    }
                }
            }
            match commands.try_recv() {
                Ok(VideoCmd::Switch(new)) => {
                    drop(capture.take());
                    choice = new;
                    capture = match open_video(&choice, &cfg) {
                        Ok(c) => c,
                        Err(e) => {
                            warn(e);
                            None
                        }
                    };
                    encoder.request_keyframe();
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => break,
            }
            let camera_off = counters.camera_off.load(Ordering::Relaxed);
            let frame = match (&capture, camera_off) {
                (Some(c), false) => match c.recv_timeout(Duration::from_millis(100)) {
                    Some(f) => {
                        let dropped = c.stats().dropped();
                        counters
                            .frames_dropped
                            .fetch_add(dropped - dropped_before.min(dropped), Ordering::Relaxed);
                        dropped_before = dropped;
                        f
                    }
                    None => {
                        if c.is_finished() {
                            warn(format!("{choice} stopped delivering pictures"));
                            capture = None;
                        }
                        continue;
                    }
                },
                _ => {
                    // Camera off or no source: a black picture a few times a second keeps the
                    // other side's decoder and layout alive.
                    let now = Instant::now();
                    if now < next_black {
                        std::thread::sleep((next_black - now).min(Duration::from_millis(50)));
                        continue;
                    }
                    next_black = now + black_interval;
                    match VideoFrame::new_black(cfg.width, cfg.height, unix_time_us()) {
                        Ok(f) => f,
                        Err(_) => continue,
                    }
                }
            };
            if !camera_off {
                preview.put(frame.clone());
                wake();
            }
            // At most one keyframe per window: requests arriving sooner (a receiver asking
            // again while the last keyframe is still on its way) wait for the window's end.
            let rtt = Duration::from_micros(counters.rtt_us.load(Ordering::Relaxed));
            let window = (rtt * 2).max(MIN_KEYFRAME_INTERVAL);
            if last_keyframe.is_none_or(|t| t.elapsed() >= window)
                && counters.want_keyframe.swap(false, Ordering::Relaxed)
            {
                encoder.request_keyframe();
            }
            let started = Instant::now();
            let encoded = match encoder.encode(&frame) {
                Ok(Some(e)) => e,
                Ok(None) => continue, // rate control skipped this frame
                Err(e) => {
                    tracing::debug!(error = %e, "encode failed");
                    continue;
                }
            };
            counters
                .encode_us_total
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            let delta_us = match last_capture_us {
                Some(last) if encoded.capture_time_us > last => {
                    (encoded.capture_time_us - last).min(1_000_000)
                }
                _ => 1_000_000 / u64::from(cfg.fps.max(1)),
            };
            last_capture_us = Some(encoded.capture_time_us);
            let bytes = encoded.data.len() as u64;
            let sample = Sample {
                data: Bytes::from(encoded.data),
                duration: sample_duration(delta_us, 90_000),
                ..Sample::new(Instant::now())
            };
            if let Err(e) = rt.block_on(track.write_sample(ssrc, payload_type, &sample, &[])) {
                tracing::debug!(error = %e, "video write failed");
                continue;
            }
            counters.frames_sent.fetch_add(1, Ordering::Relaxed);
            if encoded.keyframe {
                counters.keyframes_sent.fetch_add(1, Ordering::Relaxed);
                last_keyframe = Some(Instant::now());
            }
            counters
                .video_bytes_sent
                .fetch_add(bytes, Ordering::Relaxed);
            counters
                .send_width
                .store(u64::from(encoded.width), Ordering::Relaxed);
            counters
                .send_height
                .store(u64::from(encoded.height), Ordering::Relaxed);
        }
    })
}

/// Commands to the audio send thread.
#[derive(Debug)]
pub enum AudioCmd {
    Switch(AudioChoice),
}

fn open_audio(choice: &AudioChoice) -> Result<Option<AudioCapture>, String> {
    match choice {
        AudioChoice::Tone(hz) => Tone::new(*hz).start(4).map(Some).map_err(|e| e.to_string()),
        AudioChoice::Microphone(name) => media::Microphone::new(name.as_deref())
            .start(4)
            .map(Some)
            .map_err(|e| format!("the microphone cannot be used: {e}")),
        AudioChoice::None => Silence { channels: 1 }
            .start(4)
            .map(Some)
            .map_err(|e| e.to_string()),
    }
}

/// Spawns `duet-audio-send`.
#[allow(clippy::too_many_arguments)]
pub fn spawn_audio_sender(
    rt: tokio::runtime::Handle,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    payload_type: u8,
    mut choice: AudioChoice,
    bitrate_bps: u32,
    counters: Arc<MediaCounters>,
    commands: Receiver<AudioCmd>,
    warn: Arc<dyn Fn(String) + Send + Sync>,
) -> std::io::Result<Worker> {
    Worker::spawn("duet-audio-send", move |stop| {
        let mut encoder = match OpusEncoder::new(1, bitrate_bps) {
            Ok(e) => e,
            Err(e) => {
                warn(format!("the Opus encoder cannot start: {e}"));
                return;
            }
        };
        let _ = encoder.set_packet_loss_perc(10);
        let mut capture = open_audio(&choice).unwrap_or_else(|e| {
            warn(e);
            open_audio(&AudioChoice::None).ok().flatten()
        });
        while !stop.load(Ordering::Relaxed) {
            if let Ok(AudioCmd::Switch(new)) = commands.try_recv() {
                drop(capture.take());
                choice = new;
                capture = open_audio(&choice).unwrap_or_else(|e| {
                    warn(e);
                    open_audio(&AudioChoice::None).ok().flatten()
                });
            }
            let Some(c) = &capture else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let Some(mut frame) = c.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            if frame.channels() != 1 {
                match frame.to_channels(1) {
                    Ok(mono) => frame = mono,
                    Err(_) => continue,
                }
            }
            if counters.mic_muted.load(Ordering::Relaxed) {
                frame.samples_mut().fill(0.0);
            }
            let Ok(packet) = encoder.encode(&frame) else {
                continue;
            };
            let sample = Sample {
                data: Bytes::from(packet),
                duration: Duration::from_millis(20),
                ..Sample::new(Instant::now())
            };
            if let Err(e) = rt.block_on(track.write_sample(ssrc, payload_type, &sample, &[])) {
                tracing::debug!(error = %e, "audio write failed");
            }
        }
    })
}

/// Drains RTCP arriving for a local track; PLI/FIR on the video track request a keyframe.
pub async fn drain_sender_rtcp(
    track: Arc<TrackLocalStaticSample>,
    counters: Arc<MediaCounters>,
    video: bool,
) {
    while let Some(event) = track.poll().await {
        if let TrackLocalEvent::OnRtcpPacket(packets) = event
            && video
        {
            note_keyframe_requests(&packets, &counters);
        }
    }
}

/// Counts PLI/FIR in `packets` and asks the video sender for a keyframe. webrtc-rs routes a
/// compound RTCP packet by its first packet's SSRC, so in a two-way call a PLI bundled after
/// the peer's sender report arrives on the *remote* track: both paths call this.
pub fn note_keyframe_requests(packets: &[Box<dyn rtc::rtcp::Packet>], counters: &MediaCounters) {
    for p in packets {
        let any = p.as_any();
        if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
            counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            counters.want_keyframe.store(true, Ordering::Relaxed);
        }
    }
}

/// Receives the remote video track until it ends: RTP → access units → decoder (with PLIs),
/// and `duet-video-out` publishing frames. Runs on the engine's runtime.
pub async fn receive_video(
    track: Arc<dyn TrackRemote>,
    counters: Arc<MediaCounters>,
    remote: Arc<FrameSlot>,
    wake: Waker,
    ready_at: Arc<Mutex<Option<Instant>>>,
) {
    let decoder = match DecodeWorker::spawn(4) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "the H.264 decoder cannot start");
            return;
        }
    };
    let out = decoder.output().clone();
    let out_counters = counters.clone();
    let out_remote = remote.clone();
    let out_wake = wake.clone();
    let output = Worker::spawn("duet-video-out", move |stop| {
        while !stop.load(Ordering::Relaxed) {
            let frame = match out.recv_timeout(Duration::from_millis(100)) {
                Ok(f) => f,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let now_us = unix_time_us();
            {
                let mut first = lock(&out_counters.first_frame_at);
                if first.is_none() {
                    *first = Some(Instant::now());
                }
            }
            out_counters.frames_decoded.fetch_add(1, Ordering::Relaxed);
            lock(&out_counters.freezes).frame(Instant::now());
            out_counters
                .recv_width
                .store(u64::from(frame.width()), Ordering::Relaxed);
            out_counters
                .recv_height
                .store(u64::from(frame.height()), Ordering::Relaxed);
            if let Some(stamp) = read_pattern_stamp(&frame) {
                let latency_ms = now_us.saturating_sub(stamp.capture_time_us) as f64 / 1000.0;
                lock(&out_counters.pattern).record(stamp.counter, latency_ms);
            }
            out_remote.put(frame);
            out_wake();
        }
    });
    let _ = ready_at; // setup time is computed from `first_frame_at` by the session
    let ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
    let codec = track
        .codec(ssrc)
        .await
        .map(|c| format!("{} {}", c.mime_type, c.sdp_fmtp_line));
    tracing::debug!(ssrc, ?codec, "remote video track");
    let mut assembler = FrameAssembler::new();
    let mut last_pli: Option<Instant> = None;
    let send_pli = async |counters: &MediaCounters, last_pli: &mut Option<Instant>| {
        if last_pli.is_some_and(|t| t.elapsed() < PLI_INTERVAL) {
            return;
        }
        *last_pli = Some(Instant::now());
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        match track.write_rtcp(vec![Box::new(pli)]).await {
            Ok(()) => {
                counters.plis_sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "sending a PLI failed"),
        }
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    loop {
        // Wake for the next packet, the end of a wait for a missing one, or the PLI tick.
        let hole_deadline = assembler.deadline();
        let event = tokio::select! {
            e = track.poll() => Some(e),
            () = async {
                match hole_deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => None,
            _ = ticker.tick() => {
                // Keep asking while the decoder waits for a keyframe (rate-limited), and honour
                // an explicit request from the owner.
                if counters.send_pli_now.swap(false, Ordering::Relaxed) {
                    last_pli = None;
                    send_pli(&counters, &mut last_pli).await;
                } else if counters.video_bytes_received.load(Ordering::Relaxed) > 0 && decoder.needs_keyframe() {
                    send_pli(&counters, &mut last_pli).await;
                }
                // Wait about a round trip plus the NACK generator's 100 ms interval.
                let rtt = Duration::from_micros(counters.rtt_us.load(Ordering::Relaxed));
                let wait = (rtt * 3 / 2 + Duration::from_millis(120))
                    .clamp(Duration::from_millis(120), Duration::from_millis(500));
                assembler.set_wait(wait);
                counters.reorder_wait_us.store(wait.as_micros() as u64, Ordering::Relaxed);
                continue;
            }
        };
        if let Some(event) = event {
            let Some(event) = event else { break };
            match event {
                TrackRemoteEvent::OnRtpPacket(packet) => {
                    tracing::trace!(
                        pt = packet.header.payload_type,
                        seq = packet.header.sequence_number,
                        len = packet.payload.len(),
                        marker = packet.header.marker,
                        "video rtp"
                    );
                    counters
                        .video_bytes_received
                        .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
                    assembler.push(&packet, Instant::now());
                }
                TrackRemoteEvent::OnRtcpPacket(packets) => {
                    note_keyframe_requests(&packets, &counters);
                    continue;
                }
                TrackRemoteEvent::OnEnded => break,
                _ => continue,
            }
        }
        let mut lost = false;
        while let Some(unit) = assembler.poll(Instant::now()) {
            tracing::trace!(
                len = unit.data.len(),
                after_loss = unit.after_loss,
                "video access unit"
            );
            if unit.after_loss {
                decoder.report_loss();
                lost = true;
            }
            if !decoder.push(unit.data) {
                counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        let stats = assembler.stats();
        counters
            .frames_lost
            .store(stats.frames_lost, Ordering::Relaxed);
        counters
            .packets_recovered
            .store(stats.packets_recovered, Ordering::Relaxed);
        if lost {
            send_pli(&counters, &mut last_pli).await;
        }
    }
    drop(decoder);
    drop(output);
    remote.clear();
    wake();
}

/// Builds the audio sink for `choice`; a speaker that cannot open falls back to a null sink
/// and the reason is returned for a warning.
pub fn open_sink(choice: &SpeakerChoice) -> (Box<dyn AudioSink>, Option<String>) {
    match choice {
        SpeakerChoice::Null => (Box::new(NullSink::new()), None),
        SpeakerChoice::Device(name) => match Speaker::open(name.as_deref()) {
            Ok(speaker) => (Box::new(speaker), None),
            Err(e) => (
                Box::new(NullSink::new()),
                Some(format!(
                    "no sound output ({e}); the call goes on without sound"
                )),
            ),
        },
    }
}

/// Receives the remote audio track until it ends: RTP → jitter buffer; `duet-audio-out`
/// plays out every 20 ms into the sink.
pub async fn receive_audio(
    track: Arc<dyn TrackRemote>,
    counters: Arc<MediaCounters>,
    speaker: SpeakerChoice,
    speaker_switch: Arc<Mutex<Option<SpeakerChoice>>>,
    warn: Arc<dyn Fn(String) + Send + Sync>,
) {
    let jitter = Arc::new(Mutex::new(JitterBuffer::new(JitterConfig::default())));
    let playout_jitter = jitter.clone();
    let out_counters = counters.clone();
    let playout = Worker::spawn("duet-audio-out", move |stop| {
        let mut decoder = match OpusDecoder::new(1) {
            Ok(d) => d,
            Err(e) => {
                warn(format!("the Opus decoder cannot start: {e}"));
                return;
            }
        };
        let (mut sink, problem) = open_sink(&speaker);
        if let Some(p) = problem {
            warn(p);
        }
        let mut analysis: Vec<f32> = Vec::with_capacity(48_000);
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            next += Duration::from_millis(20);
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else if now - next > Duration::from_millis(200) {
                next = now; // fell far behind (suspend, debugger): resynchronise
            }
            if let Some(new) = lock(&speaker_switch).take() {
                let (s, problem) = open_sink(&new);
                sink = s;
                if let Some(p) = problem {
                    warn(p);
                }
            }
            let slot = lock(&playout_jitter).pop();
            let frame: Option<AudioFrame> = match slot {
                Playout::Buffering => None,
                Playout::Packet { payload, .. } => decoder.decode(&payload).ok(),
                Playout::Lost { next_payload, .. } => {
                    out_counters.audio_concealed.fetch_add(1, Ordering::Relaxed);
                    match next_payload {
                        Some(next) => decoder
                            .decode_fec(&next)
                            .or_else(|_| decoder.conceal())
                            .ok(),
                        None => decoder.conceal().ok(),
                    }
                }
                #[allow(unreachable_patterns)]
                _ => None,
            };
            let Some(frame) = frame else { continue };
            out_counters.audio_played.fetch_add(1, Ordering::Relaxed);
            analysis.extend_from_slice(frame.samples());
            if analysis.len() >= 48_000 / 2 {
                *lock(&out_counters.dominant_hz) =
                    media::dominant_frequency_hz(&analysis, 48_000.0);
                analysis.clear();
            }
            if let Err(e) = sink.play(&frame) {
                tracing::debug!(error = %e, "sink failed; switching to a null sink");
                sink = Box::new(NullSink::new());
            }
        }
    });
    let mut first = true;
    while let Some(event) = track.poll().await {
        if first {
            first = false;
            let ssrcs = track.ssrcs().await;
            tracing::debug!(?ssrcs, "first audio track event");
        }
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let rtp::Packet {
                    header, payload, ..
                } = packet;
                lock(&jitter).push(header.sequence_number, header.timestamp, payload.to_vec());
            }
            TrackRemoteEvent::OnRtcpPacket(packets) => note_keyframe_requests(&packets, &counters),
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
    drop(playout);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_quantiles() {
        let mut h = LatencyHistogram::new();
        assert_eq!(h.quantile(0.5), None);
        for ms in 1..=100 {
            h.record(f64::from(ms));
        }
        assert_eq!(h.len(), 100);
        let p50 = h.quantile(0.5).unwrap_or_default();
        let p95 = h.quantile(0.95).unwrap_or_default();
        assert!((p50 - 50.5).abs() <= 0.6, "{p50}");
        assert!((p95 - 95.0).abs() <= 1.0, "{p95}");
        // Fine resolution below 500 ms, coarse above, a cap at the top; nothing panics.
        h.record(7.03);
        h.record(1234.0);
        h.record(f64::NAN);
        h.record(-5.0);
        h.record(1e9);
        assert_eq!(h.len(), 105);
        assert_eq!(h.quantile(1.0), Some(LatencyHistogram::MAX_MS));
        assert_eq!(h.quantile(0.0), Some(0.05));
    }

    #[test]
    fn pattern_trace_counts_disorder_not_repeats() {
        let mut t = PatternTrace::default();
        for (counter, ms) in [
            (1, 10.0),
            (2, 12.0),
            (2, 12.0),
            (4, 9.0),
            (3, 30.0),
            (5, 8.0),
        ] {
            t.record(counter, ms);
        }
        assert_eq!((t.first, t.last, t.frames), (Some(1), Some(5), 6));
        assert_eq!(t.out_of_order, 1, "only 4 → 3 went backwards");
        assert!(
            t.latency_quantile(0.5)
                .is_some_and(|p| (p - 10.0).abs() < 2.5)
        );
    }

    #[test]
    fn video_bitrate_leaves_room_for_audio_and_overhead() {
        assert_eq!(video_bitrate_for(1_000_000.0, 32_000, 1_500_000), 868_000);
        assert_eq!(
            video_bitrate_for(10_000_000.0, 32_000, 1_500_000),
            1_500_000
        );
        assert_eq!(video_bitrate_for(0.0, 32_000, 1_500_000), MIN_VIDEO_BPS);
        assert_eq!(
            video_bitrate_for(f64::NAN, 32_000, 1_500_000),
            MIN_VIDEO_BPS
        );
    }

    #[test]
    fn the_sender_ramps_up_slowly_and_down_at_once() {
        assert_eq!(ramp_toward(1_000_000.0, 400_000.0), 400_000.0);
        let up = ramp_toward(1_000_000.0, 3_000_000.0);
        assert!((up - 1_030_000.0).abs() < 1e-6, "{up}");
        assert_eq!(ramp_toward(1_000_000.0, 1_010_000.0), 1_010_000.0);
    }

    #[test]
    fn freezes_as_browsers_count_them() {
        let t = Instant::now();
        let mut f = FreezeDetector::default();
        let mut at = t;
        for _ in 0..60 {
            at += Duration::from_millis(33);
            f.frame(at);
        }
        assert_eq!(f.count, 0, "a steady 30 fps never freezes");
        at += Duration::from_millis(150);
        f.frame(at);
        assert_eq!(f.count, 0, "150 ms is under avg + 150 ms");
        at += Duration::from_millis(600);
        f.frame(at);
        assert_eq!(f.count, 1);
        assert!((f.longest_ms - 600.0).abs() < 1.0);
        assert_eq!(f.recent.len(), 1);
    }

    #[test]
    fn durations_hit_whole_ticks() {
        for (us, clock, ticks) in [
            (33_333u64, 90_000u64, 3000u64),
            (20_000, 48_000, 960),
            (33_334, 90_000, 3000),
            (40_000, 90_000, 3600),
        ] {
            let d = sample_duration(us, clock);
            assert_eq!((d.as_secs_f64() * clock as f64) as u64, ticks, "{us} µs");
        }
    }
}
