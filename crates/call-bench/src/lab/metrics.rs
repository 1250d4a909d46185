//! What one peer of a lab call saw, in one shape for both kinds of peer: `duet call`'s JSON
//! report and the getStats lines of `tests/browser/lab-peer.js` are read into a [`PeerRun`]
//! whose per-second [`Sample`]s sit on the call's clock (seconds since the call's peers were
//! started), and the pure measures of the table are computed from those.

use serde_json::Value;

/// One second of one peer's numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Seconds since the call started (its peers were spawned).
    pub t_s: f64,
    /// Remote video frames decoded so far.
    pub frames_decoded: f64,
    /// Remote video received over the last second (RTP payload), bits/s.
    pub recv_video_bps: Option<f64>,
    /// What this peer's video encoder was asked for, bits/s (duet: `encoder_bitrate_bps`;
    /// Chromium: the outbound stream's `targetBitrate`).
    pub encoder_bps: Option<f64>,
    /// What this peer's congestion control allows (duet: `target_bitrate_bps`; Chromium: the
    /// candidate pair's `availableOutgoingBitrate`).
    pub target_bps: Option<f64>,
    /// Round-trip time of the selected candidate pair, ms.
    pub rtt_ms: Option<f64>,
}

/// What one peer of a call reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerRun {
    /// "duet", "Chromium".
    pub kind: &'static str,
    /// Whether the peer ran to its end and decoded remote video.
    pub ok: bool,
    /// Why not, when `ok` is false.
    pub failure: Option<String>,
    /// Once a second, oldest first.
    pub samples: Vec<Sample>,
    /// Remote video frames decoded over the call.
    pub frames_decoded: f64,
    /// Freezes of the remote video (the browsers' definition) and their total length.
    pub freeze_count: f64,
    /// See `freeze_count`.
    pub freeze_total_ms: f64,
    /// Glass-to-glass p50 and p95 over the call (duet's test-pattern stamps only).
    pub glass_to_glass_ms: Option<(f64, f64)>,
    /// Mean jitter-buffer delay of emitted frames (Chromium only), ms.
    pub jitter_buffer_ms: Option<f64>,
    /// Codec, selected candidate pair and call setup (second join or `ready` → first remote
    /// frame decoded), for the notes.
    pub detail: String,
}

