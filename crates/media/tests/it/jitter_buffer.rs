//! The playout jitter buffer: reordering, duplicates, wraparound, losses, late packets, overflow
//! and re-buffering, driven directly (no clock, no threads).

use media::{JitterBuffer, JitterConfig, Playout, PushOutcome};

fn seq_of(p: &Playout) -> Option<u16> {
    match p {
        Playout::Packet { seq, .. } | Playout::Lost { seq, .. } => Some(*seq),
        Playout::Buffering => None,
    }
}

fn payload(seq: u16) -> Vec<u8> {
    seq.to_be_bytes().to_vec()
}

#[test]
fn reordered_and_duplicated_packets_come_out_in_order_once() {
    let mut jb = JitterBuffer::new(JitterConfig::default());
    // Around the 16-bit wrap: 65533..=65535, 0..=4, shuffled and with duplicates.
    let order: [u16; 12] = [65534, 65533, 65534, 0, 65535, 2, 1, 0, 4, 3, 3, 65533];
    let mut outcomes = Vec::new();
    for s in order {
        outcomes.push(jb.push(s, u32::from(s) * 960, payload(s)));
    }
    let duplicates = outcomes
        .iter()
        .filter(|o| **o == PushOutcome::Duplicate)
        .count();
    assert_eq!(duplicates, 4);
    let mut played = Vec::new();
    for _ in 0..8 {
        match jb.pop() {
            Playout::Packet {
                seq, payload: p, ..
            } => {
                assert_eq!(p, payload(seq));
                played.push(seq);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(played, vec![65533, 65534, 65535, 0, 1, 2, 3, 4]);
    assert_eq!(jb.stats().duplicates, 4);
    assert_eq!(jb.stats().played, 8);
}

#[test]
fn buffers_to_the_target_delay_before_playing() {
    let mut jb = JitterBuffer::new(JitterConfig {
        target_delay_frames: 3,
        ..JitterConfig::default()
    });
    assert_eq!(jb.pop(), Playout::Buffering);
    jb.push(10, 0, payload(10));
    assert_eq!(jb.pop(), Playout::Buffering);
    jb.push(11, 0, payload(11));
    assert_eq!(jb.pop(), Playout::Buffering);
    jb.push(12, 0, payload(12));
    assert_eq!(seq_of(&jb.pop()), Some(10));
}

#[test]
fn a_gap_is_reported_as_lost_with_the_next_packet_for_fec() {
    let mut jb = JitterBuffer::new(JitterConfig::default());
    for s in [1u16, 2, 4, 5] {
        jb.push(s, 0, payload(s));
    }
    assert_eq!(seq_of(&jb.pop()), Some(1));
    assert_eq!(seq_of(&jb.pop()), Some(2));
    assert_eq!(
        jb.pop(),
        Playout::Lost {
            seq: 3,
            next_payload: Some(payload(4))
        }
    );
    // Packet 3 arriving now is too late: its slot was concealed.
    assert_eq!(jb.push(3, 0, payload(3)), PushOutcome::Late);
    assert_eq!(seq_of(&jb.pop()), Some(4));
    assert_eq!(jb.stats().lost, 1);
    assert_eq!(jb.stats().late, 1);
}

#[test]
fn far_behind_drops_the_oldest_down_to_the_target() {
    let config = JitterConfig {
        target_delay_frames: 3,
        max_delay_frames: 10,
        max_underruns: 5,
        ..JitterConfig::default()
    };
    let mut jb = JitterBuffer::new(config);
    for s in 0..3u16 {
        jb.push(s, 0, payload(s));
    }
    assert_eq!(seq_of(&jb.pop()), Some(0));
    // A burst of 20 packets after a stall.
    for s in 3..23u16 {
        jb.push(s, 0, payload(s));
    }
    assert!(jb.len() <= 10, "queue trimmed: {}", jb.len());
    // Playout resumes no more than max_delay and no less than target frames behind the newest.
    let resumed = seq_of(&jb.pop()).expect("playing");
    assert!((13..=20).contains(&resumed), "resumed at {resumed}");
    assert!(jb.stats().dropped >= 10, "{:?}", jb.stats());
    // Everything after the resume point still plays, in order.
    for expected in resumed + 1..23 {
        assert_eq!(seq_of(&jb.pop()), Some(expected));
    }
}

#[test]
fn a_long_silence_rebuffers() {
    let mut jb = JitterBuffer::new(JitterConfig {
        target_delay_frames: 2,
        max_delay_frames: 10,
        max_underruns: 3,
        ..JitterConfig::default()
    });
    jb.push(0, 0, payload(0));
    jb.push(1, 0, payload(1));
    assert_eq!(seq_of(&jb.pop()), Some(0));
    assert_eq!(seq_of(&jb.pop()), Some(1));
    for _ in 0..3 {
        assert!(matches!(
            jb.pop(),
            Playout::Lost {
                next_payload: None,
                ..
            }
        ));
    }
    assert_eq!(
        jb.pop(),
        Playout::Buffering,
        "gives up concealing and re-buffers"
    );
    // The sender resumes much later: playout restarts from the new packets.
    jb.push(100, 0, payload(100));
    jb.push(101, 0, payload(101));
    assert_eq!(seq_of(&jb.pop()), Some(100));
}

/// Plays `n` slots of a 20 ms stream whose packets arrive with `delay_ms(i)` of network delay,
/// popping on a steady 20 ms clock; returns (packets played, slots concealed).
fn run_timed(jb: &mut JitterBuffer, n: u16, delay_ms: impl Fn(u16) -> f64) -> (u64, u64) {
    let mut arrivals: Vec<(f64, u16)> = (0..n)
        .map(|s| (f64::from(s) * 20.0 + delay_ms(s), s))
        .collect();
    arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut next = 0;
    let (mut played, mut concealed) = (0, 0);
    let mut clock = 0.0;
    while clock < f64::from(n) * 20.0 + 400.0 {
        while next < arrivals.len() && arrivals[next].0 <= clock {
            let s = arrivals[next].1;
            jb.push_timed(s, u32::from(s) * 960, payload(s), arrivals[next].0);
            next += 1;
        }
        match jb.pop() {
            Playout::Packet { .. } => played += 1,
            Playout::Lost { .. } => concealed += 1,
            Playout::Buffering => {}
        }
        clock += 20.0;
    }
    (played, concealed)
}

#[test]
fn the_target_follows_the_measured_jitter() {
    // Steady network: the target stays low.
    let mut steady = JitterBuffer::new(JitterConfig::default());
    run_timed(&mut steady, 300, |_| 30.0);
    assert!(
        steady.target_delay_ms() <= 40.0,
        "{}",
        steady.target_delay_ms()
    );

    // Packets late by 0–90 ms at random: the target grows to cover it, and few packets miss
    // their slot once it has.
    let mut rng = 12345u32;
    let mut jitter = move |_: u16| {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        30.0 + f64::from(rng % 90)
    };
    let mut jittery = JitterBuffer::new(JitterConfig::default());
    let delays: Vec<f64> = (0..1500).map(&mut jitter).collect();
    let (played, _) = run_timed(&mut jittery, 1500, |s| delays[usize::from(s)]);
    let target = jittery.target_delay_ms();
    assert!((80.0..=200.0).contains(&target), "target {target} ms");
    let late = jittery.stats().late;
    assert!(
        late < 75,
        "{late} of 1500 packets missed their slot; {:?}",
        jittery.stats()
    );
    assert!(played > 1350, "{played}");
    assert!(jittery.stats().stretched > 0, "{:?}", jittery.stats());

    // Never beyond the ceiling, whatever the network does.
    let mut awful = JitterBuffer::new(JitterConfig::default());
    run_timed(&mut awful, 600, |s| f64::from(s % 50) * 20.0);
    assert!(awful.target_delay_ms() <= 200.0);
}
