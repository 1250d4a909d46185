//! Plain HTTP next to the WebSocket: `GET /healthz` answers 200, upgrades work on any path,
//! and malformed or unknown requests get clear HTTP errors.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until EOF; a reset after the answer (the server closes without reading an oversized
    // request to its end) still leaves the answer in `out`.
    while let Ok(Ok(n)) = tokio::time::timeout(common::WAIT, s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn healthz_and_errors() {
    let server = TestServer::start().await;
    let ok = raw(server.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.ends_with("\r\n\r\nok\n"), "{ok}");
    let head = raw(server.addr, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    let missing = raw(server.addr, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    let post = raw(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    let garbage = raw(server.addr, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
    let huge = raw(server.addr, huge.as_bytes()).await;
    assert!(huge.starts_with("HTTP/1.1 431 "), "{huge}");
    let bad_upgrade = raw(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )
    .await;
    assert!(bad_upgrade.starts_with("HTTP/1.1 400 "), "{bad_upgrade}");
    server.shutdown().await;
}

#[tokio::test]
async fn upgrade_on_any_path() {
    let server = TestServer::start().await;
    for path in ["/", "/ws", "/some/room?x=1"] {
        let mut c = common::Client::connect(&format!("ws://{}{}", server.addr, path)).await;
        c.join("p").await;
        c.sync().await;
    }
    server.shutdown().await;
}
