//! Audio playout jitter buffer: a pure state machine (no threads, no clock).
//!
//! The network side calls [`JitterBuffer::push`] whenever an RTP packet arrives; the playout side
//! calls [`JitterBuffer::pop`] exactly once per 20 ms frame and gets back what to play:
//! the packet for that slot, a loss to conceal (with the next packet when it is already here, so
//! the Opus decoder can use its in-band FEC), or "still buffering". Sequence numbers are
//! 16-bit RTP numbers with wraparound; packets are reordered, duplicates and packets that arrive
//! after their slot was played are dropped, the delay is held near a target, and when the
//! queue grows far behind (a burst after a stall) the oldest packets are dropped.
//!
//! The target adapts when packets come with their arrival time ([`JitterBuffer::push_timed`]):
//! it follows the spread of the packets' transit times over the last
//! [`TRANSIT_WINDOW`] packets (the 95th percentile above the fastest, plus one frame), between
//! [`JitterConfig::min_delay_frames`] and [`JitterConfig::max_target_frames`] (20–200 ms by
//! default). Playout moves towards it one frame at a time, at most once per
//! [`ADJUST_EVERY`] slots: a concealed frame is played to grow the delay, a queued frame is
//! skipped to shrink it.

use std::collections::{BTreeMap, VecDeque};

/// How many recent packets' transit times the adaptive target looks at (2 s of 20 ms frames).
pub const TRANSIT_WINDOW: usize = 100;
/// Slots between two adjustments of the playout delay.
pub const ADJUST_EVERY: u32 = 10;
/// Length of one frame, ms.
const FRAME_MS: f64 = 20.0;

/// Tuning of a [`JitterBuffer`], in 20 ms frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterConfig {
    /// Frames buffered before playout starts (3 = 60 ms).
    pub target_delay_frames: u16,
    /// Once more than this many frames are queued, the oldest are dropped down to the target.
    pub max_delay_frames: u16,
    /// Consecutive empty pops (nothing at all queued) after which playout stops and re-buffers.
    pub max_underruns: u16,
    /// The adaptive target's floor (1 = 20 ms).
    pub min_delay_frames: u16,
    /// The adaptive target's ceiling (10 = 200 ms).
    pub max_target_frames: u16,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            target_delay_frames: 3,
            max_delay_frames: 10,
            max_underruns: 5,
            min_delay_frames: 1,
            max_target_frames: 10,
        }
    }
}

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued for playout.
    Accepted,
    /// Already queued: ignored.
    Duplicate,
    /// Its slot was already played (or concealed): ignored.
    Late,
}

/// What to play for the current 20 ms slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Playout {
    /// Not playing (filling up to the target delay, or nothing received): play silence.
    Buffering,
    /// The packet for this slot.
    Packet {
        /// RTP sequence number.
        seq: u16,
        /// RTP timestamp.
        timestamp: u32,
        /// The payload (an Opus packet).
        payload: Vec<u8>,
    },
    /// The packet for this slot is missing: conceal it. When the following packet is already
    /// queued, `next_payload` is a copy of it, whose FEC data can rebuild this slot.
    Lost {
        /// The missing sequence number.
        seq: u16,
        /// The next packet, if already here.
        next_payload: Option<Vec<u8>>,
    },
}

/// Counters of a [`JitterBuffer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets accepted.
    pub accepted: u64,
    /// Duplicates ignored.
    pub duplicates: u64,
    /// Packets that arrived after their slot.
    pub late: u64,
    /// Slots concealed.
    pub lost: u64,
    /// Packets dropped because the queue was too long.
    pub dropped: u64,
    /// Packets played.
    pub played: u64,
    /// Frames concealed on purpose to grow the delay towards the target.
    pub stretched: u64,
    /// Queued frames skipped on purpose to shrink the delay towards the target.
    pub shrunk: u64,
}

struct Queued {
    timestamp: u32,
    payload: Vec<u8>,
}

/// See the module documentation.
pub struct JitterBuffer {
    config: JitterConfig,
    queue: BTreeMap<u64, Queued>,
    /// Extended (wrap-free) sequence number of the highest packet seen.
    highest: Option<u64>,
    /// Next slot to play, once playing.
    next: Option<u64>,
    underruns: u16,
    stats: JitterStats,
    /// Transit times (arrival − RTP time), ms, of the last packets pushed with a time.
    transit: VecDeque<f64>,
    /// The current target, frames.
    target: u16,
    /// Slots since the last delay adjustment.
    since_adjust: u32,
}

impl std::fmt::Debug for JitterBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitterBuffer")
            .field("queued", &self.queue.len())
            .field("next", &self.next)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Extended sequence numbers start here so that they can go "backwards" without underflow.
const EXTENDED_BASE: u64 = 1 << 32;

impl JitterBuffer {
    /// An empty buffer.
    #[must_use]
    pub fn new(config: JitterConfig) -> Self {
        let min = config.min_delay_frames.max(1);
        let config = JitterConfig {
            target_delay_frames: config.target_delay_frames.max(1),
            max_delay_frames: config
                .max_delay_frames
                .max(config.target_delay_frames.max(1)),
            max_underruns: config.max_underruns.max(1),
            min_delay_frames: min,
            max_target_frames: config.max_target_frames.max(min),
        };
        Self {
            config,
            queue: BTreeMap::new(),
            highest: None,
            next: None,
            underruns: 0,
            stats: JitterStats::default(),
            transit: VecDeque::with_capacity(TRANSIT_WINDOW),
            target: config.target_delay_frames,
            since_adjust: 0,
        }
    }

