//! Who may open a WebSocket: browser origins and the client address behind a proxy.
//!
//! Pure functions over a parsed [`RequestHead`]; the server applies them at the upgrade. The
//! per-IP connection count itself lives in the server, next to the other connection state.

use std::net::{IpAddr, SocketAddr};

use crate::http::RequestHead;

/// The browser origins allowed to open a WebSocket (`--allow-origin`).
///
/// - A request **without** `Origin` is allowed: native clients (the desktop app, `signal-load`,
///   command-line tools) send none, and origin checks only protect browsers' users anyway.
/// - An empty list allows every origin (the default, like the seed server).
/// - Otherwise the origin must equal a listed one (scheme, host and port; case and a trailing
///   `/` ignored), be the same origin as the request's `Host` (the page this server serves
///   itself), or the list must contain `*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    allowed: Vec<String>,
}

fn normalize(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl OriginPolicy {
    /// Allows exactly `origins` (each `scheme://host[:port]`; entries may also be comma
    /// separated lists). An empty list allows any origin.
    pub fn new<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let allowed = origins
            .into_iter()
            .flat_map(|o| {
                o.as_ref()
                    .split(',')
                    .map(normalize)
                    .filter(|o| !o.is_empty())
                    .collect::<Vec<_>>()
            })
            .collect();
        Self { allowed }
    }

    /// Whether every origin is allowed.
    pub fn allows_any(&self) -> bool {
        self.allowed.is_empty() || self.allowed.iter().any(|o| o == "*")
    }

    /// The allowed origins, normalized.
    pub fn origins(&self) -> &[String] {
        &self.allowed
    }

    /// Whether the upgrade request `head` passes.
    pub fn allows(&self, head: &RequestHead) -> bool {
        let Some(origin) = head.origin.as_deref() else {
            return true;
        };
        if self.allows_any() {
            return true;
        }
        let origin = normalize(origin);
        if self.allowed.contains(&origin) {
            return true;
        }
        // Same origin: the page came from this very host (the browser client served here).
        match (origin.split_once("://"), head.host.as_deref()) {
            (Some((_, authority)), Some(host)) => authority.eq_ignore_ascii_case(host.trim()),
            _ => false,
        }
    }
}

/// The address a connection is counted and logged under: the TCP peer, or with
/// `trust_proxy` the last address in `X-Forwarded-For` (the one the proxy in front appended;
/// earlier entries come from the client and are not believed).
pub fn client_ip(peer: SocketAddr, head: &RequestHead, trust_proxy: bool) -> IpAddr {
    if !trust_proxy {
        return peer.ip();
    }
    head.forwarded_for
        .as_deref()
        .and_then(|list| list.rsplit(',').next())
        .and_then(parse_ip)
        .unwrap_or(peer.ip())
}

fn parse_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(origin: Option<&str>, host: Option<&str>, xff: Option<&str>) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            path: "/".into(),
            query: None,
            websocket_key: None,
            wants_upgrade: true,
            websocket_version: None,
            origin: origin.map(Into::into),
            host: host.map(Into::into),
            forwarded_for: xff.map(Into::into),
            ..RequestHead::default()
        }
    }

    #[test]
    fn origins() {
        let policy = OriginPolicy::new([
            "https://Duet.example/",
            "https://a.example,https://b.example:8443",
        ]);
        assert_eq!(policy.origins().len(), 3);
        let host = Some("signal.example");
        assert!(policy.allows(&head(None, host, None)));
        assert!(policy.allows(&head(Some("https://duet.example"), host, None)));
        assert!(policy.allows(&head(Some("https://b.example:8443"), host, None)));
        assert!(!policy.allows(&head(Some("https://b.example"), host, None)));
        assert!(!policy.allows(&head(Some("http://duet.example"), host, None)));
        assert!(!policy.allows(&head(Some("null"), host, None)));
        assert!(!policy.allows(&head(Some("https://evil.example"), host, None)));
        // The page served by this host itself.
        assert!(policy.allows(&head(Some("https://signal.example"), host, None)));
        assert!(!policy.allows(&head(Some("https://signal.example"), None, None)));
        assert!(OriginPolicy::new(Vec::<String>::new()).allows(&head(Some("null"), None, None)));
        assert!(OriginPolicy::new(["*"]).allows(&head(Some("https://x"), None, None)));
    }

    #[test]
    fn forwarded_for_only_when_trusted() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap_or_else(|_| unreachable!());
        let h = head(None, None, Some("203.0.113.9, 198.51.100.7"));
        assert_eq!(client_ip(peer, &h, false), peer.ip());
        assert_eq!(client_ip(peer, &h, true).to_string(), "198.51.100.7");
        let h = head(None, None, Some("[2001:db8::1]:443"));
        assert_eq!(client_ip(peer, &h, true).to_string(), "2001:db8::1");
        let h = head(None, None, Some("garbage"));
        assert_eq!(client_ip(peer, &h, true), peer.ip());
        assert_eq!(client_ip(peer, &head(None, None, None), true), peer.ip());
    }
}
