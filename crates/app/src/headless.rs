//! The headless peer behind `duet call`: the same engine without a window. Prints one line per
//! state change, warning and (every few seconds) stats; writes a JSON report; succeeds only if
//! the call connected and media arrived.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use call::{CallConfig, CallState, CallStats, Engine, Event};
use signal::HostedSignal;

/// Options of one headless run.
#[derive(Debug, Clone)]
pub struct HeadlessOptions {
    /// The call.
    pub config: CallConfig,
    /// Host a signal server on this address first (and connect to it).
    pub host: Option<std::net::SocketAddr>,
    /// Stop after this long (from start); `None` = until the call ends.
    pub duration: Option<Duration>,
    /// Where to write the JSON report.
    pub stats_json: Option<PathBuf>,
    /// Print a stats line every this many seconds (0 = never).
    pub stats_every_s: u64,
}

/// What a headless run reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether the call connected and media arrived.
    pub success: bool,
    /// Why not, when `success` is false.
    pub failure: Option<String>,
    /// The last state seen.
    pub final_state: CallState,
    /// Whether the call reached `connected` at least once.
    pub connected: bool,
    /// How many times a peer left.
    pub peers_left: u32,
    /// The signal URL used.
    pub signal_url: String,
    /// The room.
    pub room: String,
    /// The last stats snapshot (cumulative counters, and the last second's rates).
    pub stats: CallStats,
    /// Warnings seen.
    pub warnings: Vec<String>,
    /// Every stats snapshot of the run, oldest first (at most [`HISTORY_LIMIT`]), so a test or
    /// benchmark can see how the call evolved: the estimate after a link changed, say.
    pub history: Vec<CallStats>,
}

/// Most stats snapshots a [`Report`] keeps (one a second: 20 minutes).
pub const HISTORY_LIMIT: usize = 1200;

/// Runs a headless call; `print` receives progress lines.
pub fn run(options: HeadlessOptions, mut print: impl FnMut(&str)) -> Report {
    let start = Instant::now();
    let line = |print: &mut dyn FnMut(&str), text: &str| {
        print(&format!("[{:>6.1}s] {text}", start.elapsed().as_secs_f64()));
    };
    let mut config = options.config.clone();
    let _hosted = match options.host {
        Some(addr) => match HostedSignal::start(addr, signal::Config::default()) {
            Ok(h) => {
                config.signal_url = h.local_url();
                line(&mut print, &format!("hosting signal on {}", h.addr()));
                Some(h)
            }
            Err(e) => return failed_report(&config, e.to_string()),
        },
        None => None,
    };
    line(
        &mut print,
        &format!("joining room {:?} on {}", config.room, config.signal_url),
    );
    let engine = match Engine::start(config.clone(), None) {
        Ok(e) => e,
        Err(e) => return failed_report(&config, e.to_string()),
    };
    let mut report = Report {
        success: false,
        failure: None,
        final_state: CallState::Joining,
        connected: false,
        peers_left: 0,
        signal_url: config.signal_url.clone(),
        room: config.room.clone(),
        stats: CallStats::default(),
        warnings: Vec::new(),
        history: Vec::new(),
    };
    let mut last_print = Instant::now();
    loop {
        if options.duration.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
        let event = match engine.events().recv_timeout(Duration::from_millis(200)) {
            Ok(e) => e,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        match event {
            Event::State(state) => {
                line(&mut print, &describe(&state, &config.room));
                match &state {
                    CallState::Connected => report.connected = true,
                    CallState::PeerLeft => report.peers_left += 1,
                    _ => {}
                }
                let done = matches!(state, CallState::Failed(_) | CallState::Ended);
                report.final_state = state;
                if done {
                    break;
                }
            }
            Event::Warning(w) => {
                line(&mut print, &format!("warning: {w}"));
                report.warnings.push(w);
            }
            Event::Stats(stats) => {
                if options.stats_every_s > 0
                    && last_print.elapsed() >= Duration::from_secs(options.stats_every_s)
                {
                    last_print = Instant::now();
                    line(&mut print, &summary(&stats));
                }
                // After the peer leaves, the per-call numbers restart; keep the last call's.
                let setup_ms = stats.setup_ms.or(report.stats.setup_ms);
                if report.history.len() >= HISTORY_LIMIT {
                    report.history.remove(0);
                }
                report.history.push((*stats).clone());
                report.stats = *stats;
                report.stats.setup_ms = setup_ms;
            }
        }
    }
    if !matches!(report.final_state, CallState::Failed(_)) {
        // Drain the stats that were already sent before hanging up.
        while let Ok(event) = engine.events().try_recv() {
            if let Event::Stats(stats) = event {
                report.stats = *stats;
            }
        }
        let state = engine.hang_up();
        if !matches!(report.final_state, CallState::Failed(_)) && state != CallState::Ended {
            report.final_state = state;
        }
    }
    let media_arrived = report.stats.frames_decoded > 0 || report.stats.audio_frames_played > 0;
    report.failure = match &report.final_state {
        CallState::Failed(reason) => Some(reason.clone()),
        _ if !report.connected => {
            Some("nobody joined the room, or the call never connected".into())
        }
        _ if !media_arrived => Some("the call connected but no media arrived".into()),
        _ => None,
    };
    report.success = report.failure.is_none();
    line(&mut print, &summary(&report.stats));
    if let Some(path) = &options.stats_json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => {
                if let Err(e) = std::fs::write(path, json) {
                    line(&mut print, &format!("cannot write {}: {e}", path.display()));
                }
            }
            Err(e) => line(&mut print, &format!("cannot encode the report: {e}")),
        }
    }
    report
}

fn failed_report(config: &CallConfig, failure: String) -> Report {
    Report {
        success: false,
        failure: Some(failure.clone()),
        final_state: CallState::Failed(failure),
        connected: false,
        peers_left: 0,
        signal_url: config.signal_url.clone(),
        room: config.room.clone(),
        stats: CallStats::default(),
        warnings: Vec::new(),
        history: Vec::new(),
    }
}

fn describe(state: &CallState, room: &str) -> String {
    match state {
        CallState::Joining => "connecting to the signal server".into(),
        CallState::WaitingForPeer => format!("waiting for someone to join {room}"),
        CallState::Connecting => "someone joined; connecting".into(),
        CallState::Connected => "connected".into(),
        CallState::Reconnecting => "the connection was lost; reconnecting".into(),
        CallState::PeerLeft => "the other person left".into(),
        CallState::Ended => "hung up".into(),
        CallState::Failed(reason) => format!("failed: {reason}"),
    }
}

fn summary(s: &CallStats) -> String {
    format!(
        "video sent {} frames ({:.0} kbit/s, {:.0} fps, {}x{}), decoded {} ({:.0} fps, {}x{}), audio played {} (concealed {}), rtt {}, setup {}, glass-to-glass p50 {}",
        s.frames_sent,
        s.send_video_bps / 1000.0,
        s.send_fps,
        s.send_resolution.0,
        s.send_resolution.1,
        s.frames_decoded,
        s.recv_fps,
        s.recv_resolution.0,
        s.recv_resolution.1,
        s.audio_frames_played,
        s.audio_frames_concealed,
        s.rtt_ms.map_or("-".into(), |v| format!("{v:.1} ms")),
        s.setup_ms.map_or("-".into(), |v| format!("{v:.0} ms")),
        s.glass_to_glass_p50_ms
            .map_or("-".into(), |v| format!("{v:.0} ms")),
    )
}
