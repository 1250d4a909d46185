//! Rebuilding video frames (H.264 access units, VP8 frames) from RTP packets that arrive out of
//! order, twice, or late (after a NACK retransmission). Pure: packets and time come in as
//! arguments, frames come out. Only the depacketizer depends on the codec.
//!
//! Packets are kept by (unwrapped) sequence number. A frame is every packet from the one after
//! the previous frame's marker bit up to the next marker bit; it is handed out, in sequence
//! order, as soon as all of its packets are present. A missing packet holds the frames after it
//! back for at most [`FrameAssembler::set_wait`] (about a round trip plus the NACK generator's
//! interval, so a retransmission can still fill the hole); then the incomplete frame is given up,
//! the next frame that certainly starts cleanly is handed out, and it is marked `after_loss` so
//! the caller knows the decoder's references are damaged.
//!
//! Never does a complete frame get dropped because packets were reordered; only frames that
//! stayed incomplete past the wait, or that did not fit in the bounded buffer, are lost.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use media::VideoCodec;
use rtc::rtp;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;

/// Most packets held at once (about 1.5 s of 2.5 Mbit/s video): older ones are given up.
pub const MAX_PACKETS: usize = 512;
/// Largest access unit accepted, bytes.
pub const MAX_FRAME_BYTES: usize = 4 << 20;
/// The wait for a missing packet before the frame is declared lost, until the owner sets one.
pub const DEFAULT_WAIT: Duration = Duration::from_millis(150);

/// One complete frame, ready for the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// H.264: Annex-B bytes. VP8: the frame without its RTP payload descriptors.
    pub data: Vec<u8>,
    /// RTP timestamp (90 kHz).
    pub timestamp: u32,
    /// One or more frames before this one were lost: the decoder's references are damaged.
    pub after_loss: bool,
}

/// Counters of what the assembler did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AssemblerStats {
    /// Frames handed out.
    pub frames: u64,
    /// Frames given up (incomplete after the wait, unparsable, or too large).
    pub frames_lost: u64,
    /// Packets that filled a hole after later packets had arrived (reordered or retransmitted).
    pub packets_recovered: u64,
    /// Packets that came again, or after their frame was already handed out or given up.
    pub packets_late_or_duplicate: u64,
}

#[derive(Debug)]
struct Pkt {
    timestamp: u32,
    marker: bool,
    payload: bytes::Bytes,
}

/// See the module documentation.
#[derive(Debug)]
pub struct FrameAssembler {
    codec: VideoCodec,
    packets: BTreeMap<u64, Pkt>,
    /// Sequence number (unwrapped) of the first packet of the next frame to hand out; `None`
    /// until the first packet.
    next: Option<u64>,
    /// Highest sequence number seen (unwrapped).
    highest: Option<u64>,
    /// When the hole at `next` was first noticed (a later packet was present).
    hole_since: Option<Instant>,
    wait: Duration,
    lost_pending: bool,
    stats: AssemblerStats,
}

impl FrameAssembler {
    /// An empty assembler for `codec`'s RTP payloads, waiting [`DEFAULT_WAIT`] for missing
    /// packets.
    #[must_use]
    pub fn new(codec: VideoCodec) -> Self {
        Self {
            codec,
            packets: BTreeMap::new(),
            next: None,
            highest: None,
            hole_since: None,
            wait: DEFAULT_WAIT,
            lost_pending: false,
            stats: AssemblerStats::default(),
        }
    }

    /// How long a missing packet may hold later frames back before its frame is given up.
    pub fn set_wait(&mut self, wait: Duration) {
        self.wait = wait;
    }

    /// The current wait.
    #[must_use]
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// What the assembler did so far.
    #[must_use]
    pub fn stats(&self) -> AssemblerStats {
        self.stats
    }

    fn unwrap_seq(&self, seq: u16) -> u64 {
        let Some(highest) = self.highest else {
            // Start well above zero so packets slightly older than the first still unwrap.
            return (1 << 32) + u64::from(seq);
        };
        let low = highest as u16;
        let diff = seq.wrapping_sub(low) as i16;
        highest.wrapping_add_signed(i64::from(diff))
    }

