//! The server pings every `ping_interval` and drops a peer silent for `idle_timeout`; the other
//! member then gets `peer-left`. A live client (which answers pings) stays connected.
#![allow(clippy::unwrap_used)]
use crate::common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;
use signal::Config;

/// Pings every 200 ms, drops a peer silent for 1 s. (With 100 ms and 400 ms, a live client
/// that stopped reading for the length of a connect and a join on a busy CI machine was
/// dropped too: it answers pings only while it reads.)
const PING_INTERVAL: Duration = Duration::from_millis(200);
const IDLE_TIMEOUT: Duration = Duration::from_millis(1000);

fn fast_keepalive() -> Config {
    Config {
        ping_interval: PING_INTERVAL,
        idle_timeout: IDLE_TIMEOUT,
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
    // The live client reads (and stays silent) while the server counts the connections.
    tokio::join!(
        common::wait_for(|| server.stats.stats().open_connections == 1),
        live.expect_silence()
    );
    drop(silent);

    // A live client outlasts several idle timeouts and can still be paired: it keeps reading
    // (so it answers pings) for three idle timeouts and hears nothing.
    let quiet_spells = 3 * IDLE_TIMEOUT.as_millis() / common::QUIET.as_millis() + 1;
    for _ in 0..quiet_spells {
        live.expect_silence().await;
    }
    // It keeps reading while the newcomer connects and joins.
    let (ready, mut newcomer) = tokio::join!(live.recv(), async {
        let mut newcomer = server.client().await;
        newcomer.join("ka").await;
        newcomer
    });
    assert_eq!(
        ready,
        json!({"type": "ready", "room": "ka", "offerer": true})
    );
    assert_eq!(newcomer.recv().await["offerer"], false);
    server.shutdown().await;
}
