//! What the media threads count and the stats read: counters, the test-pattern trace with
//! its latency histogram, and freezes as browsers define them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::time::Instant;

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
    /// The codec of the remote video being decoded: 0 none yet, 1 + its index in
    /// [`media::VideoCodec::ALL`].
    pub recv_codec: AtomicU64,
    /// The rate the video sender allows itself (audio and overhead included), bits/s: the
    /// congestion controller's estimate, ramped (see [`ramp_toward`]).
    pub target_bps: AtomicU64,
    /// The congestion controller's raw estimate, bits/s.
    pub estimate_bps: AtomicU64,
    /// The sender's ladder rung (0 = the configured size, 1 = half, ...; see
    /// [`crate::media_io::rate::Ladder`]).
    pub send_rung: AtomicU64,
    /// 1 while the ladder's last rung halves the frame rate, else 0.
    pub send_fps_halved: AtomicU64,
    /// The bitrate the video encoder is set to, bits/s.
    pub encoder_bps: AtomicU64,
    /// Video frames the receiver gave up (incomplete after the wait for retransmissions).
    pub frames_lost: AtomicU64,
    /// Video packets that arrived after a later one: reordered, or recovered by NACK.
    pub packets_recovered: AtomicU64,
    /// Remote video pictures decoded with errors concealed (after a loss, before the keyframe).
    pub frames_concealed: AtomicU64,
    /// The receiver's current wait for a missing packet, microseconds.
    pub reorder_wait_us: AtomicU64,
    /// Smoothed round-trip time of the selected candidate pair, microseconds (0 = unknown).
    pub rtt_us: AtomicU64,
    /// STUN binding responses the selected pair had received when `rtt_us` was stored: a
    /// change means `rtt_us` is a new measurement (webrtc-rs keeps the last one otherwise).
    pub rtt_responses: AtomicU64,
    /// Freezes of the remote video (see [`FreezeDetector`]).
    pub freezes: Mutex<FreezeDetector>,
    /// Whether the microphone's audio processing is on (the owner may toggle it mid-call).
    pub audio_processing: AtomicBool,
    /// Echo return loss enhancement the echo canceller reports, dB × 100 (a trend only).
    pub aec_erle_centi_db: AtomicU64,
    /// Our audio stream's SSRC (0 until sending starts).
    pub audio_ssrc: AtomicU64,
    /// The loss the other side last reported for our audio, per mille.
    pub audio_remote_loss_permille: AtomicU64,
    /// The audio jitter buffer's target delay, µs.
    pub audio_jitter_target_us: AtomicU64,
    /// The audio jitter buffer's current delay, µs.
    pub audio_jitter_delay_us: AtomicU64,
    /// The Opus encoder's expected-loss setting, percent.
    pub audio_fec_loss_percent: AtomicU64,
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
    /// Whether the video source (camera, test pattern) is open now: not while the camera is
    /// off.
    pub video_source_open: AtomicBool,
    /// Mouth-to-ear latencies of the received tone bursts (see [`BurstDetector`]), ms.
    pub mouth_to_ear: Mutex<LatencyHistogram>,
    /// RMS level of the received audio over the last half second, hundredths of a dBFS
    /// (at least -120 dBFS; meaningless while `audio_played` is 0).
    pub received_centi_dbfs: AtomicI64,
}

impl MediaCounters {
    /// Notes the codec of the remote video.
    pub fn set_recv_codec(&self, codec: media::VideoCodec) {
        let index = media::VideoCodec::ALL
            .iter()
            .position(|c| *c == codec)
            .unwrap_or(0);
        self.recv_codec
            .store(index as u64 + 1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The codec of the remote video, once it arrived.
    pub fn recv_codec(&self) -> Option<media::VideoCodec> {
        let n = self.recv_codec.load(std::sync::atomic::Ordering::Relaxed) as usize;
        n.checked_sub(1)
            .and_then(|i| media::VideoCodec::ALL.get(i).copied())
    }
}

/// What the receiver saw of the sender's test pattern.
#[derive(Debug, Clone, Default)]
pub struct PatternTrace {
    pub first: Option<u32>,
    pub last: Option<u32>,
    pub frames: u64,
    pub out_of_order: u64,
    /// Of `frames`, concealed pictures (left out of the order and the latencies).
    pub concealed: u64,
    /// The highest counter seen.
    pub newest: Option<u32>,
    /// Glass-to-glass latencies over the whole call, as a histogram: recording is O(1) and a
    /// quantile is O(buckets), whatever the call's length (see [`LatencyHistogram`]). Only a
    /// picture's first appearance counts: a repeat (a sender re-sending a frame, or a
    /// concealed picture still showing an older frame's stamp) is not a new picture.
    pub latencies: LatencyHistogram,
}

impl PatternTrace {
    /// One decoded frame carried `counter`, `latency_ms` after its capture. A `concealed`
    /// picture (built on a lost reference, see [`media::VideoFrame::concealed`]) is counted
    /// but says nothing about order or latency: openh264 may fill it from an older picture
    /// than the last one shown (seen once in the lab, after a 3.4 s outage), so its stamp is
    /// not a picture the sender sent then.
    pub fn record(&mut self, counter: u32, latency_ms: f64, concealed: bool) {
        self.frames += 1;
        if concealed {
            self.concealed += 1;
            return;
        }
        // A repeated counter is a repeated picture (a sender re-sending a frame to keep its
        // rate), not disorder; only going backwards counts.
        if let Some(last) = self.last
            && counter < last
        {
            self.out_of_order += 1;
        }
        self.first.get_or_insert(counter);
        self.last = Some(counter);
        if self.newest.is_none_or(|newest| counter > newest) {
            self.newest = Some(counter);
            self.latencies.record(latency_ms);
        }
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

/// Finds the start of a timed tone burst ([`media::Bursts`]: one at the start of every
/// wall-clock second) in played audio, after at least [`BurstDetector::QUIET_FRAMES`] quiet
/// frames. Sender and receiver share a clock (one host, or the network lab), so how far into
/// its second a burst starts when it is handed to the speaker is its mouth-to-ear latency.
#[derive(Debug, Default)]
pub struct BurstDetector {
    quiet_frames: u32,
}

impl BurstDetector {
    /// Quiet 20 ms frames that must come before an onset (bursts are 100 ms, 900 ms apart).
    pub const QUIET_FRAMES: u32 = 10;
    /// A sample above this is a burst (bursts are sent at half scale).
    pub const THRESHOLD: f32 = 0.05;

    /// `samples` (48 kHz) are played at `played_us` (UNIX µs); the latency in ms if a burst
    /// starts in them. Latencies of 900 ms or more cannot be told from the next second's
    /// burst and are not reported.
    pub fn on_frame(&mut self, samples: &[f32], played_us: u64) -> Option<f64> {
        let Some(first) = samples.iter().position(|s| s.abs() > Self::THRESHOLD) else {
            self.quiet_frames = self.quiet_frames.saturating_add(1);
            return None;
        };
        let after_quiet = self.quiet_frames >= Self::QUIET_FRAMES;
        self.quiet_frames = 0;
        if !after_quiet {
            return None;
        }
        let onset_us = played_us + first as u64 * 1_000_000 / 48_000;
        let phase_us = onset_us % 1_000_000;
        (phase_us < 900_000).then(|| phase_us as f64 / 1000.0)
    }
}
