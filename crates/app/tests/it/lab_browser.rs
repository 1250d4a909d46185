//! The project's page in Chromium and in Firefox, in one home, calling `duet call` (or the
//! other browser) in another, through the network lab (the browsers run inside the homes'
//! namespaces; see `common::browser`).

use std::time::Duration;

use crate::common::browser::{
    Browser, BrowserKit, BrowserRun, browser_kit, finish_browser, firefox_kit, start_page,
};
use crate::common::lab::{
    Finished, PeerOptions, SERVER_IP, SignalLab, assert_pictures_arrived,
    assert_sent_through_the_step, browser_lab, finish, fps_after, fps_between, freezes_after,
    median_between, start_bare_peer, step_down_and_back_up, summary,
};
use crate::common::{median, unique_room};
use netlab::Nat;

const SMALL: &str = "duet-pattern-320x240.y4m";
const LARGE: &str = "duet-pattern-640x360.y4m";
/// Seconds (since a peer started) after which a call is considered settled.
const SETTLED_S: f64 = 6.0;

/// Chromium on the page in home `a` (its camera playing `y4m`) and `duet call` in home `b`
/// (with `extra` flags) in a fresh room; duet stays `seconds`, the page two more. What each
/// reported, duet's summary printed.
fn page_and_duet(
    kit: &BrowserKit,
    lab: &SignalLab,
    tag: &str,
    y4m: &str,
    seconds: u32,
    extra: &[&str],
) -> (Finished, BrowserRun) {
    let room = unique_room(tag);
    let page = start_page(
        kit,
        Browser::Chromium,
        &lab.a,
        "a",
        &room,
        seconds + 2,
        y4m,
        "",
    );
    let duet = start_bare_peer(
        &lab.b,
        &lab.signal.signal_url(),
        "b",
        &PeerOptions {
            room: &room,
            tone: "tone:660",
            seconds,
            extra,
        },
    );
    let fb = finish(duet, Duration::from_secs(u64::from(seconds) + 33));
    // duet's side first: when the page's call fails, what duet saw is the other half of it.
    eprintln!("{}", summary(&fb));
    if !fb.success {
        eprintln!(
            "b: the call failed: {}\n{}",
            fb.report["failure"], fb.output
        );
    }
    let fa = finish_browser(page, Duration::from_secs(u64::from(seconds) + 46));
    (fb, fa)
}

/// The page in home `a` and `duet call` in home `b` of `lab`, in a fresh room; what each
/// reported, after printing it.
fn page_calls_duet(kit: &BrowserKit, lab: &SignalLab, tag: &str) -> (Finished, BrowserRun) {
    let (fb, fa) = page_and_duet(kit, lab, tag, SMALL, 12, &[]);
    let (local, remote) = fa.pair();
    eprintln!(
        "{}: decoded {} frames, pair {local} -> {remote}",
        fa.name,
        fa.frames_decoded()
    );
    // duet decodes the browser's pictures in order: its camera plays duet's test pattern.
    assert_pictures_arrived(&fb, 60.0);
    assert!(fa.frames_decoded() >= 60.0, "the page decoded too little");
    (fb, fa)
}

/// Two homes behind symmetric NATs and only the `signal` binary on the public net: the page
/// takes signal's TURN server from `ready` (as duet does), and the call goes through it.
#[test]
fn page_and_duet_connect_through_signals_turn_across_symmetric_nats() {
    let Some(kit) = browser_kit(&[SMALL]) else {
        return;
    };
    let Some(lab) = browser_lab("brsym", Nat::Symmetric) else {
        return;
    };
    let (_, fa) = page_calls_duet(&kit, &lab, "brsym");
    let (local, remote) = fa.pair();
    let server = SERVER_IP.to_string();
    let relayed = |c: &str| c.starts_with("relay ") && c.contains(&server);
    assert!(
        relayed(&local) || relayed(&remote),
        "the page's call did not go through signal's TURN: {local} -> {remote}"
    );
}

