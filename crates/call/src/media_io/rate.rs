//! How the video sender turns the congestion controller's estimate into an encoder rate:
//! ramped up, backed off without feedback, with room left for audio and overhead. Pure.

use std::time::{Duration, Instant};

/// How often the video sender applies the bandwidth estimate to the encoder.
pub const RATE_UPDATE_INTERVAL: Duration = Duration::from_millis(200);
/// The lowest video bitrate the encoder is asked for, bits per second.
pub const MIN_VIDEO_BPS: u32 = 60_000;
/// Share of the estimate left for RTP/SRTP headers and retransmissions.
pub const OVERHEAD_SHARE: f64 = 0.10;
/// How fast the sender's rate may climb towards a higher estimate, per
/// [`RATE_UPDATE_INTERVAL`] (×1.10 every 200 ms ≈ ×1.6 a second). Decreases apply at once.
///
/// The controller (`congestion::DuetGcc`) climbs by at most 8 % a second on its own, so this
/// only binds when a bandwidth probe proved room and the estimate jumped (at most
/// `probe::PROBE_FACTOR` × at a time): the encoder then follows within a second or two, and the
/// delay detector sees the queue grow if the probe was wrong. (It was ×1.03, +16 % a second,
/// when webrtc-rs's `Gcc` ran calls: that estimate ran far above the link by itself, and
/// following it directly overshot a 1 Mbit/s cap within 3 s.)
pub const RAMP_UP_PER_UPDATE: f64 = 1.10;

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

/// Bits per pixel the encoder is allowed at most: about what libwebrtc allows (600 kbit/s at
/// 320×240, 30 fps); more buys no visible quality and only fills the link.
pub const MAX_BITS_PER_PIXEL: f64 = 0.27;

/// The most the video encoder should ever use for `width`×`height` at `fps`: the configured
/// maximum, or less when the picture cannot use it ([`MAX_BITS_PER_PIXEL`]).
#[must_use]
pub fn max_video_bitrate(width: u32, height: u32, fps: u32, configured_bps: u32) -> u32 {
    let useful = f64::from(width) * f64::from(height) * f64::from(fps.max(1)) * MAX_BITS_PER_PIXEL;
    configured_bps.min(useful.max(f64::from(MIN_VIDEO_BPS)) as u32)
}

/// Queueing delay (round trip above the lowest seen) that counts as a filling queue, ms.
pub const QUEUE_DELAY_MS: f64 = 60.0;
/// What the sender's rate is cut to when the queue fills.
pub const QUEUE_CUT: f64 = 0.8;

/// A backstop for the congestion controller's delay detector, which in webrtc-rs 0.21 missed
/// a queue filling on a capped link (the round trip grew to 100–180 ms while its estimate kept
/// climbing; measured in the lab). When the round trip stays [`QUEUE_DELAY_MS`] above the
/// lowest one seen, the sender cuts its rate by [`QUEUE_CUT`], at most once a second.
///
/// Only fresh measurements count: each sample names the measurement it comes from (the
/// selected pair's count of STUN responses), and a repeat is ignored. webrtc-rs's pair stats
/// keep their last round trip when no response comes back, and a value stuck at 90 ms after a
/// congested second once cut the rate every second for 20 s after the link had recovered
/// (the estimate back at 1.7 Mbit/s, the sender held at 60 kbit/s; seen in CI). Pure: the
/// round trip, its measurement and the time come in.
#[derive(Debug, Default, Clone)]
pub struct QueueGuard {
    min_rtt_ms: Option<f64>,
    last_cut: Option<std::time::Instant>,
    last_measurement: Option<u64>,
}

