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
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        engine.local_frames().latest().1.is_none(),
        "camera off still shows a picture"
    );

    assert!(engine.command(Command::SetCameraEnabled(true)));
    let again = local_stamp_within(&engine, Duration::from_secs(5));
    assert!(
        again.is_some(),
        "the self-view did not come back (it showed counter {first} before)"
    );
    assert_eq!(engine.hang_up(), CallState::Ended);
}
