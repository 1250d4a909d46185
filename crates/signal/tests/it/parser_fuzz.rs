//! Property test: arbitrary bytes and arbitrary JSON fed to the parser and the registry never
//! panic, and the registry's invariants hold afterwards.
#![allow(clippy::unwrap_used)]
use std::time::{Duration, Instant};

use proptest::prelude::*;
use signal::protocol::parse_client_text;
use signal::registry::{ConnId, Limits, Registry};

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z\\x00-\\x1f☕]{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("room".to_owned()),
                    Just("offer".to_owned()),
                    Just("candidate".to_owned()),
                    "[a-z]{1,4}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn message() -> impl Strategy<Value = String> {
    let kinds = prop_oneof![
        Just("join"),
        Just("leave"),
        Just("offer"),
        Just("answer"),
        Just("candidate"),
        Just("x")
    ];
    let rooms = prop_oneof![Just("r1"), Just("r2"), Just(""), Just("r\n")];
    prop_oneof![
        // Well-formed-ish messages that drive the registry through its states.
        (kinds, rooms).prop_map(|(k, r)| serde_json::json!({"type": k, "room": r, "offer": {}, "answer": {}, "candidate": null}).to_string()),
        json_value().prop_map(|v| v.to_string()),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_client_text(&text);
    }

    #[test]
    fn parser_never_panics_on_json(value in json_value()) {
        let _ = parse_client_text(&value.to_string());
    }

    #[test]
    fn registry_keeps_invariants(ops in prop::collection::vec((0u64..4, message(), any::<bool>()), 0..80)) {
        let mut reg = Registry::new(Limits { rate_burst: 1000.0, ..Limits::default() });
        let start = Instant::now();
        let mut out = Vec::new();
        let mut open = [false; 4];
        for (step, (conn, text, close)) in ops.into_iter().enumerate() {
            let id = ConnId(conn);
            let now = start + Duration::from_millis(step as u64);
            if !open[conn as usize] {
                reg.connect(id, now);
                open[conn as usize] = true;
            }
            if close {
                reg.disconnect(id, now, &mut out);
                open[conn as usize] = false;
            } else {
                reg.handle_text(id, &text, now, &mut out);
            }
            for d in out.drain(..) {
                // Nobody is ever told anything after it disconnected.
                prop_assert!(open[d.to.0 as usize], "delivery to a closed connection: {d:?}");
            }
            for room in ["r1", "r2"] {
                let members = reg.members(room);
                prop_assert!(members.len() <= signal::ROOM_CAPACITY);
                for m in members {
                    prop_assert!(open[m.0 as usize]);
                }
            }
        }
        for (i, is_open) in open.iter().enumerate() {
            if *is_open {
                reg.disconnect(ConnId(i as u64), start, &mut out);
            }
        }
        // Seats held for dropped members (who joined with a session) are freed when the hold
        // runs out.
        reg.expire(start + Duration::from_secs(3600), &mut out);
        prop_assert_eq!(reg.room_count(), 0);
        prop_assert_eq!(reg.connection_count(), 0);
    }
}
