//! `HostedSignal`: the relay served in-process on a thread of its own — the desktop app's
//! "Host on this computer", `duet call --host`, and tests that need a server. Stops when
//! dropped.

use std::thread::JoinHandle;

/// A `signal` server hosted in this process (the desktop app's "Host on this computer", and
/// `duet call --host`). Stops when dropped.
pub struct HostedSignal {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HostedSignal {
    /// Binds `addr` (port 0 = any free port) and serves on a thread of its own.
    pub fn start(addr: std::net::SocketAddr, config: crate::Config) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let bound = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("duet-signal".into())
            .spawn(move || {
                let shutdown = async move {
                    let _ = stopped.await;
                };
                if let Err(e) = runtime.block_on(crate::serve(listener, config, shutdown)) {
                    tracing::warn!(error = %e, "hosted signal server stopped");
                }
            })?;
        Ok(Self {
            addr: bound,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `ws://` URL for clients on this machine.
    pub fn local_url(&self) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            self.addr.ip().to_string()
        };
        format!("ws://{ip}:{}/", self.addr.port())
    }
}

impl Drop for HostedSignal {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
