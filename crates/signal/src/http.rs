//! The HTTP edge of the server: reads one request head, then either upgrades to a WebSocket
//! or answers a plain request (`/healthz`, and the static routes given in [`crate::Config`]).
//!
//! Hand-rolled on `httparse` because the server needs exactly this much HTTP: one request per
//! connection, no bodies, `Connection: close`. The head is never buffered beyond
//! [`MAX_HEAD_BYTES`] and is parsed once, when its blank line has arrived, so a client dripping
//! it byte by byte costs one scan of each byte. Every response carries the security headers of
//! [`Security`].

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Longest request head accepted (request line plus headers, including the blank line).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;

/// A parsed request head: just what the server needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub http_minor: u8,
    /// Whether a `Connection` header lists the `upgrade` token.
    pub connection_upgrade: bool,
    /// The path without the query string.
    pub path: String,
    /// The query string without `?`, if any.
    pub query: Option<String>,
    /// `Sec-WebSocket-Key` when this is a WebSocket upgrade request.
    pub websocket_key: Option<String>,
    /// Whether the request asked for a WebSocket upgrade at all.
    pub wants_upgrade: bool,
    /// `Sec-WebSocket-Version`.
    pub websocket_version: Option<String>,
    /// `Origin`, sent by browsers.
    pub origin: Option<String>,
    /// `Host`.
    pub host: Option<String>,
    /// `X-Forwarded-For`, as sent (only believed with `--trust-proxy`).
    pub forwarded_for: Option<String>,
}

/// Why a request head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The peer closed before sending a whole head.
    #[error("connection closed before the request was complete")]
    Closed,
    /// The head was larger than [`MAX_HEAD_BYTES`].
    #[error("request head larger than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    /// Not HTTP.
    #[error("malformed HTTP request: {0}")]
    Malformed(String),
    /// The peer sent bytes after the head before we answered (not allowed for upgrades).
    #[error("unexpected bytes after the request head")]
    Trailing,
    /// Timed out.
    #[error("request head not received within {0:?}")]
    Timeout(Duration),
    /// Socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one request head from `stream` within `timeout`.
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Result<RequestHead, HeadError> {
    read_head_until(stream, Instant::now() + timeout, timeout).await
}

/// Reads one request head from `stream` before `deadline` (a deadline shared with the TLS
/// handshake, so the two together cannot take longer). `timeout` is only for the error text.
pub async fn read_head_until<S: AsyncRead + Unpin>(
    stream: &mut S,
    deadline: Instant,
    timeout: Duration,
) -> Result<RequestHead, HeadError> {
    match tokio::time::timeout_at(deadline, read_head_inner(stream)).await {
        Ok(result) => result,
        Err(_) => Err(HeadError::Timeout(timeout)),
    }
}

/// Where the head ends (just after its blank line), scanning only from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    // httparse accepts bare LF line endings too, so "\n\n" ends a head as well as "\r\n\r\n".
    let start = from.saturating_sub(2);
    buf[start..]
        .windows(2)
        .enumerate()
        .find_map(|(i, w)| match w {
            b"\n\n" => Some(start + i + 2),
            [b'\n', b'\r'] if buf.get(start + i + 2) == Some(&b'\n') => Some(start + i + 3),
            _ => None,
        })
}

async fn read_head_inner<S: AsyncRead + Unpin>(stream: &mut S) -> Result<RequestHead, HeadError> {
    let mut buf = vec![0u8; MAX_HEAD_BYTES];
    let mut len = 0;
    loop {
        if len == MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        let scanned = len;
        len += n;
        if let Some(end) = head_end(&buf[..len], scanned) {
            if end != len {
                return Err(HeadError::Trailing);
            }
            return match parse_head(&buf[..len])? {
                Some(head) => Ok(head),
                None => Err(HeadError::Malformed("incomplete request head".into())),
            };
        }
    }
}

