//! duet's congestion controller, the one every call runs (`peer::build`): Google Congestion
//! Control built from webrtc-rs's public parts (the arrival-group slope filter of
//! `rtc-interceptor`), with the overuse detector and the rate control of libwebrtc where
//! webrtc-rs 0.21's `Gcc` differs from it in ways the network lab measured
//! (docs/benchmarks.md, "Calls on real links"). Pure: every instant is a parameter.
//!
//! What is different from `rtc_interceptor::Gcc`, and why:
//! - **The delay signal is scaled as libwebrtc scales it.** `Gcc` compares the filtered
//!   per-group delay change (a few ms) with a 12.5 ms threshold directly; libwebrtc multiplies
//!   it by the number of readings (up to 60) first. Unscaled, a queue growing by 10 ms per
//!   5 ms group (a sender at twice a link with a 150 ms buffer, as in the lab) never reached
//!   the threshold before the buffer overflowed, so only loss ever cut the rate.
//! - **One decrease per [`DECREASE_INTERVAL`].** `Gcc` backs off to 0.85 × the received rate
//!   on *every* feedback report while the detector says "overuse", and the detector keeps
//!   saying so until the queue has drained. Each report then reads a received rate already
//!   lowered by the previous cut, so the cuts compound: on a 500 kbit/s link the estimate fell
//!   to its floor (150 kbit/s) at every overshoot, and the link ran at 43-46 % where Chromium
//!   ran at 68-70 %. libwebrtc reduces again only after a round trip (at most 200 ms).
//! - **The received rate is measured on the receiver's clock.** `Gcc` stamps acknowledged
//!   bytes with the instant their feedback arrived here, so a late or bunched feedback report
//!   (which is what a congested link produces) reads as a rate collapse. Here the window runs
//!   over the packets' arrival times as the far end reported them.
//! - **No climbing past what the path has shown it carries.** An increase stops at
//!   [`HEADROOM`] × the received rate + 10 kbit/s, so an encoder that sends less than it is
//!   allowed (a still picture) does not let the estimate run away to a value the next burst
//!   would overshoot. (libwebrtc allows 1.5 ×; with it an encoder sending 520 kbit/s on a
//!   1 Mbit/s link held the target at 1.02 Mbit/s in a lab run, above the link.)
//! - **The overuse threshold adapts as libwebrtc's does** ([`THRESHOLD_GAIN_DOWN`] and
//!   [`THRESHOLD_GAIN_UP`]). `rtc_interceptor::OveruseDetector` takes the draft's gains, which
//!   raise the threshold fast and lower it over minutes: in a CI run its threshold, raised by
//!   noise, never saw a sender 4 % over a 1 Mbit/s link (target 1029 kbit/s, a full 150 ms
//!   buffer, tail drops of 2-10 % that only hold the rate). With libwebrtc's gains the lab's
//!   threshold sat at 6-10 ms and each slow overshoot was cut within a second.
//! - **Probing** ([`crate::probe`]): short bursts of padding, sent faster than the estimate,
//!   find the room on a link that widened (and at the start of a call) within seconds instead
//!   of the half minute that 8 %-a-second increases take. `rtc_interceptor::Gcc` has none.
//! - **Loss acts on the same target** (libwebrtc's loss-based rule: above 10 % smoothed loss,
//!   cut by half the loss rate; between 2 % and 10 %, no increase), rather than on a second
//!   target that climbs on its own between losses and so cuts from far above the real rate.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::{
    BandwidthEstimator, EstimatorStats, PacketReport, RateControlState, SlopeEstimator, Usage,
};

use crate::probe::{ProbeRequest, ProbeSent, Prober};

