//! The server pings every `ping_interval` and drops a peer silent for `idle_timeout`; the other
//! member then gets `peer-left`. A live client (which answers pings) stays connected.
#![allow(clippy::unwrap_used)]
use crate::common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;
use signal::Config;

fn fast_keepalive() -> Config {
    Config {
        ping_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(400),
        ..Config::default()
    }
}

#[tokio::test]
async fn silent_peer_is_dropped_and_partner_told() {
    let server = TestServer::with_config(fast_keepalive()).await;
    let (mut live, silent) = common::pair(&server, "ka").await;
    // `silent` is never read from again, so it never answers the server's pings: like a
    // laptop whose lid closed. The live client keeps reading and so answers pings.
    let left = live.recv().await;
    assert_eq!(left, json!({"type": "peer-left", "room": "ka"}));
    common::wait_for(|| server.stats.stats().open_connections == 1).await;
    drop(silent);

    // A live client outlasts several idle timeouts and can still be paired.
    // It keeps reading (so it answers pings) for three idle timeouts and hears nothing.
    for _ in 0..4 {
        live.expect_silence().await;
    }
    let mut newcomer = server.client().await;
    newcomer.join("ka").await;
    assert_eq!(
        live.recv().await,
        json!({"type": "ready", "room": "ka", "offerer": true})
    );
    assert_eq!(newcomer.recv().await["offerer"], false);
    server.shutdown().await;
}
