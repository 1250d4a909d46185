//! A room holds at most two members: a third joiner is refused and hears nothing.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn third_joiner_is_refused_and_hears_nothing() {
    let server = TestServer::start().await;
    let (mut a, mut b) = common::pair(&server, "full").await;
    let mut c = server.client().await;
    c.join("full").await;
    let err = c.expect_error("room-full").await;
    assert!(err["message"].as_str().unwrap_or("").contains("full"));

    // The call in progress goes on, and the refused client cannot listen in or inject.
    let offer = json!({"type": "offer", "room": "full", "offer": {"type": "offer", "sdp": "v=0"}});
    a.send_json(offer.clone()).await;
    assert_eq!(b.recv().await, offer);
    c.expect_silence().await;
    c.send_json(offer.clone()).await;
    c.expect_error("not-in-room").await;
    a.expect_silence().await;
    b.expect_silence().await;

    // Once a member leaves, the room has space again.
    drop(b);
    assert_eq!(a.recv().await, json!({"type": "peer-left", "room": "full"}));
    c.join("full").await;
    assert_eq!(
        a.recv().await,
        json!({"type": "ready", "room": "full", "offerer": true})
    );
    assert_eq!(
        c.recv().await,
        json!({"type": "ready", "room": "full", "offerer": false})
    );
    server.shutdown().await;
}
