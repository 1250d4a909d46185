//! WebSocket upgrades are validated as RFC 6455 §4.2.1 asks: GET, HTTP/1.1, `Connection:
//! Upgrade`, a 16-byte base64 key and version 13; anything else is a 400 naming the problem.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;

const GOOD: &str = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

#[tokio::test]
async fn malformed_upgrades_get_400() {
    let server = TestServer::start().await;
    let good = answer_head(server.addr, GOOD).await;
    assert!(good.starts_with("HTTP/1.1 101 "), "{good}");
    let cases = [
        ("POST", GOOD.replace("GET /", "POST /"), "GET"),
        ("HTTP/1.0", GOOD.replace("HTTP/1.1", "HTTP/1.0"), "HTTP/1.1"),
        (
            "no Connection",
            GOOD.replace("Connection: Upgrade\r\n", ""),
            "Connection",
        ),
        (
            "Connection without upgrade",
            GOOD.replace("Connection: Upgrade", "Connection: keep-alive"),
            "Connection",
        ),
        (
            "no key",
            GOOD.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            "Sec-WebSocket-Key",
        ),
        (
            "short key",
            GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
            "Sec-WebSocket-Key",
        ),
        (
            "not base64",
            GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25j!!=="),
            "Sec-WebSocket-Key",
        ),
        (
            "version 8",
            GOOD.replace("Version: 13", "Version: 8"),
            "Version",
        ),
        (
            "no version",
            GOOD.replace("Sec-WebSocket-Version: 13\r\n", ""),
            "Version",
        ),
    ];
    let n = cases.len();
    for (what, request, says) in cases {
        let response = common::raw_request(server.addr, request.as_bytes()).await;
        assert!(response.starts_with("HTTP/1.1 400 "), "{what}: {response}");
        let body = response.split_once("\r\n\r\n").unwrap().1;
        assert!(body.contains(says), "{what}: {body}");
    }
    // A list in Connection (as browsers send through some proxies) is fine.
    let listed = GOOD.replace("Connection: Upgrade", "Connection: keep-alive, Upgrade");
    let listed = answer_head(server.addr, &listed).await;
    assert!(listed.starts_with("HTTP/1.1 101 "), "{listed}");
    let m = common::metrics(server.addr).await;
    assert_eq!(
        m["signal_connections_rejected_total{reason=\"bad-request\"}"],
        n as f64
    );
    server.shutdown().await;
}

/// The server's answer head only (an accepted upgrade stays open).
async fn answer_head(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(common::WAIT, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}
