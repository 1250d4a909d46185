//! Helpers for the engine's integration tests: an in-process signal server on 127.0.0.1:0,
//! loopback-only call configs (no STUN, no non-loopback candidates), and waiting on stats.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use call::{
    AudioChoice, CallConfig, CallState, CallStats, Engine, Event, SpeakerChoice, VideoChoice,
};
use signal::HostedSignal;

pub fn hosted_signal() -> HostedSignal {
    HostedSignal::start(
        "127.0.0.1:0".parse().expect("address"),
        signal::Config::default(),
    )
    .expect("signal starts")
}

/// Waits until `server` counts `rooms` rooms with a member (its `GET /metrics`). A client's
/// `join` has no reply until a second member arrives, so this is how a test knows that an
/// engine is seated — and so will be the room's offerer — before a scripted peer joins.
pub fn wait_rooms(server: &HostedSignal, rooms: u64, timeout: Duration) -> bool {
    use std::io::{Read, Write};
    let count = || -> Option<u64> {
        let mut s = std::net::TcpStream::connect(server.addr()).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("signal_rooms "))
            .and_then(|v| v.trim().parse().ok())
    };
    wait_until(timeout, || count() == Some(rooms))
}

/// A loopback-only call with the test pattern and a tone at `tone_hz`.
pub fn config(url: &str, room: &str, tone_hz: f32) -> CallConfig {
    let mut c = CallConfig::new(url, room);
    c.video = VideoChoice::TestPattern;
    c.audio = AudioChoice::Tone(tone_hz);
    c.speaker = SpeakerChoice::Null;
    c.width = 320;
    c.height = 240;
    c.fps = 30;
    c.video_bitrate_bps = 600_000;
    c.ice_servers.clear();
    c.loopback_only = true;
    c
}

/// Polls `done` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two engines calling each other in `room` (tones 440 and `tone_b` Hz), and what each
/// reported until `done` held for both (or `timeout` passed: the bool says which).
pub fn two_engines(
    url: &str,
    room: &str,
    tone_b: f32,
    timeout: Duration,
    done: impl Fn(&Seen) -> bool,
) -> (Engine, Seen, Engine, Seen, bool) {
    two_engines_with(
        config(url, room, 440.0),
        config(url, room, tone_b),
        timeout,
        done,
    )
}

/// Two engines started with configs `a` and `b`, and what each reported until `done` held
/// for both (or `timeout` passed: the bool says which).
pub fn two_engines_with(
    a: CallConfig,
    b: CallConfig,
    timeout: Duration,
    done: impl Fn(&Seen) -> bool,
) -> (Engine, Seen, Engine, Seen, bool) {
    let a = Engine::start(a, None).expect("engine a");
    let b = Engine::start(b, None).expect("engine b");
    let (mut sa, mut sb) = (Seen::default(), Seen::default());
    let ok = watch_both(&a, &mut sa, &b, &mut sb, timeout, done);
    (a, sa, b, sb, ok)
}

/// Everything an engine reported while a test watched it.
#[derive(Default)]
pub struct Seen {
    pub states: Vec<CallState>,
    pub warnings: Vec<String>,
    pub stats: CallStats,
}

/// Drains `engine`'s events into `seen` until `done(seen)` or `timeout`; returns whether
/// `done` became true.
pub fn watch(
    engine: &Engine,
    seen: &mut Seen,
    timeout: Duration,
    mut done: impl FnMut(&Seen) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done(seen) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match engine
            .events()
            .recv_timeout(left.min(Duration::from_millis(100)))
        {
            Ok(Event::State(s)) => seen.states.push(s),
            Ok(Event::Warning(w)) => seen.warnings.push(w),
            Ok(Event::Stats(s)) => seen.stats = *s,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return done(seen),
        }
    }
}

/// Watches two engines in turn until both predicates hold or `timeout` passes.
pub fn watch_both(
    a: &Engine,
    sa: &mut Seen,
    b: &Engine,
    sb: &mut Seen,
    timeout: Duration,
    done: impl Fn(&Seen) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let da = watch(a, sa, Duration::from_millis(50), &done);
        let db = watch(b, sb, Duration::from_millis(50), &done);
        if da && db {
            return true;
        }
    }
    false
}

/// Media flowing both ways: video frames decoded with the sender's pattern, audio played.
pub fn media_flowing(min_frames: u64, min_audio: u64) -> impl Fn(&Seen) -> bool {
    move |s: &Seen| s.stats.pattern_frames >= min_frames && s.stats.audio_frames_played >= min_audio
}

/// Rewrites a relayed message (a man in the middle).
pub type Rewrite = fn(&str) -> String;

/// A faithful Rust copy of the seed server's behaviour: relay to the other member, `ready`
/// without `offerer` to both when the second joins. With `rewrite`, every relayed message is
/// passed through it first.
pub fn seed_relay(rewrite: Option<Rewrite>) -> (String, std::thread::JoinHandle<()>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    let handle = std::thread::spawn(move || {
        rt.block_on(async move {
            let (tx, _) = tokio::sync::broadcast::channel::<(usize, String)>(256);
            let mut id = 0;
            let joined = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            while let Ok((stream, _)) = listener.accept().await {
                id += 1;
                let me = id;
                let tx = tx.clone();
                let mut rx = tx.subscribe();
                let joined = joined.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                    loop {
                        tokio::select! {
                            msg = ws.next() => {
                                let Some(Ok(Message::Text(t))) = msg else { break };
                                let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                                if v["type"] == "join" {
                                    if joined.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 2 {
                                        let ready = serde_json::json!({"type": "ready", "room": v["room"]}).to_string();
                                        let _ = tx.send((0, ready));
                                    }
                                } else {
                                    let text = match rewrite {
                                        Some(f) => f(&t),
                                        None => t.to_string(),
                                    };
                                    let _ = tx.send((me, text));
                                }
                            }
                            Ok((from, text)) = rx.recv() => {
                                if from != me && ws.send(Message::Text(text.into())).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        });
    });
    (url, handle)
}
