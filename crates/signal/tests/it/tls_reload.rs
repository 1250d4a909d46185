//! Certificate reload through the library: after the files are replaced and `Tls::reload`
//! runs, new TLS connections get the new certificate while an open WebSocket keeps relaying.
//! A reload from broken files fails and keeps serving the old certificate.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use common::tls::{connect_wss, make_cert, tls_stream, trusting, write_cert};
use serde_json::json;
use signal::{Config, Tls};

#[tokio::test]
async fn reload_swaps_the_certificate_without_dropping_calls() {
    let dir = tempfile::tempdir().unwrap();
    let old = make_cert();
    let new = make_cert();
    let (cert_path, key_path) = write_cert(dir.path(), &old);
    let tls = Tls::from_pem_files(&cert_path, &key_path).unwrap();
    assert_eq!(tls.certificate(), Some(old.der.clone()));
    let server = TestServer::with_config(Config {
        tls: Some(tls.clone()),
        ..Config::default()
    })
    .await;
    let both = trusting(&[&old, &new]);

    let mut a = connect_wss(server.addr, both.clone()).await;
    let mut b = connect_wss(server.addr, both.clone()).await;
    a.join("reload").await;
    a.sync().await;
    b.join("reload").await;
    a.recv().await;
    b.recv().await;
    let (_, leaf) = tls_stream(server.addr, both.clone()).await;
    assert_eq!(leaf, old.der);

    write_cert(dir.path(), &new);
    tls.reload().unwrap();
    assert_eq!(tls.certificate(), Some(new.der.clone()));
    assert_eq!(tls.reload_counts(), (1, 0));
    let (_, leaf) = tls_stream(server.addr, both.clone()).await;
    assert_eq!(leaf, new.der);
    // A client that only trusts the new certificate connects now.
    let mut c = connect_wss(server.addr, trusting(&[&new])).await;
    c.sync().await;

    // The call set up before the reload still relays both ways.
    let offer = json!({"type": "offer", "room": "reload", "offer": {"sdp": "after"}});
    a.send_json(offer.clone()).await;
    assert_eq!(b.recv().await, offer);
    let answer = json!({"type": "answer", "room": "reload", "answer": {"sdp": "after"}});
    b.send_json(answer.clone()).await;
    assert_eq!(a.recv().await, answer);

    // Broken files: the reload fails, the current certificate stays.
    std::fs::write(&cert_path, "not a certificate").unwrap();
    assert!(tls.reload().is_err());
    assert_eq!(tls.reload_counts(), (1, 1));
    let (_, leaf) = tls_stream(server.addr, both).await;
    assert_eq!(leaf, new.der);
    let page = common::tls::https_get(server.addr, trusting(&[&new]), "/metrics").await;
    assert!(
        page.contains("\nsignal_tls_reloads_total{result=\"error\"} 1\n"),
        "{page}"
    );
    server.shutdown().await;
}