/// Parses a complete head from `buf`; `Ok(None)` when more bytes are needed.
pub fn parse_head(buf: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    if buf.len() > MAX_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    if len != buf.len() {
        return Err(HeadError::Trailing);
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target.to_owned(), None),
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(|v| v.trim().to_owned())
    };
    let has_token = |name: &str, token: &str| {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let wants_upgrade = has_token("upgrade", "websocket");
    Ok(Some(RequestHead {
        method: req.method.unwrap_or("GET").to_owned(),
        http_minor: req.version.unwrap_or(0),
        connection_upgrade: has_token("connection", "upgrade"),
        path,
        query,
        websocket_key: header("sec-websocket-key"),
        wants_upgrade,
        websocket_version: header("sec-websocket-version"),
        origin: header("origin"),
        host: header("host"),
        // The last header line: a proxy appends its own after any the client sent.
        forwarded_for: req
            .headers
            .iter()
            .rev()
            .find(|h| h.name.eq_ignore_ascii_case("x-forwarded-for"))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(|v| v.trim().to_owned()),
    }))
}

impl RequestHead {
    /// What makes this WebSocket upgrade request invalid under RFC 6455 §4.2.1, if anything.
    pub fn upgrade_problem(&self) -> Option<&'static str> {
        if self.method != "GET" {
            Some("a WebSocket upgrade must be a GET request")
        } else if self.http_minor < 1 {
            Some("a WebSocket upgrade needs HTTP/1.1")
        } else if !self.connection_upgrade {
            Some("a WebSocket upgrade needs \"Connection: Upgrade\"")
        } else if !self.websocket_key.as_deref().is_some_and(is_websocket_key) {
            Some("a WebSocket upgrade needs a Sec-WebSocket-Key of 16 bytes in base64")
        } else if self.websocket_version.as_deref() != Some("13") {
            Some("a WebSocket upgrade needs Sec-WebSocket-Version: 13")
        } else {
            None
        }
    }
}

/// Whether `key` is 16 bytes in padded base64 (22 alphabet characters and `==`).
fn is_websocket_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    bytes.len() == 24
        && bytes.ends_with(b"==")
        && bytes[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// Security headers sent with every response. The page may load only its own files and open
/// WebSockets only to this server, may not be framed, and sends no `Referer` (room tokens travel
/// in its query string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// The request's `Host`, when it is a plain host name or address (with port): used to name
    /// `ws://` and `wss://` to this host in `connect-src`.
    pub host: Option<String>,
    /// Served over TLS: adds `Strict-Transport-Security`.
    pub tls: bool,
}