/// Back off to this fraction of the received rate on overuse.
pub const DECREASE_FACTOR: f64 = 0.85;
/// At most one delay-based decrease per this long, so each cut is seen before the next.
pub const DECREASE_INTERVAL: Duration = Duration::from_millis(200);
/// Multiplicative growth per second while far from the last ceiling.
pub const INCREASE_PER_SECOND: f64 = 1.08;
/// Additive growth per second near the last ceiling, bits/s (about one 1200-byte packet per
/// 100 ms round trip and a bit).
pub const ADDITIVE_PER_SECOND: f64 = 60_000.0;
/// Near the ceiling means above this fraction of the rate received at the last decrease.
pub const NEAR_CEILING: f64 = 0.85;
/// How far above the received rate an increase may take the target.
pub const HEADROOM: f64 = 1.2;
/// A received rate this far above the last ceiling means the ceiling no longer holds.
pub const STALE_CEILING: f64 = 1.2;
/// How often the target may rise.
pub const INCREASE_INTERVAL: Duration = Duration::from_millis(200);
/// The window the received rate is measured over, on the receiver's clock.
pub const RECEIVED_WINDOW: Duration = Duration::from_millis(500);
/// Below this loss fraction (smoothed) the rate may rise.
pub const LOW_LOSS: f64 = 0.02;
/// Above this loss fraction (smoothed and in the latest batch) the rate is cut.
pub const HIGH_LOSS: f64 = 0.10;
/// At most one loss-based cut per this long, counted from any decrease.
pub const LOSS_INTERVAL: Duration = Duration::from_millis(300);
/// A loss-based cut also needs this much of the latest feedback to have lost more than
/// [`HIGH_LOSS`] (libwebrtc judges loss over receiver-report intervals of about a second). One
/// 100 ms report of a keyframe burst overflowing a small router queue (60-80 % lost in the
/// lab's 500 kbit/s link, whose queue holds 7 packets) cut the estimate on top of the delay-based
/// decrease that burst had already caused.
pub const LOSS_WINDOW: Duration = Duration::from_secs(1);
/// The filtered per-group delay change is compared with the overuse threshold multiplied by
/// the number of readings so far, up to this many (libwebrtc's `kMinNumDeltas`): the
/// threshold (12.5 ms to start) is meant for the queue's growth over many groups, not between
/// two of them.
pub const TREND_DELTAS: u32 = 60;

/// Starting overuse threshold, ms (libwebrtc's and the draft's).
pub const THRESHOLD_INITIAL_MS: f64 = 12.5;
/// The threshold moves towards the scaled trend at this gain per ms when the trend is outside
/// it (libwebrtc's `k_up`)...
pub const THRESHOLD_GAIN_UP: f64 = 0.0087;
/// ...and at this one when it is inside (libwebrtc's `k_down`). The draft that
/// `rtc_interceptor::OveruseDetector` follows has these the other way round in effect
/// (0.01 up, 0.00018 down): there a few noisy readings raise the threshold and it takes
/// minutes to come back, so a sender a few per cent over the link filled the queue unseen.
pub const THRESHOLD_GAIN_DOWN: f64 = 0.039;
/// A reading this far beyond the threshold is a spike, not evidence of where it belongs.
pub const THRESHOLD_OUTLIER_MS: f64 = 15.0;
/// The threshold stays within this range, ms.
pub const THRESHOLD_RANGE_MS: (f64, f64) = (6.0, 600.0);
/// How long the trend must stay over the threshold before it counts as overuse.
pub const OVERUSE_TIME: Duration = Duration::from_millis(10);

/// libwebrtc's overuse detector: the scaled delay trend against an adaptive threshold.
#[derive(Debug, Clone)]
struct DelayDetector {
    threshold_ms: f64,
    last_update: Option<Instant>,
    /// Since when the trend has been over the threshold, and in how many readings.
    over_since: Option<Instant>,
    over_count: u32,
    previous_trend_ms: f64,
    usage: Usage,
}

impl Default for DelayDetector {
    fn default() -> Self {
        Self {
            threshold_ms: THRESHOLD_INITIAL_MS,
            last_update: None,
            over_since: None,
            over_count: 0,
            previous_trend_ms: 0.0,
            usage: Usage::Normal,
        }
    }
}

impl DelayDetector {
    /// Folds in one scaled trend reading taken at `at`; returns the usage.
    fn update(&mut self, at: Instant, trend_ms: f64) -> Usage {
        if trend_ms > self.threshold_ms {
            let since = *self.over_since.get_or_insert(at);
            self.over_count += 1;
            if at.saturating_duration_since(since) >= OVERUSE_TIME
                && self.over_count > 1
                && trend_ms >= self.previous_trend_ms
            {
                self.usage = Usage::Over;
            }
        } else {
            self.over_since = None;
            self.over_count = 0;
            self.usage = if trend_ms < -self.threshold_ms {
                Usage::Under
            } else {
                Usage::Normal
            };
        }
        self.previous_trend_ms = trend_ms;
        self.adapt(at, trend_ms.abs());
        self.usage
    }

    fn adapt(&mut self, at: Instant, magnitude: f64) {
        let elapsed_ms = self.last_update.map_or(0.0, |last| {
            at.saturating_duration_since(last).as_secs_f64() * 1e3
        });
        self.last_update = Some(at);
        if magnitude > self.threshold_ms + THRESHOLD_OUTLIER_MS {
            return;
        }
        let gain = if magnitude < self.threshold_ms {
            THRESHOLD_GAIN_DOWN
        } else {
            THRESHOLD_GAIN_UP
        };
        let (low, high) = THRESHOLD_RANGE_MS;
        self.threshold_ms = (self.threshold_ms
            + gain * (magnitude - self.threshold_ms) * elapsed_ms.min(100.0))
        .clamp(low, high);
    }
}

