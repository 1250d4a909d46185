//! The real binary fits `--max-connections` to the open-file limit at start: with a limit of
//! 512 descriptors it lowers 20 000 to what fits and says so, instead of failing `accept` with
//! EMFILE before "server full" could ever answer.
#![allow(clippy::unwrap_used)]
use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn max_connections_is_lowered_to_fit_the_file_limit() {
    let Ok(status) = Command::new("prlimit").arg("--version").output() else {
        eprintln!("prlimit (util-linux) is not installed; skipping");
        return;
    };
    assert!(status.status.success());
    let mut child = Command::new("prlimit")
        .args(["--nofile=512:512", env!("CARGO_BIN_EXE_signal")])
        .args(["--listen", "127.0.0.1:0", "--max-connections", "20000"])
        .args(["--turn-port", "0"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(common::WAIT) {
            Ok(line) if line.contains("--max-connections lowered") => break Some(line),
            Ok(line) if line.contains("signal listening") => {
                seen.push(line);
                break None;
            }
            Ok(line) => seen.push(line),
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let line = found.unwrap_or_else(|| panic!("no warning; logs: {seen:#?}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("open_file_limit=512"), "{line}");
    assert!(line.contains("requested=20000"), "{line}");
    // 512 - 64 reserved - 112 pending (a quarter of the rest) = 336.
    assert!(line.contains("max_connections=336"), "{line}");
}
