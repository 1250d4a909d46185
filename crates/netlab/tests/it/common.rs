//! Helpers: a lab or a skip, a reflector server (tells a client its observed address), and
//! paced UDP senders and counting receivers.

use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use netlab::{Host, Lab, LabError};

/// A fresh lab, or `None` (after a loud notice) when this machine cannot host one.
pub fn lab(tag: &str) -> Option<Lab> {
    match Lab::new(tag) {
        Ok(lab) => Some(lab),
        Err(LabError::Unavailable(why)) => {
            assert!(
                std::env::var("DUET_REQUIRE_NETNS").as_deref() != Ok("1"),
                "DUET_REQUIRE_NETNS=1 but the network lab is unavailable: {why}"
            );
            // Straight to fd 2: the test harness captures `eprintln!` of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED netlab test `{tag}`: network lab unavailable: {why} ***\n\
                 *** (set DUET_REQUIRE_NETNS=1 to make this a failure) ***\n"
            );
            None
        }
        Err(err) => panic!("building the lab failed: {err}"),
    }
}

/// A UDP server that answers every datagram with the sender's address as text, like the
/// binding part of STUN. Stops when dropped.
pub struct Reflector {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Reflector {
    pub fn start(host: &Host, port: u16) -> Reflector {
        let socket = host.bind_udp(port).expect("bind reflector");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = socket.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 2048];
            // Bounded even if never dropped.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop_flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok((_, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(from.to_string().as_bytes(), from);
                }
            }
        });
        Reflector {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Reflector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The address `reflector` sees `socket` come from, or `None` if three tries get no answer.
pub fn observe(socket: &UdpSocket, reflector: SocketAddr) -> Option<SocketAddr> {
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut buf = [0u8; 128];
    for _ in 0..3 {
        socket.send_to(b"who am i", reflector).expect("send");
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) if from == reflector => {
                    return std::str::from_utf8(&buf[..n]).ok()?.parse().ok();
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    None
}

/// Whether `socket` receives anything within `wait`.
pub fn receives_anything(socket: &UdpSocket, wait: Duration) -> bool {
    socket.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 2048];
    socket.recv_from(&mut buf).is_ok()
}

/// Sends `count` datagrams of `size` bytes (a big-endian sequence number first) to `to`, at
/// `per_second`.
pub fn send_paced(socket: &UdpSocket, to: SocketAddr, count: u32, size: usize, per_second: u32) {
    let start = Instant::now();
    let mut payload = vec![0u8; size.max(4)];
    for seq in 0..count {
        payload[..4].copy_from_slice(&seq.to_be_bytes());
        let _ = socket.send_to(&payload, to);
        let due = start + Duration::from_secs_f64(f64::from(seq + 1) / f64::from(per_second));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
}

/// What a receiver counted.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub packets: u32,
    pub bytes: u64,
    /// From the first datagram to the last.
    pub span: Duration,
}

impl Received {
    pub fn rate_kbit(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.span.as_secs_f64().max(1e-3) / 1000.0
    }
}

/// Counts datagrams until `expected` arrived, `idle` passes without one, or `limit` is hit.
pub fn receive_count(
    socket: &UdpSocket,
    expected: u32,
    idle: Duration,
    limit: Duration,
) -> Received {
    socket.set_read_timeout(Some(idle)).expect("timeout");
    let mut buf = [0u8; 2048];
    let started = Instant::now();
    let mut first = None;
    let mut last = started;
    let mut packets = 0;
    let mut bytes = 0u64;
    while packets < expected && started.elapsed() < limit {
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                packets += 1;
                bytes += n as u64;
            }
            Err(_) => break,
        }
    }
    Received {
        packets,
        bytes,
        span: last.duration_since(first.unwrap_or(last)),
    }
}
