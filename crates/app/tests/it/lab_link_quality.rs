//! Calls on links that are not perfect, in the network lab (two homes behind cone NATs): a
//! bandwidth cap, random loss, and a cap that steps down and back up mid-call. What is asserted
//! is what a person would see: pictures keep coming, in order, without long freezes, and the
//! sender adapts to the link (its estimate and encoder rate follow the cap).

use crate::common::lab::{
    assert_pictures_arrived, assert_rode_the_step, call_between_homes, fps_after, freezes_after,
    median_between, step_down_and_back_up, summary,
};
use netlab::Nat;

/// Seconds (since a peer started) after which the call is considered settled.
const SETTLED_S: f64 = 6.0;
/// Seconds after which no freeze may last over 1 s on a capped link (the first seconds
/// probe the link).
const FREEZE_FREE_AFTER_S: f64 = 5.0;

#[test]
fn one_megabit_cap_adapts_without_freezes() {
    one_megabit_cap("cap", &[]);
}

/// The same in VP8 (`--video-codecs vp8` on both sides): the congestion controller drives the
/// VP8 encoder's rate as it does H.264's.
#[test]
fn one_megabit_cap_adapts_in_vp8_too() {
    one_megabit_cap("capvp8", &["--video-codecs", "vp8"]);
}

fn one_megabit_cap(tag: &str, extra: &[&str]) {
    // 640×480 would use 1.5 Mbit/s: more than the link carries.
    let args = [&["--size", "640x480"], extra].concat();
    let Some((a, b)) = call_between_homes(tag, Nat::Cone, 20, &args, |a, b| {
        a.set_rate_kbit(Some(1000)).expect("cap a");
        b.set_rate_kbit(Some(1000)).expect("cap b");
    }) else {
        return;
    };
    for f in [&a, &b] {
        eprintln!("{}", summary(f));
        assert_codec(f, extra);
        assert_pictures_arrived(f, 150.0);
        // Congestion control probes above the link now and then (an AIMD); what it settles
        // on, the median after 10 s, is within the cap.
        let target = median_between(f, "target_bitrate_bps", 10.0, f64::MAX);
        assert!(
            target <= 1_000_000.0,
            "{}: the sender's rate after 10 s (median {target:.0} bit/s) exceeds the 1 Mbit/s cap",
            f.name
        );
        let fps = fps_after(f, SETTLED_S);
        assert!(
            fps >= 15.0,
            "{}: only {fps:.1} fps after {SETTLED_S} s",
            f.name
        );
        let freezes = freezes_after(f, FREEZE_FREE_AFTER_S);
        eprintln!(
            "{}: freezes after {FREEZE_FREE_AFTER_S} s: {freezes:?}",
            f.name
        );
        // Since probing (a start at 500 kbit/s) and the resend guard, no freeze after 5 s
        // lasted over 221 ms in 14 lab runs of each codec (before: up to 0.9 s in H.264, which
        // conceals a lost frame, and 1-1.5 s in VP8, which waits for a keyframe).
        let long: Vec<f64> = freezes.into_iter().filter(|ms| *ms > 1000.0).collect();
        assert!(
            long.is_empty(),
            "{}: freezes over 1 s after {FREEZE_FREE_AFTER_S} s: {long:?}",
            f.name
        );
    }
}

#[test]
fn three_percent_loss_each_way_keeps_video_smooth() {
    three_percent_loss("loss", &[]);
}

/// The same in VP8: NACK retransmissions fill the holes and lost frames cost a keyframe on
/// PLI, as with H.264.
#[test]
fn three_percent_loss_each_way_keeps_vp8_smooth_too() {
    three_percent_loss("lossvp8", &["--video-codecs", "vp8"]);
}

/// Asserts the call used the codec the `--video-codecs` flag in `extra` asks for (H.264 when
/// none).
fn assert_codec(f: &crate::common::lab::Finished, extra: &[&str]) {
    let want = if extra.contains(&"vp8") {
        "VP8"
    } else {
        "H.264"
    };
    assert_eq!(f.stat_str("video_codec_sent"), want, "{}", f.name);
    assert_eq!(f.stat_str("video_codec_received"), want, "{}", f.name);
}

fn three_percent_loss(tag: &str, extra: &[&str]) {
    let Some((a, b)) = call_between_homes(tag, Nat::Cone, 20, extra, |a, _| {
        // Home A's link loses 3 % each way; B's is clean: each direction loses 3 %.
        a.set_loss_permille(30, 30).expect("loss");
    }) else {
        return;
    };
    for f in [&a, &b] {
        eprintln!("{}", summary(f));
        assert_codec(f, extra);
        assert_pictures_arrived(f, 200.0);
        let fps = fps_after(f, SETTLED_S);
        assert!(fps >= 20.0, "{}: only {fps:.1} fps at 3 % loss", f.name);
        let recovered = f.stat("video_packets_recovered");
        let lost_frames = f.stat("video_frames_lost");
        assert!(
            // About 1300 video packets in 20 s, 3 % of them lost: ~40 to recover (a CI run saw
            // 18, with no frame lost); 10 proves NACK works without betting on the dice.
            recovered >= 10.0 && recovered >= 5.0 * lost_frames,
            "{}: retransmissions recovered {recovered} packets while {lost_frames} frames were lost",
            f.name
        );
        let long: Vec<f64> = freezes_after(f, SETTLED_S)
            .into_iter()
            .filter(|ms| *ms > 1000.0)
            .collect();
        assert!(long.is_empty(), "{}: freezes over 1 s: {long:?}", f.name);
    }
}

#[test]
fn a_step_down_and_back_up_is_survived() {
    // 3 Mbit/s, then 500 kbit/s from about 8 s to 16 s, then 3 Mbit/s again.
    let Some((a, b)) = call_between_homes(
        "step",
        Nat::Cone,
        30,
        &["--size", "640x480"],
        step_down_and_back_up,
    ) else {
        return;
    };
    for f in [&a, &b] {
        eprintln!("{}", summary(f));
        assert_pictures_arrived(f, 300.0);
        assert_rode_the_step(f);
    }
}