impl QueueGuard {
    /// A round-trip sample from `measurement` at `now`; returns whether to cut the rate now.
    pub fn sample(&mut self, rtt_ms: f64, measurement: u64, now: std::time::Instant) -> bool {
        if !rtt_ms.is_finite() || rtt_ms <= 0.0 || self.last_measurement == Some(measurement) {
            return false;
        }
        self.last_measurement = Some(measurement);
        let min = self.min_rtt_ms.map_or(rtt_ms, |m| m.min(rtt_ms));
        self.min_rtt_ms = Some(min);
        let queued = rtt_ms - min > QUEUE_DELAY_MS;
        let may_cut = self
            .last_cut
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if queued && may_cut {
            self.last_cut = Some(now);
            return true;
        }
        false
    }
}

/// Bits per pixel under which the sender halves its resolution (after [`LADDER_HOLD_DOWN`]).
pub const LADDER_DOWN_BPP: f64 = 0.06;
/// Bits per pixel, at the next larger size, from which it doubles back (after
/// [`LADDER_HOLD_UP`]); well above [`LADDER_DOWN_BPP`] so it does not flap.
pub const LADDER_UP_BPP: f64 = 0.12;
/// Bits per pixel (at the smallest size and the full frame rate) under which the sender
/// halves its frame rate, the ladder's last rung: 69 kbit/s at 160×120. Small pictures need
/// more bits per pixel, and under them the encoders' own rate control skips frames at uneven
/// intervals: on the test pattern at 160×120 and 30 fps, 58-64 % of them at 60 kbit/s and
/// 42-49 % at 80 kbit/s (`media`'s `encoder_rate_per_rung` test). Here half the frame rate
/// gets as many pictures out, evenly (128-141 of 150 at 60 kbit/s). Above it, 30 fps gets
/// more of them (22-31 % skipped at 100 kbit/s); a threshold at 0.2 bit/px held a lab call at
/// 15 fps for 7 s after the step down and it decoded 0.88× the frames Chromium did, which
/// keeps its frame rate.
pub const FPS_DOWN_BPP: f64 = 0.12;
/// Bits per pixel (smallest size, full frame rate) from which the full frame rate returns.
pub const FPS_UP_BPP: f64 = 0.24;
/// How long a low rate must last before the ladder steps down.
pub const LADDER_HOLD_DOWN: Duration = Duration::from_secs(1);
/// How long a high rate must last before the ladder steps up (to the highest rung the rate
/// carries, in one step).
pub const LADDER_HOLD_UP: Duration = Duration::from_secs(3);
/// The smallest width the ladder goes down to.
pub const LADDER_MIN_WIDTH: u32 = 160;

/// The sender's ladder: rung 0 sends the configured size at the configured frame rate, rung
/// `r` up to the last size rung a size halved `r` times (640×480 → 320×240 → 160×120), and
/// the last rung the smallest size at half the frame rate; chosen from the encoder's bitrate
/// per pixel with hysteresis. Down one rung at a time after [`LADDER_HOLD_DOWN`]; up after
/// [`LADDER_HOLD_UP`], straight to the highest rung the rate carries. Pure: the bitrate and
/// the time come in.
#[derive(Debug, Clone)]
pub struct Ladder {
    rung: u8,
    /// How many times the picture may be halved; rung `size_rungs + 1` halves the frame rate.
    size_rungs: u8,
    /// A wanted move (down, or up) and since when it has been wanted.
    pending: Option<(bool, std::time::Instant)>,
}

impl Ladder {
    /// A ladder for pictures of `width`×`height`.
    #[must_use]
    pub fn new(width: u32, height: u32) -> Self {
        let mut size_rungs = 0u8;
        while size_rungs < 3
            && (width >> (size_rungs + 1)) >= LADDER_MIN_WIDTH
            && (height >> (size_rungs + 1)) >= 90
        {
            size_rungs += 1;
        }
        Self {
            rung: 0,
            size_rungs,
            pending: None,
        }
    }

    /// The current rung (0 = full size and frame rate).
    #[must_use]
    pub fn rung(&self) -> u8 {
        self.rung
    }

    /// How many times the picture is halved at the current rung.
    #[must_use]
    pub fn size_halvings(&self) -> u8 {
        self.rung.min(self.size_rungs)
    }

