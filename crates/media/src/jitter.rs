//! Audio playout jitter buffer: a pure state machine (no threads, no clock).
//!
//! The network side calls [`JitterBuffer::push`] whenever an RTP packet arrives; the playout side
//! calls [`JitterBuffer::pop`] exactly once per 20 ms frame and gets back what to play:
//! the packet for that slot, a loss to conceal (with the next packet when it is already here, so
//! the Opus decoder can use its in-band FEC), or "still buffering". Sequence numbers are
//! 16-bit RTP numbers with wraparound; packets are reordered, duplicates and packets that arrive
//! after their slot was played are dropped, the delay is held near a small target, and when the
//! queue grows far behind (a burst after a stall) the oldest packets are dropped.

use std::collections::BTreeMap;

/// Tuning of a [`JitterBuffer`], in 20 ms frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterConfig {
    /// Frames buffered before playout starts (3 = 60 ms).
    pub target_delay_frames: u16,
    /// Once more than this many frames are queued, the oldest are dropped down to the target.
    pub max_delay_frames: u16,
    /// Consecutive empty pops (nothing at all queued) after which playout stops and re-buffers.
    pub max_underruns: u16,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            target_delay_frames: 3,
            max_delay_frames: 10,
            max_underruns: 5,
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
        let config = JitterConfig {
            target_delay_frames: config.target_delay_frames.max(1),
            max_delay_frames: config
                .max_delay_frames
                .max(config.target_delay_frames.max(1)),
            max_underruns: config.max_underruns.max(1),
        };
        Self {
            config,
            queue: BTreeMap::new(),
            highest: None,
            next: None,
            underruns: 0,
            stats: JitterStats::default(),
        }
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
        if highest + 1 - next.min(highest + 1) <= u64::from(self.config.max_delay_frames) {
            return;
        }
        let new_next = highest + 1 - u64::from(self.config.target_delay_frames);
        let kept = self.queue.split_off(&new_next);
        self.stats.dropped += self.queue.len() as u64;
        self.queue = kept;
        self.next = Some(new_next);
    }

    /// What to play for the next 20 ms slot. Call exactly once per slot.
    pub fn pop(&mut self) -> Playout {
        let Some(next) = self.next else {
            return self.maybe_start();
        };
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
        if highest + 1 - first < u64::from(self.config.target_delay_frames) {
            return Playout::Buffering;
        }
        self.next = Some(first);
        self.underruns = 0;
        self.pop()
    }
}