/// The rate the far end is receiving, from the arrival times it reported.
#[derive(Debug, Default)]
struct ReceivedRate {
    /// Arrival (on the receiver's clock) and size of acknowledged packets, newest last.
    samples: VecDeque<(Duration, usize)>,
    bytes: usize,
    newest: Option<Duration>,
}

impl ReceivedRate {
    fn add(&mut self, arrival: Duration, size: usize) {
        // The far end's clock went back by more than a window (its feedback started over):
        // what was measured before says nothing about the new timeline.
        if self
            .newest
            .is_some_and(|newest| arrival + RECEIVED_WINDOW * 4 < newest)
        {
            *self = Self::default();
        }
        let newest = self.newest.map_or(arrival, |n| n.max(arrival));
        self.newest = Some(newest);
        self.samples.push_back((arrival, size));
        self.bytes += size;
        let cutoff = newest.saturating_sub(RECEIVED_WINDOW);
        while let Some(&(at, size)) = self.samples.front() {
            if at >= cutoff || self.samples.len() == 1 {
                break;
            }
            self.samples.pop_front();
            self.bytes -= size;
        }
    }

    /// Bits per second over the window; `None` until it spans a fifth of the window (one
    /// early burst measures nothing).
    fn bps(&self) -> Option<f64> {
        let newest = self.newest?;
        let &(oldest, first_size) = self.samples.iter().min_by_key(|s| s.0)?;
        let span = newest.saturating_sub(oldest);
        if span < RECEIVED_WINDOW / 5 {
            return None;
        }
        // The first packet's bytes arrived before the span starts.
        Some((self.bytes.saturating_sub(first_size) * 8) as f64 / span.as_secs_f64())
    }
}

/// Google Congestion Control with libwebrtc's rate control (see the module docs).
pub struct DuetGcc {
    slope: SlopeEstimator,
    detector: DelayDetector,
    state: RateControlState,
    received: ReceivedRate,
    target: f64,
    min: f64,
    max: f64,
    /// The received rate at the last delay-based decrease: the ceiling to approach gently.
    ceiling: Option<f64>,
    last_increase: Option<Instant>,
    last_decrease: Option<Instant>,
    last_loss_cut: Option<Instant>,
    average_loss: Option<f64>,
    /// Feedback of the last [`LOSS_WINDOW`]: when, packets lost, packets reported.
    recent_loss: VecDeque<(Instant, usize, usize)>,
    /// Delay-trend readings so far, up to [`TREND_DELTAS`].
    deltas: u32,
    prober: Prober,
}

impl DuetGcc {
    /// A controller starting at `initial`, held within `min..=max`.
    #[must_use]
    pub fn new(initial: f64, min: f64, max: f64) -> Self {
        Self {
            slope: SlopeEstimator::new(),
            detector: DelayDetector::default(),
            state: RateControlState::default(),
            received: ReceivedRate::default(),
            target: initial.clamp(min, max),
            min,
            max,
            ceiling: None,
            last_increase: None,
            last_decrease: None,
            last_loss_cut: None,
            average_loss: None,
            recent_loss: VecDeque::new(),
            deltas: 0,
            prober: Prober::default(),
        }
    }

    /// The probe to send next, once (see [`crate::probe`]).
    pub fn take_probe_request(&mut self) -> Option<ProbeRequest> {
        self.prober.take_request()
    }

    /// The sender queued a probe's packets at `now`.
    pub fn probe_sent(&mut self, now: Instant, sent: ProbeSent) {
        self.prober.sent(now, sent);
    }

    /// The rate the pacer should allow while a probe is outstanding.
    #[must_use]
    pub fn probe_pacing_bps(&self) -> Option<f64> {
        self.prober.pacing_bps()
    }

