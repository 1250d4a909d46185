//! A message over 64 KiB closes that connection with 1009, and nothing else.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn oversized_message_closes_only_its_connection() {
    let server = TestServer::start().await;
    let (mut a, mut b) = common::pair(&server, "big").await;
    let (mut c, mut d) = common::pair(&server, "bystanders").await;

    // Just under the limit is relayed.
    let sdp = "a".repeat(64 * 1024 - 200);
    let ok = json!({"type": "offer", "room": "big", "offer": {"type": "offer", "sdp": sdp}});
    assert!(ok.to_string().len() <= 64 * 1024);
    a.send_json(ok.clone()).await;
    assert_eq!(b.recv().await, ok);

    // Just over is not: the sender gets a too-large error and close code 1009.
    let sdp = "a".repeat(64 * 1024 + 1);
    a.send_json(json!({"type": "offer", "room": "big", "offer": {"type": "offer", "sdp": sdp}}))
        .await;
    a.expect_error("too-large").await;
    assert_eq!(a.expect_close().await, Some(1009));
    // Its peer is told, and the other room is untouched.
    assert_eq!(b.recv().await, json!({"type": "peer-left", "room": "big"}));
    let msg = json!({"type": "candidate", "room": "bystanders", "candidate": null});
    c.send_json(msg.clone()).await;
    assert_eq!(d.recv().await, msg);
    server.shutdown().await;
}
