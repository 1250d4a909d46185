//! Over TLS, the handshake and the request head share one deadline: a client that handshakes
//! and then drips its head a byte at a time is closed when the deadline passes, not a whole
//! timeout after its handshake.
#![allow(clippy::unwrap_used)]
use crate::common;

use std::time::Duration;

use common::tls::{tls_server, trusting};
use signal::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

#[tokio::test]
async fn dripped_head_after_handshake_is_closed_at_the_single_deadline() {
    let timeout = Duration::from_millis(1500);
    let (server, cert, _dir) = tls_server(Config {
        handshake_timeout: timeout,
        ..Config::default()
    })
    .await;
    let start = Instant::now();
    // Spend part of the deadline before the handshake: connect, wait, then handshake.
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let connector = tokio_rustls::TlsConnector::from(trusting(&[&cert]));
    let stream = connector.connect(name, tcp).await.unwrap();
    let handshaken = start.elapsed();
    let (mut rd, mut wr) = tokio::io::split(stream);
    let head =
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut buf = [0u8; 64];
    let mut sent = 0;
    let closed_at = loop {
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => break start.elapsed(),
                Ok(_) => panic!("the server answered a head it never got"),
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                let byte = head[sent % head.len()];
                if wr.write_all(&[byte]).await.is_err() {
                    break start.elapsed();
                }
                sent += 1;
            }
        }
        assert!(
            start.elapsed() < timeout * 3,
            "still open after {sent} bytes"
        );
    };
    assert!(
        closed_at >= timeout - Duration::from_millis(50),
        "closed early: {closed_at:?}"
    );
    // One deadline from accept: the handshake's time is not granted again for the head.
    assert!(
        closed_at < timeout + Duration::from_millis(500),
        "closed at {closed_at:?} (handshake took {handshaken:?})"
    );
    let m = common::parse_metrics(&server.stats.metrics_text());
    assert_eq!(
        m["signal_connections_rejected_total{reason=\"timeout\"}"],
        1.0
    );
    server.shutdown().await;
}
