//! `--allow-origin`: a browser Origin not on the list is refused at the upgrade with 403;
//! a listed origin, the server's own origin and a request without Origin (native clients)
//! get their WebSocket.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use signal::{Config, OriginPolicy};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Tries an upgrade with `origin` (and the URL's host as Host); the HTTP status.
async fn upgrade_status(server: &TestServer, origin: Option<&str>) -> u16 {
    let mut request = server.url().into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_str(origin).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut ws, response)) => {
            let _ = ws.close(None).await;
            response.status().as_u16()
        }
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn wrong_origin_is_refused_at_the_upgrade() {
    let server = TestServer::with_config(Config {
        origins: OriginPolicy::new(["https://duet.example", "https://other.example:8443"]),
        ..Config::default()
    })
    .await;
    assert_eq!(
        upgrade_status(&server, Some("https://evil.example")).await,
        403
    );
    assert_eq!(upgrade_status(&server, Some("null")).await, 403);
    assert_eq!(
        upgrade_status(&server, Some("http://duet.example")).await,
        403
    );
    assert_eq!(
        upgrade_status(&server, Some("https://duet.example")).await,
        101
    );
    assert_eq!(
        upgrade_status(&server, Some("https://Other.example:8443/")).await,
        101
    );
    // Native clients send no Origin.
    assert_eq!(upgrade_status(&server, None).await, 101);
    // The page this server serves itself: Origin matches Host.
    let own = format!("http://{}", server.addr);
    assert_eq!(upgrade_status(&server, Some(&own)).await, 101);

    let m = common::metrics(server.addr).await;
    assert_eq!(
        m["signal_connections_rejected_total{reason=\"origin\"}"],
        3.0
    );
    assert_eq!(m["signal_connections_total"], 4.0);
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_list_any_origin_passes() {
    let server = TestServer::start().await;
    assert_eq!(
        upgrade_status(&server, Some("https://anywhere.example")).await,
        101
    );
    assert_eq!(upgrade_status(&server, None).await, 101);
    server.shutdown().await;
}
