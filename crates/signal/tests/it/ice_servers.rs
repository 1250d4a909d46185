//! `ready` carries `iceServers` with fresh coturn-style credentials that signal's own TURN
//! server accepts; without an ICE configuration the field is absent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use signal::{Config, IceConfig, IceOffer, TurnSecret};
use tokio::time::timeout;

use crate::common::turn::{self, SECRET, TURN_WAIT};
use crate::common::{Client, TestServer};

fn ice(offer: IceOffer) -> Config {
    Config {
        ice: Some(IceConfig {
            offer,
            secret: TurnSecret::new(SECRET),
            credential_ttl: Duration::from_secs(3600),
        }),
        ..Config::default()
    }
}

async fn ready_pair(server: &TestServer) -> (Value, Value, Client, Client) {
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.join("ice").await;
    a.sync().await;
    b.join("ice").await;
    let ra = a.recv().await;
    let rb = b.recv().await;
    assert_eq!(ra["type"], "ready");
    assert_eq!(rb["type"], "ready");
    (ra, rb, a, b)
}

/// Checks the credential independently of signal's code: base64(HMAC-SHA1(secret, username))
/// and an expiry in the future.
fn assert_valid_credential(entry: &Value) -> (String, String) {
    let username = entry["username"].as_str().unwrap().to_owned();
    let credential = entry["credential"].as_str().unwrap().to_owned();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(
        credential, expected,
        "credential is HMAC-SHA1 of the username"
    );
    let expiry: u64 = username.split(':').next().unwrap().parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        expiry > now + 3500 && expiry <= now + 3601,
        "expiry {expiry} vs now {now}"
    );
    (username, credential)
}

#[tokio::test]
async fn ready_carries_ice_servers_that_signals_turn_accepts() {
    let turn_server = turn::start(turn::config(&["127.0.0.0/8"])).await;
    let port = turn_server.local_addr().port();
    let server = TestServer::with_config(ice(IceOffer::Builtin {
        host: None,
        port,
        tcp: false,
        tls_port: None,
    }))
    .await;
    let (ra, rb, _a, _b) = ready_pair(&server).await;
    for ready in [&ra, &rb] {
        let servers = ready["iceServers"].as_array().unwrap();
        assert_eq!(servers.len(), 2, "{ready}");
        assert_eq!(
            servers[0]["urls"],
            serde_json::json!([format!("stun:127.0.0.1:{port}")])
        );
        assert!(servers[0].get("username").is_none());
        assert_eq!(
            servers[1]["urls"],
            serde_json::json!([format!("turn:127.0.0.1:{port}?transport=udp")])
        );
        assert_valid_credential(&servers[1]);
    }
    assert_ne!(
        ra["iceServers"][1]["username"], rb["iceServers"][1]["username"],
        "each client gets its own credential"
    );
    let (user, pass) = assert_valid_credential(&ra["iceServers"][1]);
    let client = turn::client(turn_server.local_addr(), &user, &pass).await;
    assert!(timeout(TURN_WAIT, client.allocate()).await.unwrap().is_ok());
    server.shutdown().await;
    turn_server.close().await;
}

#[tokio::test]
async fn external_turn_urls_are_handed_out_verbatim() {
    let urls = vec![
        "turn:turn.example.com:3478?transport=udp".to_owned(),
        "turns:turn.example.com:5349?transport=tcp".to_owned(),
    ];
    let server = TestServer::with_config(ice(IceOffer::External { urls: urls.clone() })).await;
    let (ra, _, _a, _b) = ready_pair(&server).await;
    let servers = ra["iceServers"].as_array().unwrap();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0]["urls"], serde_json::json!(urls));
    assert_valid_credential(&servers[0]);
    server.shutdown().await;
}

#[tokio::test]
async fn without_turn_ready_has_no_ice_servers() {
    let server = TestServer::start().await;
    let (ra, rb, _a, _b) = ready_pair(&server).await;
    assert!(ra.get("iceServers").is_none(), "{ra}");
    assert!(rb.get("iceServers").is_none(), "{rb}");
    server.shutdown().await;
}