/// Chromium and duet across a link losing 3 % each way (home A's): pictures keep coming in
/// both directions. Each side retransmits what the other NACKs; duet conceals what stays lost
/// until the keyframe it asks for arrives; Chromium adapts to duet's feedback.
#[test]
fn page_and_duet_keep_video_moving_at_three_percent_loss() {
    let Some(kit) = browser_kit(&[SMALL]) else {
        return;
    };
    let Some(lab) = browser_lab("brloss", Nat::Cone) else {
        return;
    };
    lab.a.set_loss_permille(30, 30).expect("loss");
    // 12 s: the page's camera loops its 15 s file, and duet checks the counters run forward.
    let (fb, fa) = page_calls_duet(&kit, &lab, "brloss");
    let duet_fps = fps_after(&fb, SETTLED_S);
    let page_fps = fa.fps_after_connecting(SETTLED_S);
    eprintln!(
        "3 % loss: duet receives {duet_fps:.1} fps, the page {page_fps:.1} fps (freezes {} / {:.1} s); \
         duet's freezes after {SETTLED_S} s: {:?}",
        fa.freezes().0,
        fa.freezes().1,
        freezes_after(&fb, SETTLED_S)
    );
    assert!(duet_fps >= 20.0, "duet received only {duet_fps:.1} fps");
    assert!(page_fps >= 20.0, "the page received only {page_fps:.1} fps");
    let long: Vec<f64> = freezes_after(&fb, SETTLED_S)
        .into_iter()
        .filter(|ms| *ms > 1000.0)
        .collect();
    assert!(
        long.is_empty(),
        "duet's picture froze for over 1 s: {long:?}"
    );
}

/// Chromium and duet on 1 Mbit/s links (both homes, each way): each sender keeps within the
/// cap and pictures keep coming both ways.
#[test]
fn page_and_duet_adapt_to_a_one_megabit_cap() {
    let Some(kit) = browser_kit(&[LARGE]) else {
        return;
    };
    let Some(lab) = browser_lab("brcap", Nat::Cone) else {
        return;
    };
    for home in [&lab.a, &lab.b] {
        home.set_rate_kbit(Some(1000)).expect("cap");
    }
    let (fb, fa) = page_and_duet(&kit, &lab, "brcap", LARGE, 18, &["--size", "640x480"]);
    let duet_fps = fps_after(&fb, SETTLED_S);
    let page_fps = fa.fps_after_connecting(SETTLED_S);
    let duet_target = median_between(&fb, "target_bitrate_bps", 10.0, f64::MAX);
    let page_rates = fa.send_bitrates_after_connecting();
    let page_sent = page_rates.iter().skip(8).copied().fold(0.0, f64::max);
    eprintln!(
        "1 Mbit/s cap: duet receives {duet_fps:.1} fps, sends at a target of {:.0} kbit/s; the \
         page receives {page_fps:.1} fps (freezes {} / {:.1} s) and sends at most {:.0} kbit/s \
         after 8 s; duet's freezes after {SETTLED_S} s: {:?}",
        duet_target / 1000.0,
        fa.freezes().0,
        fa.freezes().1,
        page_sent / 1000.0,
        freezes_after(&fb, SETTLED_S)
    );
    // The page's camera loops its 15 s file, so its counters restart: only count frames here.
    assert!(fb.success, "duet's side failed: {}", fb.output);
    assert!(
        fb.stat("frames_decoded") >= 150.0,
        "duet decoded too little: {}",
        fb.report["stats"]
    );
    assert!(duet_fps >= 15.0, "duet received only {duet_fps:.1} fps");
    assert!(page_fps >= 15.0, "the page received only {page_fps:.1} fps");
    assert!(
        duet_target <= 1_000_000.0,
        "duet's rate after 10 s (median {duet_target:.0} bit/s) exceeds the 1 Mbit/s cap"
    );
    assert!(
        page_sent <= 1_000_000.0,
        "Chromium sent duet {page_sent:.0} bit/s in a second, over the 1 Mbit/s cap"
    );
}

