//! The headless `signal` relay. Parses flags, sets up logging, and calls [`signal::serve`].

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// duet's WebSocket room relay for 1-to-1 calls (seed-protocol compatible).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SIGNAL_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Largest accepted message in bytes; bigger ones close the connection (1009).
    #[arg(long, env = "SIGNAL_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    max_message_bytes: usize,
    /// Most simultaneous WebSocket connections.
    #[arg(long, env = "SIGNAL_MAX_CONNECTIONS", default_value_t = 20_000)]
    max_connections: usize,
    /// Rooms one connection may be in at once.
    #[arg(long, env = "SIGNAL_MAX_ROOMS_PER_CONNECTION", default_value_t = 4)]
    max_rooms_per_connection: usize,
    /// Longest room name in bytes.
    #[arg(long, env = "SIGNAL_MAX_ROOM_NAME_BYTES", default_value_t = 128)]
    max_room_name_bytes: usize,
    /// Sustained messages per second per connection.
    #[arg(long, env = "SIGNAL_RATE", default_value_t = 50.0)]
    rate: f64,
    /// Burst of messages per connection above the sustained rate.
    #[arg(long, env = "SIGNAL_BURST", default_value_t = 200.0)]
    burst: f64,
    /// Seconds between pings.
    #[arg(long, env = "SIGNAL_PING_SECS", default_value_t = 30)]
    ping_secs: u64,
    /// Seconds of silence after which a connection is dropped.
    #[arg(long, env = "SIGNAL_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    idle_timeout_secs: u64,
    /// Per-connection WebSocket read buffer in bytes (larger messages still work; they are
    /// read in several steps).
    #[arg(long, env = "SIGNAL_READ_BUFFER_BYTES", default_value_t = 2048)]
    read_buffer_bytes: usize,
    /// Worker threads. One thread relays tens of thousands of messages per second; more
    /// only add cross-thread wake-ups.
    #[arg(long, env = "SIGNAL_THREADS", default_value_t = 1)]
    threads: usize,
    /// Log format.
    #[arg(long, env = "SIGNAL_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    let config = signal::Config {
        limits: signal::Limits {
            max_rooms_per_connection: args.max_rooms_per_connection,
            max_room_name_bytes: args.max_room_name_bytes,
            rate_per_sec: args.rate,
            rate_burst: args.burst,
        },
        max_message_bytes: args.max_message_bytes,
        max_connections: args.max_connections,
        ping_interval: Duration::from_secs(args.ping_secs.max(1)),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
        read_buffer_bytes: args.read_buffer_bytes.max(256),
        ..signal::Config::default()
    };
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        signal::serve(listener, config, shutdown_signal())
            .await
            .context("server failed")
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
