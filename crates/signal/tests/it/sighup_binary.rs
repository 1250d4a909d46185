//! The real `signal` binary: started with certificate files, it reloads them on SIGHUP — a new
//! TLS connection sees the new certificate while a WebSocket opened before keeps relaying.
//! Also checks that `--log-format json` logs are JSON lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::tls::{connect_wss, make_cert, tls_stream, trusting, write_cert};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

/// Kills the child if the test fails half-way.
struct Server {
    child: Child,
    logs: mpsc::Receiver<Value>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The next log line whose message contains `text`.
    fn wait_log(&self, text: &str) -> Value {
        let deadline = std::time::Instant::now() + common::WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .logs
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line containing {text:?}"));
            if line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(text))
            {
                return line;
            }
        }
    }

    fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        kill(pid, signal).unwrap();
    }
}

#[tokio::test]
async fn sighup_reloads_the_certificate_files() {
    let dir = tempfile::tempdir().unwrap();
    let old = make_cert();
    let new = make_cert();
    let (cert_path, key_path) = write_cert(dir.path(), &old);
    let mut child = Command::new(env!("CARGO_BIN_EXE_signal"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--turn-port",
            "0",
            "--log-format",
            "json",
            "--tls-cert",
        ])
        .arg(&cert_path)
        .arg("--tls-key")
        .arg(&key_path)
        .env("RUST_LOG", "info")
        .env_remove("SIGNAL_ROOM_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, logs) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    let server = Server { child, logs };
    let listening = server.wait_log("signal listening");
    assert_eq!(listening["fields"]["tls"], true);
    assert!(listening["level"].is_string());
    let addr: SocketAddr = listening["fields"]["addr"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let both = trusting(&[&old, &new]);
    let mut a = connect_wss(addr, both.clone()).await;
    let mut b = connect_wss(addr, both.clone()).await;
    a.join("hup").await;
    a.sync().await;
    b.join("hup").await;
    assert_eq!(a.recv().await["offerer"], true);
    assert_eq!(b.recv().await["offerer"], false);
    assert_eq!(tls_stream(addr, both.clone()).await.1, old.der);

    write_cert(dir.path(), &new);
    server.signal(Signal::SIGHUP);
    server.wait_log("TLS certificate reloaded");
    assert_eq!(tls_stream(addr, both.clone()).await.1, new.der);

    // The WebSocket opened before the reload still relays, both ways.
    let offer = json!({"type": "offer", "room": "hup", "offer": {"sdp": "still here"}});
    a.send_json(offer.clone()).await;
    assert_eq!(b.recv().await, offer);
    let cand = json!({"type": "candidate", "room": "hup", "candidate": null});
    b.send_json(cand.clone()).await;
    assert_eq!(a.recv().await, cand);

    // A broken file on the next SIGHUP keeps the current certificate and the server up.
    std::fs::write(&key_path, "garbage").unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_log("certificate reload failed");
    assert_eq!(tls_stream(addr, both.clone()).await.1, new.der);
    a.sync().await;

    // SIGTERM: graceful shutdown closes the WebSockets with 1001.
    server.signal(Signal::SIGTERM);
    assert_eq!(a.expect_close().await, Some(1001));
    let mut server = server;
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "signal did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
