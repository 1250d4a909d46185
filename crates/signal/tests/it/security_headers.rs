//! Every response carries the security headers: a self-only CSP whose `connect-src` names this
//! host's WebSocket, `frame-ancestors 'none'`, no referrer, nosniff; HSTS only over TLS.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use common::tls::{https_get, tls_server, trusting};
use signal::Config;

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split_once("\r\n\r\n").map_or(response, |(h, _)| h);
    head.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

fn assert_common(response: &str, ws: &str) {
    let csp = header(response, "Content-Security-Policy").unwrap_or_else(|| panic!("{response}"));
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains(&format!("connect-src 'self' {ws};")), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header(response, "Referrer-Policy"), Some("no-referrer"));
    assert_eq!(header(response, "X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(header(response, "X-Frame-Options"), Some("DENY"));
}

#[tokio::test]
async fn plain_pages_carry_security_headers_without_hsts() {
    let server = TestServer::with_config(Config {
        pages: Some(signal::web::pages()),
        ..Config::default()
    })
    .await;
    let ws = format!("ws://{}", server.addr);
    for path in [
        "/",
        "/app.js",
        "/style.css",
        "/healthz",
        "/metrics",
        "/nope",
    ] {
        let response = common::http_get(server.addr, path).await;
        assert_common(&response, &ws);
        assert_eq!(
            header(&response, "Strict-Transport-Security"),
            None,
            "{path}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn tls_pages_add_hsts() {
    let (server, cert, _dir) = tls_server(Config {
        pages: Some(signal::web::pages()),
        ..Config::default()
    })
    .await;
    for path in ["/", "/healthz"] {
        let response = https_get(server.addr, trusting(&[&cert]), path).await;
        assert_common(&response, "wss://127.0.0.1");
        let hsts = header(&response, "Strict-Transport-Security").unwrap();
        assert!(hsts.starts_with("max-age="), "{hsts}");
    }
    server.shutdown().await;
}
