//! TURN over TCP: clients whose network drops UDP (many offices, some hotels) reach the relay
//! over a TCP connection to the same port (RFC 5766 §2.1); the relayed side stays UDP. On the
//! stream, STUN messages and ChannelData frames are delimited by their own length fields, and
//! ChannelData is padded to a multiple of 4 bytes (§11.5). TURN over TLS (`turns:`, RFC 8656
//! §3.1, usually port 5349) is the same stream inside TLS, for networks that let nothing
//! but TLS through.
//!
//! Each accepted connection gets a reader and a writer task. The reader hands every frame to
//! the TURN engine through one bounded queue, with the connection's address, exactly as a
//! datagram would arrive; what the engine sends to that address is queued to the writer.
//! Limits: at most `max_connections` at once (more are closed at accept), the TLS handshake
//! and a first frame within [`FIRST_FRAME_TIMEOUT`], then at most [`IDLE_TIMEOUT`] between frames, a bounded
//! write queue per connection (a slow reader loses frames, as UDP would) and a
//! [`WRITE_TIMEOUT`] per write.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A new connection must finish its TLS handshake (when it is TLS) and send its first STUN
/// message within this long.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection silent for this long is closed (a call's consent checks keep a used one busy;
/// clients refresh allocations well within it).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// One write to a client may take this long before the connection is closed.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames waiting to be written to one client; beyond it they are dropped.
const WRITE_QUEUE: usize = 256;
/// Frames from all clients waiting for the engine.
const READ_QUEUE: usize = 1024;

/// The total length on the stream (padding included) of the frame whose first four bytes are
/// `head`, and the length of the frame itself; `None` if it is neither STUN nor ChannelData.
pub fn frame_len(head: [u8; 4]) -> Option<(usize, usize)> {
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    match head[0] >> 6 {
        // STUN: a 20-byte header, then attributes whose length is a multiple of 4.
        0b00 if len % 4 == 0 => Some((20 + len, 20 + len)),
        // ChannelData: channel numbers 0x4000-0x7FFF; padded to 4 bytes over TCP.
        0b01 => {
            let frame = 4 + len;
            Some((frame.next_multiple_of(4), frame))
        }
        _ => None,
    }
}

