//! The real `signal` binary: started with certificate files, it reloads them on SIGHUP — a new
//! TLS connection sees the new certificate while a WebSocket opened before keeps relaying.
//! The same certificate serves TURN over TLS, offered on `ready`.
//! Also checks that `--log-format json` logs are JSON lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common;

use std::time::Duration;

use common::binary::SignalProcess;
use common::tls::{connect_wss, make_cert, tls_stream, trusting, write_cert};
use common::turn;
use nix::sys::signal::Signal;
use serde_json::json;
use webrtc_util::Conn;

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
    let ready = a.recv().await;
    assert_eq!(ready["offerer"], true);
    assert_eq!(b.recv().await["offerer"], false);
    assert_eq!(tls_stream(addr, both.clone()).await.1, old.der);

    // With a certificate, `ready` offers TURN over TLS too, and a client reaches it with the
    // credential handed out.
    let turn_entry = &ready["iceServers"][1];
    let turns = turn_entry["urls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u.as_str())
        .find_map(|u| u.strip_prefix("turns:127.0.0.1:"))
        .unwrap_or_else(|| panic!("no turns: URL on ready: {ready}"));
    let turns_port: u16 = turns
        .strip_suffix("?transport=tcp")
        .unwrap()
        .parse()
        .unwrap();
    let turns_addr = std::net::SocketAddr::from(([127, 0, 0, 1], turns_port));
    let client = turn::tls_client(
        turns_addr,
        trusting(&[&old]),
        turn_entry["username"].as_str().unwrap(),
        turn_entry["credential"].as_str().unwrap(),
    )
    .await;
    let relay = tokio::time::timeout(turn::TURN_WAIT, client.allocate())
        .await
        .unwrap()
        .expect("an allocation over TLS with ready's credential");
    let _ = relay.close().await;
    let _ = client.close().await;

    write_cert(dir.path(), &new);
    server.signal(Signal::SIGHUP);
    server.wait_log("TLS certificate reloaded");
    assert_eq!(tls_stream(addr, both.clone()).await.1, new.der);
    assert_eq!(
        tls_stream(turns_addr, both.clone()).await.1,
        new.der,
        "TURN over TLS serves the reloaded certificate"
    );

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
