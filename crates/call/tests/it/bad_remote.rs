//! Bad remote SDP ends in a clear `failed` event — not a panic, not a hang; a bad remote
//! candidate is ignored with a warning and the call goes on (docs/protocol.md, negotiation).
use crate::common;

use std::time::Duration;

use call::{CallState, Engine};
use serde_json::json;
use signal::client::{self, SignalEvent};
use signal::{ClientMessage, HostedSignal, ServerMessage};

/// Joins `room` as a scripted peer (second, so the engine offers) and waits for its offer.
async fn scripted_peer(url: &str, room: &str) -> (client::SignalSender, client::SignalReceiver) {
    let (tx, mut rx) = client::connect(url, Duration::from_secs(5))
        .await
        .expect("connect");
    tx.send(ClientMessage::Join {
        room: room.into(),
        token: None,
        session: None,
    })
    .await
    .expect("join");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(SignalEvent::Message(ServerMessage::Offer { .. }))) => return (tx, rx),
            Ok(Some(SignalEvent::Message(ServerMessage::Ready {
                offerer: Some(true),
                ..
            }))) => panic!("the scripted peer was seated first and made the offerer"),
            Ok(Some(_)) => {}
            other => panic!("no offer from the engine: {other:?}"),
        }
    }
}

fn failure(engine: &Engine) -> String {
    let mut seen = common::Seen::default();
    let failed = common::watch(engine, &mut seen, Duration::from_secs(10), |s| {
        s.states.iter().any(|st| matches!(st, CallState::Failed(_)))
    });
    assert!(failed, "no failed state: {:?}", seen.states);
    seen.states
        .iter()
        .find_map(|s| match s {
            CallState::Failed(reason) => Some(reason.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// An engine alone in `room`, once the server has seated it (so it is the offerer).
fn waiting_engine(server: &HostedSignal, room: &str) -> (Engine, common::Seen) {
    let url = server.local_url();
    let engine = Engine::start(common::config(&url, room, 440.0), None).expect("engine");
    let mut seen = common::Seen::default();
    assert!(common::watch(
        &engine,
        &mut seen,
        Duration::from_secs(5),
        |s| s.states.contains(&CallState::WaitingForPeer)
    ));
    assert!(
        common::wait_rooms(server, 1, Duration::from_secs(5)),
        "the server never seated the engine"
    );
    (engine, seen)
}

fn run(room: &str, reply: serde_json::Value) -> String {
    let server = common::hosted_signal();
    let url = server.local_url();
    let (engine, _) = waiting_engine(&server, room);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (tx, _rx) = scripted_peer(&url, room).await;
        let msg: ClientMessage = serde_json::from_value(reply).expect("message");
        tx.send(msg).await.expect("send");
        tokio::task::spawn_blocking(move || failure(&engine))
            .await
            .expect("join")
    })
}

#[test]
fn garbage_answer_fails_clearly() {
    let reason = run(
        "bad-answer",
        json!({"type": "answer", "room": "bad-answer", "answer": {"type": "answer", "sdp": "this is not SDP"}}),
    );
    assert!(reason.contains("invalid answer"), "{reason}");
}

#[test]
fn wrongly_typed_answer_fails_clearly() {
    let reason = run(
        "bad-type",
        json!({"type": "answer", "room": "bad-type", "answer": {"type": "pranswer-ish", "sdp": 7}}),
    );
    assert!(reason.contains("invalid answer"), "{reason}");
}

#[test]
fn garbage_candidate_is_ignored_with_a_warning() {
    let server = common::hosted_signal();
    let url = server.local_url();
    let room = "bad-candidate";
    let (engine, mut seen) = waiting_engine(&server, room);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (engine, seen) = rt.block_on(async {
        let (tx, _rx) = scripted_peer(&url, room).await;
        let msg: ClientMessage = serde_json::from_value(json!({"type": "candidate", "room": room, "candidate": {"candidate": "candidate:x y z", "sdpMid": "0", "sdpMLineIndex": 0}})).expect("message");
        tx.send(msg).await.expect("send");
        tokio::task::spawn_blocking(move || {
            let warned = common::watch(&engine, &mut seen, Duration::from_secs(10), |s| {
                s.warnings.iter().any(|w| w.contains("ignored a candidate"))
            });
            assert!(warned, "no warning: {:?} {:?}", seen.states, seen.warnings);
            (engine, seen)
        })
        .await
        .expect("join")
    });
    assert!(
        !seen
            .states
            .iter()
            .any(|s| matches!(s, CallState::Failed(_))),
        "a bad candidate ended the call: {:?}",
        seen.states
    );
    // Still in the call: hanging up ends it normally.
    assert_eq!(engine.hang_up(), CallState::Ended);
}