/// The STUN magic cookie (RFC 5389 §6), at bytes 4..8 of every STUN message.
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// Whether a whole frame is a STUN message (with the magic cookie) or ChannelData on a valid
/// channel number (0x4000-0x4FFF, RFC 8656 §12): anything else ends the connection.
pub fn plausible(frame: &[u8]) -> bool {
    match frame.first().map(|b| b >> 6) {
        Some(0b00) => frame.get(4..8) == Some(&MAGIC_COOKIE[..]),
        Some(0b01) => frame.first().is_some_and(|&b| b < 0x50),
        _ => false,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

type Writers = Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>;

/// The TCP side of the TURN listener, seen as datagrams.
pub struct TcpFrames {
    local: SocketAddr,
    incoming: tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
    writers: Writers,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for TcpFrames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpFrames")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl Drop for TcpFrames {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl TcpFrames {
    /// Accepts on `listener`, at most `max_connections` at once.
    pub fn start(listener: TcpListener, max_connections: usize) -> std::io::Result<Self> {
        Self::start_on(listener, max_connections, None)
    }

    /// Accepts TLS on `listener` (TURN over TLS), at most `max_connections` at once.
    pub fn start_tls(
        listener: TcpListener,
        max_connections: usize,
        tls: TlsAcceptor,
    ) -> std::io::Result<Self> {
        Self::start_on(listener, max_connections, Some(tls))
    }

    fn start_on(
        listener: TcpListener,
        max_connections: usize,
        tls: Option<TlsAcceptor>,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(READ_QUEUE);
        let writers: Writers = Arc::default();
        let accept = tokio::spawn(accept_loop(
            listener,
            max_connections,
            tls,
            tx,
            Arc::clone(&writers),
        ));
        Ok(Self {
            local,
            incoming: tokio::sync::Mutex::new(rx),
            writers,
            accept,
        })
    }

    /// The next frame from any client, copied into `buf` (a frame longer than `buf` is
    /// dropped); `None` once the listener is gone.
    pub async fn recv_from(&self, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
        let mut incoming = self.incoming.lock().await;
        loop {
            let (frame, from) = incoming.recv().await?;
            if let Some(dst) = buf.get_mut(..frame.len()) {
                dst.copy_from_slice(&frame);
                return Some((frame.len(), from));
            }
        }
    }

    /// Queues `frame` to the client at `to` (padded for the stream); dropped when that client
    /// is gone or its queue is full, as a datagram would be.
    pub fn send_to(&self, frame: &[u8], to: SocketAddr) {
        let Some(writer) = lock(&self.writers).get(&to).cloned() else {
            return;
        };
        let mut framed = frame.to_vec();
        if frame.first().is_some_and(|b| b >> 6 == 0b01) {
            framed.resize(frame.len().next_multiple_of(4), 0);
        }
        let _ = writer.try_send(framed);
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        lock(&self.writers).len()
    }
}

async fn accept_loop(
    listener: TcpListener,
    max_connections: usize,
    tls: Option<TlsAcceptor>,
    frames: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    writers: Writers,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait instead of spinning.
                tracing::debug!(error = %e, "TURN/TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        {
            let mut open = lock(&writers);
            if open.len() >= max_connections {
                tracing::debug!("TURN/TCP connection limit reached; closing a new one");
                continue;
            }
            open.insert(peer, tx);
        }
        let _ = stream.set_nodelay(true);
        let frames = frames.clone();
        let writers = Arc::clone(&writers);
        match &tls {
            None => {
                tokio::spawn(serve(stream, peer, frames, rx, writers));
            }
            Some(tls) => {
                let handshake = tls.accept(stream);
                tokio::spawn(async move {
                    match tokio::time::timeout(FIRST_FRAME_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => serve(stream, peer, frames, rx, writers).await,
                        Ok(Err(e)) => {
                            tracing::debug!(client = %peer, error = %e, "TURN/TLS handshake failed");
                            lock(&writers).remove(&peer);
                        }
                        Err(_) => {
                            tracing::debug!(client = %peer, "TURN/TLS handshake timed out");
                            lock(&writers).remove(&peer);
                        }
                    }
                });
            }
        }
    }
}

/// Runs one connection (TCP, or TLS over TCP) until it closes, breaks a limit or the
/// listener goes.
async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    frames: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    mut queue: mpsc::Receiver<Vec<u8>>,
    writers: Writers,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = async move {
        while let Some(frame) = queue.recv().await {
            // TLS holds written bytes in its record buffer until flushed.
            let write = async {
                wr.write_all(&frame).await?;
                wr.flush().await
            };
            match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
    };
    let reader = async move {
        let mut deadline = FIRST_FRAME_TIMEOUT;
        loop {
            let mut head = [0u8; 4];
            match tokio::time::timeout(deadline, rd.read_exact(&mut head)).await {
                Ok(Ok(_)) => {}
                _ => break,
            }
            let Some((on_stream, used)) = frame_len(head) else {
                tracing::debug!(client = %peer, "TURN/TCP: not STUN or ChannelData; closing");
                break;
            };
            let mut frame = vec![0u8; on_stream];
            frame[..4].copy_from_slice(&head);
            // A STUN message's magic cookie comes first: refuse a stranger before waiting
            // for the body its header announces.
            let checked = if head[0] >> 6 == 0b00 { 8 } else { 4 };
            let body = async {
                rd.read_exact(&mut frame[4..checked]).await?;
                if !plausible(&frame[..checked]) {
                    return Err(std::io::Error::other("not STUN or ChannelData"));
                }
                rd.read_exact(&mut frame[checked..]).await
            };
            match tokio::time::timeout(WRITE_TIMEOUT, body).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(client = %peer, error = %e, "TURN/TCP: closing");
                    break;
                }
                Err(_) => break,
            }
            frame.truncate(used);
            if !plausible(&frame) {
                tracing::debug!(client = %peer, "TURN/TCP: not STUN or ChannelData; closing");
                break;
            }
            if frames.send((frame, peer)).await.is_err() {
                break;
            }
            deadline = IDLE_TIMEOUT;
        }
    };
    // Either half ending ends the connection.
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
    lock(&writers).remove(&peer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_delimited_by_their_own_lengths() {
        // A STUN Binding request with no attributes.
        assert_eq!(frame_len([0x00, 0x01, 0x00, 0x00]), Some((20, 20)));
        // STUN with 8 bytes of attributes.
        assert_eq!(frame_len([0x01, 0x01, 0x00, 0x08]), Some((28, 28)));
        // STUN attribute lengths are multiples of 4: anything else is not STUN.
        assert_eq!(frame_len([0x00, 0x01, 0x00, 0x05]), None);
        // ChannelData 0x4000 with 5 bytes: 9 bytes, padded to 12 on the stream.
        assert_eq!(frame_len([0x40, 0x00, 0x00, 0x05]), Some((12, 9)));
        assert_eq!(frame_len([0x7f, 0xff, 0x00, 0x04]), Some((8, 8)));
        // RTP: refused from its first byte.
        assert_eq!(frame_len([0x80, 0x60, 0x00, 0x01]), None);
    }

    #[test]
    fn only_stun_and_channel_data_are_plausible() {
        let mut binding = vec![0x00, 0x01, 0x00, 0x00];
        binding.extend_from_slice(&MAGIC_COOKIE);
        binding.extend_from_slice(&[7; 12]);
        assert!(plausible(&binding));
        // A DTLS record is STUN-shaped in its first bytes, but has no cookie.
        let mut dtls = vec![0x16, 0xfe, 0xfd, 0x00];
        dtls.extend_from_slice(&[0; 16]);
        assert!(!plausible(&dtls));
        assert!(plausible(&[0x40, 0x00, 0x00, 0x01, 0xaa]));
        assert!(plausible(&[0x4f, 0xff, 0x00, 0x00]));
        // "POST" would be ChannelData on channel 0x504F, beyond the valid range. ("GET "
        // reads as channel 0x4745: the engine drops data for a channel nobody bound.)
        assert!(!plausible(b"POST / HTTP/1.1"));
        assert!(!plausible(&[0x80, 0x60]));
        assert!(!plausible(&[]));
    }
}