    /// Takes one RTP packet that arrived at `now`.
    pub fn push(&mut self, packet: &rtp::Packet, now: Instant) {
        let seq = self.unwrap_seq(packet.header.sequence_number);
        let next = *self.next.get_or_insert(seq);
        if seq < next || self.packets.contains_key(&seq) {
            self.stats.packets_late_or_duplicate += 1;
            return;
        }
        if self.highest.is_some_and(|h| seq < h) {
            self.stats.packets_recovered += 1;
        }
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        self.packets.insert(
            seq,
            Pkt {
                timestamp: packet.header.timestamp,
                marker: packet.header.marker,
                payload: packet.payload.clone(),
            },
        );
        while self.packets.len() > MAX_PACKETS {
            // Far too much is missing: give up the oldest frame.
            self.skip_broken_frame();
        }
        if !self.packets.contains_key(&next) && self.hole_since.is_none() {
            self.hole_since = Some(now);
        }
    }

    /// When the owner should call [`poll`](Self::poll) again even if no packet arrives: the end
    /// of the wait for a missing packet.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.hole_since.map(|t| t + self.wait)
    }

    /// The next access unit that is ready at `now`, if any. Call until it returns `None`.
    pub fn poll(&mut self, now: Instant) -> Option<AccessUnit> {
        loop {
            let next = self.next?;
            if let Some(end) = self.complete_frame_end(next) {
                let unit = self.take_frame(next, end);
                self.hole_since = None;
                if let Some(unit) = unit {
                    return Some(unit);
                }
                continue; // unusable frame: counted as lost, try the next
            }
            if self.packets.is_empty() {
                return None;
            }
            if self.packets.contains_key(&next) {
                // The frame is still arriving in order; nothing is missing yet before it ends.
                if !self.has_hole_within_frame(next) {
                    self.hole_since = None;
                    return None;
                }
            }
            let since = *self.hole_since.get_or_insert(now);
            if now < since + self.wait {
                return None;
            }
            self.skip_broken_frame();
            self.hole_since = if self
                .next
                .is_some_and(|n| !self.is_frame_ready_or_arriving(n))
            {
                Some(now)
            } else {
                None
            };
        }
    }

    /// The marker packet ending a frame that starts at `start` with every packet present.
    fn complete_frame_end(&self, start: u64) -> Option<u64> {
        for (expect, (&seq, p)) in (start..).zip(self.packets.range(start..)) {
            if seq != expect {
                return None;
            }
            if p.marker {
                return Some(seq);
            }
        }
        None
    }

    /// Whether packets after a hole exist although the frame starting at `start` is not
    /// complete: i.e. something in it (or right after it) is missing.
    fn has_hole_within_frame(&self, start: u64) -> bool {
        (start..)
            .zip(self.packets.keys().copied().skip_while(|&s| s < start))
            .any(|(expect, seq)| seq != expect)
    }

    fn is_frame_ready_or_arriving(&self, start: u64) -> bool {
        self.packets.contains_key(&start) && !self.has_hole_within_frame(start)
    }

    /// Removes the packets `start..=end` and depacketizes them into an access unit.
    fn take_frame(&mut self, start: u64, end: u64) -> Option<AccessUnit> {
        let mut depacketizer: Box<dyn Depacketizer> = match self.codec {
            VideoCodec::H264 => Box::new(H264Packet::default()),
            VideoCodec::Vp8 => Box::new(Vp8Packet::default()),
        };
        let mut data = Vec::new();
        let mut ok = true;
        let mut timestamp = 0;
        for seq in start..=end {
            let Some(p) = self.packets.remove(&seq) else {
                ok = false;
                continue;
            };
            // Padding (bandwidth probes) carries no payload: it only fills its sequence number.
            if !ok || p.payload.is_empty() {
                continue;
            }
            timestamp = p.timestamp;
            match depacketizer.depacketize(&p.payload) {
                Ok(bytes) => data.extend_from_slice(&bytes),
                Err(_) => ok = false,
            }
            if data.len() > MAX_FRAME_BYTES {
                ok = false;
            }
        }
        self.next = Some(end + 1);
        if !ok || data.is_empty() {
            self.stats.frames_lost += 1;
            self.lost_pending = true;
            return None;
        }
        self.stats.frames += 1;
        let after_loss = std::mem::take(&mut self.lost_pending);
        Some(AccessUnit {
            data,
            timestamp,
            after_loss,
        })
    }

    /// Gives up the frame at `next`: drops packets up to the first one that certainly starts a
    /// new frame (its predecessor is present and carries the marker bit, or carries an older
    /// timestamp), and counts one lost frame.
    fn skip_broken_frame(&mut self) {
        let Some(next) = self.next else { return };
        let mut new_start = None;
        let mut prev: Option<(u64, &Pkt)> = None;
        for (&seq, p) in self.packets.range(next..) {
            if let Some((ps, pp)) = prev
                && ps + 1 == seq
                && (pp.marker || pp.timestamp != p.timestamp)
            {
                new_start = Some(seq);
                break;
            }
            prev = Some((seq, p));
        }
        let new_start = match new_start {
            Some(s) => s,
            // No certain frame start yet: drop everything up to and including the last marker
            // (or everything) and start after it.
            None => match self
                .packets
                .range(next..)
                .rev()
                .find(|(_, p)| p.marker)
                .map(|(s, _)| *s + 1)
            {
                Some(s) => s,
                None => self.highest.map_or(next, |h| h + 1),
            },
        };
        let keep = self.packets.split_off(&new_start);
        self.packets = keep;
        self.next = Some(new_start);
        self.stats.frames_lost += 1;
        self.lost_pending = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDR: [u8; 3] = [0x65, 0x88, 0x84];
    const SLICE: [u8; 3] = [0x41, 0x9a, 0x02];

    /// A single-NAL packet.
    fn pkt(seq: u16, ts: u32, marker: bool, nal: &[u8]) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                sequence_number: seq,
                timestamp: ts,
                marker,
                payload_type: 102,
                ..Default::default()
            },
            payload: bytes::Bytes::copy_from_slice(nal),
        }
    }

    /// Frame `f` as two packets (seq 2f, 2f+1), timestamp 3000·f.
    fn frame(f: u16) -> [rtp::Packet; 2] {
        let nal = if f == 0 { &IDR } else { &SLICE };
        let ts = 3000 * u32::from(f);
        [pkt(2 * f, ts, false, nal), pkt(2 * f + 1, ts, true, nal)]
    }

    fn drain(a: &mut FrameAssembler, now: Instant) -> Vec<AccessUnit> {
        std::iter::from_fn(|| a.poll(now)).collect()
    }

    #[test]
    fn in_order_frames_come_out_at_once() {
        let t = Instant::now();
        let mut a = FrameAssembler::new(VideoCodec::H264);
        let mut out = Vec::new();
        for f in 0..5 {
            for p in frame(f) {
                a.push(&p, t);
            }
            out.extend(drain(&mut a, t));
        }
        assert_eq!(out.len(), 5);
        assert!(out.iter().all(|u| !u.after_loss));
        assert_eq!(out[3].timestamp, 9000);
        // Annex-B: two NALs per frame, each with a start code.
        assert_eq!(out[0].data.len(), 2 * (4 + 3));
        assert_eq!(a.stats().frames_lost, 0);
    }

    #[test]
    fn reordered_packets_lose_nothing() {
        let t = Instant::now();
        let mut a = FrameAssembler::new(VideoCodec::H264);
        let [a0, a1] = frame(0);
        let [b0, b1] = frame(1);
        let [c0, c1] = frame(2);
        for p in [&a0, &a1, &b1, &c0, &c1] {
            a.push(p, t);
        }
        // Frame 1 is incomplete, so frame 2 is held back behind it.
        assert_eq!(drain(&mut a, t).len(), 1);
        a.push(&b0, t + Duration::from_millis(5));
        let out = drain(&mut a, t + Duration::from_millis(5));
        assert_eq!(
            out.iter().map(|u| u.timestamp).collect::<Vec<_>>(),
            [3000, 6000]
        );
        assert!(out.iter().all(|u| !u.after_loss));
        assert_eq!(a.stats().packets_recovered, 1);
    }

    #[test]
    fn a_retransmission_within_the_wait_fills_the_hole() {
        let t = Instant::now();
        let mut a = FrameAssembler::new(VideoCodec::H264);
        a.set_wait(Duration::from_millis(100));
        for f in 0..4 {
            for p in frame(f) {
                if p.header.sequence_number != 3 {
                    a.push(&p, t);
                }
            }
        }
        assert_eq!(drain(&mut a, t).len(), 1);
        assert_eq!(a.deadline(), Some(t + Duration::from_millis(100)));
        assert!(drain(&mut a, t + Duration::from_millis(99)).is_empty());
        a.push(&frame(1)[1], t + Duration::from_millis(60));
        let out = drain(&mut a, t + Duration::from_millis(60));
        assert_eq!(out.len(), 3, "frames 1..3 once the retransmission came");
        assert!(out.iter().all(|u| !u.after_loss));
        assert_eq!(a.stats().frames_lost, 0);
        assert_eq!(a.deadline(), None);
    }

    #[test]
    fn a_packet_that_never_comes_loses_only_its_frame() {
        let t = Instant::now();
        let mut a = FrameAssembler::new(VideoCodec::H264);
        a.set_wait(Duration::from_millis(100));
        for f in 0..4 {
            for p in frame(f) {
                if p.header.sequence_number != 2 {
                    a.push(&p, t);
                }
            }
        }
        assert_eq!(drain(&mut a, t).len(), 1);
        let later = t + Duration::from_millis(100);
        let out = drain(&mut a, later);
        assert_eq!(
            out.iter().map(|u| u.timestamp).collect::<Vec<_>>(),
            [6000, 9000]
        );
        assert!(out[0].after_loss, "the frame after the hole says so");
        assert!(!out[1].after_loss);
        assert_eq!(a.stats().frames_lost, 1);
        // The retransmission arriving after all is late, not a new frame.
        a.push(&frame(1)[0], later);
        assert!(drain(&mut a, later).is_empty());
        assert_eq!(a.stats().packets_late_or_duplicate, 1);
    }

    #[test]
    fn padding_between_frames_fills_its_number_only() {
        let t = Instant::now();
        let mut a = FrameAssembler::new(VideoCodec::H264);
        let [a0, a1] = frame(0);
        a.push(&a0, t);
        a.push(&a1, t);
        a.push(&pkt(2, 0, false, &[]), t);
        a.push(&pkt(3, 3000, false, &SLICE), t);
        a.push(&pkt(4, 3000, true, &SLICE), t);
        let out = drain(&mut a, t);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].timestamp, 3000);
        assert!(out.iter().all(|u| !u.after_loss));
    }

    #[test]
    fn duplicates_are_ignored() {
        let t = Instant::now();
        let mut a = FrameAssembler::new(VideoCodec::H264);
        let [p0, p1] = frame(0);
        a.push(&p0, t);
        a.push(&p0, t);
        a.push(&p1, t);
        a.push(&p1, t);
        assert_eq!(drain(&mut a, t).len(), 1);
        assert_eq!(a.stats().packets_late_or_duplicate, 2);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let t = Instant::now();
        let mut a = FrameAssembler::new(VideoCodec::H264);
        let mut out = Vec::new();
        for (i, seq) in [65534u16, 65535, 0, 1].into_iter().enumerate() {
            let ts = 3000 * (i as u32 / 2);
            a.push(&pkt(seq, ts, i % 2 == 1, &SLICE), t);
            out.extend(drain(&mut a, t));
        }
        assert_eq!(out.len(), 2);
        assert_eq!(a.stats().frames_lost, 0);
    }

    #[test]
    fn a_flood_of_holes_stays_bounded() {
        let t = Instant::now();
        let mut a = FrameAssembler::new(VideoCodec::H264);
        // Every other packet missing, forever: memory stays bounded and frames are given up.
        for i in 0..10_000u16 {
            a.push(&pkt(i * 2, u32::from(i) * 3000, true, &SLICE), t);
            let _ = drain(&mut a, t);
            assert!(a.packets.len() <= MAX_PACKETS);
        }
        let out = drain(&mut a, t + Duration::from_secs(1));
        assert!(out.len() <= 1);
        assert!(a.stats().frames > 0 || a.stats().frames_lost > 0);
    }

    #[test]
    fn garbage_payload_is_a_lost_frame_not_a_panic() {
        let t = Instant::now();
        let mut a = FrameAssembler::new(VideoCodec::H264);
        // NAL type 28 (FU-A) with an empty body is not depacketizable.
        a.push(&pkt(10, 0, true, &[0x1c]), t);
        assert!(drain(&mut a, t).is_empty());
        a.push(&pkt(11, 3000, false, &SLICE), t);
        a.push(&pkt(12, 3000, true, &SLICE), t);
        let out = drain(&mut a, t);
        assert_eq!(out.len(), 1);
        assert!(out[0].after_loss);
    }

    #[test]
    fn vp8_frames_lose_their_payload_descriptors() {
        let t = Instant::now();
        let mut a = FrameAssembler::new(VideoCodec::Vp8);
        // VP8 payload descriptor: X=0, S=1 (start of partition) on the first packet, 0 after.
        let first = [0x10, 0x9d, 0x01, 0x2a, 0xaa];
        let second = [0x00, 0xbb, 0xcc, 0xdd];
        a.push(&pkt(20, 9000, false, &first), t);
        a.push(&pkt(21, 9000, true, &second), t);
        let out = drain(&mut a, t);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, [0x9d, 0x01, 0x2a, 0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(out[0].timestamp, 9000);
        // A descriptor with nothing after it is not depacketizable: a lost frame, and the
        // next one is marked.
        a.push(&pkt(22, 12000, true, &[0x10, 0x00]), t);
        a.push(&pkt(23, 15000, true, &[0x10, 0x01, 0x02, 0x03]), t);
        let out = drain(&mut a, t);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].data, [0x01, 0x02, 0x03]);
        assert!(out[0].after_loss);
    }
}
