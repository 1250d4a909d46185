//! A machine in the lab: one network namespace with an address, and the ways to run code in it.

use std::ffi::OsStr;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::mpsc;
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};

use crate::LabError;

/// One namespace of the lab, seen as a machine with one interesting IPv4 address.
///
/// Cheap to clone and `'static`: move it into threads freely. It does not keep the lab alive;
/// once the [`Lab`](crate::Lab) is dropped its namespaces are gone and everything here fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    netns: String,
    ip: Ipv4Addr,
}

impl Host {
    pub(crate) fn new(netns: String, ip: Ipv4Addr) -> Self {
        Self { netns, ip }
    }

    /// The host's address: a public-net address for public hosts, the private (or, with
    /// [`Nat::None`](crate::Nat::None), routed) LAN address for a home's host, the LAN gateway
    /// address for a home's router.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The network namespace's name, as `ip netns` knows it (`/run/netns/NAME`).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The words that run a program in this namespace: `["ip", "netns", "exec", NAME]`.
    /// Prefix a command line with them from shell or JS test runners.
    pub fn exec_prefix(&self) -> [String; 4] {
        [
            "ip".to_owned(),
            "netns".to_owned(),
            "exec".to_owned(),
            self.netns.clone(),
        ]
    }

    /// A [`Command`] that runs `program` inside this namespace (`ip netns exec NAME program`).
    ///
    /// Add arguments, environment and stdio as usual: `ip netns exec` passes the environment and
    /// arguments through unchanged. The lab kills processes still running in its namespaces
    /// when it is dropped, but wait for or kill your children yourself where timing matters.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns]).arg(program);
        cmd
    }

    /// Spawns a named std thread that enters this namespace (`setns(2)` with `CLONE_NEWNET`) and
    /// runs `f` there.
    ///
    /// Sockets `f` creates belong to this namespace (and stay there when moved to other threads);
    /// threads `f` spawns, such as a tokio runtime's workers, start inside it too. Returns only
    /// once the thread is inside the namespace, or with the error if it could not get there.
    pub fn run_in<F, T>(&self, f: F) -> Result<NsThread<T>, LabError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.netns);
        let file = File::open(&path).map_err(|source| LabError::Io {
            context: format!("opening {path}"),
            source,
        })?;
        let (entered_tx, entered_rx) = mpsc::sync_channel(1);
        let name: String = format!("ns:{}", self.netns).chars().take(48).collect();
        let handle = thread::Builder::new()
            .name(name)
            .spawn(move || {
                let entered = setns(&file, CloneFlags::CLONE_NEWNET);
                drop(file);
                let ok = entered.is_ok();
                // The receiver waits for this message; it cannot be gone yet.
                let _ = entered_tx.send(entered);
                ok.then(f)
            })
            .map_err(|source| LabError::Io {
                context: format!("spawning a thread for {}", self.netns),
                source,
            })?;
        let entered = entered_rx.recv();
        match entered {
            Ok(Ok(())) => Ok(NsThread { handle }),
            Ok(Err(source)) => {
                let _ = handle.join();
                Err(LabError::Setns {
                    netns: self.netns.clone(),
                    source,
                })
            }
            Err(_) => {
                let _ = handle.join();
                Err(LabError::Setns {
                    netns: self.netns.clone(),
                    source: nix::Error::EINVAL,
                })
            }
        }
    }

    /// Runs `f` inside this namespace on a short-lived thread and waits for its result.
    /// A panic in `f` is resumed on the caller's thread.
    pub fn run<F, T>(&self, f: F) -> Result<T, LabError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.run_in(f)?.join() {
            Ok(value) => Ok(value),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// A UDP socket bound to `self.ip():port` inside this namespace (port 0 picks one).
    pub fn bind_udp(&self, port: u16) -> Result<UdpSocket, LabError> {
        let addr = SocketAddr::from((self.ip, port));
        self.run(move || UdpSocket::bind(addr))?
            .map_err(|source| LabError::Io {
                context: format!("binding UDP {addr} in {}", self.netns),
                source,
            })
    }

    /// Waits until something in the lab accepts TCP connections at `addr`, connecting from
    /// inside this namespace every 50 ms, for at most `within`; whether it did. For servers a
    /// test starts as a process, which is ready once its port answers.
    pub fn wait_for_tcp(&self, addr: SocketAddr, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self
                .run(move || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
                .unwrap_or(false)
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// A TCP listener bound to `self.ip():port` inside this namespace (port 0 picks one).
    pub fn bind_tcp(&self, port: u16) -> Result<TcpListener, LabError> {
        let addr = SocketAddr::from((self.ip, port));
        self.run(move || TcpListener::bind(addr))?
            .map_err(|source| LabError::Io {
                context: format!("binding TCP {addr} in {}", self.netns),
                source,
            })
    }
}

/// A thread started by [`Host::run_in`], already inside its namespace.
#[derive(Debug)]
pub struct NsThread<T> {
    handle: JoinHandle<Option<T>>,
}

impl<T> NsThread<T> {
    /// Waits for the thread; `Err` carries its panic payload, as with [`JoinHandle::join`].
    pub fn join(self) -> thread::Result<T> {
        match self.handle.join() {
            Ok(Some(value)) => Ok(value),
            // `run_in` only hands out threads that entered their namespace, which run `f`.
            Ok(None) => Err(Box::new("the thread never entered its namespace")),
            Err(panic) => Err(panic),
        }
    }

    /// Whether the thread has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// The underlying thread (its name is `ns:NAMESPACE`).
    pub fn thread(&self) -> &Thread {
        self.handle.thread()
    }
}
