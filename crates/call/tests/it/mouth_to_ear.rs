//! Mouth-to-ear latency from timed tone bursts: A sends `bursts:880` (a burst at the start of
//! every wall-clock second), B finds each burst's start in what it plays and reports how late
//! it was. Both engines share this machine's clock. The numbers are printed, not asserted
//! (docs/benchmarks.md has them); what is asserted is that every second's burst is found.
use crate::common;

use std::time::Duration;

use call::AudioChoice;

#[test]
fn timed_bursts_measure_mouth_to_ear_latency() {
    let server = common::hosted_signal();
    let url = server.local_url();
    let mut a = common::config(&url, "m2e", 440.0);
    a.audio = AudioChoice::Bursts(880.0);
    let (_a, sa, b, mut sb, up) = common::two_engines_with(
        a,
        common::config(&url, "m2e", 550.0),
        Duration::from_secs(20),
        common::media_flowing(10, 10),
    );
    assert!(up, "the call never came up");
    // Six more seconds: six bursts, each found once.
    let before = sb.stats.mouth_to_ear_bursts;
    let found = common::watch(&b, &mut sb, Duration::from_secs(15), |s| {
        s.stats.mouth_to_ear_bursts >= before + 6
    });
    assert!(found, "bursts found: {:?}", sb.stats.mouth_to_ear_bursts);
    let (p50, p95) = (sb.stats.mouth_to_ear_p50_ms, sb.stats.mouth_to_ear_p95_ms);
    println!(
        "mouth to ear on loopback: p50 {p50:?} ms, p95 {p95:?} ms over {} bursts (jitter buffer {} ms)",
        sb.stats.mouth_to_ear_bursts, sb.stats.audio_jitter_delay_ms
    );
    assert!(p50.is_some() && p95 >= p50);
    // A sends a tone, not bursts: nothing to measure on A's side.
    assert_eq!(sa.stats.mouth_to_ear_bursts, 0, "{:?}", sa.stats);
}
