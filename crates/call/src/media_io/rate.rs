//! How the video sender turns the congestion controller's estimate into an encoder rate:
//! ramped up, backed off without feedback, with room left for audio and overhead. Pure.

use std::time::Duration;

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
