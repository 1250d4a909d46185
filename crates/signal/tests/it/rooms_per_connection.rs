//! One connection can be in only a few rooms at once (`Limits::max_rooms_per_connection`).
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use serde_json::json;
use signal::{Config, Limits};

#[tokio::test]
async fn room_limit_per_connection() {
    let limits = Limits {
        max_rooms_per_connection: 3,
        ..Limits::default()
    };
    let server = TestServer::with_config(Config {
        limits,
        ..Config::default()
    })
    .await;
    let mut a = server.client().await;
    for i in 0..3 {
        a.join(&format!("r{i}")).await;
    }
    a.join("r3").await;
    a.expect_error("too-many-rooms").await;
    assert_eq!(server.stats.stats().rooms, 3);

    // Leaving one makes room for another.
    a.send_json(json!({"type": "leave", "room": "r0"})).await;
    a.join("r3").await;
    a.sync().await;
    assert_eq!(server.stats.stats().rooms, 3);
    server.shutdown().await;
}