    /// The playout delay the buffer aims for, ms.
    #[must_use]
    pub fn target_delay_ms(&self) -> f64 {
        f64::from(self.target) * FRAME_MS
    }

    /// The delay queued right now (from the next slot to play to the newest packet), ms.
    #[must_use]
    pub fn delay_ms(&self) -> f64 {
        match (self.next, self.highest) {
            (Some(next), Some(highest)) if highest + 1 >= next => {
                (highest + 1 - next) as f64 * FRAME_MS
            }
            _ => 0.0,
        }
    }

    /// Adds a packet that arrived at `arrival_ms` (any monotonic clock, ms); its transit time
    /// feeds the adaptive target. `timestamp` is the RTP timestamp at 48 kHz.
    pub fn push_timed(
        &mut self,
        seq: u16,
        timestamp: u32,
        payload: Vec<u8>,
        arrival_ms: f64,
    ) -> PushOutcome {
        let outcome = self.push(seq, timestamp, payload);
        if outcome != PushOutcome::Duplicate && arrival_ms.is_finite() {
            // A timestamp wrap (every 24.9 h at 48 kHz) shows as a discontinuity and restarts
            // the window (see `retarget`).
            let rtp_ms = f64::from(timestamp) / 48.0;
            if self.transit.len() >= TRANSIT_WINDOW {
                self.transit.pop_front();
            }
            self.transit.push_back(arrival_ms - rtp_ms);
            self.retarget();
        }
        outcome
    }

    fn retarget(&mut self) {
        if self.transit.len() < 10 {
            return;
        }
        let mut v: Vec<f64> = self.transit.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        // A timestamp discontinuity (new stream) shows as a huge spread: start over.
        let min = v[0];
        let p95 = v[(v.len() - 1) * 95 / 100];
        let spread = p95 - min;
        if spread > 10_000.0 {
            self.transit.clear();
            return;
        }
        let frames = ((spread + FRAME_MS) / FRAME_MS).ceil() as u16;
        self.target = frames.clamp(self.config.min_delay_frames, self.config.max_target_frames);
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Frames currently queued.
    #[must_use]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn extend(&self, seq: u16) -> u64 {
        match self.highest {
            None => EXTENDED_BASE + u64::from(seq),
            Some(highest) => {
                // The 16-bit difference, interpreted as signed, is the true distance.
                let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
                highest.saturating_add_signed(delta)
            }
        }
    }

    /// Adds an arrived packet.
    pub fn push(&mut self, seq: u16, timestamp: u32, payload: Vec<u8>) -> PushOutcome {
        let ext = self.extend(seq);
        if self.next.is_some_and(|next| ext < next) {
            self.stats.late += 1;
            return PushOutcome::Late;
        }
        if self.queue.contains_key(&ext) {
            self.stats.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        self.queue.insert(ext, Queued { timestamp, payload });
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.stats.accepted += 1;
        self.trim();
        PushOutcome::Accepted
    }

    /// Drops the oldest packets when playout is far behind the newest arrival.
    fn trim(&mut self) {
        let (Some(next), Some(highest)) = (self.next, self.highest) else {
            return;
        };
        let max = self.config.max_delay_frames.max(self.target + 3);
        if highest + 1 - next.min(highest + 1) <= u64::from(max) {
            return;
        }
        let new_next = highest + 1 - u64::from(self.target);
        let kept = self.queue.split_off(&new_next);
        self.stats.dropped += self.queue.len() as u64;
        self.queue = kept;
        self.next = Some(new_next);
    }

    /// What to play for the next 20 ms slot. Call exactly once per slot.
    pub fn pop(&mut self) -> Playout {
        let Some(mut next) = self.next else {
            return self.maybe_start();
        };
        self.since_adjust += 1;
        if self.since_adjust >= ADJUST_EVERY
            && self.transit.len() >= 10
            && let Some(highest) = self.highest
        {
            let depth = (highest + 1).saturating_sub(next);
            let target = u64::from(self.target);
            if depth < target && !self.queue.is_empty() {
                // Grow by one frame: conceal this slot and play the packet at `next` later.
                self.since_adjust = 0;
                self.stats.stretched += 1;
                return Playout::Lost {
                    seq: (next as u16).wrapping_sub(1),
                    next_payload: None,
                };
            }
            if depth > target + 1 {
                // Shrink by one frame: skip the oldest slot.
                self.since_adjust = 0;
                self.stats.shrunk += 1;
                self.queue.remove(&next);
                next += 1;
            }
        }
        self.next = Some(next + 1);
        if let Some(q) = self.queue.remove(&next) {
            self.underruns = 0;
            self.stats.played += 1;
            return Playout::Packet {
                seq: next as u16,
                timestamp: q.timestamp,
                payload: q.payload,
            };
        }
        if self.queue.is_empty() {
            self.underruns += 1;
            if self.underruns > self.config.max_underruns {
                // The sender paused or the network stalled: start over from what arrives next.
                self.underruns = 0;
                self.next = None;
                return Playout::Buffering;
            }
        } else {
            self.underruns = 0;
        }
        self.stats.lost += 1;
        Playout::Lost {
            seq: next as u16,
            next_payload: self.queue.get(&(next + 1)).map(|q| q.payload.clone()),
        }
    }

    fn maybe_start(&mut self) -> Playout {
        let (Some((&first, _)), Some(highest)) = (self.queue.first_key_value(), self.highest)
        else {
            return Playout::Buffering;
        };
        if highest + 1 - first < u64::from(self.target) {
            return Playout::Buffering;
        }
        self.next = Some(first);
        self.underruns = 0;
        self.pop()
    }
}
