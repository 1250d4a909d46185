//! The real `signal` binary: started with certificate files, it reloads them on SIGHUP — a new
//! TLS connection sees the new certificate while a WebSocket opened before keeps relaying.
//! Also checks that `--log-format json` logs are JSON lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common;

use std::time::Duration;

use common::binary::SignalProcess;
use common::tls::{connect_wss, make_cert, tls_stream, trusting, write_cert};
use nix::sys::signal::Signal;
use serde_json::json;

#[tokio::test]
async fn sighup_reloads_the_certificate_files() {
    let dir = tempfile::tempdir().unwrap();
    let old = make_cert();
    let new = make_cert();
    let (cert_path, key_path) = write_cert(dir.path(), &old);
    let mut args = vec![std::ffi::OsString::from("--tls-cert"), cert_path.into()];
    args.extend([
        std::ffi::OsString::from("--tls-key"),
        key_path.clone().into(),
    ]);
    let server = SignalProcess::start(args);
    assert!(server.tls);
    let addr = server.addr;

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