    /// What the frame rate is divided by at the current rung (1 or 2).
    #[must_use]
    pub fn fps_divisor(&self) -> u32 {
        if self.rung > self.size_rungs { 2 } else { 1 }
    }

    /// The encoder's bitrate is `video_bps` for a source of `width`×`height` at `fps`, at
    /// `now`; returns the rung to send at.
    pub fn update(
        &mut self,
        video_bps: u32,
        width: u32,
        height: u32,
        fps: u32,
        now: std::time::Instant,
    ) -> u8 {
        let size_rungs = self.size_rungs;
        // Bits per pixel at a rung's size, at the full frame rate.
        let bpp = |rung: u8| {
            let halvings = rung.min(size_rungs);
            let pixels = f64::from(width >> halvings)
                * f64::from(height >> halvings)
                * f64::from(fps.max(1));
            f64::from(video_bps) / pixels.max(1.0)
        };
        // A rung's (down, up) thresholds: under `down` it steps to the next rung, and from
        // `up` it is climbed back to. Leaving the smallest size means halving the frame rate.
        let thresholds = |rung: u8| {
            if rung == size_rungs {
                (FPS_DOWN_BPP, FPS_UP_BPP)
            } else {
                (LADDER_DOWN_BPP, LADDER_UP_BPP)
            }
        };
        let down = self.rung <= size_rungs && bpp(self.rung) < thresholds(self.rung).0;
        let mut up_to = self.rung;
        while up_to > 0 && bpp(up_to - 1) >= thresholds(up_to - 1).1 {
            up_to -= 1;
        }
        let want = if down {
            Some(true)
        } else if up_to < self.rung {
            Some(false)
        } else {
            None
        };
        let Some(want_down) = want else {
            self.pending = None;
            return self.rung;
        };
        let hold = if want_down {
            LADDER_HOLD_DOWN
        } else {
            LADDER_HOLD_UP
        };
        match self.pending {
            Some((dir, since)) if dir == want_down => {
                if now.saturating_duration_since(since) >= hold {
                    self.rung = if want_down { self.rung + 1 } else { up_to };
                    self.pending = None;
                }
            }
            _ => self.pending = Some((want_down, now)),
        }
        self.rung
    }
}

/// Minimum time between two keyframes the sender makes on request (or twice the round trip,
/// if longer).
pub const MIN_KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);

/// When the video sender may answer a keyframe request: at most one keyframe per window
/// (twice the round trip, at least [`MIN_KEYFRAME_INTERVAL`]), so a receiver asking again
/// while the last keyframe is on its way cannot start a keyframe spiral on a narrow link.
///
/// The first request of the call is answered at once. It means the receiver never had the
/// opening keyframe: that left as soon as this side's DTLS was done, and the other side,
/// still finishing its own handshake, could not decrypt its first packets. Measured across
/// symmetric NATs through TURN (docs/benchmarks.md): the side that missed it waited out the
/// window and saw video ~0.5 s after the other side.
#[derive(Debug, Default, Clone)]
pub struct KeyframeWindow {
    last_keyframe: Option<Instant>,
    answered_a_request: bool,
}

impl KeyframeWindow {
    /// Whether a pending request may be answered now.
    #[must_use]
    pub fn may_answer(&self, now: Instant, rtt: Duration) -> bool {
        let window = (rtt * 2).max(MIN_KEYFRAME_INTERVAL);
        !self.answered_a_request
            || self
                .last_keyframe
                .is_none_or(|at| now.saturating_duration_since(at) >= window)
    }

    /// A request was answered (the encoder was asked for a keyframe).
    pub fn answered(&mut self) {
        self.answered_a_request = true;
    }

    /// A keyframe went out (asked for or not: the encoder's first, a ladder step's).
    pub fn sent_keyframe(&mut self, now: Instant) {
        self.last_keyframe = Some(now);
    }
}