    fn delay_based(&mut self, now: Instant, usage: Usage) {
        self.state = self.state.next(usage);
        let received = self.received.bps();
        match self.state {
            RateControlState::Hold => {}
            RateControlState::Decrease => {
                let due = self
                    .last_decrease
                    .is_none_or(|at| now.saturating_duration_since(at) >= DECREASE_INTERVAL);
                if let (true, Some(received)) = (due, received) {
                    let cut = received * DECREASE_FACTOR;
                    if cut < self.target {
                        self.target = cut;
                    }
                    tracing::debug!(received, target = self.target, "delay-based decrease");
                    self.ceiling = Some(received);
                    self.last_decrease = Some(now);
                    // The loss that follows is the same overflow this cut answers, already
                    // counted in the received rate it was cut from.
                    self.last_loss_cut = Some(now);
                    self.last_increase = Some(now);
                    self.prober.decreased(now);
                }
            }
            RateControlState::Increase => {
                let elapsed = self
                    .last_increase
                    .map_or(INCREASE_INTERVAL, |at| now.saturating_duration_since(at));
                if elapsed < INCREASE_INTERVAL {
                    return;
                }
                let seconds = elapsed.as_secs_f64().min(1.0);
                // The path now carries well above the last ceiling (a link that widened):
                // the ceiling is stale, climb multiplicatively again (libwebrtc resets its
                // link capacity estimate the same way).
                if let (Some(ceiling), Some(received)) = (self.ceiling, received)
                    && received > ceiling * STALE_CEILING
                {
                    self.ceiling = None;
                }
                let near = self
                    .ceiling
                    .is_some_and(|ceiling| self.target > ceiling * NEAR_CEILING);
                let mut next = if near {
                    self.target + ADDITIVE_PER_SECOND * seconds
                } else {
                    self.target * INCREASE_PER_SECOND.powf(seconds)
                };
                if let Some(received) = received {
                    // Never above what the path has shown it carries; never lowered by it
                    // either (a quiet encoder is not congestion).
                    next = next.min((HEADROOM * received + 10_000.0).max(self.target));
                }
                self.target = next;
                self.last_increase = Some(now);
            }
        }
    }

    /// Returns whether the loss allows an increase.
    fn loss_based(&mut self, now: Instant, lost: usize, total: usize) -> bool {
        if total == 0 {
            return self.average_loss.is_none_or(|a| a < LOW_LOSS);
        }
        let sample = lost as f64 / total as f64;
        let average = self
            .average_loss
            .map_or(sample, |previous| 0.8 * previous + 0.2 * sample);
        self.average_loss = Some(average);
        self.recent_loss.push_back((now, lost, total));
        while self
            .recent_loss
            .front()
            .is_some_and(|&(at, _, _)| now.saturating_duration_since(at) > LOSS_WINDOW)
        {
            self.recent_loss.pop_front();
        }
        let (window_lost, window_total) = self
            .recent_loss
            .iter()
            .fold((0, 0), |(l, t), &(_, lost, total)| (l + lost, t + total));
        let window = window_lost as f64 / window_total.max(1) as f64;
        let due = self
            .last_loss_cut
            .is_none_or(|at| now.saturating_duration_since(at) >= LOSS_INTERVAL);
        if due && average.min(sample).min(window) > HIGH_LOSS {
            self.target *= 1.0 - 0.5 * average;
            tracing::debug!(
                average,
                sample,
                window,
                target = self.target,
                "loss-based decrease"
            );
            self.last_loss_cut = Some(now);
            self.prober.decreased(now);
        }
        average.max(sample) < LOW_LOSS
    }
}