impl Security {
    /// The headers for a response to `head` (`None` when no head was read).
    pub fn for_request(head: Option<&RequestHead>, tls: bool) -> Self {
        let host = head
            .and_then(|h| h.host.as_deref())
            .filter(|h| {
                !h.is_empty()
                    && h.len() <= 255
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .map(str::to_ascii_lowercase);
        Self { host, tls }
    }

    /// The header lines, each ending in CRLF.
    pub fn header_lines(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        let connect = match &self.host {
            Some(host) => format!("'self' {scheme}://{host}"),
            None => "'self'".to_owned(),
        };
        let mut lines = format!(
            "Content-Security-Policy: default-src 'self'; connect-src {connect}; img-src 'self' data:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\n"
        );
        if self.tls {
            lines.push_str("Strict-Transport-Security: max-age=31536000\r\n");
        }
        lines
    }
}

/// A complete plain HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// `Cache-Control`.
    pub cache_control: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            cache_control: "no-store",
            body: body.into().into_bytes(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Writes `response` with the `security` headers and ends the stream (`Connection: close`;
/// over TLS this sends close_notify); `head_only` omits the body (for `HEAD`).
pub async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    response: &Response,
    head_only: bool,
    security: &Security,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: {}\r\n{}Connection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
        response.cache_control,
        security.header_lines(),
    );
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(&response.body).await?;
    }
    stream.flush().await?;
    stream.shutdown().await
}

/// Writes the `101 Switching Protocols` answer to a WebSocket upgrade.
pub async fn write_upgrade<S: AsyncWrite + Unpin>(
    stream: &mut S,
    key: &str,
) -> std::io::Result<()> {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upgrade() {
        let raw = b"GET /x?room=a HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let head = parse_head(raw).ok().flatten().expect("complete head");
        assert!(head.wants_upgrade);
        assert_eq!(head.path, "/x");
        assert_eq!(head.query.as_deref(), Some("room=a"));
        assert_eq!(
            head.websocket_key.as_deref(),
            Some("dGhlIHNhbXBsZSBub25jZQ==")
        );
    }

    #[test]
    fn upgrade_validation() {
        let ok = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let parse = |raw: &str| {
            parse_head(raw.as_bytes())
                .ok()
                .flatten()
                .expect("complete head")
        };
        assert_eq!(parse(ok).upgrade_problem(), None);
        for bad in [
            ok.replace("GET", "POST"),
            ok.replace("HTTP/1.1", "HTTP/1.0"),
            ok.replace("keep-alive, Upgrade", "keep-alive"),
            ok.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ"),
            ok.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZ*=="),
            ok.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
            ok.replace("Version: 13", "Version: 8"),
        ] {
            assert!(parse(&bad).upgrade_problem().is_some(), "{bad}");
        }
    }

    fn read(bytes: &[u8]) -> Result<RequestHead, HeadError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (mut client, mut server) = tokio::io::duplex(64 * 1024);
            client.write_all(bytes).await?;
            drop(client);
            read_head(&mut server, Duration::from_secs(5)).await
        })
    }

    #[test]
    fn head_limit_is_exact() {
        let head_of = |len: usize| {
            let start = "GET / HTTP/1.1\r\nX: ";
            let fill = len - start.len() - 4;
            format!("{start}{}\r\n\r\n", "a".repeat(fill))
        };
        assert_eq!(head_of(MAX_HEAD_BYTES).len(), MAX_HEAD_BYTES);
        assert!(read(head_of(MAX_HEAD_BYTES).as_bytes()).is_ok());
        assert!(matches!(
            read(head_of(MAX_HEAD_BYTES + 1).as_bytes()),
            Err(HeadError::TooLarge)
        ));
        assert!(matches!(
            read(b"GET / HTTP/1.1\nHost: x\n\n"),
            Ok(RequestHead { http_minor: 1, .. })
        ));
        assert!(matches!(
            read(b"GET / HTTP/1.1\r\n\r\nxx"),
            Err(HeadError::Trailing)
        ));
        assert!(matches!(
            read(b"GET / HTTP/1.1\r\n"),
            Err(HeadError::Closed)
        ));
    }

    #[test]
    fn security_headers() {
        let head = parse_head(b"GET / HTTP/1.1\r\nHost: Example.org:8443\r\n\r\n")
            .ok()
            .flatten();
        let plain = Security::for_request(head.as_ref(), false).header_lines();
        assert!(
            plain.contains("connect-src 'self' ws://example.org:8443;"),
            "{plain}"
        );
        assert!(plain.contains("frame-ancestors 'none'"));
        assert!(plain.contains("Referrer-Policy: no-referrer\r\n"));
        assert!(!plain.contains("Strict-Transport-Security"));
        let tls = Security::for_request(head.as_ref(), true).header_lines();
        assert!(tls.contains("wss://example.org:8443;"), "{tls}");
        assert!(tls.contains("Strict-Transport-Security: max-age="));
        let odd = parse_head(b"GET / HTTP/1.1\r\nHost: a; script-src *\r\n\r\n")
            .ok()
            .flatten();
        let odd = Security::for_request(odd.as_ref(), false).header_lines();
        assert!(odd.contains("connect-src 'self';"), "{odd}");
    }

    #[test]
    fn partial_and_garbage() {
        assert!(matches!(parse_head(b"GET / HTTP/1.1\r\nHost"), Ok(None)));
        assert!(matches!(
            parse_head(b"\x00\x01\x02\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\n\r\nxx"),
            Err(HeadError::Trailing)
        ));
    }
}