/// Chromium and duet through a step from 3 Mbit/s to 500 kbit/s and back (both homes, each
/// way), as `lab_link_quality`'s duet ↔ duet step: duet's encoder and picture size follow the
/// cap down and back up, Chromium's sender follows duet's feedback down and back up, and
/// video keeps moving both ways.
#[test]
fn page_and_duet_ride_a_step_down_and_back_up() {
    let Some(kit) = browser_kit(&[LARGE]) else {
        return;
    };
    let Some(lab) = browser_lab("brstep", Nat::Cone) else {
        return;
    };
    let (fb, fa) = std::thread::scope(|s| {
        s.spawn(|| step_down_and_back_up(&lab.a, &lab.b));
        page_and_duet(&kit, &lab, "brstep", LARGE, 30, &["--size", "640x480"])
    });
    let page_rates = fa.send_bitrates_after_connecting();
    let kbit: Vec<String> = page_rates
        .iter()
        .map(|r| format!("{:.0}", r / 1000.0))
        .collect();
    eprintln!(
        "step: the page received {:.1} fps after 20 s (freezes {} / {:.1} s); Chromium's video \
         per second after connecting, kbit/s: {}",
        fa.fps_after_connecting(20.0),
        fa.freezes().0,
        fa.freezes().1,
        kbit.join(" ")
    );
    assert!(fb.success, "duet's side failed: {}", fb.output);
    assert!(
        fb.stat("frames_decoded") >= 300.0,
        "duet decoded too little: {}",
        fb.report["stats"]
    );
    // duet's sending side: its encoder and picture size followed the cap down and back up,
    // and the page saw duet's video keep moving through the narrow spell (seconds 10-15
    // after connecting) and after it.
    assert_sent_through_the_step(&fb);
    let page_narrow_fps = fa.fps_between_after_connecting(10.0, 15.0);
    assert!(
        page_narrow_fps >= 12.0,
        "the page received only {page_narrow_fps:.1} fps from duet under the 500 kbit/s cap"
    );
    let page_fps = fa.fps_after_connecting(20.0);
    assert!(
        page_fps >= 15.0,
        "the page received only {page_fps:.1} fps after the step"
    );
    // What duet received from Chromium: Chromium's own controller decides its frame rate.
    // After the overflow it sent 42-176 kbit/s through the narrow spell (its feedback rides
    // the other direction's congested queue too), and duet decoded 7.3 fps from it in one
    // run; video must keep moving and come back after the step.
    let duet_narrow_fps = fps_between(&fb, 11.0, 16.0);
    assert!(
        duet_narrow_fps >= 3.0,
        "duet received {duet_narrow_fps:.1} fps from Chromium under the 500 kbit/s cap"
    );
    assert!(
        fps_after(&fb, 20.0) >= 15.0,
        "duet's video from Chromium did not come back smoothly after the step"
    );
    // Chromium's sender follows duet's transport-wide feedback: under the cap in the narrow
    // spell (seconds 9-15 after connecting; the page connects within about a second of the
    // step's start), and climbing again once it is lifted (seconds 18-26; Chromium climbs
    // about 8 % a second from there: 175 → 600 kbit/s in one run).
    let narrow = median(page_rates.get(9..15).unwrap_or_default().to_vec());
    let after = page_rates
        .get(18..26)
        .unwrap_or_default()
        .iter()
        .copied()
        .fold(0.0, f64::max);
    assert!(
        narrow <= 500_000.0,
        "Chromium did not come down under the 500 kbit/s cap: {} kbit/s",
        kbit.join(" ")
    );
    assert!(
        after >= narrow * 1.5,
        "Chromium did not climb again after the step up: {} kbit/s",
        kbit.join(" ")
    );
}

