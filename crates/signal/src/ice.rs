//! ICE servers handed to clients on `ready`, with ephemeral TURN credentials.
//!
//! Credentials follow the "TURN REST API" scheme coturn implements (`--use-auth-secret`):
//! the username is `EXPIRY:LABEL` (EXPIRY in Unix seconds) and the password is
//! `base64(HMAC-SHA1(secret, username))`. Anyone holding the secret can check a credential
//! without any state, so signal's own TURN server ([`crate::turn`]) and an external coturn
//! accept the same credentials. This module owns minting and checking them and building the
//! `iceServers` list; it does no IO.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::protocol::IceServer;

type HmacSha1 = Hmac<Sha1>;

/// The secret TURN credentials are keyed with. `Debug` never prints it.
#[derive(Clone)]
pub struct TurnSecret {
    key: Arc<[u8]>,
}

impl TurnSecret {
    /// A secret from raw bytes (the `--turn-secret` string's UTF-8 bytes in the binary).
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self {
            key: Arc::from(secret.as_ref()),
        }
    }

    /// A fresh random secret (32 random bytes, hex), for servers started without one.
    pub fn random() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self::new(hex::encode(bytes))
    }

    fn mac(&self, username: &str) -> HmacSha1 {
        // HMAC takes keys of any length; the fallback only makes every credential invalid.
        let mut mac = <HmacSha1 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| <HmacSha1 as Mac>::new(&Default::default()));
        mac.update(username.as_bytes());
        mac
    }

    /// The password for `username`: `base64(HMAC-SHA1(secret, username))`.
    pub fn password(&self, username: &str) -> String {
        BASE64.encode(self.mac(username).finalize().into_bytes())
    }

    /// A credential valid until `expires` (Unix time), labelled `label`.
    pub fn credential(&self, expires: SystemTime, label: &str) -> Credential {
        let expiry_s = expires
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let username = format!("{expiry_s}:{label}");
        let password = self.password(&username);
        Credential { username, password }
    }
}

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnSecret(..)")
    }
}

/// A TURN username and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// `EXPIRY:LABEL`.
    pub username: String,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub password: String,
}

/// The expiry (Unix seconds) of a REST-API username `EXPIRY[:LABEL]`, if it has one.
pub fn username_expiry(username: &str) -> Option<u64> {
    let expiry = username.split(':').next()?;
    if expiry.is_empty() || expiry.len() > 20 || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    expiry.parse().ok()
}

/// Whether `username` is a REST-API username whose expiry is still ahead of `now`.
pub fn username_is_current(username: &str, now: SystemTime) -> bool {
    let now_s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    username_expiry(username).is_some_and(|expiry| expiry > now_s)
}

/// Which STUN/TURN servers clients are told about.
#[derive(Debug, Clone)]
pub enum IceOffer {
    /// signal's own STUN and TURN server (UDP) on `port`.
    Builtin {
        /// The host name or address clients should use; `None`: the host the client used to
        /// reach signal (its `Host` header), else the address its connection arrived on.
        host: Option<String>,
        /// The STUN/TURN port.
        port: u16,
        /// Whether TURN is served over TCP on that port too (offered as a second URL,
        /// `?transport=tcp`, for networks that drop UDP).
        tcp: bool,
        /// The port TURN over TLS is served on, if it is (offered as a `turns:` URL, for
        /// networks that let only TLS through; the host must be a name the certificate
        /// carries).
        tls_port: Option<u16>,
    },
    /// An external TURN server such as coturn run with `--use-auth-secret`: these URLs
    /// verbatim (`turn:`, `turns:` or `stun:`), with credentials minted from the shared secret.
    External {
        /// The URLs, e.g. `turn:turn.example.com:3478?transport=udp`.
        urls: Vec<String>,
    },
}

/// What signal puts in `ready`'s `iceServers`.
#[derive(Debug, Clone)]
pub struct IceConfig {
    /// The servers.
    pub offer: IceOffer,
    /// The secret credentials are minted with (shared with the TURN server).
    pub secret: TurnSecret,
    /// How long a minted credential stays valid.
    pub credential_ttl: Duration,
}

impl IceConfig {
    /// The `iceServers` for one client, with a fresh credential labelled `label`.
    /// `request_host` is the client's `Host` header (port stripped by the caller or not),
    /// `local_host` the address its connection arrived on; both are used only when the
    /// offer names no host.
    pub fn ice_servers(
        &self,
        now: SystemTime,
        label: &str,
        request_host: Option<&str>,
        local_host: &str,
    ) -> Vec<IceServer> {
        let credential = self.secret.credential(now + self.credential_ttl, label);
        match &self.offer {
            IceOffer::Builtin {
                host,
                port,
                tcp,
                tls_port,
            } => {
                let host = host
                    .clone()
                    .or_else(|| request_host.and_then(host_of))
                    .unwrap_or_else(|| bracket(local_host));
                vec![
                    IceServer {
                        urls: vec![format!("stun:{host}:{port}")],
                        username: None,
                        credential: None,
                    },
                    IceServer {
                        urls: std::iter::once(format!("turn:{host}:{port}?transport=udp"))
                            .chain(tcp.then(|| format!("turn:{host}:{port}?transport=tcp")))
                            .chain(tls_port.map(|tls| format!("turns:{host}:{tls}?transport=tcp")))
                            .collect(),
                        username: Some(credential.username),
                        credential: Some(credential.password),
                    },
                ]
            }
            IceOffer::External { urls } => vec![IceServer {
                urls: urls.clone(),
                username: Some(credential.username),
                credential: Some(credential.password),
            }],
        }
    }
}

