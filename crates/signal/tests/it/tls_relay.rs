//! WSS end to end: with `Config::tls`, clients join and relay through TLS on the same port,
//! the library client connects to `wss://` with a custom root, and a client that does not
//! trust the certificate is refused.
#![allow(clippy::unwrap_used)]
use crate::common;

use std::time::Duration;

use common::TestServer;
use common::tls::{connect_wss, make_cert, trusting, write_cert, wss_url};
use serde_json::json;
use signal::client::{self, ClientError, SignalEvent};
use signal::{Config, ServerMessage, Tls};

#[tokio::test]
async fn wss_clients_join_and_relay() {
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert();
    let (cert_path, key_path) = write_cert(dir.path(), &cert);
    let tls = Tls::from_pem_files(cert_path, key_path).unwrap();
    let server = TestServer::with_config(Config {
        tls: Some(tls),
        ..Config::default()
    })
    .await;
    let roots = trusting(&[&cert]);

    let mut a = connect_wss(server.addr, roots.clone()).await;
    let mut b = connect_wss(server.addr, roots.clone()).await;
    a.join("secure").await;
    a.sync().await;
    b.join("secure").await;
    assert_eq!(
        a.recv().await,
        json!({"type": "ready", "room": "secure", "offerer": true})
    );
    assert_eq!(
        b.recv().await,
        json!({"type": "ready", "room": "secure", "offerer": false})
    );
    let offer =
        json!({"type": "offer", "room": "secure", "offer": {"type": "offer", "sdp": "v=0\r\n"}});
    a.send_json(offer.clone()).await;
    assert_eq!(b.recv().await, offer);
    let answer =
        json!({"type": "answer", "room": "secure", "answer": {"type": "answer", "sdp": "v=0\r\n"}});
    b.send_json(answer.clone()).await;
    assert_eq!(a.recv().await, answer);
    assert_eq!(server.stats.stats().relayed, 2);

    // The call engine's client, over wss:// with the test's root.
    let (c, mut c_rx) =
        client::connect_with(&wss_url(server.addr), Duration::from_secs(5), Some(roots))
            .await
            .unwrap();
    c.join("lib").await.unwrap();
    let mut d = connect_wss(server.addr, trusting(&[&cert])).await;
    common::wait_for(|| server.stats.stats().rooms == 2).await;
    d.join("lib").await;
    let event = tokio::time::timeout(common::WAIT, c_rx.recv())
        .await
        .unwrap();
    assert_eq!(
        event,
        Some(SignalEvent::Message(ServerMessage::Ready {
            room: "lib".into(),
            offerer: Some(true),
            ice_servers: None
        }))
    );

    // Shutdown still closes TLS WebSockets with 1001.
    let addr = server.addr;
    let shutdown = tokio::spawn(server.shutdown());
    assert_eq!(a.expect_close().await, Some(1001));
    shutdown.await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_by_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert();
    let (cert_path, key_path) = write_cert(dir.path(), &cert);
    let server = TestServer::with_config(Config {
        tls: Some(Tls::from_pem_files(cert_path, key_path).unwrap()),
        ..Config::default()
    })
    .await;
    // Default roots (public CAs) do not include a self-signed test certificate.
    let err = client::connect(&wss_url(server.addr), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
    // Nor does a root store with another certificate.
    let other = make_cert();
    let err = client::connect_with(
        &wss_url(server.addr),
        Duration::from_secs(5),
        Some(trusting(&[&other])),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    // A plain ws:// client on the TLS port gets no WebSocket.
    assert!(
        client::connect(&server.url(), Duration::from_secs(5))
            .await
            .is_err()
    );
    server.shutdown().await;
}
