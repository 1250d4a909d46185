//! Graceful shutdown closes every WebSocket with 1001 and `serve` returns.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;

#[tokio::test]
async fn shutdown_closes_everyone_with_1001() {
    let server = TestServer::start().await;
    let (mut a, mut b) = common::pair(&server, "bye").await;
    let mut idle = server.client().await;
    let addr = server.addr;
    let shutdown = tokio::spawn(server.shutdown());
    for c in [&mut a, &mut b, &mut idle] {
        assert_eq!(c.expect_close().await, Some(1001));
    }
    shutdown.await.unwrap();
    // The listener is gone.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
