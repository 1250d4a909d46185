//! `GET /metrics`: the Prometheus counters move as a scripted session runs — connections,
//! rooms, joins, relayed messages by type, errors by code, closes by reason.
#![allow(clippy::unwrap_used)]
use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::TestServer;
use serde_json::json;
use signal::Config;

fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("{key} missing in {m:#?}"))
}

#[tokio::test]
async fn counters_follow_a_scripted_session() {
    let server = TestServer::with_config(Config {
        max_message_bytes: 1024,
        ..Config::default()
    })
    .await;
    let m = common::metrics(server.addr).await;
    for key in [
        "signal_connections_open",
        "signal_rooms",
        "signal_connections_total",
        "signal_joins_total",
        "signal_messages_relayed_total{type=\"offer\"}",
        "signal_errors_total{code=\"bad-message\"}",
        "signal_connections_closed_total{reason=\"idle\"}",
        "signal_connections_rejected_total{reason=\"origin\"}",
    ] {
        assert_eq!(get(&m, key), 0.0, "{key}");
    }
    let build = format!(
        "signal_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(get(&m, &build), 1.0);

    let (mut a, mut b) = common::pair(&server, "metrics").await;
    let mut c = server.client().await;
    a.send_json(json!({"type": "offer", "room": "metrics", "offer": {"sdp": "x"}}))
        .await;
    b.recv().await;
    b.send_json(json!({"type": "answer", "room": "metrics", "answer": {"sdp": "y"}}))
        .await;
    a.recv().await;
    for _ in 0..3 {
        a.send_json(json!({"type": "candidate", "room": "metrics", "candidate": null}))
            .await;
        b.recv().await;
    }
    c.send_text("not json").await;
    c.expect_error("bad-message").await;
    c.send_json(json!({"type": "offer", "room": "metrics", "offer": {}}))
        .await;
    c.expect_error("not-in-room").await;
    c.join("metrics").await;
    c.expect_error("room-full").await;

    let m = common::metrics(server.addr).await;
    assert_eq!(get(&m, "signal_connections_open"), 3.0);
    assert_eq!(get(&m, "signal_client_ips"), 1.0);
    assert_eq!(get(&m, "signal_rooms"), 1.0);
    assert_eq!(get(&m, "signal_connections_total"), 3.0);
    // pair(): two joins (the room-full join is an error, not a join).
    assert_eq!(get(&m, "signal_joins_total"), 2.0);
    assert_eq!(
        get(&m, "signal_messages_relayed_total{type=\"offer\"}"),
        1.0
    );
    assert_eq!(
        get(&m, "signal_messages_relayed_total{type=\"answer\"}"),
        1.0
    );
    assert_eq!(
        get(&m, "signal_messages_relayed_total{type=\"candidate\"}"),
        3.0
    );
    assert_eq!(get(&m, "signal_errors_total{code=\"bad-message\"}"), 1.0);
    // pair()'s sync plus c's offer.
    assert_eq!(get(&m, "signal_errors_total{code=\"not-in-room\"}"), 2.0);
    assert_eq!(get(&m, "signal_errors_total{code=\"room-full\"}"), 1.0);
    assert_eq!(server.stats.stats().relayed, 5);

    // Closes by reason: one client hangs up, one sends too much.
    b.ws.close(None).await.unwrap();
    assert_eq!(a.recv().await["type"], "peer-left");
    c.send_text(&"x".repeat(2048)).await;
    assert_eq!(c.expect_close().await, Some(1009));
    common::wait_for(|| server.stats.stats().open_connections == 1).await;
    // The close counter moves after the close handshake; poll for it.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let m = loop {
        let m = common::metrics(server.addr).await;
        if get(&m, "signal_connections_closed_total{reason=\"too-large\"}") == 1.0
            && get(
                &m,
                "signal_connections_closed_total{reason=\"client-closed\"}",
            ) == 1.0
        {
            break m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "closes not counted: {m:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(get(&m, "signal_errors_total{code=\"too-large\"}"), 1.0);
    assert_eq!(get(&m, "signal_rooms"), 1.0);
    assert_eq!(get(&m, "signal_connections_open"), 1.0);
    // Every /metrics request so far was a plain HTTP request.
    assert!(get(&m, "signal_http_requests_total") >= 3.0);

    // A malformed request is a rejection.
    let bad = common::http_get(server.addr, "/\u{1}").await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    let m = common::metrics(server.addr).await;
    assert_eq!(
        get(
            &m,
            "signal_connections_rejected_total{reason=\"bad-request\"}"
        ),
        1.0
    );

    // Shutdown: the last connection is closed for that reason.
    let stats = server.stats.clone();
    let shutdown = tokio::spawn(server.shutdown());
    assert_eq!(a.expect_close().await, Some(1001));
    shutdown.await.unwrap();
    let m = common::parse_metrics(&stats.metrics_text());
    assert_eq!(
        get(&m, "signal_connections_closed_total{reason=\"shutdown\"}"),
        1.0
    );
    assert_eq!(get(&m, "signal_connections_open"), 0.0);
    assert_eq!(get(&m, "signal_client_ips"), 0.0);
}
