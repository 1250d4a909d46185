//! The page's controls in Firefox, in the network lab (Firefox gathers no ICE candidate on
//! loopback, so the loopback page tests run in Chromium only): with `duet call` in the other
//! home, a person's walk through the page — connect, mute, camera off, a third person turned
//! away, the other person leaving, hang up — behaves in Firefox as the Chromium tests expect
//! (`tests/browser/lab-ui.js` drives it and reports each step). duet hears the mute.

use std::time::Duration;

use crate::common::browser::{finish_browser, firefox_kit, start_ui_walk};
use crate::common::lab::{browser_lab, finish, summary};
use crate::common::unique_room;
use netlab::Nat;

#[test]
fn the_page_works_in_firefox() {
    let Some(_kit) = firefox_kit(&[]) else {
        return;
    };
    let Some(lab) = browser_lab("ffui", Nat::Cone) else {
        return;
    };
    let room = unique_room("ffui");
    let seconds = 24;
    let page = start_ui_walk(&lab.a, &room, seconds);
    assert!(
        lab.wait_rooms(1, Duration::from_secs(20)),
        "Firefox never joined"
    );
    let duet = lab.duet_in_b(&room, seconds);
    let fb = finish(duet, Duration::from_secs(u64::from(seconds) + 30));
    let walk = finish_browser(page, Duration::from_secs(90));
    let report = walk.report;
    eprintln!("{}", summary(&fb));
    let steps = report["steps"].as_array().cloned().unwrap_or_default();
    for s in &steps {
        eprintln!(
            "{} {:>6} ms  {}",
            if s["ok"].as_bool() == Some(true) {
                "ok  "
            } else {
                "FAIL"
            },
            s["at"],
            s["name"].as_str().unwrap_or("")
        );
    }
    assert_eq!(steps.len(), 10, "the page in Firefox: {report}");
    // duet heard Firefox's microphone, and the silence while it was muted.
    let levels: Vec<f64> = fb.report["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter_map(|s| s["audio_received_dbfs"].as_f64())
                .collect()
        })
        .unwrap_or_default();
    let loudest = levels.iter().copied().fold(f64::MIN, f64::max);
    let quietest = levels.iter().copied().fold(f64::MAX, f64::min);
    eprintln!("duet heard {quietest:.0}..{loudest:.0} dBFS: {levels:?}");
    assert!(fb.success, "duet's call failed: {}", fb.output);
    assert!(
        loudest > -40.0,
        "duet never heard Firefox's microphone: {levels:?}"
    );
    assert!(quietest < -60.0, "duet never heard the mute: {levels:?}");
    assert!(
        fb.stat("frames_decoded") >= 100.0,
        "duet decoded too little video"
    );
}
