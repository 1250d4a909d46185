//! HTTPS on the WSS port: `GET /healthz`, `GET /metrics` and the browser page are served
//! over TLS; a bad key or certificate file is a clear error at start.
#![allow(clippy::unwrap_used)]
use crate::common;

use common::TestServer;
use common::tls::{https_get, make_cert, trusting, write_cert};
use signal::{Config, Tls, TlsError};

#[tokio::test]
async fn https_serves_health_metrics_and_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert();
    let (cert_path, key_path) = write_cert(dir.path(), &cert);
    let server = TestServer::with_config(Config {
        tls: Some(Tls::from_pem_files(cert_path, key_path).unwrap()),
        pages: Some(signal::web::pages()),
        ..Config::default()
    })
    .await;
    let roots = trusting(&[&cert]);

    let health = https_get(server.addr, roots.clone(), "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert!(health.ends_with("\r\n\r\nok\n"), "{health}");

    let metrics = https_get(server.addr, roots.clone(), "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
    assert!(
        metrics.contains("\nsignal_connections_open 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nsignal_tls_reloads_total{result=\"ok\"} 0\n"),
        "{metrics}"
    );

    let page = https_get(server.addr, roots, "/").await;
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.to_ascii_lowercase().contains("<html"), "{page}");
    server.shutdown().await;
}

#[test]
fn bad_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert();
    let (cert_path, key_path) = write_cert(dir.path(), &cert);
    let missing = dir.path().join("missing.pem");
    let err = Tls::from_pem_files(&missing, &key_path).unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }), "{err}");
    assert!(err.to_string().contains("missing.pem"), "{err}");
    // Certificate and key swapped.
    let err = Tls::from_pem_files(&key_path, &cert_path).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
    // A key that does not belong to the certificate.
    let other = make_cert();
    let other_dir = dir.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let (_, other_key) = write_cert(&other_dir, &other);
    let err = Tls::from_pem_files(&cert_path, &other_key).unwrap_err();
    assert!(matches!(err, TlsError::Rustls(_)), "{err}");
}
