//! The relay's rules, tested on the pure registry: no sockets, time passed in. The socket
//! tests in `tests/it` prove the shell around it; these prove every rule, fast.

use std::time::{Duration, Instant};

use super::*;

const A: ConnId = ConnId(1);
const B: ConnId = ConnId(2);
const C: ConnId = ConnId(3);

struct World {
    reg: Registry,
    now: Instant,
}

impl World {
    fn new(limits: Limits) -> Self {
        let now = Instant::now();
        let mut reg = Registry::new(limits);
        for id in [A, B, C] {
            reg.connect(id, now);
        }
        Self { reg, now }
    }

    fn send(&mut self, from: ConnId, text: &str) -> (Handled, Vec<Delivery>) {
        let mut out = Vec::new();
        let handled = self.reg.handle_text(from, text, self.now, &mut out);
        (handled, out)
    }

    fn join(&mut self, from: ConnId, room: &str) -> (Handled, Vec<Delivery>) {
        self.send(from, &format!(r#"{{"type":"join","room":"{room}"}}"#))
    }

    fn offer(&mut self, from: ConnId, room: &str) -> (Handled, Vec<Delivery>) {
        self.send(
            from,
            &format!(
                r#"{{"type":"offer","room":"{room}","offer":{{"type":"offer","sdp":"v=0"}}}}"#
            ),
        )
    }
}

fn error_code(out: &[Delivery]) -> Option<ErrorCode> {
    out.iter().find_map(|d| match &d.msg {
        Outbound::Error(r) => Some(r.code),
        _ => None,
    })
}

#[test]
fn the_second_join_makes_both_ready_and_the_first_offers() {
    let mut w = World::new(Limits::default());
    let (h, out) = w.join(A, "kitchen");
    assert_eq!(h, Handled::Joined);
    assert!(
        out.is_empty(),
        "nobody is told about a lone member: {out:?}"
    );
    let (_, out) = w.join(B, "kitchen");
    let room: Arc<str> = Arc::from("kitchen");
    assert_eq!(
        out,
        vec![
            Delivery {
                to: A,
                msg: Outbound::Ready {
                    room: room.clone(),
                    offerer: true
                }
            },
            Delivery {
                to: B,
                msg: Outbound::Ready {
                    room,
                    offerer: false
                }
            },
        ]
    );
    assert_eq!(w.reg.members("kitchen"), &[A, B]);
}

#[test]
fn negotiation_is_forwarded_to_the_other_member_only() {
    let mut w = World::new(Limits::default());
    w.join(A, "r");
    let (h, out) = w.offer(A, "r");
    assert_eq!(h, Handled::NoPeer(RelayKind::Offer));
    assert!(out.is_empty());
    w.join(B, "r");
    let (h, out) = w.offer(A, "r");
    assert_eq!(h, Handled::Relayed(RelayKind::Offer));
    assert_eq!(
        out,
        vec![Delivery {
            to: B,
            msg: Outbound::Forward
        }]
    );
    let (_, out) = w.send(
        B,
        r#"{"type":"candidate","room":"r","candidate":{"candidate":"candidate:1 1 udp 1 10.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}}"#,
    );
    assert_eq!(out.iter().map(|d| d.to).collect::<Vec<_>>(), [A]);
}

#[test]
fn a_third_person_is_refused_and_the_call_goes_on() {
    let mut w = World::new(Limits::default());
    w.join(A, "r");
    w.join(B, "r");
    let (h, out) = w.join(C, "r");
    assert_eq!(h, Handled::Rejected(ErrorCode::RoomFull));
    assert_eq!(error_code(&out), Some(ErrorCode::RoomFull));
    assert_eq!(out.len(), 1, "only the refused person hears of it: {out:?}");
    assert_eq!(w.reg.members("r"), &[A, B]);
}

#[test]
fn non_members_cannot_inject_or_leave() {
    let mut w = World::new(Limits::default());
    w.join(A, "r");
    w.join(B, "r");
    let (h, out) = w.offer(C, "r");
    assert_eq!(h, Handled::Rejected(ErrorCode::NotInRoom));
    assert_eq!(out.iter().map(|d| d.to).collect::<Vec<_>>(), [C]);
    let (h, _) = w.send(C, r#"{"type":"leave","room":"r"}"#);
    assert_eq!(h, Handled::Rejected(ErrorCode::NotInRoom));
}

#[test]
fn joining_twice_changes_nothing() {
    let mut w = World::new(Limits::default());
    w.join(A, "r");
    w.join(B, "r");
    let (h, out) = w.join(A, "r");
    assert_eq!(h, Handled::Joined);
    assert!(out.is_empty(), "no second ready: {out:?}");
    assert_eq!(w.reg.members("r"), &[A, B]);
}

#[test]
fn leaving_tells_the_other_and_frees_the_room() {
    let mut w = World::new(Limits::default());
    w.join(A, "r");
    w.join(B, "r");
    let (h, out) = w.send(A, r#"{"type":"leave","room":"r"}"#);
    assert_eq!(h, Handled::Left);
    assert_eq!(
        out,
        vec![Delivery {
            to: B,
            msg: Outbound::PeerLeft {
                room: Arc::from("r")
            }
        }]
    );
    // The one who stayed becomes the first member: the next person makes it offer.
    let (_, out) = w.join(C, "r");
    assert!(out.contains(&Delivery {
        to: B,
        msg: Outbound::Ready {
            room: Arc::from("r"),
            offerer: true
        }
    }));
    let mut out = Vec::new();
    w.reg.disconnect(B, w.now, &mut out);
    w.reg.disconnect(C, w.now, &mut out);
    assert_eq!(w.reg.room_count(), 0, "empty rooms are freed");
}

#[test]
fn disconnect_leaves_every_room() {
    let mut w = World::new(Limits::default());
    for room in ["x", "y"] {
        w.join(A, room);
        w.join(B, room);
    }
    let mut out = Vec::new();
    w.reg.disconnect(A, w.now, &mut out);
    assert_eq!(out.len(), 2);
    assert!(
        out.iter()
            .all(|d| d.to == B && matches!(d.msg, Outbound::PeerLeft { .. }))
    );
    assert_eq!(w.reg.connection_count(), 2);
    // A closed connection's late frames do nothing.
    let (h, out) = w.offer(A, "x");
    assert_eq!(h, Handled::UnknownConnection);
    assert!(out.is_empty());
}

#[test]
fn rooms_per_connection_are_capped() {
    let limits = Limits {
        max_rooms_per_connection: 2,
        ..Limits::default()
    };
    let mut w = World::new(limits);
    assert_eq!(w.join(A, "one").0, Handled::Joined);
    assert_eq!(w.join(A, "two").0, Handled::Joined);
    let (h, out) = w.join(A, "three");
    assert_eq!(h, Handled::Rejected(ErrorCode::TooManyRooms));
    assert_eq!(error_code(&out), Some(ErrorCode::TooManyRooms));
    w.send(A, r#"{"type":"leave","room":"one"}"#);
    assert_eq!(w.join(A, "three").0, Handled::Joined);
}

#[test]
fn room_names_are_checked() {
    let limits = Limits {
        max_room_name_bytes: 8,
        ..Limits::default()
    };
    let mut w = World::new(limits);
    for bad in ["", "123456789", "a\\u0007b", "tab\\there"] {
        let (h, out) = w.join(A, bad);
        assert_eq!(h, Handled::Rejected(ErrorCode::InvalidRoom), "{bad:?}");
        assert_eq!(error_code(&out), Some(ErrorCode::InvalidRoom));
    }
    // Exactly at the limit, multi-byte characters counted in bytes.
    assert_eq!(w.join(A, "12345678").0, Handled::Joined);
    assert_eq!(
        w.join(A, "ééééé").0,
        Handled::Rejected(ErrorCode::InvalidRoom),
        "10 bytes"
    );
}

#[test]
fn the_rate_limit_drops_a_flood_reports_once_and_refills_with_time() {
    let limits = Limits {
        rate_per_sec: 10.0,
        rate_burst: 5.0,
        ..Limits::default()
    };
    let mut w = World::new(limits);
    w.join(A, "r"); // 1 token
    w.join(B, "r");
    for _ in 0..4 {
        assert_eq!(w.offer(A, "r").0, Handled::Relayed(RelayKind::Offer));
    }
    let (h, out) = w.offer(A, "r");
    assert_eq!(h, Handled::Rejected(ErrorCode::RateLimited));
    assert_eq!(
        error_code(&out),
        Some(ErrorCode::RateLimited),
        "reported once"
    );
    let (h, out) = w.offer(A, "r");
    assert_eq!(h, Handled::Rejected(ErrorCode::RateLimited));
    assert!(
        out.is_empty(),
        "not reported again during the same flood: {out:?}"
    );
    // 100 ms later one token is back (10 per second).
    w.now += Duration::from_millis(100);
    assert_eq!(w.offer(A, "r").0, Handled::Relayed(RelayKind::Offer));
    // The other connection has its own bucket.
    assert_eq!(w.offer(B, "r").0, Handled::Relayed(RelayKind::Offer));
}

#[test]
fn bad_frames_get_bad_message() {
    let mut w = World::new(Limits::default());
    for text in [
        "not json",
        "{}",
        r#"{"type":"dance","room":"r"}"#,
        r#"{"type":"join","room":7}"#,
    ] {
        let (h, out) = w.send(A, text);
        assert_eq!(h, Handled::Rejected(ErrorCode::BadMessage), "{text}");
        assert_eq!(error_code(&out), Some(ErrorCode::BadMessage));
    }
    let mut out = Vec::new();
    assert_eq!(
        w.reg.handle_binary(A, w.now, &mut out),
        Handled::Rejected(ErrorCode::BadMessage)
    );
}

#[test]
fn a_room_secret_admits_only_token_holders() {
    let secret = RoomSecret::new("s3cret");
    let token = crate::room_token("s3cret", "vip");
    let now = Instant::now();
    let mut reg = Registry::new(Limits::default()).with_room_secret(Some(secret));
    reg.connect(A, now);
    let mut out = Vec::new();
    let h = reg.handle_text(A, r#"{"type":"join","room":"vip"}"#, now, &mut out);
    assert_eq!(h, Handled::Rejected(ErrorCode::Forbidden));
    let h = reg.handle_text(
        A,
        r#"{"type":"join","room":"vip","token":"00"}"#,
        now,
        &mut out,
    );
    assert_eq!(h, Handled::Rejected(ErrorCode::Forbidden));
    let join = format!(r#"{{"type":"join","room":"vip","token":"{token}"}}"#);
    assert_eq!(reg.handle_text(A, &join, now, &mut out), Handled::Joined);
    // The token is for one room only.
    let other = format!(r#"{{"type":"join","room":"other","token":"{token}"}}"#);
    assert_eq!(
        reg.handle_text(A, &other, now, &mut out),
        Handled::Rejected(ErrorCode::Forbidden)
    );
}

#[test]
fn rooms_are_isolated() {
    let mut w = World::new(Limits::default());
    w.join(A, "one");
    w.join(B, "one");
    w.join(C, "two");
    let (_, out) = w.offer(A, "one");
    assert!(out.iter().all(|d| d.to == B));
    let (h, _) = w.offer(C, "one");
    assert_eq!(h, Handled::Rejected(ErrorCode::NotInRoom));
}

#[test]
fn invisible_characters() {
    for c in [
        '\u{0}',
        '\t',
        '\u{7f}',
        '\u{85}',
        '\u{200b}',
        '\u{200d}',
        '\u{202e}',
        '\u{2066}',
        '\u{feff}',
        '\u{2028}',
        '\u{2029}',
        '\u{e0001}',
        '\u{ad}',
    ] {
        assert!(invisible(c), "U+{:04X}", u32::from(c));
    }
    for c in ['a', 'é', '☕', ' ', '-', '日'] {
        assert!(!invisible(c), "{c}");
    }
}

#[test]
fn control_frames_cost_tokens() {
    let limits = Limits {
        rate_per_sec: 1.0,
        rate_burst: 3.0,
        ..Limits::default()
    };
    let mut reg = Registry::new(limits);
    let t0 = Instant::now();
    reg.connect(ConnId(1), t0);
    for _ in 0..3 {
        assert!(reg.handle_control(ConnId(1), t0));
    }
    assert!(!reg.handle_control(ConnId(1), t0));
    assert!(reg.handle_control(ConnId(1), t0 + std::time::Duration::from_secs(1)));
    assert!(!reg.handle_control(ConnId(2), t0));
}

#[test]
fn a_dropped_member_with_a_session_keeps_its_seat_and_takes_it_back() {
    let mut w = World::new(Limits::default());
    let join = |room: &str, session: &str| {
        format!(r#"{{"type":"join","room":"{room}","session":"{session}"}}"#)
    };
    w.send(A, &join("r", "session-of-a-0001"));
    w.send(B, &join("r", "session-of-b-0001"));
    let mut out = Vec::new();
    w.reg.disconnect(A, w.now, &mut out);
    assert!(out.is_empty(), "B is not told anything yet: {out:?}");
    assert_eq!(w.reg.held_seats(), 1);
    // The seat is still taken: a third person cannot join.
    let (h, _) = w.join(C, "r");
    assert_eq!(h, Handled::Rejected(ErrorCode::RoomFull));
    // A's new connection (C here) takes the seat back: B hears `peer-resumed`, nobody `ready`.
    w.now += Duration::from_secs(5);
    let (h, out) = w.send(C, &join("r", "session-of-a-0001"));
    assert_eq!(h, Handled::Joined);
    assert_eq!(
        out,
        vec![Delivery {
            to: B,
            msg: Outbound::PeerResumed {
                room: Arc::from("r")
            }
        }]
    );
    assert_eq!(
        w.reg.members("r"),
        &[C, B],
        "A's place, so C is the offerer now"
    );
    let (_, out) = w.offer(B, "r");
    assert_eq!(out.iter().map(|d| d.to).collect::<Vec<_>>(), [C]);
}

#[test]
fn a_held_seat_is_freed_when_the_hold_runs_out() {
    let mut w = World::new(Limits {
        seat_hold: Duration::from_secs(20),
        ..Limits::default()
    });
    w.send(
        A,
        r#"{"type":"join","room":"r","session":"session-of-a-0001"}"#,
    );
    w.join(B, "r");
    let mut out = Vec::new();
    w.reg.disconnect(A, w.now, &mut out);
    w.reg.expire(w.now + Duration::from_secs(19), &mut out);
    assert!(out.is_empty());
    w.reg.expire(w.now + Duration::from_secs(20), &mut out);
    assert_eq!(
        out,
        vec![Delivery {
            to: B,
            msg: Outbound::PeerLeft {
                room: Arc::from("r")
            }
        }]
    );
    assert_eq!(w.reg.members("r"), &[B]);
    // Too late: the old session id is a fresh join now.
    let (_, out) = w.send(
        C,
        r#"{"type":"join","room":"r","session":"session-of-a-0001"}"#,
    );
    assert!(out.iter().any(|d| matches!(d.msg, Outbound::Ready { .. })));
}

#[test]
fn without_a_session_or_with_no_hold_a_drop_is_peer_left_at_once() {
    for (limits, session) in [
        (Limits::default(), None),
        (
            Limits {
                seat_hold: Duration::ZERO,
                ..Limits::default()
            },
            Some("session-of-a-0001"),
        ),
    ] {
        let mut w = World::new(limits);
        match session {
            Some(s) => {
                w.send(
                    A,
                    &format!(r#"{{"type":"join","room":"r","session":"{s}"}}"#),
                );
            }
            None => {
                w.join(A, "r");
            }
        }
        w.join(B, "r");
        let mut out = Vec::new();
        w.reg.disconnect(A, w.now, &mut out);
        assert_eq!(out.len(), 1);
        assert!(matches!(out[0].msg, Outbound::PeerLeft { .. }));
    }
}

#[test]
fn bad_session_ids_are_refused() {
    let mut w = World::new(Limits::default());
    for bad in ["short", "has space in it ok?", &"x".repeat(65)] {
        let (h, _) = w.send(
            A,
            &format!(r#"{{"type":"join","room":"r","session":"{bad}"}}"#),
        );
        assert_eq!(h, Handled::Rejected(ErrorCode::BadMessage), "{bad}");
    }
}

#[test]
fn the_same_session_takes_over_a_seat_whose_connection_silently_died() {
    let mut w = World::new(Limits::default());
    let join = r#"{"type":"join","room":"r","session":"session-of-a-0001"}"#;
    w.send(A, join);
    w.join(B, "r");
    // A's old connection is still open as far as the server knows; its new one (C) joins with
    // the same session id and takes the seat instead of being refused as a third person.
    let (h, out) = w.send(C, join);
    assert_eq!(h, Handled::Joined);
    assert!(
        out.iter()
            .all(|d| d.to == B && matches!(d.msg, Outbound::PeerResumed { .. }))
    );
    assert_eq!(w.reg.members("r"), &[C, B]);
    // When the dead connection finally closes, nobody is told anything.
    let mut out = Vec::new();
    w.reg.disconnect(A, w.now, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(w.reg.members("r"), &[C, B]);
    // A stranger cannot take a seat with a made-up session id.
    w.reg.connect(A, w.now);
    let (h, _) = w.send(
        A,
        r#"{"type":"join","room":"r","session":"session-of-x-0001"}"#,
    );
    assert_eq!(h, Handled::Rejected(ErrorCode::RoomFull));
}
