//! The embedded browser client: `GET /` is the page (HTML, not cached stale), its scripts and
//! stylesheet are served with their content types, `HEAD` works, other paths are 404, and
//! WebSocket upgrades on `/` still reach the relay.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use signal::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Reply {
    status_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(common::WAIT, s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status_line,
        headers,
        body: body.to_owned(),
    }
}

async fn web_server() -> TestServer {
    TestServer::with_config(Config {
        pages: Some(signal::web::pages()),
        ..Config::default()
    })
    .await
}

#[tokio::test]
async fn root_is_the_html_page() {
    let server = web_server().await;
    for path in ["/", "/index.html", "/?room=kitchen&token=abc"] {
        let r = request(server.addr, "GET", path).await;
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        assert_eq!(r.body, signal::web::INDEX_HTML);
        assert!(r.body.starts_with("<!doctype html>"));
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn scripts_and_stylesheet_are_served() {
    let server = web_server().await;
    let js = request(server.addr, "GET", "/app.js").await;
    assert_eq!(js.status_line, "HTTP/1.1 200 OK");
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.header("cache-control"), Some("no-cache"));
    assert_eq!(js.body, signal::web::APP_JS);
    assert!(js.body.contains("window.duet"));

    let rules = request(server.addr, "GET", "/negotiation.js").await;
    assert_eq!(rules.status_line, "HTTP/1.1 200 OK");
    assert_eq!(
        rules.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(rules.header("cache-control"), Some("no-cache"));
    assert_eq!(rules.body, signal::web::NEGOTIATION_JS);
    assert!(rules.body.contains("class CallCore"));

    let css = request(server.addr, "GET", "/style.css").await;
    assert_eq!(css.status_line, "HTTP/1.1 200 OK");
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(css.body, signal::web::STYLE_CSS);

    let head = request(server.addr, "HEAD", "/app.js").await;
    assert_eq!(head.status_line, "HTTP/1.1 200 OK");
    assert_eq!(
        head.header("content-length"),
        Some(signal::web::APP_JS.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let server = web_server().await;
    for path in [
        "/nope",
        "/app.js.map",
        "/assets/web/app.js",
        "/assets/web/negotiation.js",
        "/index.htm",
    ] {
        let r = request(server.addr, "GET", path).await;
        assert!(
            r.status_line.starts_with("HTTP/1.1 404 "),
            "{path}: {}",
            r.status_line
        );
    }
    // Health stays the server's, not the page handler's.
    let health = request(server.addr, "GET", "/healthz").await;
    assert_eq!(health.status_line, "HTTP/1.1 200 OK");
    server.shutdown().await;
}

#[tokio::test]
async fn websocket_on_root_still_reaches_the_relay() {
    let server = web_server().await;
    let (mut a, mut b) = common::pair(&server, "web").await;
    a.sync().await;
    b.sync().await;
    server.shutdown().await;
}
