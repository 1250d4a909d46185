//! The scenario table (`tests/scenarios/*.json`, shared with the web page's
//! `negotiation.js`) run against [`CallCore`], plus a few rules checked directly.
//!
//! A scenario is a core configuration and a list of steps: one input each, and the exact list
//! of outputs it must produce, in order. Expected values match actual ones structurally:
//! objects by the keys the scenario gives, arrays element by element, and a string starting
//! with `~` matches any string containing the rest (human-readable reasons need not be the
//! same text in Rust and JavaScript).

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use super::*;

fn scenario_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

/// Whether `actual` matches `expected` (see the module documentation).
fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(e), Value::String(a)) => match e.strip_prefix('~') {
            Some(part) => a.contains(part),
            None => e == a,
        },
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| matches(v, av))),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| matches(e, a))
        }
        (e, a) => e == a,
    }
}

fn run_scenario(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let scenario: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let config: CoreConfig =
        serde_json::from_value(scenario["config"].clone()).map_err(|e| format!("config: {e}"))?;
    let mut core = CallCore::new(config);
    let now = Instant::now();
    let steps = scenario["steps"].as_array().ok_or("no steps")?;
    for (i, step) in steps.iter().enumerate() {
        let input: Input = serde_json::from_value(step["in"].clone())
            .map_err(|e| format!("step {i}: input {}: {e}", step["in"]))?;
        core.handle(input, now);
        let actual: Vec<Value> = std::iter::from_fn(|| core.poll())
            .map(|o| serde_json::to_value(o).unwrap_or(Value::Null))
            .collect();
        let actual = Value::Array(actual);
        if !matches(&step["out"], &actual) {
            return Err(format!(
                "step {i} (input {}):\n  expected {}\n  actual   {}",
                step["in"], step["out"], actual
            ));
        }
    }
    if let Some(expected) = scenario.get("counters") {
        let actual = serde_json::to_value(core.counters()).unwrap_or(Value::Null);
        if !matches(expected, &actual) {
            return Err(format!("counters: expected {expected}, actual {actual}"));
        }
    }
    Ok(())
}

