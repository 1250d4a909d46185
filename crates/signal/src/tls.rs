//! TLS termination for the relay: HTTPS and WSS on the same port as the plain protocol.
//!
//! [`Tls`] holds a rustls server configuration whose certificate can be replaced while the
//! server runs: [`Tls::reload`] re-reads the PEM files and swaps the certificate for *new*
//! handshakes; connections already open keep the session they negotiated, so calls are not
//! dropped. The `signal` binary calls it on SIGHUP. Crypto is rustls with the `ring` provider:
//! no OpenSSL.
//!
//! This module does not decide where certificates come from (Let's Encrypt, a proxy, a test
//! generating one): it reads two PEM files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// Why a certificate or key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The certificate file holds no `CERTIFICATE` PEM block, or a malformed one.
    #[error("{path} holds no PEM certificate{detail}")]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said, if anything (starts with ": ").
        detail: String,
    },
    /// The key file holds no usable private key PEM block.
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {detail}")]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        detail: String,
    },
    /// rustls refused the pair (unsupported key type, key does not match the certificate...).
    #[error("the certificate and key cannot be used together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider every TLS configuration of this crate uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Answers every handshake with the current certificate; [`Tls::reload`] swaps it.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

struct Inner {
    cert_path: PathBuf,
    key_path: PathBuf,
    resolver: Arc<Resolver>,
    acceptor: TlsAcceptor,
    turn_acceptor: TlsAcceptor,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

/// A reloadable TLS server configuration built from a PEM certificate chain and key file.
/// Cloning shares it: a reload through any clone applies to all.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert_path", &self.inner.cert_path)
            .field("key_path", &self.inner.key_path)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads `cert` (PEM chain, leaf first: Let's Encrypt's `fullchain.pem`) and `key` (PEM
    /// private key: `privkey.pem`). Fails if either is unreadable or they do not match.
    pub fn from_pem_files(
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Result<Self, TlsError> {
        let cert_path = cert.into();
        let key_path = key.into();
        let provider = provider();
        let certified = load(&cert_path, &key_path, &provider)?;
        let resolver = Arc::new(Resolver {
            current: RwLock::new(Arc::new(certified)),
        });
        let turn_config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // One request per connection, HTTP/1.1 only (WebSocket upgrades need it).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            inner: Arc::new(Inner {
                cert_path,
                key_path,
                resolver,
                acceptor: TlsAcceptor::from(Arc::new(config)),
                turn_acceptor: TlsAcceptor::from(Arc::new(turn_config)),
                reloads_ok: AtomicU64::new(0),
                reloads_failed: AtomicU64::new(0),
            }),
        })
    }

    /// Re-reads both files and, if they load, serves the new certificate to every handshake
    /// from now on. Open connections are untouched. On error the old certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let inner = &self.inner;
        match load(&inner.cert_path, &inner.key_path, &provider()) {
            Ok(certified) => {
                *inner
                    .resolver
                    .current
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
                inner.reloads_ok.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                inner.reloads_failed.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// The acceptor to wrap accepted TCP streams with.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.inner.acceptor.clone()
    }

    /// The acceptor for TURN over TLS: the same certificate (reloads included), without the
    /// HTTP ALPN (TURN clients offer none, or RFC 7443's `stun.turn`).
    pub fn turn_acceptor(&self) -> TlsAcceptor {
        self.inner.turn_acceptor.clone()
    }

    /// The leaf certificate currently served (DER).
    pub fn certificate(&self) -> Option<CertificateDer<'static>> {
        let current = self
            .inner
            .resolver
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        current.cert.first().cloned()
    }

    /// The certificate and key file paths.
    pub fn paths(&self) -> (&Path, &Path) {
        (&self.inner.cert_path, &self.inner.key_path)
    }

    /// Reloads since start: `(succeeded, failed)`.
    pub fn reload_counts(&self) -> (u64, u64) {
        (
            self.inner.reloads_ok.load(Ordering::Relaxed),
            self.inner.reloads_failed.load(Ordering::Relaxed),
        )
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::NoCertificate {
            path: cert.to_owned(),
            detail: format!(": {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
            detail: String::new(),
        });
    }
    let key_pem = read(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: key.to_owned(),
        detail: e.to_string(),
    })?;
    Ok(CertifiedKey::from_der(chain, key_der, provider)?)
}
