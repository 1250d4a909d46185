//! The verification code: equal on both sides of an honest call; different when the relay in
//! between rewrites the DTLS fingerprints (a man in the middle), which is what it is for.
use crate::common;

use std::time::Duration;

/// Replaces the fingerprint in a relayed offer or answer with the attacker's.
fn swap_fingerprint(text: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.to_owned();
    };
    for key in ["offer", "answer"] {
        if let Some(sdp) = v[key]["sdp"].as_str() {
            let forged: String = sdp
                .split("\r\n")
                .map(|l| {
                    if l.starts_with("a=fingerprint:") {
                        format!("a=fingerprint:sha-256 {}", ["AA"; 32].join(":"))
                    } else {
                        l.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("\r\n");
            v[key]["sdp"] = serde_json::Value::String(forged);
        }
    }
    v.to_string()
}

fn codes(url: &str, room: &str) -> (Option<String>, Option<String>) {
    let (_a, sa, _b, sb, both) =
        common::two_engines(url, room, 660.0, Duration::from_secs(20), |s| {
            s.stats.verification_code.is_some()
        });
    assert!(
        both,
        "no verification code: a={:?} {:?} b={:?} {:?}",
        sa.states, sa.stats.verification_code, sb.states, sb.stats.verification_code
    );
    (sa.stats.verification_code, sb.stats.verification_code)
}

#[test]
fn an_honest_relay_gives_both_sides_the_same_code() {
    let server = common::hosted_signal();
    let (a, b) = codes(&server.local_url(), "honest");
    assert_eq!(a, b);
    let code = a.unwrap_or_default();
    assert_eq!(code.len(), 7, "{code}");
}

#[test]
fn a_relay_that_rewrites_fingerprints_gives_different_codes() {
    let (url, _relay) = common::seed_relay(Some(swap_fingerprint));
    let (a, b) = codes(&url, "mitm");
    assert_ne!(a, b, "a rewriting relay went unnoticed");
}
