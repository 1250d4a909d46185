//! The per-second stats arithmetic, pure: cumulative counters sampled at two instants become
//! rates (bits and frames per second, encode time per frame, packet loss). The session samples
//! the counters once a second and hands them to [`crate::core::CallCore::stats_tick`], which
//! keeps the previous sample of each peer connection and calls [`Totals::rates_since`].

use std::time::Instant;

/// Cumulative counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    /// When they were read.
    pub at: Instant,
    /// Video payload bytes sent (encoder output).
    pub bytes_sent: u64,
    /// Video payload bytes received.
    pub bytes_received: u64,
    /// Video frames sent.
    pub frames_sent: u64,
    /// Video frames decoded.
    pub frames_decoded: u64,
    /// Total encode time, µs.
    pub encode_us: u64,
    /// Inbound video RTP packets received.
    pub packets_received: u64,
    /// Inbound video RTP packets lost (RTCP's cumulative count; can go down when late
    /// packets arrive).
    pub packets_lost: i64,
}

/// Rates between two samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub send_video_bps: f64,
    pub recv_video_bps: f64,
    pub send_fps: f64,
    pub recv_fps: f64,
    /// Mean encode time per frame sent in the interval, ms (0 when none was sent).
    pub encode_ms: f64,
    /// Share of the interval's inbound video packets that were lost, percent.
    pub loss_percent: f64,
}

impl Totals {
    /// The rates from `earlier` to `self`. Counters that went backwards (a new call restarted
    /// them) count as zero; an interval under 1 ms counts as 1 ms.
    #[must_use]
    pub fn rates_since(&self, earlier: &Self) -> Rates {
        let dt = self
            .at
            .saturating_duration_since(earlier.at)
            .as_secs_f64()
            .max(1e-3);
        let delta = |now: u64, then: u64| now.saturating_sub(then);
        let sent = delta(self.frames_sent, earlier.frames_sent);
        let got = delta(self.packets_received, earlier.packets_received);
        let lost = (self.packets_lost - earlier.packets_lost).max(0) as u64;
        Rates {
            send_video_bps: delta(self.bytes_sent, earlier.bytes_sent) as f64 * 8.0 / dt,
            recv_video_bps: delta(self.bytes_received, earlier.bytes_received) as f64 * 8.0 / dt,
            send_fps: sent as f64 / dt,
            recv_fps: delta(self.frames_decoded, earlier.frames_decoded) as f64 / dt,
            encode_ms: if sent > 0 {
                delta(self.encode_us, earlier.encode_us) as f64 / 1000.0 / sent as f64
            } else {
                0.0
            },
            loss_percent: loss_percent(got, lost),
        }
    }

    /// Packet loss over the whole call so far, percent.
    #[must_use]
    pub fn loss_percent_total(&self) -> f64 {
        loss_percent(self.packets_received, self.packets_lost.max(0) as u64)
    }
}

fn loss_percent(received: u64, lost: u64) -> f64 {
    let total = received + lost;
    if total == 0 {
        0.0
    } else {
        100.0 * lost as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn totals(at: Instant) -> Totals {
        Totals {
            at,
            bytes_sent: 0,
            bytes_received: 0,
            frames_sent: 0,
            frames_decoded: 0,
            encode_us: 0,
            packets_received: 0,
            packets_lost: 0,
        }
    }

    #[test]
    fn one_second_of_a_call() {
        let t = Instant::now();
        let a = totals(t);
        let b = Totals {
            at: t + Duration::from_secs(1),
            bytes_sent: 125_000,
            bytes_received: 62_500,
            frames_sent: 30,
            frames_decoded: 29,
            encode_us: 90_000,
            packets_received: 98,
            packets_lost: 2,
        };
        let r = b.rates_since(&a);
        assert_eq!(r.send_video_bps, 1_000_000.0);
        assert_eq!(r.recv_video_bps, 500_000.0);
        assert_eq!(r.send_fps, 30.0);
        assert_eq!(r.recv_fps, 29.0);
        assert!((r.encode_ms - 3.0).abs() < 1e-9);
        assert!((r.loss_percent - 2.0).abs() < 1e-9);
        assert!((b.loss_percent_total() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn the_total_loss_stays_when_the_last_second_was_clean() {
        let t = Instant::now();
        let a = Totals {
            packets_received: 500,
            packets_lost: 11,
            ..totals(t)
        };
        let b = Totals {
            at: t + Duration::from_secs(1),
            packets_received: 600,
            ..a
        };
        assert_eq!(b.rates_since(&a).loss_percent, 0.0);
        assert!(b.loss_percent_total() > 1.7, "{}", b.loss_percent_total());
    }

    #[test]
    fn counters_that_restart_or_shrink_give_zero_not_garbage() {
        let t = Instant::now();
        let a = Totals {
            bytes_sent: 1_000,
            frames_sent: 10,
            packets_lost: 5,
            ..totals(t)
        };
        // A new call restarted the counters; late packets lowered the lost count.
        let b = Totals {
            at: t + Duration::from_millis(500),
            packets_lost: 3,
            ..totals(t)
        };
        let r = b.rates_since(&a);
        assert_eq!(r, Rates::default());
    }

    #[test]
    fn a_zero_interval_does_not_divide_by_zero() {
        let t = Instant::now();
        let b = Totals {
            frames_decoded: 1,
            ..totals(t)
        };
        let r = b.rates_since(&totals(t));
        assert!(r.recv_fps.is_finite());
        assert_eq!(r.recv_fps, 1000.0);
    }
}
