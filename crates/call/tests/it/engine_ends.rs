//! Ending an engine whose owner has stopped keeping up: a command queue flooded full and an
//! event channel nobody reads must not keep `hang_up` from returning, and the final state it
//! returns is `Ended`.
use crate::common;

use std::time::Duration;

use call::{CallState, Command, Engine};

#[test]
fn hang_up_returns_with_a_full_command_queue_and_an_unread_event_channel() {
    let server = common::hosted_signal();
    let engine =
        Engine::start(common::config(&server.local_url(), "ends", 440.0), None).expect("engine");
    // Alone in the room: waiting for someone. Flood the commands until the queue is full.
    assert!(
        common::wait_rooms(&server, 1, Duration::from_secs(10)),
        "joined"
    );
    let mut sent = 0;
    while engine.command(Command::SetMicMuted(sent % 2 == 0)) {
        sent += 1;
        assert!(sent < 100_000, "the command queue is bounded");
    }
    // Let the unread event channel fill with stats meanwhile.
    std::thread::sleep(Duration::from_secs(3));
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(engine.hang_up());
    });
    let state = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("hang_up returned");
    assert_eq!(state, CallState::Ended);
    assert!(sent > 0, "some commands were queued ({sent})");
}
