//! `duet`: the desktop app and, as `duet call`, the headless peer. This file only parses
//! arguments and hands over to the library (`duet::run_window`, `duet::headless`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use call::config::parse_size;
use call::{AudioChoice, CallConfig, IceServer, SpeakerChoice, VideoChoice};
use clap::{Args, Parser, Subcommand};
use duet::headless::{self, HeadlessOptions};

/// duet: video calls between two people. Without arguments, opens the start screen.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    window: WindowArgs,
}

/// Flags of the desktop window.
#[derive(Debug, Args)]
struct WindowArgs {
    /// Join this room right away (skips the start screen).
    #[arg(long, value_name = "ROOM")]
    join: Option<String>,
    /// Signal server URL for --join (default: host one on this computer).
    #[arg(long, value_name = "URL", requires = "join")]
    signal: Option<String>,
    /// Video source for --join: test, camera, camera:N or none (default: the saved setting).
    #[arg(long, requires = "join", value_parser = |s: &str| s.parse::<VideoChoice>())]
    video: Option<VideoChoice>,
    /// Audio source for --join: tone, tone:HZ, warble:HZ, mic, mic:NAME or none.
    #[arg(long, requires = "join", value_parser = |s: &str| s.parse::<AudioChoice>())]
    audio: Option<AudioChoice>,
    /// Audio output for --join: default, device:NAME or null.
    #[arg(long, requires = "join", value_parser = |s: &str| s.parse::<SpeakerChoice>())]
    speaker: Option<SpeakerChoice>,
    /// Video size WIDTHxHEIGHT for --join.
    #[arg(long, requires = "join", value_parser = |s: &str| parse_size(s))]
    size: Option<(u32, u32)>,
    /// Use only loopback addresses for media and no STUN/TURN (both peers on this machine).
    #[arg(long)]
    loopback: bool,
    /// Where "Host on this computer" listens (a free port of that address if the port is taken).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    host: SocketAddr,
    /// Settings directory (default: the platform's config directory).
    #[arg(long, value_name = "DIR", env = "DUET_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// A call without a window: for tests, servers, bots and benchmarks.
    Call(CallArgs),
}

#[derive(Debug, Args)]
struct CallArgs {
    /// Room to join.
    room: String,
    /// Signal server URL.
    #[arg(
        long,
        env = "DUET_SIGNAL",
        default_value = "ws://127.0.0.1:8080/",
        conflicts_with = "host"
    )]
    signal: String,
    /// Host a signal server on this address and join through it.
    #[arg(long)]
    host: Option<SocketAddr>,
    /// Video source: test, camera, camera:N or none.
    #[arg(long, default_value = "test", value_parser = |s: &str| s.parse::<VideoChoice>())]
    video: VideoChoice,
    /// Audio source: tone, tone:HZ, warble:HZ (a swept tone, for echo tests), bursts:HZ (timed
    /// bursts: the other side reports mouth-to-ear latency), mic, mic:NAME or none.
    #[arg(long, default_value = "tone", value_parser = |s: &str| s.parse::<AudioChoice>())]
    audio: AudioChoice,
    /// Audio output: default, device:NAME or null.
    #[arg(long, default_value = "null", value_parser = |s: &str| s.parse::<SpeakerChoice>())]
    speaker: SpeakerChoice,
    /// Video size WIDTHxHEIGHT.
    #[arg(long, default_value = "640x480", value_parser = |s: &str| parse_size(s))]
    size: (u32, u32),
    /// Frames per second.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=60))]
    fps: u32,
    /// Video bitrate in kbit/s.
    #[arg(long, default_value_t = 1500)]
    bitrate_kbps: u32,
    /// Stop after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Write a JSON report here at the end.
    #[arg(long)]
    stats_json: Option<PathBuf>,
    /// STUN/TURN server URL (repeatable), used besides the ones the signal server hands out.
    #[arg(long = "ice-server")]
    ice_servers: Vec<String>,
    /// TURN user name for the --ice-server entries.
    #[arg(long, default_value = "")]
    ice_username: String,
    /// TURN password for the --ice-server entries.
    #[arg(long, default_value = "")]
    ice_credential: String,
    /// Use only loopback addresses for media (both peers on this machine; tests).
    #[arg(long)]
    loopback: bool,
    /// Print a stats line every N seconds (0 = only at the end).
    #[arg(long, default_value_t = 5)]
    stats_every: u64,
    /// Echo cancellation, noise suppression and gain control on the microphone.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    audio_processing: String,
    /// Video codecs to offer and accept, preferred first: h264, vp8, or both (h264,vp8).
    #[arg(long, default_value = "h264,vp8", value_parser = |s: &str| call::config::parse_video_codecs(s))]
    video_codecs: ::std::vec::Vec<media::VideoCodec>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,webrtc=error,rtc=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Some(Cmd::Call(args)) => run_call(args),
        None => run_window(cli.window),
    }
}

fn run_window(args: WindowArgs) -> ExitCode {
    let launch = args.join.map(|room| duet::LaunchCall {
        room,
        signal_url: args.signal,
        video: args.video,
        audio: args.audio,
        speaker: args.speaker,
        size: args.size,
    });
    let options = duet::AppOptions {
        config_dir: args.config_dir.or_else(duet::settings::default_config_dir),
        loopback_only: args.loopback,
        host_ip: args.host.ip(),
        host_port: args.host.port(),
        launch,
        screenshot: duet::screenshot::ScreenshotPlan::from_env(),
        ..duet::AppOptions::default()
    };
    match duet::run_window(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_call(args: CallArgs) -> ExitCode {
    let mut config = CallConfig::new(args.signal, args.room);
    config.video = args.video;
    config.audio = args.audio;
    config.speaker = args.speaker;
    (config.width, config.height) = args.size;
    config.fps = args.fps;
    config.video_bitrate_bps = args.bitrate_kbps.saturating_mul(1000);
    config.loopback_only = args.loopback;
    config.audio_processing = args.audio_processing == "on";
    config.video_codecs = args.video_codecs;
    if !args.ice_servers.is_empty() {
        config.ice_servers = vec![IceServer {
            urls: args.ice_servers,
            username: args.ice_username,
            credential: args.ice_credential,
        }];
    } else if args.loopback {
        config.ice_servers.clear();
    }
    let options = HeadlessOptions {
        config,
        host: args.host,
        duration: args
            .duration
            .filter(|d| *d > 0.0)
            .map(Duration::from_secs_f64),
        stats_json: args.stats_json,
        stats_every_s: args.stats_every,
    };
    let report = headless::run(options, |line| println!("{line}"));
    if report.success {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "duet call: {}",
            report.failure.as_deref().unwrap_or("failed")
        );
        ExitCode::FAILURE
    }
}
