//! Logs that a client cannot flood: refused upgrades are counted in metrics by reason and
//! logged once per interval with a count, never with a client address at info/warn level. And
//! the reverse-proxy trap: many connections from one loopback address carrying
//! `X-Forwarded-For` without `trust_proxy` produce one warning with the advice.
#![allow(clippy::unwrap_used)]
use crate::common;

use std::time::Duration;

use common::TestServer;
use signal::Config;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

async fn upgrade_via_proxy(server: &TestServer) -> Result<common::Client, u16> {
    let mut request = server.url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("X-Forwarded-For", HeaderValue::from_static("203.0.113.9"));
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(common::Client { ws }),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn refusals_are_counted_and_logged_once_per_interval_without_addresses() {
    let logs = common::LogCapture::start();
    let server = TestServer::with_config(Config {
        max_connections_per_ip: 2,
        refusal_log_interval: Duration::from_millis(400),
        ..Config::default()
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(upgrade_via_proxy(&server).await.unwrap());
    }
    let started = tokio::time::Instant::now();
    for _ in 0..50 {
        assert_eq!(upgrade_via_proxy(&server).await.err(), Some(429));
    }
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "too slow to test the interval"
    );
    let refused_lines = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.contains("connections refused"))
            .cloned()
            .collect::<Vec<_>>()
    };
    let first = refused_lines(&logs.lines());
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        first[0].contains("reason=\"per-ip-limit\"") || first[0].contains("reason=per-ip-limit"),
        "{}",
        first[0]
    );
    assert!(first[0].contains("count=1"), "{}", first[0]);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(upgrade_via_proxy(&server).await.err(), Some(429));
    let lines = logs.lines();
    let refused = refused_lines(&lines);
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused[1].contains("count=50"), "{}", refused[1]);

    // One warning about the proxy, with the advice.
    let hints: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("looks like a reverse proxy"))
        .collect();
    assert_eq!(hints.len(), 1, "{lines:#?}");
    assert!(
        hints[0].contains("WARN") && hints[0].contains("--trust-proxy"),
        "{}",
        hints[0]
    );

    // No client address (127.0.0.1:<port>) in any line but the server's own listen line.
    let listen = format!("127.0.0.1:{}", server.addr.port());
    for line in &lines {
        let without_listen = line.replace(&listen, "");
        assert!(
            !without_listen.contains("127.0.0.1"),
            "address in a log line: {line}"
        );
        assert!(
            !line.contains("203.0.113.9"),
            "address in a log line: {line}"
        );
    }
    let m = common::metrics(server.addr).await;
    assert_eq!(
        m["signal_connections_rejected_total{reason=\"per-ip-limit\"}"],
        51.0
    );
    drop(open);
    server.shutdown().await;
}

#[tokio::test]
async fn no_proxy_warning_with_trust_proxy_or_without_the_header() {
    let logs = common::LogCapture::start();
    let server = TestServer::with_config(Config {
        max_connections_per_ip: 0,
        ..Config::default()
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..12 {
        open.push(server.client().await);
    }
    for c in &mut open {
        c.sync().await;
    }
    assert!(
        !logs.lines().iter().any(|l| l.contains("reverse proxy")),
        "{:#?}",
        logs.lines()
    );
    drop(open);
    server.shutdown().await;
}
