//! Shared helpers for the relay's integration tests: a real server on 127.0.0.1:0 and a raw
//! WebSocket test client that speaks JSON.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod binary;
pub mod tls;
pub mod turn;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use signal::{Config, StatsHandle};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a message it expects.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test listens to be sure nothing arrives.
pub const QUIET: Duration = Duration::from_millis(300);

pub struct TestServer {
    pub addr: SocketAddr,
    pub stats: StatsHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with_config(Config::default()).await
    }

    pub async fn with_config(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = signal::Server::new(config);
        let stats = server.stats_handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stats,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.url()).await
    }

    /// Triggers graceful shutdown and waits for `serve` to return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("serve returned in time")
                .unwrap()
                .unwrap();
        }
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What a client saw when reading.
#[derive(Debug)]
pub enum Seen {
    Json(Value),
    Closed(Option<CloseFrame>),
}

impl Client {
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Self { ws }
    }

    pub async fn send_json(&mut self, value: Value) {
        self.ws
            .send(Message::Text(value.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    pub async fn join(&mut self, room: &str) {
        self.send_json(json!({"type": "join", "room": room})).await;
    }

    /// Round trip to the server: every message sent before this has been processed after it.
    pub async fn sync(&mut self) {
        self.send_json(json!({"type": "leave", "room": "__sync__"}))
            .await;
        self.expect_error("not-in-room").await;
    }

    /// Next JSON message or close; panics after [`WAIT`].
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.next_inner())
            .await
            .expect("a message within the wait")
    }

    async fn next_inner(&mut self) -> Seen {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => return Seen::Json(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(frame))) => return Seen::Closed(frame),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Seen::Closed(None),
            }
        }
    }

    /// Next message, which must be JSON.
    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Seen::Json(v) => v,
            Seen::Closed(f) => panic!("expected a message, connection closed: {f:?}"),
        }
    }

    /// Next message, which must be an `error` with `code`.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let v = self.recv().await;
        assert_eq!(v["type"], "error", "expected an error, got {v}");
        assert_eq!(v["code"], code, "wrong error code in {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error without text: {v}"
        );
        v
    }

    /// Asserts nothing arrives for [`QUIET`].
    pub async fn expect_silence(&mut self) {
        if let Ok(seen) = tokio::time::timeout(QUIET, self.next_inner()).await {
            panic!("expected silence, got {seen:?}");
        }
    }

    /// Reads until the server closes; returns the close code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.next().await {
                Seen::Closed(frame) => return frame.map(|f| u16::from(f.code)),
                Seen::Json(_) => continue,
            }
        }
    }
}

/// Two clients in `room`, past their `ready` messages; the first is the offerer.
pub async fn pair(server: &TestServer, room: &str) -> (Client, Client) {
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.join(room).await;
    // Make join order deterministic: a's join is processed before b's.
    a.sync().await;
    b.join(room).await;
    let ra = a.recv().await;
    let rb = b.recv().await;
    assert_eq!(ra, json!({"type": "ready", "room": room, "offerer": true}));
    assert_eq!(rb, json!({"type": "ready", "room": room, "offerer": false}));
    (a, b)
}

/// `GET path` over plain HTTP; the whole response as text.
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses Prometheus text into `name{labels}` → value.
pub fn parse_metrics(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The server's metrics, fetched over `GET /metrics`.
pub async fn metrics(addr: SocketAddr) -> std::collections::HashMap<String, f64> {
    let response = http_get(addr, "/metrics").await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains("Content-Type: text/plain; version=0.0.4"),
        "{response}"
    );
    let body = response.split_once("\r\n\r\n").unwrap().1;
    parse_metrics(body)
}

/// Polls `cond` until true or [`WAIT`] passes.
pub async fn wait_for(mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// This process's resident memory (VmRSS) in KiB, from /proc/self/status. The servers under test
/// run in this process, so this is the server's memory (plus the test's own clients).
pub fn rss_kib() -> u64 {
    rss_kib_of("/proc/self/status")
}

/// VmRSS in KiB from a `/proc/PID/status` file.
pub fn rss_kib_of(status: &str) -> u64 {
    let status = std::fs::read_to_string(status).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Held by tests that measure this process's memory, so two attacks do not overlap.
pub static MEMORY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A WebSocket client whose TCP connection comes from `local` (e.g. 127.0.0.2: another
/// address on the loopback network), optionally with a small receive buffer.
pub async fn connect_from(
    local: std::net::IpAddr,
    server: SocketAddr,
    recv_buffer: Option<u32>,
) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    socket.bind(SocketAddr::new(local, 0)).unwrap();
    let stream = socket.connect(server).await.unwrap();
    let url = format!("ws://{server}/");
    let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    Client { ws }
}

/// Sends `bytes` on a fresh connection and returns everything the server answers.
pub async fn raw_request(addr: SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A tracing subscriber for this thread that collects formatted log lines (INFO and above,
/// as the binary logs by default). Tests on a current-thread runtime see their server's logs.
pub struct LogCapture {
    buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl LogCapture {
    pub fn start() -> Self {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || CaptureWriter(writer.clone()))
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        Self { buf, _guard: guard }
    }

    pub fn lines(&self) -> Vec<String> {
        let bytes = self.buf.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

struct CaptureWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
