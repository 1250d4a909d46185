//! A member that stops reading is disconnected once its bounded outbox fills, instead of the
//! server buffering without limit; its partner is told `peer-left`.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use serde_json::json;
use signal::{Config, Limits};

#[tokio::test]
async fn slow_reader_is_dropped_not_buffered() {
    let config = Config {
        outbox_capacity: 8,
        limits: Limits {
            rate_per_sec: 1e6,
            rate_burst: 1e6,
            ..Limits::default()
        },
        ..Config::default()
    };
    let server = TestServer::with_config(config).await;
    let (mut a, b) = common::pair(&server, "slow").await;
    // b never reads. Big messages fill its socket buffers, then its outbox.
    let sdp = "s".repeat(60_000);
    let msg = json!({"type": "offer", "room": "slow", "offer": {"type": "offer", "sdp": sdp}});
    let mut told = false;
    for _ in 0..400 {
        a.send_json(msg.clone()).await;
        if let Ok(common::Seen::Json(v)) =
            tokio::time::timeout(std::time::Duration::from_millis(1), a.next()).await
        {
            assert_eq!(v, json!({"type": "peer-left", "room": "slow"}));
            told = true;
            break;
        }
    }
    if !told {
        assert_eq!(a.recv().await, json!({"type": "peer-left", "room": "slow"}));
    }
    drop(b);
    server.shutdown().await;
}