impl BandwidthEstimator for DuetGcc {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        let mut usage = self.detector.usage;
        for report in reports {
            if let (true, Some(arrival)) = (report.arrived, report.arrival) {
                self.received.add(arrival, report.size);
            }
            if let Some(trend) = self.slope.accumulate(report) {
                self.deltas = (self.deltas + 1).min(TREND_DELTAS);
                let modified = trend.estimate_ms * f64::from(self.deltas);
                usage = self.detector.update(trend.at, modified);
            }
        }
        let lost = reports.iter().filter(|r| !r.arrived).count();
        tracing::trace!(
            threshold_ms = self.detector.threshold_ms,
            trend_ms = self.detector.previous_trend_ms,
            ?usage,
            received = self.received.bps(),
            lost,
            reports = reports.len(),
            target = self.target,
            "feedback"
        );
        let before = self.target;
        self.delay_based(now, usage);
        if !self.loss_based(now, lost, reports.len()) && self.target > before {
            // 2-10 % loss: hold (a few per cent is normal on a radio link; climbing into it
            // is what turns it into congestion).
            self.target = before;
        }
        let probed = self.prober.on_reports(now, reports);
        let quiet = usage != Usage::Over && self.average_loss.is_none_or(|a| a < LOW_LOSS);
        let before_probe = self.target;
        if let Some(result) = probed {
            tracing::debug!(
                probe = result.id,
                carried = result.bps,
                send = result.send_bps,
                receive = result.receive_bps,
                target = self.target,
                "probe measured"
            );
            // A path that carried more than the estimate has that room now (libwebrtc sets its
            // estimate to a probe's result); the last ceiling no longer holds.
            if quiet && result.bps > self.target {
                self.target = result.bps;
                self.ceiling = None;
                self.last_increase = Some(now);
            }
        }
        self.target = self.target.clamp(self.min, self.max);
        self.prober.decide(
            now,
            self.target,
            self.max,
            quiet,
            probed.map(|r| (r, before_probe)),
        );
    }

    fn target_bitrate(&self) -> f64 {
        self.target
    }

    fn stats(&self) -> EstimatorStats {
        let mut stats = EstimatorStats::default();
        stats.delay_based_bitrate = Some(self.target);
        stats.packet_loss = self.average_loss;
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: f64 = 150_000.0;
    const MAX: f64 = 5_000_000.0;

    /// Packet `id` of `size` bytes, sent at `departure`, arrived at `arrival` (receiver clock)
    /// or lost.
    fn report(id: u64, size: usize, departure: Instant, arrival: Option<Duration>) -> PacketReport {
        PacketReport {
            ssrc: 1,
            id,
            rtp_sequence_number: id as u16,
            is_twcc: true,
            twcc_sequence_number: id as u16,
            size,
            arrived: arrival.is_some(),
            departure,
            arrival,
            ecn: Default::default(),
        }
    }

    /// A simulated bottleneck: packets of `size` bytes sent at `send_bps`, served at
    /// `link_bps` through a FIFO that drops beyond `queue` of delay; feedback every 100 ms.
    struct Link {
        epoch: Instant,
        link_bps: f64,
        queue: Duration,
        /// When the link is next free, seconds after the epoch.
        free_at: f64,
        /// When the sender's next packet leaves, seconds after the epoch.
        next_send: f64,
        id: u64,
        /// What the sender puts on the wire per bit of target (packet headers, audio).
        overhead: f64,
        /// Up to this much extra delay on each arrival, seconds (scheduling noise).
        jitter: f64,
        /// xorshift state for the jitter.
        rng: u64,
        /// Send video frames (frames per second, size spread) rather than a paced stream.
        frames: Option<(f64, f64)>,
        /// When the next frame is captured, seconds after the epoch.
        next_frame: f64,
        /// A probe to send at the start of the next interval, and what was sent for it.
        probe: Option<ProbeRequest>,
        probe_sent: Option<ProbeSent>,
        /// Probes sent so far.
        probes: usize,
        /// Whether the sender answers probe requests (off: the estimate climbs by its own
        /// increases only).
        sends_probes: bool,
    }

    impl Link {
        fn new(link_bps: f64) -> Self {
            Self {
                epoch: Instant::now(),
                link_bps,
                queue: Duration::from_millis(150),
                free_at: 0.0,
                next_send: 0.0,
                id: 0,
                overhead: 1.0,
                jitter: 0.0,
                rng: 0x9e37_79b9_7f4a_7c15,
                frames: None,
                next_frame: 0.0,
                probe: None,
                probe_sent: None,
                probes: 0,
                sends_probes: true,
            }
        }

        /// A pseudo-random number in 0..1 (xorshift: the same every run).
        fn uniform(&mut self) -> f64 {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            (self.rng % 1000) as f64 / 1000.0
        }

        /// One 100 ms feedback interval starting at `t` seconds with the sender at `send_bps`:
        /// the reports, and the instant feedback is handled (20 ms one-way after the last).
        fn interval(&mut self, t: f64, send_bps: f64) -> (Instant, Vec<PacketReport>) {
            let size = 1200usize;
            let wire_bps = send_bps * self.overhead;
            let mut departures = Vec::new();
            // A probe's padding leaves first, at the probe's rate.
            let mut padding = 0;
            if let Some(probe) = self.probe.take() {
                let bytes = PADDING_WIRE_BYTES;
                self.next_send = self.next_send.max(t);
                self.probe_sent = Some(ProbeSent {
                    id: probe.id,
                    ssrc: 1,
                    first_sequence: self.id as u16,
                    packets: probe.packets,
                });
                self.probes += 1;
                for _ in 0..probe.packets {
                    departures.push(self.next_send);
                    self.next_send += (bytes * 8) as f64 / probe.rate_bps;
                }
                padding = departures.len();
            }
            match self.frames {
                // Paced: the next packet leaves one packet time after the last, across
                // intervals.
                None => {
                    self.next_send = self.next_send.max(t);
                    while self.next_send < t + 0.1 {
                        departures.push(self.next_send);
                        self.next_send += (size * 8) as f64 / wire_bps;
                    }
                }
                // Video: a frame every 1/fps of a size that varies by up to `spread` either
                // way, its packets paced at 2.5 × the rate behind whatever is still queued.
                Some((fps, spread)) => {
                    self.next_frame = self.next_frame.max(t);
                    while self.next_frame < t + 0.1 {
                        let frame_at = self.next_frame;
                        self.next_frame += 1.0 / fps;
                        let jitter = 1.0 + spread * (2.0 * self.uniform() - 1.0);
                        let bytes = wire_bps / 8.0 / fps * jitter;
                        let packets = (bytes / size as f64).ceil().max(1.0) as usize;
                        for _ in 0..packets {
                            let sent = self.next_send.max(frame_at);
                            departures.push(sent);
                            self.next_send = sent + (size * 8) as f64 / (2.5 * wire_bps);
                        }
                    }
                }
            }
            let mut reports = Vec::new();
            for (n, sent) in departures.into_iter().enumerate() {
                let size = if n < padding {
                    PADDING_WIRE_BYTES
                } else {
                    size
                };
                let start = self.free_at.max(sent);
                let arrived = start - sent <= self.queue.as_secs_f64();
                let arrival = if arrived {
                    self.free_at = start + (size * 8) as f64 / self.link_bps;
                    let noise = self.uniform() * self.jitter;
                    Some(Duration::from_secs_f64(self.free_at + 0.010 + noise))
                } else {
                    None
                };
                let departure = self.epoch + Duration::from_secs_f64(sent);
                reports.push(report(self.id, size, departure, arrival));
                self.id += 1;
            }
            let handled = self.free_at.max(t + 0.1) + 0.02;
            (self.epoch + Duration::from_secs_f64(handled), reports)
        }
    }

    /// Runs a sender that follows the estimate exactly from `from_s` to `to_s` seconds;
    /// returns the targets, one per 100 ms.
    fn run(gcc: &mut DuetGcc, link: &mut Link, from_s: f64, to_s: f64) -> Vec<f64> {
        let mut targets = Vec::new();
        let mut t = from_s;
        while t < to_s {
            let (at, reports) = link.interval(t, gcc.target_bitrate());
            if let Some(sent) = link.probe_sent.take() {
                gcc.probe_sent(link.epoch + Duration::from_secs_f64(t), sent);
            }
            gcc.on_reports(at, &reports);
            link.probe = gcc.take_probe_request().filter(|_| link.sends_probes);
            targets.push(gcc.target_bitrate());
            t += 0.1;
        }
        targets
    }

    /// A padding-only packet on the wire in the simulation: 255 octets of padding and the
    /// headers.
    const PADDING_WIRE_BYTES: usize = 280;

    /// The case webrtc-rs's `Gcc` gets wrong: starting at twice a 500 kbit/s link, the
    /// estimate comes down to the link, not to the floor, and then stays near it.
    #[test]
    fn an_overshoot_settles_near_the_link_not_at_the_floor() {
        let mut gcc = DuetGcc::new(1_000_000.0, MIN, MAX);
        let mut link = Link::new(500_000.0);
        let targets = run(&mut gcc, &mut link, 0.0, 20.0);
        let late = &targets[50..];
        let low = late.iter().copied().fold(f64::MAX, f64::min);
        let mean = late.iter().sum::<f64>() / late.len() as f64;
        assert!(low > 250_000.0, "fell to {low:.0} bit/s: {targets:?}");
        assert!(
            (330_000.0..=560_000.0).contains(&mean),
            "mean {mean:.0} bit/s after 5 s: {targets:?}"
        );
    }

    /// A link that narrows and widens again, with no probes answered (a sender with nothing
    /// to send them behind): down near the narrow rate, then climbing past 2 Mbit/s within
    /// 22 s by the controller's own increases (multiplicatively once the path carries 1.2 × the
    /// old ceiling; adding 60 kbit/s a second towards the stale ceiling would take 26 s).
    #[test]
    fn a_widened_link_is_climbed_again() {
        let mut gcc = DuetGcc::new(1_000_000.0, MIN, MAX);
        let mut link = Link::new(500_000.0);
        link.sends_probes = false;
        let narrow = run(&mut gcc, &mut link, 0.0, 10.0);
        let at_narrow = *narrow.last().unwrap();
        assert!(at_narrow < 700_000.0, "{narrow:?}");
        link.link_bps = 3_000_000.0;
        let wide = run(&mut gcc, &mut link, 10.0, 32.0);
        assert!(
            wide.iter().any(|&bps| bps > 2_000_000.0),
            "{at_narrow:.0} then {wide:?}"
        );
    }

    /// What a CI run of the 1 Mbit/s lab test found: a sender whose packets carry 5 % more
    /// than its target (headers, audio) on a link with a few ms of scheduling noise. The
    /// queue grows slowly; the detector must see it before the 150 ms buffer is full and
    /// tail drops at 2-10 % only hold the rate, where it would stay above the link.
    #[test]
    fn a_sender_a_little_over_a_noisy_link_comes_under_it() {
        let mut gcc = DuetGcc::new(1_000_000.0, MIN, MAX);
        let mut link = Link::new(1_000_000.0);
        link.overhead = 1.05;
        link.jitter = 0.004;
        link.frames = Some((30.0, 0.4));
        let targets = run(&mut gcc, &mut link, 0.0, 30.0);
        let mut late = targets[100..].to_vec();
        late.sort_by(f64::total_cmp);
        let median = late[late.len() / 2];
        assert!(
            median * link.overhead <= 1_000_000.0,
            "median target {median:.0} bit/s after 10 s: {targets:?}"
        );
        assert!(median > 500_000.0, "median {median:.0} bit/s: {targets:?}");
    }

    /// A burst of noise (a keyframe, a scheduling hiccup) must not leave the threshold
    /// high: a second of quiet brings it back, and a queue growing after that is seen. With
    /// the draft's gains (0.01 up, 0.00018 down) the threshold stayed near 20 ms and the
    /// 10 ms trend that follows was never overuse.
    #[test]
    fn a_noisy_second_does_not_blind_the_detector() {
        let epoch = Instant::now();
        let at = |ms: u64| epoch + Duration::from_millis(ms);
        let mut detector = DelayDetector::default();
        for i in 0..40u64 {
            let noise = if i % 2 == 0 { 24.0 } else { -24.0 };
            detector.update(at(i * 25), noise);
        }
        assert!(detector.threshold_ms > 15.0, "{}", detector.threshold_ms);
        for i in 40..80u64 {
            detector.update(at(i * 25), 1.0);
        }
        assert!(detector.threshold_ms < 8.0, "{}", detector.threshold_ms);
        let mut usage = Usage::Normal;
        for i in 80..90u64 {
            usage = detector.update(at(i * 25), 10.0 + (i - 80) as f64 * 0.1);
        }
        assert_eq!(usage, Usage::Over, "threshold {}", detector.threshold_ms);
    }

    #[test]
    fn a_clear_link_is_climbed() {
        let mut gcc = DuetGcc::new(300_000.0, MIN, MAX);
        let mut link = Link::new(50_000_000.0);
        let targets = run(&mut gcc, &mut link, 0.0, 10.0);
        let last = *targets.last().unwrap();
        assert!(last > 500_000.0, "{targets:?}");
    }

    #[test]
    fn an_encoder_sending_less_than_allowed_does_not_let_the_target_run_away() {
        let mut gcc = DuetGcc::new(MIN, MIN, MAX);
        let mut link = Link::new(50_000_000.0);
        let mut t = 0.0;
        while t < 20.0 {
            // The encoder sends 200 kbit/s whatever it is allowed.
            let (at, reports) = link.interval(t, 200_000.0);
            gcc.on_reports(at, &reports);
            t += 0.1;
        }
        assert!(
            gcc.target_bitrate() <= HEADROOM * 200_000.0 + 10_000.0 + 1.0,
            "{}",
            gcc.target_bitrate()
        );
    }

    #[test]
    fn heavy_loss_cuts_and_moderate_loss_holds() {
        let epoch = Instant::now();
        let report = |id: u64, arrived: bool| {
            let arrival = arrived.then(|| Duration::from_millis(id + 10));
            report(id, 1200, epoch + Duration::from_millis(id), arrival)
        };
        // 5 % loss for 5 s: no increase.
        let mut gcc = DuetGcc::new(1_000_000.0, MIN, MAX);
        for batch in 0..50u64 {
            let reports: Vec<_> = (0..20).map(|i| report(batch * 20 + i, i != 0)).collect();
            gcc.on_reports(epoch + Duration::from_millis(batch * 100 + 120), &reports);
        }
        assert!(
            gcc.target_bitrate() <= 1_000_000.0,
            "{}",
            gcc.target_bitrate()
        );
        // 30 % loss: cut.
        let mut gcc = DuetGcc::new(1_000_000.0, MIN, MAX);
        for batch in 0..20u64 {
            let reports: Vec<_> = (0..20)
                .map(|i| report(batch * 20 + i, i % 10 >= 3))
                .collect();
            gcc.on_reports(epoch + Duration::from_millis(batch * 100 + 120), &reports);
        }
        assert!(gcc.target_bitrate() < 500_000.0, "{}", gcc.target_bitrate());
    }

    #[test]
    fn nothing_reported_changes_nothing_and_odd_reports_do_not_panic() {
        let epoch = Instant::now();
        let mut gcc = DuetGcc::new(600_000.0, MIN, MAX);
        gcc.on_reports(epoch, &[]);
        assert_eq!(gcc.target_bitrate(), 600_000.0);
        // Arrival times going backwards and a zero-size packet.
        let reports: Vec<PacketReport> = (0..10u64)
            .map(|id| {
                let size = if id == 3 { 0 } else { 1200 };
                let arrival = Some(Duration::from_millis(1000 - id * 50));
                report(id, size, epoch + Duration::from_millis(id * 5), arrival)
            })
            .collect();
        gcc.on_reports(epoch + Duration::from_millis(100), &reports);
        assert!(gcc.target_bitrate().is_finite());
        assert!((MIN..=MAX).contains(&gcc.target_bitrate()));
    }

    /// The lab's step: 500 kbit/s, then 3 Mbit/s again. Probing finds the room within
    /// seconds (without it the estimate climbed 8 % a second and needed 20 s to pass
    /// 2 Mbit/s).
    #[test]
    fn a_widened_link_is_found_within_seconds_by_probing() {
        let mut gcc = DuetGcc::new(1_000_000.0, MIN, MAX);
        let mut link = Link::new(500_000.0);
        let narrow = run(&mut gcc, &mut link, 0.0, 15.0);
        let late_narrow = narrow[100..].iter().copied().fold(0.0, f64::max);
        assert!(
            late_narrow < 600_000.0,
            "probes lifted it over the link: {narrow:?}"
        );
        link.link_bps = 3_000_000.0;
        let wide = run(&mut gcc, &mut link, 15.0, 21.0);
        assert!(
            wide.iter().any(|&bps| bps > 2_000_000.0),
            "{wide:?} ({} probes in all)",
            link.probes
        );
    }

    /// A call starting on a clear path: the first probes take the estimate from its start
    /// to well above it within a second or two.
    #[test]
    fn the_first_probes_find_a_clear_path() {
        let mut gcc = DuetGcc::new(300_000.0, MIN, MAX);
        let mut link = Link::new(50_000_000.0);
        let targets = run(&mut gcc, &mut link, 0.0, 2.0);
        assert!(
            targets.last().is_some_and(|&bps| bps > 1_500_000.0),
            "{targets:?}"
        );
    }

    /// Probes on a full link measure the link, not the probe: the estimate stays near the
    /// cap over half a minute (the first probe, and any later one due when the path has been
    /// quiet for `probe::PROBE_INTERVAL`), and the link stays used.
    #[test]
    fn probes_on_a_capped_link_keep_the_estimate_near_the_cap() {
        let mut gcc = DuetGcc::new(300_000.0, MIN, MAX);
        let mut link = Link::new(1_000_000.0);
        link.frames = Some((30.0, 0.4));
        link.jitter = 0.002;
        let targets = run(&mut gcc, &mut link, 0.0, 30.0);
        let late = &targets[50..];
        let high = late.iter().copied().fold(0.0, f64::max);
        let mean = late.iter().sum::<f64>() / late.len() as f64;
        assert!(link.probes >= 1, "{} probes", link.probes);
        assert!(high < 1_150_000.0, "peak {high:.0} bit/s: {targets:?}");
        assert!(mean > 600_000.0, "mean {mean:.0} bit/s: {targets:?}");
    }

    /// One report of a burst lost in an overflow (a keyframe into a small router queue) is not
    /// a lossy link: with a second of clean feedback around it the rate is not cut for it.
    #[test]
    fn one_lossy_report_in_a_clean_second_does_not_cut() {
        let epoch = Instant::now();
        let report = |id: u64, arrived: bool| {
            let arrival = arrived.then(|| Duration::from_millis(id + 10));
            report(id, 1200, epoch + Duration::from_millis(id), arrival)
        };
        let mut gcc = DuetGcc::new(1_000_000.0, MIN, MAX);
        let mut before = 0.0;
        for batch in 0..20u64 {
            // Batch 12 loses 14 of its 20 packets; the others lose none.
            let reports: Vec<_> = (0..20)
                .map(|i| report(batch * 20 + i, batch != 12 || i >= 14))
                .collect();
            if batch == 12 {
                before = gcc.target_bitrate();
            }
            gcc.on_reports(epoch + Duration::from_millis(batch * 100 + 120), &reports);
        }
        assert!(
            gcc.target_bitrate() >= before,
            "{} after, {before} before",
            gcc.target_bitrate()
        );
    }
}
