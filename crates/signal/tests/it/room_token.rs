//! `--room-secret`: a join without the room's token, or with a wrong one, is refused with
//! `forbidden`; the token from `signal::room_token` joins. Without a secret tokens are ignored.
#![allow(clippy::unwrap_used)]
use crate::common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;
use signal::client::{self, SignalEvent};
use signal::{Config, RoomSecret, ServerMessage, room_token};

const SECRET: &str = "correct horse battery staple";

#[tokio::test]
async fn join_needs_a_valid_token_when_a_secret_is_set() {
    let server = TestServer::with_config(Config {
        room_secret: Some(RoomSecret::new(SECRET)),
        ..Config::default()
    })
    .await;
    let token = room_token(SECRET, "kitchen");
    assert_eq!(token.len(), 64);

    let mut a = server.client().await;
    a.join("kitchen").await;
    let e = a.expect_error("forbidden").await;
    assert!(e["message"].as_str().unwrap().contains("token"), "{e}");
    for wrong in [
        room_token(SECRET, "garden"),
        room_token("another secret", "kitchen"),
        "zz".to_owned(),
        String::new(),
    ] {
        a.send_json(json!({"type": "join", "room": "kitchen", "token": wrong}))
            .await;
        a.expect_error("forbidden").await;
    }
    assert_eq!(server.stats.stats().rooms, 0);

    // The right token joins; the partner joins through the library client with it.
    a.send_json(json!({"type": "join", "room": "kitchen", "token": token}))
        .await;
    a.sync().await;
    assert_eq!(server.stats.stats().rooms, 1);
    let (b, mut b_rx) = client::connect(&server.url(), Duration::from_secs(2))
        .await
        .unwrap();
    b.join_with_token("kitchen", Some(&token)).await.unwrap();
    assert_eq!(
        a.recv().await,
        json!({"type": "ready", "room": "kitchen", "offerer": true})
    );
    let event = tokio::time::timeout(common::WAIT, b_rx.recv())
        .await
        .unwrap();
    assert_eq!(
        event,
        Some(SignalEvent::Message(ServerMessage::Ready {
            room: "kitchen".into(),
            offerer: Some(false),
            ice_servers: None
        }))
    );

    let m = common::metrics(server.addr).await;
    assert_eq!(m["signal_errors_total{code=\"forbidden\"}"], 5.0);
    assert_eq!(m["signal_joins_total"], 2.0);
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_secret_tokens_are_ignored() {
    let server = TestServer::start().await;
    let mut a = server.client().await;
    a.send_json(json!({"type": "join", "room": "open", "token": "whatever"}))
        .await;
    let mut b = server.client().await;
    common::wait_for(|| server.stats.stats().rooms == 1).await;
    b.join("open").await;
    assert_eq!(a.recv().await["type"], "ready");
    assert_eq!(b.recv().await["type"], "ready");
    server.shutdown().await;
}
