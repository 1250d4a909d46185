//! The self-view works before anyone joins: alone in a room the engine shows the local test
//! pattern; camera off clears it, camera on brings it back.
use crate::common;

use std::time::{Duration, Instant};

use call::{CallState, Command, Engine};
use media::read_pattern_stamp;

fn local_stamp_within(engine: &Engine, timeout: Duration) -> Option<u32> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        while engine.events().try_recv().is_ok() {}
        if let (_, Some(frame)) = engine.local_frames().latest()
            && let Some(stamp) = read_pattern_stamp(&frame)
        {
            return Some(stamp.counter);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn self_view_while_waiting_and_camera_toggle() {
    let server = common::hosted_signal();
    let engine =
        Engine::start(common::config(&server.local_url(), "alone", 440.0), None).expect("engine");
    let mut seen = common::Seen::default();
    assert!(common::watch(
        &engine,
        &mut seen,
        Duration::from_secs(5),
        |s| { s.states.contains(&CallState::WaitingForPeer) }
    ));
    let first =
        local_stamp_within(&engine, Duration::from_secs(5)).expect("a self-view while waiting");

    assert!(engine.command(Command::SetCameraEnabled(false)));
    assert!(
        common::wait_until(Duration::from_secs(5), || {
            while engine.events().try_recv().is_ok() {}
            engine.local_frames().latest().1.is_none()
        }),
        "camera off still shows a picture"
    );
    // It stays dark: a full stats tick later (the engine emits one a second) there is still
    // no picture, so the preview thread is really gone rather than between two frames.
    let mut seen = common::Seen::default();
    assert!(common::watch(
        &engine,
        &mut seen,
        Duration::from_secs(5),
        |s| { s.stats.elapsed_s > 0.0 }
    ));
    let at = seen.stats.elapsed_s;
    assert!(common::watch(
        &engine,
        &mut seen,
        Duration::from_secs(5),
        |s| { s.stats.elapsed_s > at }
    ));
    assert!(
        engine.local_frames().latest().1.is_none(),
        "camera off: a picture came back by itself"
    );

    assert!(engine.command(Command::SetCameraEnabled(true)));
    let again = local_stamp_within(&engine, Duration::from_secs(5));
    assert!(
        again.is_some(),
        "the self-view did not come back (it showed counter {first} before)"
    );
    assert_eq!(engine.hang_up(), CallState::Ended);
}

/// When the call starts sending, the self-view's running source is handed to the sender rather
/// than closed and opened again (a camera reopened starts dark while its exposure settles).
/// With the test pattern that shows in its counter: a reopened pattern starts again from 0,
/// the handed-over one carries on from where the self-view was.
#[test]
fn the_call_takes_over_the_running_self_view_source() {
    let server = common::hosted_signal();
    let url = server.local_url();
    let a = Engine::start(common::config(&url, "handover", 440.0), None).expect("engine a");
    let deadline = Instant::now() + Duration::from_secs(10);
    let waited = loop {
        let counter = local_stamp_within(&a, Duration::from_secs(5)).expect("a self-view");
        if counter >= 45 {
            break counter;
        }
        assert!(
            Instant::now() < deadline,
            "the self-view stopped at {counter}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let b = Engine::start(common::config(&url, "handover", 660.0), None).expect("engine b");
    let mut seen = common::Seen::default();
    assert!(
        common::watch(&b, &mut seen, Duration::from_secs(20), |s| s
            .stats
            .pattern_frames
            >= 10),
        "b never decoded a's pattern: {:?}",
        seen.states
    );
    let first = seen.stats.pattern_first.expect("a first counter");
    assert!(
        first >= waited,
        "a's sender started its source again (first counter {first}; the self-view was at \
         {waited})"
    );
    assert_eq!(a.hang_up(), CallState::Ended);
    assert_eq!(b.hang_up(), CallState::Ended);
}
