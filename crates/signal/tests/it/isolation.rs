//! Rooms are isolated: messages never cross from one room to another, and one connection in
//! two rooms talks to each partner separately.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn two_rooms_do_not_mix() {
    let server = TestServer::start().await;
    let (mut a1, mut b1) = common::pair(&server, "one").await;
    let (mut a2, mut b2) = common::pair(&server, "two").await;
    let m1 = json!({"type": "offer", "room": "one", "offer": {"type": "offer", "sdp": "1"}});
    let m2 = json!({"type": "offer", "room": "two", "offer": {"type": "offer", "sdp": "2"}});
    a1.send_json(m1.clone()).await;
    a2.send_json(m2.clone()).await;
    assert_eq!(b1.recv().await, m1);
    assert_eq!(b2.recv().await, m2);
    drop(a1);
    assert_eq!(b1.recv().await["type"], "peer-left");
    for c in [&mut a2, &mut b2] {
        c.expect_silence().await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn one_connection_in_two_rooms() {
    let server = TestServer::start().await;
    let mut hub = server.client().await;
    let mut x = server.client().await;
    let mut y = server.client().await;
    hub.join("x").await;
    hub.join("y").await;
    hub.sync().await;
    x.join("x").await;
    y.join("y").await;
    assert_eq!(x.recv().await["offerer"], false);
    assert_eq!(y.recv().await["offerer"], false);
    let _ = hub.recv().await;
    let _ = hub.recv().await;
    let mx = json!({"type": "candidate", "room": "x", "candidate": null});
    hub.send_json(mx.clone()).await;
    assert_eq!(x.recv().await, mx);
    y.expect_silence().await;
    drop(x);
    assert_eq!(hub.recv().await, json!({"type": "peer-left", "room": "x"}));
    let my = json!({"type": "candidate", "room": "y", "candidate": null});
    y.send_json(my.clone()).await;
    assert_eq!(hub.recv().await, my);
    server.shutdown().await;
}