#[test]
fn the_shared_scenario_table() {
    let mut paths: Vec<_> = std::fs::read_dir(scenario_dir())
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    assert!(paths.len() >= 20, "scenarios missing: {paths:?}");
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            run_scenario(p).err().map(|e| {
                format!(
                    "{}: {e}",
                    p.file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_matcher_itself() {
    use serde_json::json;
    assert!(matches(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    assert!(!matches(&json!({"a": 1, "c": 3}), &json!({"a": 1})));
    assert!(matches(&json!("~room"), &json!("the room is full")));
    assert!(!matches(&json!("room"), &json!("the room is full")));
    assert!(!matches(&json!([1, 2]), &json!([1, 2, 3])));
    assert!(!matches(&json!(null), &json!(false)));
}

#[test]
fn the_error_policy_is_defined_on_every_code() {
    use signal::ErrorCode;
    let ending: Vec<_> = ErrorCode::ALL
        .into_iter()
        .filter(|c| ends_call(Some(*c)))
        .collect();
    assert_eq!(
        ending,
        [
            ErrorCode::RoomFull,
            ErrorCode::TooLarge,
            ErrorCode::TooManyRooms,
            ErrorCode::InvalidRoom,
            ErrorCode::Forbidden
        ]
    );
    assert!(!ends_call(None), "an unknown code only warns");
}

#[test]
fn candidate_syntax() {
    assert!(check_candidate("candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host").is_ok());
    assert!(
        check_candidate("1 1 UDP 2130706431 abcd-1234.local 5000 typ host generation 0").is_ok()
    );
    assert!(
        check_candidate("candidate:1 1 tcp 1 10.0.0.1 9 typ relay raddr 1.2.3.4 rport 5").is_ok()
    );
    for bad in [
        "",
        "garbage",
        "candidate:1 1 udp 1 10.0.0.1 5000 typ",
        "candidate:1 x udp 1 10.0.0.1 5000 typ host",
        "candidate:1 1 sctp 1 10.0.0.1 5000 typ host",
        "candidate:1 1 udp -1 10.0.0.1 5000 typ host",
        "candidate:1 1 udp 1 evil.example 5000 typ host",
        "candidate:1 1 udp 1 10.0.0.1 70000 typ host",
        "candidate:1 1 udp 1 10.0.0.1 5000 kind host",
    ] {
        assert!(check_candidate(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        candidate_type("candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr"),
        Some("srflx")
    );
    assert!(is_loopback_candidate(
        "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"
    ));
    assert!(!is_loopback_candidate(
        "candidate:1 1 udp 2130706431 10.1.2.3 5000 typ host"
    ));
    assert!(!is_loopback_candidate(
        "candidate:1 1 udp 2130706431 abcd.local 5000 typ host"
    ));
}

#[test]
fn nothing_happens_after_the_end() {
    let mut core = CallCore::new(CoreConfig {
        room: "r".into(),
        loopback_only: false,
        has_stun: false,
        has_turn: false,
    });
    let now = Instant::now();
    core.handle(Input::HangUp, now);
    while core.poll().is_some() {}
    assert!(core.is_over());
    core.handle(Input::PcState(PcState::Failed), now);
    core.handle(Input::Timer(Timer::Connect), now);
    assert_eq!(core.poll(), None);
}

#[test]
fn pending_candidates_are_bounded() {
    let mut core = CallCore::new(CoreConfig {
        room: "r".into(),
        loopback_only: false,
        has_stun: false,
        has_turn: false,
    });
    let now = Instant::now();
    core.handle(
        Input::Signal(ServerMessage::Ready {
            room: "r".into(),
            offerer: Some(false),
            ice_servers: None,
        }),
        now,
    );
    while core.poll().is_some() {}
    for port in 0..1000u32 {
        let line = format!("candidate:1 1 udp 1 10.0.0.1 {} typ host", 1000 + port);
        core.handle(
            Input::Signal(ServerMessage::Candidate {
                room: "r".into(),
                candidate: Some(serde_json::json!({ "candidate": line, "sdpMid": "0" })),
            }),
            now,
        );
    }
    assert_eq!(core.poll(), None);
    core.handle(
        Input::Signal(ServerMessage::Offer {
            room: "r".into(),
            offer: serde_json::json!({"type": "offer", "sdp": "v=0\r\n"}),
        }),
        now,
    );
    core.handle(
        Input::RemoteApplied {
            kind: SdpKind::Offer,
        },
        now,
    );
    let added = std::iter::from_fn(|| core.poll())
        .filter(|o| matches!(o, Output::AddCandidate(_)))
        .count();
    assert_eq!(added, MAX_PENDING_CANDIDATES);
}

#[test]
fn stats_rates_are_per_peer_connection() {
    let mut core = CallCore::new(CoreConfig {
        room: "r".into(),
        loopback_only: false,
        has_stun: false,
        has_turn: false,
    });
    let t0 = Instant::now();
    let totals = |secs: u64, frames: u64, received: u64, lost: i64| Totals {
        at: t0 + std::time::Duration::from_secs(secs),
        bytes_sent: frames * 1_000,
        bytes_received: 0,
        frames_sent: frames,
        frames_decoded: 0,
        encode_us: frames * 2_000,
        packets_received: received,
        packets_lost: lost,
    };
    assert_eq!(core.stats_tick(totals(0, 0, 0, 0)), None, "no peer yet");
    let ready = || {
        Input::Signal(ServerMessage::Ready {
            room: "r".into(),
            offerer: Some(true),
            ice_servers: None,
        })
    };
    core.handle(ready(), t0);
    while core.poll().is_some() {}
    assert_eq!(core.stats_tick(totals(1, 30, 98, 2)), None, "first tick");
    let rates = core.stats_tick(totals(2, 60, 196, 4)).expect("second tick");
    assert_eq!(rates.send_fps, 30.0);
    assert_eq!(rates.send_video_bps, 240_000.0);
    assert_eq!(rates.encode_ms, 2.0);
    assert_eq!(rates.loss_percent, 2.0);
    // The other side leaves and someone joins: the new peer connection's counters start
    // from zero, so no rate is computed across the two.
    core.handle(
        Input::Signal(ServerMessage::PeerLeft { room: "r".into() }),
        t0,
    );
    assert_eq!(core.stats_tick(totals(3, 0, 0, 0)), None, "alone again");
    core.handle(ready(), t0);
    while core.poll().is_some() {}
    assert_eq!(core.stats_tick(totals(3, 5, 0, 0)), None);
}