/// `"; setup 412 ms"`, or nothing when unknown.
fn setup_note(ms: Option<f64>) -> String {
    ms.map_or_else(String::new, |ms| format!("; setup {ms:.0} ms"))
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// Chromium's call setup as the page saw it: `ready` → first remote frame decoded, ms.
fn chromium_setup_ms(line: &Value) -> Option<f64> {
    let t = &line["final"]["timings"];
    Some(num(t, "firstFrameDecoded")? - num(t, "ready")?)
}

/// duet's last snapshot that still had a remote peer (the final one may come after it left).
fn last_connected(report: &Value) -> Option<&Value> {
    report["history"]
        .as_array()?
        .iter()
        .rev()
        .find(|s| s["codecs"].as_str().is_some_and(|c| !c.is_empty()))
}

impl PeerRun {
    /// A failed peer (it could not be started, or wrote nothing readable).
    pub fn failed(kind: &'static str, why: impl Into<String>) -> Self {
        Self {
            kind,
            failure: Some(why.into()),
            ..Self::default()
        }
    }

    /// Reads `duet call --stats-json`'s report; `started_s` is when that peer was spawned on
    /// the call's clock (its `elapsed_s` counts from then, give or take process start-up).
    pub fn from_duet(report: &Value, started_s: f64) -> Self {
        let stats = &report["stats"];
        let samples = report["history"]
            .as_array()
            .map(|h| {
                h.iter()
                    .map(|s| Sample {
                        t_s: started_s + num(s, "elapsed_s").unwrap_or(0.0),
                        frames_decoded: num(s, "frames_decoded").unwrap_or(0.0),
                        recv_video_bps: num(s, "recv_video_bps"),
                        encoder_bps: num(s, "encoder_bitrate_bps"),
                        target_bps: num(s, "target_bitrate_bps"),
                        rtt_ms: num(s, "rtt_ms"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let g2g = num(stats, "glass_to_glass_p50_ms").zip(num(stats, "glass_to_glass_p95_ms"));
        let ok = report["success"] == true;
        Self {
            kind: "duet",
            ok,
            failure: report["failure"].as_str().map(str::to_owned),
            samples,
            frames_decoded: num(stats, "frames_decoded").unwrap_or(0.0),
            freeze_count: num(stats, "freeze_count").unwrap_or(0.0),
            freeze_total_ms: num(stats, "freeze_total_ms").unwrap_or(0.0),
            glass_to_glass_ms: g2g,
            jitter_buffer_ms: None,
            detail: last_connected(report).map_or_else(
                || "never connected".to_owned(),
                |s| {
                    format!(
                        "{}; remote {}{}",
                        s["codecs"].as_str().unwrap_or("?"),
                        s["ice_remote_candidate"].as_str().unwrap_or("?"),
                        setup_note(num(stats, "setup_ms"))
                    )
                },
            ),
        }
    }

    /// Reads the JSON line `lab-peer.js` prints; `call_start_ms` is the call's start as Unix
    /// milliseconds (the samples carry Unix milliseconds in `at`).
    pub fn from_chromium(line: &Value, call_start_ms: f64) -> Self {
        let history = line["history"].as_array().cloned().unwrap_or_default();
        let mut samples = Vec::with_capacity(history.len());
        let mut prev: Option<(f64, f64)> = None;
        // Only samples with the inbound stream: before the call connects and after the other
        // side leaves (the page then drops its peer connection) there is none.
        for s in history.iter().filter(|s| s["in"].is_object()) {
            let at = num(s, "at").unwrap_or(0.0);
            let input = &s["in"];
            let bytes = num(input, "bytesReceived");
            let recv_video_bps = match (prev, bytes) {
                (Some((t0, b0)), Some(b1)) if at > t0 && b1 >= b0 => {
                    Some((b1 - b0) * 8.0 / ((at - t0) / 1000.0))
                }
                _ => None,
            };
            if let Some(b) = bytes {
                prev = Some((at, b));
            }
            let target = num(&s["pair"], "availableOutgoingBitrate").filter(|v| *v > 0.0);
            samples.push(Sample {
                t_s: (at - call_start_ms) / 1000.0,
                frames_decoded: num(input, "framesDecoded").unwrap_or(0.0),
                recv_video_bps,
                encoder_bps: num(&s["out"], "targetBitrate").filter(|v| *v > 0.0),
                target_bps: target,
                rtt_ms: num(&s["pair"], "currentRoundTripTime").map(|r| r * 1000.0),
            });
        }
        // The last sample that still had the inbound stream (the page drops its peer
        // connection when the other side leaves first).
        let last_in = history
            .iter()
            .rev()
            .map(|s| &s["in"])
            .find(|i| i.is_object());
        let ok = line["ok"] == true;
        let failure = if ok {
            None
        } else {
            Some(
                line["error"]
                    .as_str()
                    .unwrap_or("no remote video decoded")
                    .to_owned(),
            )
        };
        let Some(input) = last_in else {
            return Self {
                kind: "Chromium",
                ok: false,
                failure,
                samples,
                ..Self::default()
            };
        };
        let emitted = num(input, "jitterBufferEmittedCount").unwrap_or(0.0);
        let remote = history
            .iter()
            .rev()
            .find_map(|s| s["pair"]["remote"].as_str())
            .unwrap_or("?");
        Self {
            kind: "Chromium",
            ok,
            failure,
            samples,
            frames_decoded: num(input, "framesDecoded").unwrap_or(0.0),
            freeze_count: num(input, "freezeCount").unwrap_or(0.0),
            freeze_total_ms: num(input, "totalFreezesDuration").unwrap_or(0.0) * 1000.0,
            glass_to_glass_ms: None,
            jitter_buffer_ms: (emitted > 0.0)
                .then(|| num(input, "jitterBufferDelay").unwrap_or(0.0) / emitted * 1000.0),
            detail: format!(
                "{} {}x{}; remote {remote}{}",
                input["codec"].as_str().unwrap_or("?"),
                num(input, "frameWidth").unwrap_or(0.0),
                num(input, "frameHeight").unwrap_or(0.0),
                setup_note(chromium_setup_ms(line)),
            ),
        }
    }
}

/// Frames decoded per second from the first sample at or after `from_s` to the last sample.
pub fn fps_after(samples: &[Sample], from_s: f64) -> Option<f64> {
    let start = samples.iter().find(|s| s.t_s >= from_s)?;
    let end = samples.last()?;
    let dt = end.t_s - start.t_s;
    (dt > 0.0).then(|| (end.frames_decoded - start.frames_decoded) / dt)
}

/// The mean of `value` over samples with `from_s <= t_s < to_s` that have it.
pub fn mean_between(
    samples: &[Sample],
    value: impl Fn(&Sample) -> Option<f64>,
    from_s: f64,
    to_s: f64,
) -> Option<f64> {
    let v: Vec<f64> = samples
        .iter()
        .filter(|s| s.t_s >= from_s && s.t_s < to_s)
        .filter_map(value)
        .collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Seconds from `from_s` to the first sample at or after it (and before `to_s`) whose `value`
/// is below `limit`; `None` if none is.
pub fn seconds_until_below(
    samples: &[Sample],
    value: impl Fn(&Sample) -> Option<f64>,
    from_s: f64,
    to_s: f64,
    limit: f64,
) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s.t_s >= from_s && s.t_s < to_s)
        .find(|s| value(s).is_some_and(|v| v < limit))
        .map(|s| (s.t_s - from_s).max(0.0))
}

/// Seconds from `from_s` until `value` stays below `limit` for the rest of `[from_s, to_s)`
/// (0 when it never reached the limit; `None` when it is still at or above it at the end).
pub fn seconds_until_stays_below(
    samples: &[Sample],
    value: impl Fn(&Sample) -> Option<f64>,
    from_s: f64,
    to_s: f64,
    limit: f64,
) -> Option<f64> {
    let window: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.t_s >= from_s && s.t_s < to_s)
        .filter_map(|s| value(s).map(|v| (s.t_s, v)))
        .collect();
    match window.iter().rposition(|(_, v)| *v >= limit) {
        None => Some(0.0),
        Some(i) => window.get(i + 1).map(|(t, _)| t - from_s),
    }
}

/// The largest `value` over samples with `from_s <= t_s < to_s`.
pub fn max_between(
    samples: &[Sample],
    value: impl Fn(&Sample) -> Option<f64>,
    from_s: f64,
    to_s: f64,
) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s.t_s >= from_s && s.t_s < to_s)
        .filter_map(value)
        .reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn samples(values: &[(f64, f64)]) -> Vec<Sample> {
        values
            .iter()
            .map(|&(t_s, v)| Sample {
                t_s,
                frames_decoded: t_s * 30.0,
                encoder_bps: Some(v),
                ..Sample::default()
            })
            .collect()
    }

    #[test]
    fn times_and_rates_from_samples() {
        let s = samples(&[
            (7.0, 900e3),
            (8.5, 800e3),
            (9.5, 600e3),
            (10.5, 450e3),
            (11.5, 520e3),
            (12.5, 400e3),
        ]);
        let enc = |s: &Sample| s.encoder_bps;
        assert_eq!(seconds_until_below(&s, enc, 8.0, 16.0, 500e3), Some(2.5));
        assert_eq!(seconds_until_below(&s, enc, 8.0, 16.0, 300e3), None);
        assert_eq!(
            seconds_until_stays_below(&s, enc, 8.0, 16.0, 500e3),
            Some(4.5)
        );
        assert_eq!(
            seconds_until_stays_below(&s, enc, 8.0, 16.0, 1e9),
            Some(0.0)
        );
        assert_eq!(seconds_until_stays_below(&s, enc, 8.0, 16.0, 400e3), None);
        assert_eq!(max_between(&s, enc, 9.0, 12.0), Some(600e3));
        assert_eq!(mean_between(&s, enc, 10.0, 12.0), Some(485e3));
        let fps = fps_after(&s, 8.0).unwrap_or(0.0);
        assert!((fps - 30.0).abs() < 1e-9);
    }

    #[test]
    fn reads_a_duet_report() {
        let report = json!({
            "success": true,
            "failure": null,
            "stats": {"frames_decoded": 600, "freeze_count": 2, "freeze_total_ms": 900.0,
                      "glass_to_glass_p50_ms": 40.0, "glass_to_glass_p95_ms": 80.0,
                      "codecs": "H264/Opus", "ice_remote_candidate": "srflx 203.0.113.101:20001"},
            "history": [
                {"elapsed_s": 1.0, "frames_decoded": 0, "recv_video_bps": 0.0,
                 "encoder_bitrate_bps": 300000.0, "target_bitrate_bps": 400000.0, "rtt_ms": null},
                {"elapsed_s": 2.0, "frames_decoded": 30, "recv_video_bps": 250000.0,
                 "encoder_bitrate_bps": 350000.0, "target_bitrate_bps": 450000.0, "rtt_ms": 3.0}
            ]
        });
        let p = PeerRun::from_duet(&report, 0.5);
        assert!(p.ok);
        assert_eq!(p.frames_decoded, 600.0);
        assert_eq!(p.glass_to_glass_ms, Some((40.0, 80.0)));
        assert_eq!(p.samples.len(), 2);
        assert_eq!(p.samples[1].t_s, 2.5);
        assert_eq!(p.samples[1].rtt_ms, Some(3.0));
        assert_eq!(p.samples[0].rtt_ms, None);
    }

    #[test]
    fn reads_a_chromium_line() {
        let line = json!({
            "ok": true,
            "history": [
                {"at": 1000.0, "in": {"framesDecoded": 10, "bytesReceived": 1000},
                 "out": {"targetBitrate": 300000}, "pair": {"availableOutgoingBitrate": 500000,
                 "currentRoundTripTime": 0.004}},
                {"at": 2000.0, "in": {"framesDecoded": 40, "bytesReceived": 26000,
                 "freezeCount": 1, "totalFreezesDuration": 0.5, "jitterBufferDelay": 2.0,
                 "jitterBufferEmittedCount": 40, "codec": "video/VP8", "frameWidth": 320,
                 "frameHeight": 240},
                 "out": {"targetBitrate": 350000}, "pair": {"availableOutgoingBitrate": 600000,
                 "remote": "srflx 203.0.113.100:20002"}},
                {"at": 3000.0, "state": "peer-left"}
            ],
            "final": {"timings": {"ready": 1100.0, "firstFrameDecoded": 1512.0}}
        });
        let p = PeerRun::from_chromium(&line, 500.0);
        assert!(
            p.detail
                .ends_with("remote srflx 203.0.113.100:20002; setup 412 ms"),
            "{}",
            p.detail
        );
        assert!(p.ok);
        assert_eq!(p.frames_decoded, 40.0);
        assert_eq!(p.freeze_count, 1.0);
        assert_eq!(p.freeze_total_ms, 500.0);
        assert_eq!(p.jitter_buffer_ms, Some(50.0));
        assert_eq!(p.samples.len(), 2);
        assert_eq!(p.samples[0].t_s, 0.5);
        assert_eq!(p.samples[0].recv_video_bps, None);
        assert_eq!(p.samples[1].recv_video_bps, Some(200_000.0));
        assert_eq!(p.samples[0].rtt_ms, Some(4.0));
        assert_eq!(p.samples[1].target_bps, Some(600_000.0));
    }
}
