//! Which video codec a call uses: duet ↔ duet keeps H.264; a peer that offers or accepts only
//! VP8 gets VP8 both ways (frames with the sender's pattern counters decoded on each side);
//! peers with no video codec in common get a clear error, not a silent call.

use crate::common;

use std::time::Duration;

use call::{CallState, Engine};
use media::VideoCodec;

/// A call in which `first` is seated first (so it offers), with these video codecs.
fn call(
    room: &str,
    first: &[VideoCodec],
    second: &[VideoCodec],
    done: impl Fn(&common::Seen) -> bool,
) -> (common::Seen, common::Seen, bool) {
    let server = common::hosted_signal();
    let url = server.local_url();
    let mut a = common::config(&url, room, 440.0);
    a.video_codecs = first.to_vec();
    let mut b = common::config(&url, room, 660.0);
    b.video_codecs = second.to_vec();
    let a = Engine::start(a, None).expect("engine a");
    assert!(
        common::wait_rooms(&server, 1, Duration::from_secs(10)),
        "the first engine was never seated"
    );
    let b = Engine::start(b, None).expect("engine b");
    let (mut sa, mut sb) = (common::Seen::default(), common::Seen::default());
    let ok = common::watch_both(&a, &mut sa, &b, &mut sb, Duration::from_secs(30), done);
    (sa, sb, ok)
}

fn flowing_with_codec(s: &common::Seen) -> bool {
    common::media_flowing(60, 50)(s) && s.stats.video_codec_received.is_some()
}

fn assert_codec_both_ways(room: &str, first: &[VideoCodec], second: &[VideoCodec], want: &str) {
    let (sa, sb, ok) = call(room, first, second, flowing_with_codec);
    assert!(
        ok,
        "media did not flow: a {:?} {} frames, b {:?} {} frames",
        sa.states, sa.stats.pattern_frames, sb.states, sb.stats.pattern_frames
    );
    for (name, s) in [("first", &sa), ("second", &sb)] {
        assert_eq!(
            s.stats.video_codec_sent.as_deref(),
            Some(want),
            "{name} sends"
        );
        assert_eq!(
            s.stats.video_codec_received.as_deref(),
            Some(want),
            "{name} receives"
        );
        assert!(s.stats.codecs.contains(want), "{name}: {}", s.stats.codecs);
        eprintln!(
            "{room}: {name} decoded {} pattern frames in {want} ({})",
            s.stats.pattern_frames, s.stats.codecs
        );
    }
}

#[test]
fn duet_to_duet_keeps_h264() {
    assert_codec_both_ways("h264", &VideoCodec::ALL, &VideoCodec::ALL, "H.264");
}

#[test]
fn a_vp8_only_offerer_gets_vp8_both_ways() {
    assert_codec_both_ways("vp8-offer", &[VideoCodec::Vp8], &VideoCodec::ALL, "VP8");
}

#[test]
fn a_vp8_only_answerer_gets_vp8_both_ways() {
    assert_codec_both_ways("vp8-answer", &VideoCodec::ALL, &[VideoCodec::Vp8], "VP8");
}

#[test]
fn an_offer_preferring_vp8_is_answered_in_vp8() {
    assert_codec_both_ways(
        "vp8-first",
        &[VideoCodec::Vp8, VideoCodec::H264],
        &VideoCodec::ALL,
        "VP8",
    );
}

#[test]
fn no_video_codec_in_common_is_a_clear_error() {
    // Where each side settles: the one that cannot answer fails (or ends); the other sees it
    // leave and waits in the room again.
    let settled = |s: &common::Seen| {
        let ended = s
            .states
            .iter()
            .any(|st| matches!(st, CallState::Failed(_) | CallState::Ended));
        let waits_again = s.states.contains(&CallState::PeerLeft)
            && s.states.last() == Some(&CallState::WaitingForPeer);
        ended || waits_again
    };
    let (sa, sb, settled) = call(
        "no-common",
        &[VideoCodec::H264],
        &[VideoCodec::Vp8],
        settled,
    );
    assert!(
        settled,
        "a side neither failed nor waited again: a {:?}, b {:?}",
        sa.states, sb.states
    );
    let said: Vec<String> = [&sa, &sb]
        .iter()
        .flat_map(|s| {
            s.states
                .iter()
                .map(|st| format!("{st:?}"))
                .chain(s.warnings.clone())
        })
        .collect();
    assert!(
        said.iter()
            .any(|m| m.contains("no video codec in common: the other side does not offer VP8")),
        "nobody was told about the codec: {said:?}"
    );
    assert!(sa.stats.pattern_frames == 0 && sb.stats.pattern_frames == 0);
    eprintln!("no common codec: {said:?}");
}
