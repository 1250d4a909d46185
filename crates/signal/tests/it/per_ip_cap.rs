//! `--max-connections-per-ip`: N WebSockets from one address are allowed, the next is refused
//! with 429, and closing one makes room again. X-Forwarded-For counts only with
//! `--trust-proxy`.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::{Client, TestServer};
use signal::Config;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An upgrade, optionally claiming to be forwarded for `xff`: the socket or the HTTP status.
async fn try_connect(server: &TestServer, xff: Option<&str>) -> Result<Ws, u16> {
    let mut request = server.url().into_client_request().unwrap();
    if let Some(xff) = xff {
        request
            .headers_mut()
            .insert("X-Forwarded-For", HeaderValue::from_str(xff).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn per_ip_cap_holds_and_frees_on_close() {
    const CAP: usize = 3;
    let server = TestServer::with_config(Config {
        max_connections_per_ip: CAP,
        ..Config::default()
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..CAP {
        open.push(Client {
            ws: try_connect(&server, None).await.unwrap(),
        });
    }
    assert_eq!(try_connect(&server, None).await.err(), Some(429));
    // The ones in use keep working.
    for c in &mut open {
        c.sync().await;
    }
    // Claiming another address does not help without --trust-proxy.
    assert_eq!(
        try_connect(&server, Some("203.0.113.5")).await.err(),
        Some(429)
    );

    let mut closed = open.pop().unwrap();
    closed.ws.close(None).await.unwrap();
    drop(closed);
    // The slot is given back once the server has seen the close.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let mut again = loop {
        match try_connect(&server, None).await {
            Ok(ws) => break Client { ws },
            Err(status) => {
                assert_eq!(status, 429);
                assert!(tokio::time::Instant::now() < deadline, "slot never freed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    again.sync().await;
    assert_eq!(try_connect(&server, None).await.err(), Some(429));

    let m = common::metrics(server.addr).await;
    assert!(m["signal_connections_rejected_total{reason=\"per-ip-limit\"}"] >= 3.0);
    assert_eq!(m["signal_client_ips"], 1.0);
    assert_eq!(m["signal_connections_open"], CAP as f64);
    server.shutdown().await;
}

#[tokio::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    let server = TestServer::with_config(Config {
        max_connections_per_ip: 1,
        trust_proxy: true,
        ..Config::default()
    })
    .await;
    // Behind a proxy every client arrives from the proxy's address; the header tells them apart.
    let _a = try_connect(&server, Some("198.51.100.1")).await.unwrap();
    let _b = try_connect(&server, Some("198.51.100.2")).await.unwrap();
    assert_eq!(
        try_connect(&server, Some("198.51.100.1")).await.err(),
        Some(429)
    );
    // A client-supplied entry before the proxy's own is not believed: the last one counts.
    assert_eq!(
        try_connect(&server, Some("192.0.2.77, 198.51.100.2"))
            .await
            .err(),
        Some(429)
    );
    let _c = try_connect(&server, Some("198.51.100.2, 198.51.100.3"))
        .await
        .unwrap();
    let m = common::metrics(server.addr).await;
    assert_eq!(m["signal_client_ips"], 3.0);
    server.shutdown().await;
}
