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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

mod audio_recv;
mod audio_send;
mod counters;
mod rate;
mod video_recv;
mod video_send;

pub use audio_recv::*;
pub use audio_send::*;
pub use counters::*;
pub use rate::*;
pub use video_recv::*;
pub use video_send::*;

/// A callback that wakes whoever displays frames (the UI's `request_repaint`).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running media thread; stopping joins it.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub(crate) fn spawn(
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

/// Runs `f`, which blocks (joins a thread), without holding up the runtime's other tasks: on
/// a runtime worker through `block_in_place`, elsewhere as it is.
pub(crate) fn off_runtime<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Holds a value whose drop joins a thread (a [`Worker`], a decoder) and drops it through
/// [`off_runtime`], also when the task holding it is aborted.
pub(crate) struct JoinOffRuntime<T>(Option<T>);

impl<T> JoinOffRuntime<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(Some(value))
    }
}

impl<T> std::ops::Deref for JoinOffRuntime<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only in drop"))
    }
}

impl<T> std::ops::DerefMut for JoinOffRuntime<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0
            .as_mut()
            .unwrap_or_else(|| unreachable!("taken only in drop"))
    }
}

impl<T> Drop for JoinOffRuntime<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            off_runtime(move || drop(value));
        }
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn the_first_keyframe_request_is_answered_at_once_later_ones_once_per_window() {
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        let rtt = Duration::from_millis(40);
        let mut k = KeyframeWindow::default();
        assert!(k.may_answer(at(0), rtt), "nothing sent yet");
        // The opening keyframe, then the receiver's first request 100 ms later: answered.
        k.sent_keyframe(at(0));
        assert!(k.may_answer(at(100), rtt));
        k.answered();
        k.sent_keyframe(at(110));
        // A second request soon after waits for the window (500 ms at this round trip)...
        assert!(!k.may_answer(at(300), rtt));
        assert!(!k.may_answer(at(609), rtt));
        assert!(k.may_answer(at(610), rtt));
        // ...which is twice the round trip when that is longer.
        k.answered();
        k.sent_keyframe(at(1000));
        let slow = Duration::from_millis(400);
        assert!(!k.may_answer(at(1700), slow));
        assert!(k.may_answer(at(1800), slow));
    }

    #[test]
    fn the_ladder_steps_down_and_back_with_hysteresis() {
        let t = Instant::now();
        let mut l = Ladder::new(640, 480);
        let at = |s: f64| t + Duration::from_secs_f64(s);
        // 1.2 Mbit/s at 640×480: full size.
        assert_eq!(l.update(1_200_000, 640, 480, 30, at(0.0)), 0);
        // 400 kbit/s (0.04 bit/px): down after a second, not before.
        assert_eq!(l.update(400_000, 640, 480, 30, at(1.0)), 0);
        assert_eq!(l.update(400_000, 640, 480, 30, at(1.5)), 0);
        assert_eq!(l.update(400_000, 640, 480, 30, at(2.0)), 1);
        // 800 kbit/s is between the thresholds: stays at 320×240.
        assert_eq!(l.update(800_000, 640, 480, 30, at(3.0)), 1);
        assert_eq!(l.update(800_000, 640, 480, 30, at(9.0)), 1);
        // 1.2 Mbit/s (0.13 bit/px at full size) for 3 s: back up.
        assert_eq!(l.update(1_200_000, 640, 480, 30, at(10.0)), 1);
        assert_eq!(l.update(1_200_000, 640, 480, 30, at(12.0)), 1);
        assert_eq!(l.update(1_200_000, 640, 480, 30, at(13.0)), 0);
        // Never below 160 wide; under 0.12 bit/px there the frame rate halves.
        for s in 20..40 {
            l.update(60_000, 640, 480, 30, at(f64::from(s)));
        }
        assert_eq!((l.rung(), l.size_halvings(), l.fps_divisor()), (3, 2, 2));
        assert_eq!(Ladder::new(320, 240).update(0, 320, 240, 30, at(0.0)), 0);
    }

    #[test]
    fn the_last_rung_halves_the_frame_rate_and_a_wide_link_climbs_in_one_step() {
        let t = Instant::now();
        let at = |s: f64| t + Duration::from_secs_f64(s);
        let mut l = Ladder::new(640, 480);
        // 60 kbit/s: down a rung every other second (each step is wanted for 1 s first), to
        // 160×120 at half the frame rate.
        let rungs: Vec<u8> = (0..8)
            .map(|s| l.update(60_000, 640, 480, 30, at(f64::from(s))))
            .collect();
        assert_eq!(rungs, [0, 1, 1, 2, 2, 3, 3, 3]);
        assert_eq!((l.size_halvings(), l.fps_divisor()), (2, 2));
        // 100 kbit/s (0.17 bit/px at 160×120, 30 fps) is between the frame-rate thresholds:
        // stays.
        assert_eq!(l.update(100_000, 640, 480, 30, at(10.0)), 3);
        assert_eq!(l.update(100_000, 640, 480, 30, at(20.0)), 3);
        // 240 kbit/s (0.42 bit/px) for 3 s: the full frame rate at 160×120 (not yet 320×240,
        // at 0.10 bit/px).
        assert_eq!(l.update(240_000, 640, 480, 30, at(21.0)), 3);
        assert_eq!(l.update(240_000, 640, 480, 30, at(24.0)), 2);
        assert_eq!(l.fps_divisor(), 1);
        // At 100 kbit/s 160×120 keeps its full frame rate.
        for s in 25..30 {
            l.update(100_000, 640, 480, 30, at(f64::from(s)));
        }
        assert_eq!(l.rung(), 2);
        // Back down to the last rung, then 1.5 Mbit/s: straight to full size after one hold.
        for s in 30..34 {
            l.update(60_000, 640, 480, 30, at(f64::from(s)));
        }
        assert_eq!(l.rung(), 3);
        assert_eq!(l.update(1_500_000, 640, 480, 30, at(40.0)), 3);
        assert_eq!(l.update(1_500_000, 640, 480, 30, at(42.9)), 3);
        assert_eq!(l.update(1_500_000, 640, 480, 30, at(43.0)), 0);
        // A 160×120 source has no size rung, only the frame rate.
        let mut small = Ladder::new(160, 120);
        assert_eq!(small.update(60_000, 160, 120, 30, at(0.0)), 0);
        assert_eq!(small.update(60_000, 160, 120, 30, at(1.0)), 1);
        assert_eq!((small.size_halvings(), small.fps_divisor()), (0, 2));
    }

    #[test]
    fn a_filling_queue_cuts_the_rate_once_a_second() {
        let t = Instant::now();
        let mut g = QueueGuard::default();
        assert!(!g.sample(20.0, 1, t));
        assert!(
            !g.sample(70.0, 2, t),
            "50 ms above the minimum is not a queue"
        );
        assert!(g.sample(90.0, 3, t + Duration::from_millis(100)));
        assert!(
            !g.sample(150.0, 4, t + Duration::from_millis(500)),
            "once a second"
        );
        assert!(g.sample(150.0, 5, t + Duration::from_millis(1200)));
        assert!(!g.sample(25.0, 6, t + Duration::from_secs(3)));
        assert!(!g.sample(f64::NAN, 7, t + Duration::from_secs(5)));
    }

    #[test]
    fn a_stale_round_trip_cuts_only_once() {
        let t = Instant::now();
        let mut g = QueueGuard::default();
        assert!(!g.sample(1.0, 10, t));
        assert!(g.sample(90.0, 11, t + Duration::from_secs(1)));
        // No new STUN response: the same 90 ms is reported again and again.
        for s in 2..30 {
            assert!(
                !g.sample(90.0, 11, t + Duration::from_secs(s)),
                "{s} s: a repeated measurement is not a queue"
            );
        }
        // A fresh one that still shows the queue cuts again.
        assert!(g.sample(90.0, 12, t + Duration::from_secs(31)));
    }

    #[test]
    fn the_video_bitrate_fits_the_picture() {
        assert_eq!(max_video_bitrate(320, 240, 30, 1_500_000), 622_080);
        assert_eq!(max_video_bitrate(640, 480, 30, 1_500_000), 1_500_000);
        assert_eq!(max_video_bitrate(1280, 720, 30, 4_000_000), 4_000_000);
        assert_eq!(max_video_bitrate(16, 16, 1, 1_500_000), MIN_VIDEO_BPS);
    }

    #[test]
    fn device_events_read_as_advice() {
        let failed = media::DeviceEvent::MicrophoneFailed {
            device: "USB Mic".into(),
            reason: "unplugged".into(),
        };
        let text = describe_device_event(&failed);
        assert!(
            text.contains("USB Mic") && text.contains("Devices"),
            "{text}"
        );
        let stalled = media::DeviceEvent::MicrophoneStalled {
            device: "USB Mic".into(),
            silent_ms: 3000,
        };
        assert!(describe_device_event(&stalled).contains("3 s"));
        let speaker = media::DeviceEvent::SpeakerFailed {
            device: "Headphones".into(),
            reason: "gone".into(),
        };
        assert!(describe_device_event(&speaker).starts_with("the speaker Headphones"));
    }

    #[test]
    fn opus_expected_loss_follows_the_reports() {
        assert_eq!(expected_loss_percent(0), 5);
        assert_eq!(expected_loss_percent(30), 5);
        assert_eq!(expected_loss_percent(100), 12);
        assert_eq!(expected_loss_percent(1000), 40);
    }

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
            t.record(counter, ms, false);
        }
        assert_eq!((t.first, t.last, t.frames), (Some(1), Some(5), 6));
        assert_eq!(t.out_of_order, 1, "only 4 → 3 went backwards");
        assert!(
            t.latency_quantile(0.5)
                .is_some_and(|p| (p - 10.0).abs() < 2.5)
        );
        assert_eq!(
            t.latencies.len(),
            4,
            "only first appearances are latencies: 1, 2, 4, 5"
        );
    }

    #[test]
    fn a_concealed_picture_showing_an_older_stamp_is_not_disorder() {
        let mut t = PatternTrace::default();
        t.record(100, 10.0, false);
        t.record(101, 10.0, false);
        // After an outage openh264 fills a picture from an older reference.
        t.record(97, 900.0, true);
        t.record(140, 12.0, false);
        assert_eq!((t.frames, t.concealed, t.out_of_order), (4, 1, 0));
        assert_eq!(t.last, Some(140));
        assert_eq!(t.latencies.len(), 3, "the concealed picture is no latency");
        // The same stamps on clean pictures are disorder.
        t.record(97, 10.0, false);
        assert_eq!(t.out_of_order, 1);
    }

    #[test]
    fn a_stale_stamp_shown_again_is_not_a_late_picture() {
        let mut t = PatternTrace::default();
        t.record(10, 5.0, false);
        // Concealed pictures keep showing frame 10's stamp while 1.4 s pass.
        for n in 1..=40 {
            t.record(10, 5.0 + f64::from(n) * 35.0, false);
        }
        t.record(52, 6.0, false);
        assert_eq!(t.frames, 42);
        assert!(
            t.latency_quantile(0.95).is_some_and(|p| p < 10.0),
            "p95 {:?}",
            t.latency_quantile(0.95)
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
        assert!((up - 1_100_000.0).abs() < 1e-6, "{up}");
        assert_eq!(ramp_toward(1_000_000.0, 1_050_000.0), 1_050_000.0);
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