/// Chromium sending to duet adapts upwards: duet gives it transport-wide congestion feedback,
/// so on an unconstrained link its video passes 1 Mbit/s within 10 s of connecting (at
/// 640x360, where Chromium allows itself up to 1.7 Mbit/s).
#[test]
fn chromium_sending_to_duet_passes_a_megabit_within_10_s() {
    let Some(kit) = browser_kit(&[LARGE]) else {
        return;
    };
    let Some(lab) = browser_lab("brbw", Nat::Cone) else {
        return;
    };
    let (fb, fa) = page_and_duet(&kit, &lab, "brbw", LARGE, 14, &[]);
    let rates = fa.send_bitrates_after_connecting();
    let kbit: Vec<String> = rates.iter().map(|r| format!("{:.0}", r / 1000.0)).collect();
    let (local, remote) = fa.pair();
    eprintln!(
        "{} ({}offerer): pair {local} -> {remote}, setup {:?} ms; duet setup {} ms; video sent \
         per second after connecting, kbit/s: {}",
        fa.browser(),
        if fa.offerer() == Some(true) {
            ""
        } else {
            "not "
        },
        fa.setup_ms(),
        fb.stat("setup_ms"),
        kbit.join(" ")
    );
    assert!(fb.success, "duet's side failed: {}", fb.output);
    assert!(
        fb.stat("frames_decoded") >= 60.0,
        "duet decoded too little: {}",
        fb.report["stats"]
    );
    let best = rates.iter().take(10).copied().fold(0.0, f64::max);
    assert!(
        best > 1_000_000.0,
        "Chromium never sent duet more than 1 Mbit/s in its first 10 s connected: {} kbit/s",
        kbit.join(" ")
    );
}

/// UDP blocked at the browser's home (as in many offices): the page reaches signal's TURN over
/// TCP (`?transport=tcp`, offered on `ready`) and the call goes through the relay.
#[test]
fn with_udp_blocked_the_page_reaches_duet_over_turn_tcp() {
    let Some(kit) = browser_kit(&[SMALL]) else {
        return;
    };
    let Some(lab) = browser_lab("brtcp", Nat::Cone) else {
        return;
    };
    lab.a.block_udp(true).expect("block UDP at home a");
    let (_, fa) = page_calls_duet(&kit, &lab, "brtcp");
    let (local, remote) = fa.pair();
    assert!(
        local.starts_with("relay ") && local.contains(&SERVER_IP.to_string()),
        "with UDP blocked the page must relay through signal: {local} -> {remote}"
    );
}

