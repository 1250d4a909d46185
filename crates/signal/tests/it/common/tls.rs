//! TLS helpers: certificates generated in the test (rcgen), clients that trust exactly them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use signal::client::TlsClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::Connector;

use super::{Client, WAIT};

/// A self-signed certificate for `localhost` and `127.0.0.1`.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

pub fn make_cert() -> TestCert {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    TestCert {
        cert_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
        der: certified.cert.der().clone(),
    }
}

/// Writes `cert` as `dir/cert.pem` and `dir/key.pem`, each replaced atomically (as certbot
/// does with its symlinks), and returns the two paths.
pub fn write_cert(dir: &Path, cert: &TestCert) -> (PathBuf, PathBuf) {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    for (path, text) in [(&cert_path, &cert.cert_pem), (&key_path, &cert.key_pem)] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    (cert_path, key_path)
}

/// A client configuration trusting exactly `certs`.
pub fn trusting(certs: &[&TestCert]) -> Arc<TlsClientConfig> {
    signal::client::tls_config_trusting(certs.iter().map(|c| c.der.clone())).unwrap()
}

pub fn wss_url(addr: SocketAddr) -> String {
    format!("wss://127.0.0.1:{}/", addr.port())
}

/// A raw WebSocket test client over TLS.
pub async fn connect_wss(addr: SocketAddr, tls: Arc<TlsClientConfig>) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        wss_url(addr),
        None,
        true,
        Some(Connector::Rustls(tls)),
    )
    .await
    .unwrap();
    Client { ws }
}

/// A fresh TLS connection (no session resumption): the leaf certificate the server presents.
pub async fn tls_stream(
    addr: SocketAddr,
    tls: Arc<TlsClientConfig>,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    CertificateDer<'static>,
) {
    // A resumed session would report the certificate of the session it resumes.
    let mut config = (*tls).clone();
    config.resumption = rustls::client::Resumption::disabled();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .unwrap()
        .unwrap();
    let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    (stream, leaf)
}

/// `GET path` over HTTPS; the whole response as text.
pub async fn https_get(addr: SocketAddr, tls: Arc<TlsClientConfig>, path: &str) -> String {
    let (mut stream, _) = tls_stream(addr, tls).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    // The server ends the response with close_notify, so this is a clean EOF.
    tokio::time::timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// A server with HTTPS/WSS on a fresh certificate (and `config`'s other settings); keep the
/// directory alive as long as the server.
pub async fn tls_server(
    config: signal::Config,
) -> (super::TestServer, TestCert, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert();
    let (cert_path, key_path) = write_cert(dir.path(), &cert);
    let server = super::TestServer::with_config(signal::Config {
        tls: Some(signal::Tls::from_pem_files(cert_path, key_path).unwrap()),
        ..config
    })
    .await;
    (server, cert, dir)
}
