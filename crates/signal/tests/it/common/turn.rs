//! Helpers for the TURN tests: signal's TURN server on 127.0.0.1:0 and a real TURN client
//! (webrtc-rs `turn` crate's).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use signal::turn::Cidr;
use signal::{PeerPolicy, TurnConfig, TurnSecret, TurnServer};
use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};

pub const SECRET: &str = "lab-secret";
/// Bound for every TURN exchange in a test (refusals come back at once; this only stops a
/// broken server from hanging the suite).
pub const TURN_WAIT: Duration = Duration::from_secs(10);

pub fn config(allow: &[&str]) -> TurnConfig {
    TurnConfig {
        secret: TurnSecret::new(SECRET),
        peers: PeerPolicy {
            allow: allow.iter().map(|c| c.parse::<Cidr>().unwrap()).collect(),
            own: Vec::new(),
        },
        ..TurnConfig::default()
    }
}

pub async fn start(config: TurnConfig) -> TurnServer {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    TurnServer::start(socket, config).await.unwrap()
}

/// A credential valid for `ttl` from now (negative: already expired).
pub fn credential(label: &str, ttl_s: i64) -> (String, String) {
    let now = SystemTime::now();
    let expires = if ttl_s >= 0 {
        now + Duration::from_secs(ttl_s as u64)
    } else {
        now - Duration::from_secs((-ttl_s) as u64)
    };
    let c = TurnSecret::new(SECRET).credential(expires, label);
    (c.username, c.password)
}

/// A TURN client of `server` on a fresh 127.0.0.1 socket, listening.
pub async fn client(server: SocketAddr, username: &str, password: &str) -> Client {
    client_on(
        Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap()),
        server,
        username,
        password,
    )
    .await
}

pub async fn client_on(
    conn: Arc<UdpSocket>,
    server: SocketAddr,
    username: &str,
    password: &str,
) -> Client {
    let client = Client::new(ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: "duet".to_owned(),
        software: String::new(),
        rto_in_ms: 0,
        conn,
        vnet: None,
    })
    .await
    .unwrap();
    client.listen().await.unwrap();
    client
}