/// Firefox in home `a` and `duet call` in home `b` (across cone NATs, signal's STUN), with
/// Firefox seated first (it offers) or second (duet offers). Both sides decode ≥ 60 frames and
/// hear each other; the codec in use is asserted to be one duet speaks, and printed. Firefox's
/// fake camera is its own picture, not duet's pattern, so duet's check is frames decoded at
/// the size Firefox sends, not pattern counters.
fn firefox_calls_duet(firefox_first: bool) {
    let Some(kit) = firefox_kit(&[SMALL]) else {
        return;
    };
    let tag = if firefox_first { "ffoff" } else { "ffans" };
    let Some(lab) = browser_lab(tag, Nat::Cone) else {
        return;
    };
    let room = unique_room(tag);

    let (page, duet) = if firefox_first {
        let page = start_page(&kit, Browser::Firefox, &lab.a, "a", &room, 20, SMALL, "");
        // Firefox takes a few seconds to start; duet joins once the page is seated.
        assert!(
            lab.wait_rooms(1, Duration::from_secs(20)),
            "Firefox never joined"
        );
        let duet = lab.duet_in_b(&room, 16);
        (page, duet)
    } else {
        let duet = lab.duet_in_b(&room, 16);
        assert!(
            lab.wait_rooms(1, Duration::from_secs(20)),
            "duet never joined"
        );
        let page = start_page(&kit, Browser::Firefox, &lab.a, "a", &room, 18, SMALL, "");
        (page, duet)
    };
    let fb = finish(duet, Duration::from_secs(60));
    let fa = finish_browser(page, Duration::from_secs(80));
    eprintln!("{}", summary(&fb));
    let (codec_in, codec_out) = fa.codecs();
    eprintln!(
        "{} ({}offerer): decoded {} frames in {codec_in}, sent {codec_out}, setup {:?} ms; \
         duet: {}, setup {} ms",
        fa.browser(),
        if fa.offerer() == Some(true) {
            ""
        } else {
            "not "
        },
        fa.frames_decoded(),
        fa.setup_ms(),
        fb.stat_str("codecs"),
        fb.stat("setup_ms"),
    );
    assert_eq!(
        fa.offerer(),
        Some(firefox_first),
        "the page's role was not the one this test is for"
    );
    assert!(
        fb.success,
        "duet's call failed: {}\n{}",
        fb.report["failure"], fb.output
    );
    assert!(
        fb.stat("frames_decoded") >= 60.0
            && fb.report["stats"]["recv_resolution"][0]
                .as_f64()
                .unwrap_or(0.0)
                > 0.0,
        "duet decoded too little of Firefox's video: {}",
        fb.report["stats"]
    );
    assert!(fb.stat("audio_frames_played") >= 50.0, "duet heard nothing");
    assert!(fa.frames_decoded() >= 60.0, "Firefox decoded too little");
    assert!(
        fa.audio_packets_received() >= 100.0,
        "Firefox received {} audio packets",
        fa.audio_packets_received()
    );
    // Firefox without its downloaded OpenH264 plugin has only VP8 in common with duet.
    let spoken = ["video/VP8", "video/H264"];
    assert!(
        spoken.contains(&codec_in.as_str()) && spoken.contains(&codec_out.as_str()),
        "codecs {codec_in} / {codec_out}"
    );
    let duet_received = fb.stat_str("video_codec_received");
    assert_eq!(
        duet_received,
        if codec_out == "video/VP8" {
            "VP8"
        } else {
            "H.264"
        },
        "duet decodes what Firefox sends"
    );
}

#[test]
fn firefox_offering_calls_duet() {
    firefox_calls_duet(true);
}

#[test]
fn duet_offering_calls_firefox() {
    firefox_calls_duet(false);
}

/// Firefox in one home and Chromium in the other, both on the page `signal` serves, across
/// cone NATs: each decodes ≥ 60 frames of the other.
#[test]
fn firefox_and_chromium_call_through_signals_page() {
    let Some(kit) = firefox_kit(&[SMALL]) else {
        return;
    };
    let Some(lab) = browser_lab("ffch", Nat::Cone) else {
        return;
    };
    let room = unique_room("ffch");
    let firefox = start_page(&kit, Browser::Firefox, &lab.a, "a", &room, 20, SMALL, "");
    assert!(
        lab.wait_rooms(1, Duration::from_secs(20)),
        "Firefox never joined"
    );
    let chromium = start_page(&kit, Browser::Chromium, &lab.b, "b", &room, 14, SMALL, "");
    let fc = finish_browser(chromium, Duration::from_secs(60));
    let ff = finish_browser(firefox, Duration::from_secs(80));
    for run in [&ff, &fc] {
        let (codec_in, codec_out) = run.codecs();
        eprintln!(
            "{} ({}offerer): decoded {} frames in {codec_in}, sent {codec_out}, setup {:?} ms, \
             pair {:?}",
            run.browser(),
            if run.offerer() == Some(true) {
                ""
            } else {
                "not "
            },
            run.frames_decoded(),
            run.setup_ms(),
            run.pair()
        );
        assert!(
            run.frames_decoded() >= 60.0,
            "{} decoded too little",
            run.name
        );
    }
}

