//! `call-bench`: measurements of real duet calls on this machine, all on loopback.
//!
//! `calls` runs, for each size, a `signal` relay and two `duet call` processes (test pattern and
//! tone) for `--seconds`, samples each process's CPU from /proc, and reads their JSON reports
//! (setup time, glass-to-glass p50/p95, frames sent, decoded and dropped).
//!
//! `soak` makes `--calls` calls in a row inside this one process (two engines each, about one
//! second of media, hang up) and reports open fds, threads and RSS before and after.
//!
//! `lab` runs duet ↔ duet and Chromium ↔ Chromium calls side by side on impaired links in the
//! network lab (needs root); see the [`lab`] module.
//!
//! Results are printed as markdown rows for docs/benchmarks.md.

mod lab;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use call::{AudioChoice, CallConfig, CallState, Engine, Event, SpeakerChoice, VideoChoice};
use clap::{Parser, Subcommand};
use signal::HostedSignal;

#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Two `duet call` processes per size.
    Calls {
        /// The `duet` binary.
        #[arg(long, default_value = "target/release/duet")]
        duet: PathBuf,
        /// The `signal` binary.
        #[arg(long, default_value = "target/release/signal")]
        signal: PathBuf,
        /// Sizes to measure.
        #[arg(long, default_values_t = ["640x480".to_owned(), "1280x720".to_owned()])]
        sizes: Vec<String>,
        /// Seconds per call.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// Many calls in a row in one process.
    Soak {
        /// Number of calls.
        #[arg(long, default_value_t = 50)]
        calls: u32,
    },
    /// duet vs Chromium on impaired links in the network lab (as root).
    Lab {
        /// The `duet` binary.
        #[arg(long, default_value = "target/release/duet")]
        duet: PathBuf,
        /// The `signal` binary (its TURN server, for the symmetric condition's third call).
        #[arg(long, default_value = "target/release/signal")]
        signal: PathBuf,
        /// The `pattern_y4m` example (makes the Y4M if it is missing).
        #[arg(long, default_value = "target/debug/examples/pattern_y4m")]
        pattern_y4m: PathBuf,
        /// The test-pattern Y4M Chromium's fake camera plays.
        #[arg(long, default_value = "target/duet-pattern-320x240.y4m")]
        y4m: PathBuf,
        /// The Chromium peer script.
        #[arg(long, default_value = "tests/browser/lab-peer.js")]
        lab_peer_js: PathBuf,
        /// Where peers' logs and reports go.
        #[arg(long, default_value = "target/lab-bench")]
        out_dir: PathBuf,
        /// Seconds per call.
        #[arg(long, default_value_t = 24)]
        seconds: u32,
        /// Conditions to run (default: all).
        #[arg(long, value_enum, value_delimiter = ',')]
        conditions: Vec<lab::Condition>,
    },
}

fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn self_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Killer(Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_peer(
    duet: &Path,
    url: &str,
    room: &str,
    size: &str,
    tone: &str,
    seconds: u64,
    json: &Path,
) -> anyhow::Result<Child> {
    Command::new(duet)
        .args([
            "call",
            room,
            "--signal",
            url,
            "--loopback",
            "--video",
            "test",
            "--audio",
            tone,
            "--speaker",
            "null",
        ])
        .args([
            "--size",
            size,
            "--fps",
            "30",
            "--stats-every",
            "0",
            "--duration",
            &seconds.to_string(),
        ])
        .arg("--stats-json")
        .arg(json)
        .args([
            "--bitrate-kbps",
            if size == "640x480" { "1500" } else { "2500" },
        ])
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", duet.display()))
}

fn calls(duet: &Path, signal_bin: &Path, sizes: &[String], seconds: u64) -> anyhow::Result<()> {
    println!(
        "| size | side | setup ms | glass-to-glass p50 / p95 ms | fps sent / decoded | frames dropped | CPU % |"
    );
    println!("|---|---|---|---|---|---|---|");
    for size in sizes {
        let port = free_port()?;
        let _signal = Killer(
            Command::new(signal_bin)
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .stderr(Stdio::null())
                .spawn()
                .context("starting signal")?,
        );
        std::thread::sleep(Duration::from_millis(300));
        let url = format!("ws://127.0.0.1:{port}/");
        let dir = std::env::temp_dir();
        let ja = dir.join(format!("duet-bench-a-{port}.json"));
        let jb = dir.join(format!("duet-bench-b-{port}.json"));
        let a = Killer(spawn_peer(
            duet,
            &url,
            "bench",
            size,
            "tone:440",
            seconds + 1,
            &ja,
        )?);
        std::thread::sleep(Duration::from_millis(300));
        let b = Killer(spawn_peer(
            duet, &url, "bench", size, "tone:660", seconds, &jb,
        )?);
        // CPU over the middle of the call (skip start-up).
        std::thread::sleep(Duration::from_secs(3));
        let (pa, pb) = (a.0.id(), b.0.id());
        let (ca0, cb0, t0) = (
            proc_cpu_ticks(pa).unwrap_or(0),
            proc_cpu_ticks(pb).unwrap_or(0),
            Instant::now(),
        );
        std::thread::sleep(Duration::from_secs(seconds.saturating_sub(5).max(2)));
        let dt = t0.elapsed().as_secs_f64();
        let cpu = |c0: u64, pid: u32| {
            (proc_cpu_ticks(pid).unwrap_or(c0) - c0) as f64 / 100.0 / dt * 100.0
        };
        let (cpu_a, cpu_b) = (cpu(ca0, pa), cpu(cb0, pb));
        let mut a = a;
        let mut b = b;
        let _ = a.0.wait();
        let _ = b.0.wait();
        for (side, json, cpu) in [("first joiner", &ja, cpu_a), ("second joiner", &jb, cpu_b)] {
            let text = std::fs::read_to_string(json)
                .with_context(|| format!("reading {}", json.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)?;
            let s = &v["stats"];
            let elapsed = s["elapsed_s"].as_f64().unwrap_or(1.0);
            println!(
                "| {size} | {side} | {:.0} | {:.0} / {:.0} | {:.1} / {:.1} | {} | {:.0} |",
                s["setup_ms"].as_f64().unwrap_or(f64::NAN),
                s["glass_to_glass_p50_ms"].as_f64().unwrap_or(f64::NAN),
                s["glass_to_glass_p95_ms"].as_f64().unwrap_or(f64::NAN),
                s["frames_sent"].as_f64().unwrap_or(0.0) / elapsed,
                s["frames_decoded"].as_f64().unwrap_or(0.0) / elapsed,
                s["frames_dropped"],
                cpu
            );
            if v["success"] != true {
                bail!("{side} at {size} failed: {}", v["failure"]);
            }
        }
    }
    Ok(())
}

fn loopback_config(url: &str, room: &str, tone: f32) -> CallConfig {
    let mut c = CallConfig::new(url, room);
    c.video = VideoChoice::TestPattern;
    c.audio = AudioChoice::Tone(tone);
    c.speaker = SpeakerChoice::Null;
    c.width = 320;
    c.height = 240;
    c.video_bitrate_bps = 500_000;
    c.ice_servers.clear();
    c.loopback_only = true;
    c
}

/// Waits until `engine` has decoded at least one pattern frame.
fn wait_media(engine: &Engine, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Event::Stats(s)) = engine.events().recv_timeout(Duration::from_millis(100))
            && s.pattern_frames > 0
        {
            return true;
        }
    }
    false
}

fn soak(calls: u32) -> anyhow::Result<()> {
    let server = HostedSignal::start("127.0.0.1:0".parse()?, signal::Config::default())?;
    let url = server.local_url();
    // One warm-up call so lazily created pools and caches are not counted as growth.
    let run_one = |i: u32| -> anyhow::Result<()> {
        let room = format!("soak-{i}");
        let a = Engine::start(loopback_config(&url, &room, 440.0), None)?;
        let b = Engine::start(loopback_config(&url, &room, 660.0), None)?;
        let ok = wait_media(&a, Duration::from_secs(15)) && wait_media(&b, Duration::from_secs(15));
        let sa = a.hang_up();
        let sb = b.hang_up();
        if !ok || sa != CallState::Ended || sb != CallState::Ended {
            bail!("call {i} failed: media={ok} a={sa:?} b={sb:?}");
        }
        Ok(())
    };
    run_one(0)?;
    std::thread::sleep(Duration::from_millis(500));
    let (fds0, threads0, rss0) = (open_fds(), self_status("Threads:"), self_status("VmRSS:"));
    let t0 = Instant::now();
    for i in 1..=calls {
        run_one(i)?;
        if i % 10 == 0 {
            eprintln!(
                "after {i} calls: fds {} threads {} rss {} KiB",
                open_fds(),
                self_status("Threads:"),
                self_status("VmRSS:")
            );
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let (fds1, threads1, rss1) = (open_fds(), self_status("Threads:"), self_status("VmRSS:"));
    println!(
        "| calls | seconds | open fds before → after | threads before → after | RSS KiB before → after | RSS growth |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {calls} | {:.0} | {fds0} → {fds1} | {threads0} → {threads1} | {rss0} → {rss1} | {:+.1} MB |",
        t0.elapsed().as_secs_f64(),
        (rss1 as f64 - rss0 as f64) / 1024.0
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Args::parse().what {
        What::Calls {
            duet,
            signal,
            sizes,
            seconds,
        } => calls(&duet, &signal, &sizes, seconds),
        What::Soak { calls } => soak(calls),
        What::Lab {
            duet,
            signal,
            pattern_y4m,
            y4m,
            lab_peer_js,
            out_dir,
            seconds,
            conditions,
        } => lab::run(&lab::Options {
            duet: std::path::absolute(duet)?,
            signal: std::path::absolute(signal)?,
            pattern_y4m,
            y4m: std::path::absolute(y4m)?,
            lab_peer_js: std::path::absolute(lab_peer_js)?,
            out_dir: std::path::absolute(out_dir)?,
            seconds,
            conditions: if conditions.is_empty() {
                lab::Condition::ALL.to_vec()
            } else {
                conditions
            },
        }),
    }
}
