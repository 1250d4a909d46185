//! Invalid JSON, wrong field types, unknown types and binary frames get an `error` reply and
//! never disturb other connections (the seed server crashed on the first one).
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn garbage_gets_errors_and_the_call_goes_on() {
    let server = TestServer::start().await;
    let (mut a, mut b) = common::pair(&server, "calm").await;
    let mut bad = server.client().await;
    bad.join("calm-2").await;
    for text in [
        "not json at all",
        "{\"type\":\"join\"",
        "[1,2,3]",
        "null",
        "{}",
        "{\"type\":\"join\",\"room\":42}",
        "{\"type\":[\"join\"],\"room\":\"x\"}",
        "{\"type\":\"offer\",\"room\":\"calm-2\",\"offer\":\"v=0\"}",
        "{\"type\":\"answer\",\"room\":\"calm-2\"}",
        "{\"type\":\"candidate\",\"room\":\"calm-2\",\"candidate\":\"c\"}",
        "{\"type\":\"hello\",\"room\":\"calm-2\"}",
        "{\"type\":\"join\",\"type\":\"join\",\"room\":\"x\"}",
    ] {
        bad.send_text(text).await;
        let err = bad.expect_error("bad-message").await;
        assert!(
            err["message"].as_str().is_some_and(|m| m.len() < 300),
            "{err}"
        );
    }
    bad.ws
        .send(Message::Binary(vec![0, 159, 146, 150].into()))
        .await
        .unwrap();
    bad.expect_error("bad-message").await;

    // The bad client is still connected and usable.
    bad.join("calm-3").await;
    bad.sync().await;
    // The call next door was never disturbed.
    let m = json!({"type": "candidate", "room": "calm", "candidate": {"candidate": "x"}});
    a.send_json(m.clone()).await;
    assert_eq!(b.recv().await, m);
    a.expect_silence().await;
    server.shutdown().await;
}