/// Firefox with camera and microphone refused (as a person clicking "Block"): the page says so,
/// joins to watch and listen, and decodes duet's video.
#[test]
fn firefox_with_camera_and_microphone_blocked_still_joins_to_watch() {
    let Some(kit) = firefox_kit(&[SMALL]) else {
        return;
    };
    let Some(lab) = browser_lab("ffdeny", Nat::Cone) else {
        return;
    };
    let room = unique_room("ffdeny");
    let page = start_page(
        &kit,
        Browser::FirefoxMediaBlocked,
        &lab.a,
        "a",
        &room,
        16,
        SMALL,
        "",
    );
    assert!(
        lab.wait_rooms(1, Duration::from_secs(20)),
        "Firefox never joined"
    );
    let duet = lab.duet_in_b(&room, 12);
    let fb = finish(duet, Duration::from_secs(45));
    let fa = finish_browser(page, Duration::from_secs(80));
    let notice = fa.report["final"]["notice"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    eprintln!(
        "{}: decoded {} frames, notice {notice:?}; duet decoded {}",
        fa.browser(),
        fa.frames_decoded(),
        fb.stat("frames_decoded")
    );
    assert!(
        notice.contains("Camera and microphone access was blocked"),
        "the page did not say why it has no camera: {notice:?}"
    );
    assert!(fa.frames_decoded() >= 60.0, "Firefox decoded too little");
    assert!(
        fa.audio_packets_received() >= 100.0,
        "Firefox heard nothing"
    );
    assert_eq!(
        fb.stat("frames_decoded"),
        0.0,
        "duet got video from a blocked camera"
    );
}

/// The signal server restarts while Firefox and duet are in a call: the page reconnects and
/// joins again by itself, and its video never stops (media goes peer to peer).
#[test]
fn firefox_keeps_its_call_through_a_signal_restart() {
    let Some(kit) = firefox_kit(&[SMALL]) else {
        return;
    };
    let Some(mut lab) = browser_lab("ffrestart", Nat::Cone) else {
        return;
    };
    let room = unique_room("ffrestart");
    let page = start_page(&kit, Browser::Firefox, &lab.a, "a", &room, 24, SMALL, "");
    assert!(
        lab.wait_rooms(1, Duration::from_secs(20)),
        "Firefox never joined"
    );
    let duet = lab.duet_in_b(&room, 18);
    std::thread::sleep(Duration::from_secs(8));
    let restart_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64);
    lab.restart_signal(Duration::from_secs(1));
    let fb = finish(duet, Duration::from_secs(50));
    let fa = finish_browser(page, Duration::from_secs(80));
    eprintln!("{}", summary(&fb));
    // Frames decoded by the page before the restart and 5 s after it.
    let history = fa.report["history"].as_array().cloned().unwrap_or_default();
    let decoded_at = |t: f64| {
        history
            .iter()
            .filter(|s| s["at"].as_f64().unwrap_or(0.0) <= t)
            .filter_map(|s| s["in"]["framesDecoded"].as_f64())
            .next_back()
            .unwrap_or(0.0)
    };
    let (before, after) = (decoded_at(restart_at), decoded_at(restart_at + 5000.0));
    let connects = fa.report["final"]["serverConnects"].as_f64().unwrap_or(0.0);
    eprintln!(
        "{}: {before} frames decoded at the restart, {after} 5 s later; reached the server \
         {connects} times",
        fa.browser()
    );
    assert!(
        before >= 30.0,
        "the call was not running before the restart"
    );
    assert!(
        after >= before + 100.0,
        "the video stalled across the restart: {before} -> {after}"
    );
    assert!(
        connects >= 2.0,
        "the page never reconnected to the restarted server"
    );
    assert!(fb.success, "duet's call failed: {}", fb.output);
    assert!(
        fb.stat("frames_decoded") >= 300.0,
        "duet decoded too little of Firefox's video: {}",
        fb.report["stats"]
    );
}
