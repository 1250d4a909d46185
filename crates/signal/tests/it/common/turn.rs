//! Helpers for the TURN tests: signal's TURN server on 127.0.0.1:0 and a real TURN client
//! (webrtc-rs `turn` crate's).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use signal::turn::Cidr;
use signal::{PeerPolicy, TurnConfig, TurnSecret, TurnServer};
use tokio::net::UdpSocket;
use tokio::time::timeout;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

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

/// signal's TURN server on 127.0.0.1:0 with TURN over TCP on the same port.
pub async fn start_with_tcp(config: TurnConfig) -> TurnServer {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let tcp = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    TurnServer::start_with_tcp(socket, Some(tcp), config)
        .await
        .unwrap()
}

/// signal's TURN server on 127.0.0.1:0 with TURN over TLS on another port.
pub struct TlsTurn {
    pub server: TurnServer,
    pub tls_addr: SocketAddr,
}

pub async fn start_with_tls(config: TurnConfig, acceptor: tokio_rustls::TlsAcceptor) -> TlsTurn {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tls = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_addr = tls.local_addr().unwrap();
    let server = TurnServer::start_with_streams(socket, None, Some((tls, acceptor)), config)
        .await
        .unwrap();
    TlsTurn { server, tls_addr }
}

/// A TURN client with a relay allocated, and a UDP peer on 127.0.0.1 to relay to.
pub struct Allocated {
    pub client: Client,
    pub relay: Box<dyn Conn + Send + Sync>,
    pub peer: UdpSocket,
}

impl Allocated {
    /// Allocates a relay for `client` (which must succeed) and binds the peer.
    pub async fn on(client: Client) -> Self {
        let relay = timeout(TURN_WAIT, client.allocate())
            .await
            .unwrap()
            .unwrap();
        Self {
            client,
            relay: Box::new(relay),
            peer: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        }
    }

    /// Gives the allocation back and closes the client.
    pub async fn close(self) {
        let _ = self.relay.close().await;
        let _ = self.client.close().await;
    }
}

/// A UDP client of `server` with a credential labelled `label`, its relay allocated.
pub async fn allocated(server: SocketAddr, label: &str) -> Allocated {
    let (user, pass) = credential(label, 600);
    Allocated::on(client(server, &user, &pass).await).await
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
    conn: Arc<dyn webrtc_util::Conn + Send + Sync>,
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

/// A TURN client over TCP: the `turn` crate's client on a connection that frames what it
/// sends and receives as RFC 5766 §2.1 wants (STUN and ChannelData by their lengths,
/// ChannelData padded to 4 bytes), as a browser's `?transport=tcp` client does.
pub async fn tcp_client(server: SocketAddr, username: &str, password: &str) -> Client {
    let stream = tokio::net::TcpStream::connect(server).await.unwrap();
    let local = stream.local_addr().unwrap();
    stream_client(stream, local, server, username, password).await
}

/// A TURN client over TLS (`turns:`) to `server`, trusting what `tls` trusts and checking
/// the certificate's name `127.0.0.1`.
pub async fn tls_client(
    server: SocketAddr,
    tls: Arc<signal::client::TlsClientConfig>,
    username: &str,
    password: &str,
) -> Client {
    let tcp = tokio::net::TcpStream::connect(server).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = tokio::time::timeout(
        TURN_WAIT,
        tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
    )
    .await
    .unwrap()
    .unwrap();
    stream_client(stream, local, server, username, password).await
}

/// The `turn` client on `stream` (TCP or TLS, from `local`), framed for TURN.
async fn stream_client<S>(
    stream: S,
    local: SocketAddr,
    server: SocketAddr,
    username: &str,
    password: &str,
) -> Client
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + 'static,
{
    let conn = StreamConn::new(stream, local, server);
    client_on(Arc::new(conn), server, username, password).await
}

/// A stream (TCP, or TLS over TCP) as the `turn` client's `Conn`, framed for TURN.
struct StreamConn<S> {
    rd: tokio::sync::Mutex<tokio::io::ReadHalf<S>>,
    wr: tokio::sync::Mutex<tokio::io::WriteHalf<S>>,
    local: SocketAddr,
    server: SocketAddr,
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite> StreamConn<S> {
    fn new(stream: S, local: SocketAddr, server: SocketAddr) -> Self {
        let (rd, wr) = tokio::io::split(stream);
        Self {
            rd: tokio::sync::Mutex::new(rd),
            wr: tokio::sync::Mutex::new(wr),
            local,
            server,
        }
    }
}

#[async_trait::async_trait]
impl<S> webrtc_util::Conn for StreamConn<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + 'static,
{
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Ok(())
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        use tokio::io::AsyncReadExt;
        let mut rd = self.rd.lock().await;
        let mut head = [0u8; 4];
        rd.read_exact(&mut head).await?;
        let (on_stream, used) = signal::turn_tcp::frame_len(head)
            .ok_or_else(|| webrtc_util::Error::Other("not STUN or ChannelData".into()))?;
        let mut frame = vec![0u8; on_stream];
        frame[..4].copy_from_slice(&head);
        rd.read_exact(&mut frame[4..]).await?;
        let n = used.min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok((n, self.server))
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.send_to(buf, self.server).await
    }

    async fn send_to(&self, buf: &[u8], _target: SocketAddr) -> webrtc_util::Result<usize> {
        use tokio::io::AsyncWriteExt;
        let mut framed = buf.to_vec();
        if buf.first().is_some_and(|b| b >> 6 == 0b01) {
            framed.resize(buf.len().next_multiple_of(4), 0);
        }
        let mut wr = self.wr.lock().await;
        wr.write_all(&framed).await?;
        wr.flush().await?;
        Ok(buf.len())
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.server)
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
