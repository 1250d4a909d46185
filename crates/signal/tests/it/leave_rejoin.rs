//! `leave` hangs up but keeps the socket; the partner gets `peer-left`, either side can rejoin,
//! and a room's memory is freed when its last member goes.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn leave_then_rejoin() {
    let server = TestServer::start().await;
    let (mut a, mut b) = common::pair(&server, "lr").await;
    b.send_json(json!({"type": "leave", "room": "lr"})).await;
    assert_eq!(a.recv().await, json!({"type": "peer-left", "room": "lr"}));
    // b is out: it can no longer send into the room.
    b.send_json(json!({"type": "candidate", "room": "lr", "candidate": null}))
        .await;
    b.expect_error("not-in-room").await;
    // Leaving again is an error, not a crash.
    b.send_json(json!({"type": "leave", "room": "lr"})).await;
    b.expect_error("not-in-room").await;

    // Rejoin on the same socket: a stayed, so a is now the offerer.
    b.join("lr").await;
    assert_eq!(
        a.recv().await,
        json!({"type": "ready", "room": "lr", "offerer": true})
    );
    assert_eq!(
        b.recv().await,
        json!({"type": "ready", "room": "lr", "offerer": false})
    );
    let m = json!({"type": "offer", "room": "lr", "offer": {"type": "offer", "sdp": "v=0"}});
    a.send_json(m.clone()).await;
    assert_eq!(b.recv().await, m);
    server.shutdown().await;
}

#[tokio::test]
async fn empty_rooms_are_freed() {
    let server = TestServer::start().await;
    let mut a = server.client().await;
    for i in 0..4 {
        a.join(&format!("tmp{i}")).await;
    }
    a.sync().await;
    assert_eq!(server.stats.stats().rooms, 4);
    for i in 0..2 {
        a.send_json(json!({"type": "leave", "room": format!("tmp{i}")}))
            .await;
    }
    a.sync().await;
    assert_eq!(server.stats.stats().rooms, 2);
    drop(a);
    common::wait_for(|| {
        server.stats.stats().rooms == 0 && server.stats.stats().open_connections == 0
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn disconnect_tells_the_partner() {
    let server = TestServer::start().await;
    let (mut a, b) = common::pair(&server, "gone").await;
    drop(b);
    assert_eq!(a.recv().await, json!({"type": "peer-left", "room": "gone"}));
    server.shutdown().await;
}
