//! Room names are bounded in length and may not contain control characters, invisible
//! formatting characters (bidi overrides, zero-width characters, the BOM: Unicode category Cf)
//! or line/paragraph separators, so two rooms cannot look alike.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn invalid_room_names_are_refused() {
    let server = TestServer::start().await;
    let mut a = server.client().await;
    let long = "x".repeat(129);
    for room in [
        "",
        long.as_str(),
        "tab\there",
        "nl\n",
        "nul\u{0}",
        "bell\u{7}",
        "del\u{7f}",
    ] {
        a.send_json(json!({"type": "join", "room": room})).await;
        a.expect_error("invalid-room").await;
    }
    for (room, code) in [
        ("abc\u{202e}fed", "U+202E"),
        ("zero\u{200b}width", "U+200B"),
        ("join\u{200d}er", "U+200D"),
        ("\u{feff}bom", "U+FEFF"),
        ("isolate\u{2066}x", "U+2066"),
        ("line\u{2028}sep", "U+2028"),
        ("para\u{2029}sep", "U+2029"),
        ("soft\u{ad}hyphen", "U+00AD"),
    ] {
        a.send_json(json!({"type": "join", "room": room})).await;
        let error = a.expect_error("invalid-room").await;
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(code), "{message}");
        assert!(
            message.contains("invisible or control character"),
            "{message}"
        );
    }
    assert_eq!(server.stats.stats().rooms, 0);

    // The longest allowed name and non-ASCII names work.
    let max = "y".repeat(128);
    for room in [max.as_str(), "café ☕", "Zimmer 12"] {
        let mut b = server.client().await;
        a.join(room).await;
        a.sync().await;
        b.join(room).await;
        assert_eq!(
            b.recv().await,
            json!({"type": "ready", "room": room, "offerer": false})
        );
        assert_eq!(a.recv().await["offerer"], true);
        a.send_json(json!({"type": "leave", "room": room})).await;
        assert_eq!(b.recv().await, json!({"type": "peer-left", "room": room}));
    }
    server.shutdown().await;
}
