//! Bandwidth probing for [`crate::congestion::DuetGcc`]: when to ask the path for more than the
//! estimate, and what a probe's feedback says the path carries. Pure: every instant is a
//! parameter.
//!
//! Without probing, an estimate only climbs by its own increases (8 % a second far from a
//! known ceiling), so after a link narrowed and widened again a call stayed at a fraction of
//! the link for half a minute (the lab's 3 → 0.5 → 3 Mbit/s step: 23-27 % utilisation against
//! Chromium's 68 %). libwebrtc finds the room at once with probes: a short burst, sent faster
//! than the estimate, whose arrival spread at the far end measures the bottleneck. This is that
//! mechanism, reduced to what duet needs:
//! - **what a probe is**: [`PROBE_DURATION`] worth of padding-only RTP packets at the probe
//!   rate, queued at once; the pacer lets them out at the probe rate while the probe is
//!   outstanding (`peer::PublishingGcc`). Media sent in the same interval belongs to the
//!   cluster too: the link carried it alongside.
//! - **what it measures**: over the packets that left between the first and the last padding
//!   packet, the send rate (departures, this side's clock) and the receive rate (arrivals, the
//!   far end's clock, from transport-wide feedback). A receive rate well under the send rate
//!   means the burst saturated the path: the result is [`SATURATED_SHARE`] of the receive rate
//!   (libwebrtc's rule); otherwise the smaller of the two. Never more than the rate asked for:
//!   a burst that left faster than planned proves no more than the plan.
//! - **when**: at the first feedback of a call, at [`STARTUP_FACTOR`] × the estimate; again at
//!   once, at [`PROBE_FACTOR`] × the new estimate, after a probe that raised the estimate
//!   ([`SUCCESS_GAIN`]); otherwise every [`PROBE_INTERVAL`] while the path is quiet (no
//!   delay-based decrease for that long, low loss), so a widened link is found within seconds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;

/// How long a probe's burst lasts at its rate.
pub const PROBE_DURATION: Duration = Duration::from_millis(40);
/// The payload of one padding-only packet, octets (RFC 3550's padding count is one octet).
pub const PADDING_PACKET_BYTES: usize = 255;
/// A probe has at least this many padding packets, so its spread is measurable.
pub const MIN_PROBE_PACKETS: usize = 5;
/// The first probe of a call asks for this many times the starting estimate.
pub const STARTUP_FACTOR: f64 = 3.0;
/// Later probes ask for this many times the estimate.
pub const PROBE_FACTOR: f64 = 2.0;
/// A probe that raised the estimate by at least this factor is followed by another at once.
pub const SUCCESS_GAIN: f64 = 1.5;
/// How often a quiet path is probed for more room; also how long after a delay-based decrease
/// the next probe waits.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(4);
/// A probe whose packets are not all reported this long after they were sent is judged on
/// what was, or dropped.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// At least this share of a probe's padding must arrive for it to mean anything.
pub const MIN_RECEIVED_SHARE: f64 = 0.8;
/// A receive rate under this share of the send rate means the burst filled the bottleneck.
pub const UNSATURATED_SHARE: f64 = 0.9;
/// ...and the result is this share of the receive rate (libwebrtc's target utilisation).
pub const SATURATED_SHARE: f64 = 0.95;
/// Reports kept to measure a probe by, at most (a second of 3 Mbit/s in 1200-octet packets
/// is ~300).
const HISTORY_LIMIT: usize = 4096;
/// How long reports are kept.
const HISTORY_SPAN: Duration = Duration::from_secs(2);

/// A probe the controller wants sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeRequest {
    /// Names the probe in [`ProbeSent`].
    pub id: u32,
    /// The rate the burst should leave at, bits per second (the pacer's rate meanwhile).
    pub rate_bps: f64,
    /// How many padding-only packets of [`PADDING_PACKET_BYTES`] to queue.
    pub packets: u16,
}

/// What the sender queued for a [`ProbeRequest`]: `packets` padding-only packets on `ssrc`,
/// sequence numbers from `first_sequence` on (wrapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSent {
    pub id: u32,
    pub ssrc: u32,
    pub first_sequence: u16,
    pub packets: u16,
}

