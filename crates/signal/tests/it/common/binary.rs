//! The real `signal` binary as a child process: JSON logs read on a thread, the listening
//! address taken from its first log line, killed when dropped (also when a test fails).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

pub struct SignalProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// Whether it serves TLS (from its "listening" line).
    pub tls: bool,
    logs: mpsc::Receiver<Value>,
}

impl Drop for SignalProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SignalProcess {
    /// Starts `signal --listen 127.0.0.1:0 --turn-port 0 --turn-tls-port 0 --log-format json
    /// ARGS...` and waits for it to listen.
    pub fn start<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut child = Command::new(env!("CARGO_BIN_EXE_signal"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--turn-port",
                "0",
                "--turn-tls-port",
                "0",
                "--log-format",
                "json",
            ])
            .args(args)
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
        let mut process = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            logs,
        };
        let listening = process.wait_log("signal listening");
        assert!(listening["level"].is_string());
        process.tls = listening["fields"]["tls"] == true;
        process.addr = listening["fields"]["addr"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        process
    }

    /// The next log line whose message contains `text`.
    pub fn wait_log(&self, text: &str) -> Value {
        let deadline = std::time::Instant::now() + super::WAIT;
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

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap())
    }

    /// The process's resident memory (VmRSS) in KiB.
    pub fn rss_kib(&self) -> u64 {
        super::rss_kib_of(&format!("/proc/{}/status", self.child.id()))
    }
}