/// Brackets a bare IPv6 address for a URL.
fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// The host part of a `Host` header value (`name`, `name:port`, `[v6]:port`), if it looks
/// like a host name or address. Anything else is ignored (the header is the client's).
fn host_of(header: &str) -> Option<String> {
    let header = header.trim();
    let host = if let Some(rest) = header.strip_prefix('[') {
        let end = rest.find(']')?;
        format!("[{}]", &rest[..end])
    } else {
        header.split(':').next()?.to_owned()
    };
    let plain = host.trim_start_matches('[').trim_end_matches(']');
    let ok = !plain.is_empty()
        && host.len() <= 253
        && plain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':');
    ok.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_matches_coturns_scheme() {
        // Same computation as coturn's `turnadmin -P`/REST API: base64(HMAC-SHA1(secret, user)).
        // RFC 2202 test case 2: key "Jefe", data "what do ya want for nothing?".
        let secret = TurnSecret::new("Jefe");
        let expected = BASE64
            .encode(hex::decode("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79").unwrap_or_default());
        assert_eq!(secret.password("what do ya want for nothing?"), expected);
        assert_eq!(format!("{secret:?}"), "TurnSecret(..)");
    }

    #[test]
    fn usernames_carry_their_expiry() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let c = TurnSecret::new("s").credential(now + Duration::from_secs(60), "ab");
        assert_eq!(c.username, "1060:ab");
        assert_eq!(username_expiry("1060:ab"), Some(1060));
        assert_eq!(username_expiry("1060"), Some(1060));
        assert!(username_is_current("1060:ab", now));
        assert!(!username_is_current("999:ab", now));
        for bad in ["", ":x", "abc:x", "-5:x", "99999999999999999999999:x"] {
            assert!(!username_is_current(bad, now), "{bad}");
        }
    }

    #[test]
    fn builtin_offer_uses_the_requested_host() {
        let ice = IceConfig {
            offer: IceOffer::Builtin {
                host: None,
                port: 3478,
                tcp: false,
                tls_port: None,
            },
            secret: TurnSecret::new("s"),
            credential_ttl: Duration::from_secs(60),
        };
        let now = SystemTime::now();
        let servers = ice.ice_servers(now, "x", Some("example.com:8080"), "10.0.0.1");
        assert_eq!(servers[0].urls, ["stun:example.com:3478"]);
        assert_eq!(servers[1].urls, ["turn:example.com:3478?transport=udp"]);
        let servers = ice.ice_servers(now, "x", Some("[2001:db8::1]:8080"), "10.0.0.1");
        assert_eq!(servers[0].urls, ["stun:[2001:db8::1]:3478"]);
        let servers = ice.ice_servers(now, "x", Some("bad\"host"), "2001:db8::2");
        assert_eq!(servers[0].urls, ["stun:[2001:db8::2]:3478"]);
        let servers = ice.ice_servers(now, "x", None, "10.0.0.1");
        assert_eq!(servers[1].urls, ["turn:10.0.0.1:3478?transport=udp"]);
        // With TURN over TCP served too, one credential covers both URLs.
        let ice = IceConfig {
            offer: IceOffer::Builtin {
                host: None,
                port: 3478,
                tcp: true,
                tls_port: None,
            },
            ..ice
        };
        let servers = ice.ice_servers(now, "x", None, "10.0.0.1");
        assert_eq!(
            servers[1].urls,
            [
                "turn:10.0.0.1:3478?transport=udp",
                "turn:10.0.0.1:3478?transport=tcp"
            ]
        );
        // And over TLS, on its own port, named as the client named signal.
        let ice = IceConfig {
            offer: IceOffer::Builtin {
                host: None,
                port: 3478,
                tcp: true,
                tls_port: Some(5349),
            },
            ..ice
        };
        let servers = ice.ice_servers(now, "x", Some("duet.example.org"), "10.0.0.1");
        assert_eq!(
            servers[1].urls,
            [
                "turn:duet.example.org:3478?transport=udp",
                "turn:duet.example.org:3478?transport=tcp",
                "turns:duet.example.org:5349?transport=tcp"
            ]
        );
    }
}