impl ProbeSent {
    fn contains(&self, seen: &Seen) -> bool {
        seen.ssrc == self.ssrc && seen.sequence.wrapping_sub(self.first_sequence) < self.packets
    }
}

/// The rate a probe measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeResult {
    pub id: u32,
    /// What the path carried, bits per second (see the module docs).
    pub bps: f64,
    /// The rates it came from, bits per second.
    pub send_bps: f64,
    pub receive_bps: f64,
}

/// One reported packet, as much as a probe needs.
#[derive(Debug, Clone, Copy)]
struct Seen {
    departure: Instant,
    arrival: Option<Duration>,
    size: usize,
    ssrc: u32,
    sequence: u16,
}

#[derive(Debug)]
struct Outstanding {
    request: ProbeRequest,
    /// When it was asked for (a request never taken up expires from here).
    requested: Instant,
    sent: Option<(ProbeSent, Instant)>,
}

/// When to probe, and what a probe found.
#[derive(Debug)]
pub struct Prober {
    next_id: u32,
    outstanding: Option<Outstanding>,
    /// A request not yet handed to the sender.
    pending: Option<ProbeRequest>,
    /// When the next periodic probe is due; `None` before the first feedback.
    next_probe: Option<Instant>,
    /// Probe again at once (the last one raised the estimate).
    follow_up: bool,
    history: VecDeque<Seen>,
}

impl Default for Prober {
    fn default() -> Self {
        Self {
            next_id: 1,
            outstanding: None,
            pending: None,
            next_probe: None,
            follow_up: false,
            history: VecDeque::new(),
        }
    }
}

impl Prober {
    /// The rate the pacer should allow while a probe is outstanding.
    #[must_use]
    pub fn pacing_bps(&self) -> Option<f64> {
        self.outstanding.as_ref().map(|o| o.request.rate_bps)
    }

    /// The next probe to send, once.
    pub fn take_request(&mut self) -> Option<ProbeRequest> {
        self.pending.take()
    }

    /// The sender queued a probe's packets at `now`.
    pub fn sent(&mut self, now: Instant, sent: ProbeSent) {
        if let Some(o) = &mut self.outstanding
            && o.request.id == sent.id
            && o.sent.is_none()
        {
            o.sent = Some((sent, now));
        }
    }

    /// A delay-based decrease at `now`: the path is full, so no probe for a while.
    pub fn decreased(&mut self, now: Instant) {
        self.follow_up = false;
        self.next_probe = Some(now + PROBE_INTERVAL);
    }

