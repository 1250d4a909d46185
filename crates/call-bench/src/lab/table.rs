//! The Markdown table of one condition: a row per call and direction, and a line comparing
//! duet's frames with Chromium's.

use std::fmt::Write as _;

use super::metrics::{
    PeerRun, Sample, fps_after, max_between, mean_between, seconds_until_below,
    seconds_until_stays_below,
};

/// Seconds after the call's start from which it counts as settled (fps, utilisation).
pub const SETTLED_S: f64 = 6.0;
/// Latency the step's recovery is measured against, ms.
pub const LATENCY_LIMIT_MS: f64 = 250.0;

/// The step of the step condition, on the call's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// When the cap went down, seconds.
    pub down_s: f64,
    /// When it went back up, seconds.
    pub up_s: f64,
    /// The low cap, kbit/s.
    pub low_kbit: u32,
}

/// What the table needs to know about a condition's links.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Links {
    /// A constant cap on both homes, kbit/s.
    pub cap_kbit: Option<u32>,
    /// The step, if this condition has one.
    pub step: Option<Step>,
}

/// One call of a condition: its label and its two peers (A, B).
#[derive(Debug, Clone)]
pub struct CallRun {
    /// "duet ↔ duet".
    pub label: String,
    /// The peer in home A.
    pub a: PeerRun,
    /// The peer in home B.
    pub b: PeerRun,
}

const HEADER: &str = "| call | direction | frames decoded | fps after 6 s | freezes (n / total ms) | glass-to-glass p50 / p95 ms | jitter buffer ms | step: encoder / target < cap after s | step: RTT max ms / < 250 ms after s | link utilisation |\n|---|---|---|---|---|---|---|---|---|---|\n";

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.digits$}"))
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "never".to_owned(), |v| format!("{v:.1}"))
}

/// The utilisation of the capped link by `receiver`'s incoming video.
fn utilisation(receiver: &[Sample], links: &Links) -> Option<f64> {
    let (from, to, cap_kbit) = match (links.step, links.cap_kbit) {
        // The low phase, after two seconds to adapt.
        (Some(step), _) => (step.down_s + 2.0, step.up_s, step.low_kbit),
        (None, Some(cap)) => (SETTLED_S, f64::MAX, cap),
        (None, None) => return None,
    };
    let bps = mean_between(receiver, |s| s.recv_video_bps, from, to)?;
    Some(bps / (f64::from(cap_kbit) * 1000.0))
}

/// One row: `sender`'s video as `receiver` decoded it.
fn row(out: &mut String, call: &str, dir: &str, sender: &PeerRun, receiver: &PeerRun, l: &Links) {
    // The stamps in Chromium's picture are the Y4M file's, not capture times.
    let stamped = (sender.kind == "duet").then_some(receiver.glass_to_glass_ms);
    let g2g = stamped.flatten().map_or_else(
        || "—".to_owned(),
        |(p50, p95)| format!("{p50:.0} / {p95:.0}"),
    );
    let (adapt, latency) = match l.step {
        Some(step) => {
            let cap = f64::from(step.low_kbit) * 1000.0;
            let s = &sender.samples;
            let enc = seconds_until_below(s, |x| x.encoder_bps, step.down_s, step.up_s, cap);
            let target = seconds_until_below(s, |x| x.target_bps, step.down_s, step.up_s, cap);
            let rtt = |x: &Sample| x.rtt_ms;
            let max = max_between(s, rtt, step.down_s, step.up_s);
            let back = seconds_until_stays_below(s, rtt, step.down_s, step.up_s, LATENCY_LIMIT_MS);
            (
                format!("{} / {}", secs(enc), secs(target)),
                format!("{} / {}", opt(max, 0), secs(back)),
            )
        }
        None => ("—".to_owned(), "—".to_owned()),
    };
    let util = utilisation(&receiver.samples, l)
        .map_or_else(|| "—".to_owned(), |u| format!("{:.0} %", u * 100.0));
    let status = if receiver.ok {
        String::new()
    } else {
        format!(
            " (failed: {})",
            receiver.failure.as_deref().unwrap_or("?").replace('|', "/")
        )
    };
    let _ = writeln!(
        out,
        "| {call} | {dir} | {:.0}{status} | {} | {:.0} / {:.0} | {g2g} | {} | {adapt} | {latency} | {util} |",
        receiver.frames_decoded,
        opt(fps_after(&receiver.samples, SETTLED_S), 1),
        receiver.freeze_count,
        receiver.freeze_total_ms,
        opt(receiver.jitter_buffer_ms, 0),
    );
}

/// The table of one condition, and under it the duet/Chromium frame ratios and the details.
pub fn render(title: &str, links: &Links, calls: &[CallRun]) -> String {
    let mut out = format!("#### {title}\n\n{HEADER}");
    for c in calls {
        let (ka, kb) = (c.a.kind, c.b.kind);
        row(
            &mut out,
            &c.label,
            &format!("{ka} A → {kb} B"),
            &c.a,
            &c.b,
            links,
        );
        row(
            &mut out,
            &c.label,
            &format!("{kb} B → {ka} A"),
            &c.b,
            &c.a,
            links,
        );
    }
    let duet = calls
        .iter()
        .find(|c| c.a.kind == "duet" && c.b.kind == "duet");
    let chromium = calls
        .iter()
        .find(|c| c.a.kind == "Chromium" && c.b.kind == "Chromium");
    if let (Some(d), Some(c)) = (duet, chromium) {
        let ratio = |x: f64, y: f64| {
            if y > 0.0 {
                format!("{:.2}×", x / y)
            } else {
                "—".to_owned()
            }
        };
        let _ = writeln!(
            out,
            "\nduet / Chromium frames decoded: A → B {}, B → A {}.",
            ratio(d.b.frames_decoded, c.b.frames_decoded),
            ratio(d.a.frames_decoded, c.a.frames_decoded)
        );
    }
    out.push('\n');
    for c in calls {
        let _ = writeln!(out, "- {}: A {}; B {}.", c.label, c.a.detail, c.b.detail);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(kind: &'static str, frames: f64) -> PeerRun {
        PeerRun {
            kind,
            ok: true,
            frames_decoded: frames,
            samples: (0..24)
                .map(|t| Sample {
                    t_s: f64::from(t),
                    frames_decoded: f64::from(t) * frames / 24.0,
                    recv_video_bps: Some(400e3),
                    encoder_bps: Some(if t < 10 { 900e3 } else { 450e3 }),
                    target_bps: Some(if t < 9 { 1e6 } else { 480e3 }),
                    rtt_ms: Some(if t < 12 { 300.0 } else { 40.0 }),
                })
                .collect(),
            ..PeerRun::default()
        }
    }

    #[test]
    fn a_step_table() {
        let links = Links {
            cap_kbit: None,
            step: Some(Step {
                down_s: 8.0,
                up_s: 16.0,
                low_kbit: 500,
            }),
        };
        let calls = [
            CallRun {
                label: "duet ↔ duet".into(),
                a: peer("duet", 450.0),
                b: peer("duet", 300.0),
            },
            CallRun {
                label: "Chromium ↔ Chromium".into(),
                a: peer("Chromium", 500.0),
                b: peer("Chromium", 600.0),
            },
        ];
        let t = render("step", &links, &calls);
        assert!(t.contains("| duet ↔ duet | duet A → duet B | 300 |"), "{t}");
        assert!(t.contains("| 2.0 / 1.0 | 300 / 4.0 | 80 % |"), "{t}");
        assert!(t.contains("A → B 0.50×, B → A 0.90×"), "{t}");
    }
}
