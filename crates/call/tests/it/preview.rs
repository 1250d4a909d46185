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
