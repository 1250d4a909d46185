//! Only members may send into a room; joining the same room twice is harmless.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn non_member_cannot_inject() {
    let server = TestServer::start().await;
    let (mut a, mut b) = common::pair(&server, "private").await;
    let mut outsider = server.client().await;
    for msg in [
        json!({"type": "offer", "room": "private", "offer": {"type": "offer", "sdp": "evil"}}),
        json!({"type": "answer", "room": "private", "answer": {"type": "answer", "sdp": "evil"}}),
        json!({"type": "candidate", "room": "private", "candidate": null}),
    ] {
        outsider.send_json(msg).await;
        outsider.expect_error("not-in-room").await;
    }
    // Being in another room does not help either.
    outsider.join("elsewhere").await;
    outsider
        .send_json(json!({"type": "candidate", "room": "private", "candidate": null}))
        .await;
    outsider.expect_error("not-in-room").await;
    a.expect_silence().await;
    b.expect_silence().await;
    server.shutdown().await;
}

#[tokio::test]
async fn joining_twice_is_harmless() {
    let server = TestServer::start().await;
    let mut a = server.client().await;
    a.join("twice").await;
    a.join("twice").await;
    a.sync().await;
    assert_eq!(server.stats.stats().rooms, 1);
    // a is counted once: a second person still fits, and gets the offerer=false role.
    let mut b = server.client().await;
    b.join("twice").await;
    assert_eq!(
        a.recv().await,
        json!({"type": "ready", "room": "twice", "offerer": true})
    );
    assert_eq!(
        b.recv().await,
        json!({"type": "ready", "room": "twice", "offerer": false})
    );
    // Re-joining during a call changes nothing and sends nothing.
    a.join("twice").await;
    b.join("twice").await;
    a.expect_silence().await;
    b.expect_silence().await;
    server.shutdown().await;
}