    /// Folds in a feedback batch; returns a finished probe's result.
    pub fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) -> Option<ProbeResult> {
        // Only a probe's feedback is measured: everything it needs departs after it was asked
        // for, so between probes nothing is kept.
        if self.outstanding.is_none() {
            self.history.clear();
            return None;
        }
        for report in reports {
            self.history.push_back(Seen {
                departure: report.departure,
                arrival: report.arrival.filter(|_| report.arrived),
                size: report.size,
                ssrc: report.ssrc,
                sequence: report.rtp_sequence_number,
            });
        }
        while self.history.len() > HISTORY_LIMIT
            || self
                .history
                .front()
                .is_some_and(|s| now.saturating_duration_since(s.departure) > HISTORY_SPAN)
        {
            self.history.pop_front();
        }
        let outstanding = self.outstanding.as_ref()?;
        let Some((sent, sent_at)) = outstanding.sent else {
            // Asked for and never sent (no video is flowing): forget it after the timeout.
            if now.saturating_duration_since(outstanding.requested) > PROBE_TIMEOUT {
                self.outstanding = None;
            }
            return None;
        };
        let reported = self.history.iter().filter(|s| sent.contains(s)).count();
        let timed_out = now.saturating_duration_since(sent_at) > PROBE_TIMEOUT;
        if reported < usize::from(sent.packets) && !timed_out {
            return None;
        }
        let request = outstanding.request;
        self.outstanding = None;
        self.measure(request, sent)
    }

    fn measure(&self, request: ProbeRequest, sent: ProbeSent) -> Option<ProbeResult> {
        let padding = self.history.iter().filter(|s| sent.contains(s));
        let arrived = padding.clone().filter(|s| s.arrival.is_some()).count();
        if (arrived as f64) < MIN_RECEIVED_SHARE * f64::from(sent.packets) {
            return None;
        }
        let first = padding.clone().map(|s| s.departure).min()?;
        let last = padding.map(|s| s.departure).max()?;
        let cluster: Vec<&Seen> = self
            .history
            .iter()
            .filter(|s| (first..=last).contains(&s.departure))
            .collect();
        let sent_bytes: usize = cluster.iter().map(|s| s.size).sum();
        // The last packet's bytes leave after the span ends; the first's arrive before it.
        let last_size = cluster.iter().max_by_key(|s| s.departure)?.size;
        let send_span = last
            .saturating_duration_since(first)
            .max(Duration::from_millis(1));
        let send_bps = (sent_bytes - last_size) as f64 * 8.0 / send_span.as_secs_f64();
        let mut arrivals: Vec<(Duration, usize)> = cluster
            .iter()
            .filter_map(|s| s.arrival.map(|a| (a, s.size)))
            .collect();
        arrivals.sort_by_key(|a| a.0);
        let (first_arrival, first_size) = *arrivals.first()?;
        let last_arrival = arrivals.last()?.0;
        let received_bytes: usize = arrivals.iter().map(|a| a.1).sum();
        let receive_span = last_arrival
            .saturating_sub(first_arrival)
            .max(Duration::from_millis(1));
        let receive_bps = (received_bytes - first_size) as f64 * 8.0 / receive_span.as_secs_f64();
        let carried = if receive_bps < UNSATURATED_SHARE * send_bps {
            SATURATED_SHARE * receive_bps
        } else {
            send_bps.min(receive_bps)
        };
        Some(ProbeResult {
            id: request.id,
            bps: carried.min(request.rate_bps),
            send_bps,
            receive_bps,
        })
    }

    /// After feedback at `now`: whether to ask for a probe, given the estimate `target_bps`,
    /// the most the call may use `max_bps`, and whether the path is quiet enough (low loss,
    /// no overuse) to probe at all. A probe's result is passed in `probed` when one finished
    /// with this feedback, with the estimate before it was applied.
    pub fn decide(
        &mut self,
        now: Instant,
        target_bps: f64,
        max_bps: f64,
        quiet: bool,
        probed: Option<(ProbeResult, f64)>,
    ) {
        if let Some((result, before)) = probed {
            self.follow_up = result.bps >= SUCCESS_GAIN * before;
            if !self.follow_up {
                self.next_probe = Some(now + PROBE_INTERVAL);
            }
        }
        let factor = match self.next_probe {
            None => {
                // The first feedback of the call: the path answers, probe it.
                self.next_probe = Some(now);
                STARTUP_FACTOR
            }
            Some(_) if self.follow_up => PROBE_FACTOR,
            Some(due) if now >= due => PROBE_FACTOR,
            Some(_) => return,
        };
        if self.outstanding.is_some() || !quiet || target_bps >= max_bps * 0.95 {
            return;
        }
        let rate_bps = (target_bps * factor).min(max_bps);
        let bytes = rate_bps * PROBE_DURATION.as_secs_f64() / 8.0;
        let packets = ((bytes / PADDING_PACKET_BYTES as f64).ceil() as usize)
            .clamp(MIN_PROBE_PACKETS, usize::from(u16::MAX)) as u16;
        let request = ProbeRequest {
            id: self.next_id,
            rate_bps,
            packets,
        };
        self.next_id = self.next_id.wrapping_add(1);
        self.follow_up = false;
        self.next_probe = Some(now + PROBE_INTERVAL);
        self.pending = Some(request);
        self.outstanding = Some(Outstanding {
            request,
            requested: now,
            sent: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(seq: u16, departure: Instant, arrival: Option<Duration>) -> PacketReport {
        PacketReport {
            ssrc: 7,
            id: u64::from(seq),
            rtp_sequence_number: seq,
            is_twcc: true,
            twcc_sequence_number: seq,
            size: 280,
            arrived: arrival.is_some(),
            departure,
            arrival,
            ecn: Default::default(),
        }
    }

    /// A prober that has asked for its first probe at `epoch`, at 3 × 500 kbit/s.
    fn asked(epoch: Instant) -> (Prober, ProbeRequest) {
        let mut prober = Prober::default();
        prober.decide(epoch, 500_000.0, 5_000_000.0, true, None);
        let request = prober
            .take_request()
            .expect("the first feedback asks for a probe");
        assert_eq!(request.rate_bps, 1_500_000.0);
        assert_eq!(prober.take_request(), None, "handed over once");
        (prober, request)
    }

    /// Sends the request's packets 1 ms apart from `epoch`; returns their reports, arriving
    /// `spacing` apart (the bottleneck's pace), every `lose_every`-th lost.
    fn burst(
        prober: &mut Prober,
        request: ProbeRequest,
        epoch: Instant,
        spacing: Duration,
        lose_every: Option<u16>,
    ) -> Vec<PacketReport> {
        prober.sent(
            epoch,
            ProbeSent {
                id: request.id,
                ssrc: 7,
                first_sequence: 65_530,
                packets: request.packets,
            },
        );
        (0..request.packets)
            .map(|n| {
                let seq = 65_530u16.wrapping_add(n);
                let lost = lose_every.is_some_and(|k| n % k == 0);
                let arrival = (!lost).then(|| spacing * u32::from(n) + Duration::from_millis(20));
                report(seq, epoch + Duration::from_millis(u64::from(n)), arrival)
            })
            .collect()
    }

    #[test]
    fn a_saturated_burst_measures_the_bottleneck() {
        let epoch = Instant::now();
        let (mut prober, request) = asked(epoch);
        assert_eq!(prober.pacing_bps(), Some(1_500_000.0));
        // 280 octets every 4 ms is 560 kbit/s: the bottleneck, not the 2.2 Mbit/s sent.
        let reports = burst(&mut prober, request, epoch, Duration::from_millis(4), None);
        let result = prober
            .on_reports(epoch + Duration::from_millis(150), &reports)
            .expect("measured");
        assert!(
            (result.bps - 0.95 * 560_000.0).abs() < 1_000.0,
            "{result:?}"
        );
        assert_eq!(prober.pacing_bps(), None, "the pacer goes back to normal");
    }

    #[test]
    fn a_burst_that_arrives_as_sent_is_capped_at_the_rate_asked_for() {
        let epoch = Instant::now();
        let (mut prober, request) = asked(epoch);
        let reports = burst(&mut prober, request, epoch, Duration::from_millis(1), None);
        let result = prober
            .on_reports(epoch + Duration::from_millis(150), &reports)
            .expect("measured");
        assert_eq!(result.bps, request.rate_bps, "{result:?}");
    }

    #[test]
    fn a_burst_mostly_lost_measures_nothing() {
        let epoch = Instant::now();
        let (mut prober, request) = asked(epoch);
        let reports = burst(
            &mut prober,
            request,
            epoch,
            Duration::from_millis(1),
            Some(3),
        );
        assert_eq!(
            prober.on_reports(epoch + Duration::from_millis(150), &reports),
            None
        );
        assert_eq!(prober.pacing_bps(), None);
    }

    /// No video flowing (nothing to send the padding behind): the request lapses, and the
    /// pacer's rate with it.
    #[test]
    fn a_probe_never_sent_lapses() {
        let epoch = Instant::now();
        let (mut prober, _) = asked(epoch);
        let later = epoch + PROBE_TIMEOUT + Duration::from_millis(1);
        assert_eq!(prober.on_reports(later, &[report(1, later, None)]), None);
        assert_eq!(prober.pacing_bps(), None);
    }

    /// Nothing is probed while the path is congested, nor right after a decrease.
    #[test]
    fn a_congested_path_is_not_probed() {
        let epoch = Instant::now();
        let mut prober = Prober::default();
        prober.decide(epoch, 500_000.0, 5_000_000.0, false, None);
        assert_eq!(prober.take_request(), None);
        prober.decreased(epoch);
        prober.decide(
            epoch + PROBE_INTERVAL / 2,
            500_000.0,
            5_000_000.0,
            true,
            None,
        );
        assert_eq!(prober.take_request(), None);
        prober.decide(epoch + PROBE_INTERVAL, 500_000.0, 5_000_000.0, true, None);
        assert!(prober.take_request().is_some());
    }
}
