//! The HTTP edge of the server: reads one request head, then either upgrades to a WebSocket
//! or answers a plain request (`/healthz`, and the static routes given in [`crate::Config`]).
//!
//! Hand-rolled on `httparse` because the server needs exactly this much HTTP: one request per
//! connection, no bodies, `Connection: close`.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest request head accepted (request line plus headers).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;

/// A parsed request head: just what the server needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `HEAD`, ...
    pub method: String,
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
    match tokio::time::timeout(timeout, read_head_inner(stream)).await {
        Ok(result) => result,
        Err(_) => Err(HeadError::Timeout(timeout)),
    }
}

async fn read_head_inner<S: AsyncRead + Unpin>(stream: &mut S) -> Result<RequestHead, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(head) = parse_head(&buf)? {
            return Ok(head);
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Parses a complete head from `buf`; `Ok(None)` when more bytes are needed.
pub fn parse_head(buf: &[u8]) -> Result<Option<RequestHead>, HeadError> {
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
    let wants_upgrade = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    Ok(Some(RequestHead {
        method: req.method.unwrap_or("GET").to_owned(),
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

/// Writes `response` and ends the stream (`Connection: close`; over TLS this sends
/// close_notify); `head_only` omits the body (for `HEAD`).
pub async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    response: &Response,
    head_only: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: {}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
        response.cache_control,
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
