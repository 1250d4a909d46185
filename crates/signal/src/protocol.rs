//! The wire protocol: JSON text messages over a WebSocket.
//!
//! The seed's messages (`join`, `ready`, `offer`, `answer`, `candidate`) are unchanged; `leave`,
//! `peer-left`, `error`, and the `offerer` and `iceServers` fields on `ready` are additive
//! extensions that seed clients ignore. See `docs/protocol.md` for the full description.
//!
//! This module only parses and builds messages; it holds no state. The server parses incoming
//! text with [`parse_client_text`], which borrows from the frame and keeps relayed payloads
//! untouched (they are forwarded byte for byte). Clients build [`ClientMessage`]s and read
//! [`ServerMessage`]s.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Machine-readable reason carried by an `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The room already holds two members.
    RoomFull,
    /// The sender tried to send into (or leave) a room it has not joined.
    NotInRoom,
    /// The message was not valid JSON, had a wrong field type, an unknown `type`, or was binary.
    BadMessage,
    /// The message was larger than the server's limit; the connection is closed with 1009.
    TooLarge,
    /// The sender exceeded its message rate; the message was dropped.
    RateLimited,
    /// The sender is already a member of as many rooms as one connection may join.
    TooManyRooms,
    /// The room name is empty, too long, or contains control or invisible formatting characters.
    InvalidRoom,
    /// The server requires a room token (`--room-secret`) and the `join` carried none, or one
    /// that is not valid for this room.
    Forbidden,
}

impl ErrorCode {
    /// Every code, in a fixed order (metrics use it to index their counters).
    pub const ALL: [Self; 8] = [
        Self::RoomFull,
        Self::NotInRoom,
        Self::BadMessage,
        Self::TooLarge,
        Self::RateLimited,
        Self::TooManyRooms,
        Self::InvalidRoom,
        Self::Forbidden,
    ];

    /// This code's position in [`ErrorCode::ALL`].
    pub fn index(self) -> usize {
        match self {
            Self::RoomFull => 0,
            Self::NotInRoom => 1,
            Self::BadMessage => 2,
            Self::TooLarge => 3,
            Self::RateLimited => 4,
            Self::TooManyRooms => 5,
            Self::InvalidRoom => 6,
            Self::Forbidden => 7,
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoomFull => "room-full",
            Self::NotInRoom => "not-in-room",
            Self::BadMessage => "bad-message",
            Self::TooLarge => "too-large",
            Self::RateLimited => "rate-limited",
            Self::TooManyRooms => "too-many-rooms",
            Self::InvalidRoom => "invalid-room",
            Self::Forbidden => "forbidden",
        }
    }

    /// Parses a wire code; unknown codes (from a newer server) give `None`.
    pub fn from_wire(code: &str) -> Option<Self> {
        Some(match code {
            "room-full" => Self::RoomFull,
            "not-in-room" => Self::NotInRoom,
            "bad-message" => Self::BadMessage,
            "too-large" => Self::TooLarge,
            "rate-limited" => Self::RateLimited,
            "too-many-rooms" => Self::TooManyRooms,
            "invalid-room" => Self::InvalidRoom,
            "forbidden" => Self::Forbidden,
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protocol-level rejection: sent back to the client as an `error` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

impl Rejection {
    /// A rejection with the given code and human text.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The `error` message as JSON text.
    pub fn to_json(&self) -> String {
        let msg = ServerMessage::Error {
            code: self.code.as_str().to_owned(),
            message: self.message.clone(),
        };
        msg.to_json()
    }
}

/// The three kinds of message the server forwards to the other member of a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelayKind {
    /// An SDP offer (`offer` field, an object).
    Offer,
    /// An SDP answer (`answer` field, an object).
    Answer,
    /// A trickled ICE candidate (`candidate` field, an object, or null for end-of-candidates).
    Candidate,
}

impl RelayKind {
    /// Every kind, in a fixed order (metrics use it to index their counters).
    pub const ALL: [Self; 3] = [Self::Offer, Self::Answer, Self::Candidate];

    /// This kind's position in [`RelayKind::ALL`].
    pub fn index(self) -> usize {
        match self {
            Self::Offer => 0,
            Self::Answer => 1,
            Self::Candidate => 2,
        }
    }

    /// The `type` value on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offer => "offer",
            Self::Answer => "answer",
            Self::Candidate => "candidate",
        }
    }
}

/// A validated message from a client, borrowing from the frame it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRequest<'a> {
    /// Join a room (seed message).
    Join {
        /// The room name, unescaped.
        room: Cow<'a, str>,
        /// The room token (extension), required when the server has a room secret.
        token: Option<Cow<'a, str>>,
        /// The client's session id (extension): a connection that drops keeps its seat for
        /// a grace period, and a new connection joining with the same id takes it back.
        session: Option<Cow<'a, str>>,
    },
    /// Leave a room but keep the connection (extension).
    Leave {
        /// The room name, unescaped.
        room: Cow<'a, str>,
    },
    /// Forward the whole message, unchanged, to the other member of `room`.
    Relay {
        /// Which kind of negotiation message this is.
        kind: RelayKind,
        /// The room name, unescaped.
        room: Cow<'a, str>,
    },
}

impl ClientRequest<'_> {
    /// The room the request is about.
    pub fn room(&self) -> &str {
        match self {
            Self::Join { room, .. } | Self::Leave { room } | Self::Relay { room, .. } => room,
        }
    }
}

/// Longest accepted `session` id in a `join`, bytes.
pub const MAX_SESSION_BYTES: usize = 64;

/// The fields the server looks at; every other field is ignored here and preserved on relay.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    room: Option<Cow<'a, str>>,
    #[serde(borrow)]
    offer: Option<&'a RawValue>,
    #[serde(borrow)]
    answer: Option<&'a RawValue>,
    #[serde(borrow)]
    candidate: Option<&'a RawValue>,
    #[serde(borrow)]
    token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    session: Option<Cow<'a, str>>,
}

fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

fn bad(message: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::BadMessage, message)
}

/// Parses and type-checks one text frame from a client.
///
/// Room-name rules (length, characters) depend on the server's limits and are checked by the
/// registry, not here.
pub fn parse_client_text(text: &str) -> Result<ClientRequest<'_>, Rejection> {
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            bad(format!("message has a field of the wrong type: {e}"))
        } else {
            bad(format!("message is not a JSON object: {e}"))
        }
    })?;
    let kind = env
        .kind
        .ok_or_else(|| bad("message has no \"type\" field"))?;
    let room = env
        .room
        .ok_or_else(|| bad(format!("\"{kind}\" message has no \"room\" field")))?;
    let relay = |kind: RelayKind| ClientRequest::Relay {
        kind,
        room: room.clone(),
    };
    match &*kind {
        "join" => {
            if let Some(session) = &env.session
                && (session.len() < 16
                    || session.len() > MAX_SESSION_BYTES
                    || !session
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-'))
            {
                return Err(bad(format!(
                    "\"session\" must be 16–{MAX_SESSION_BYTES} letters, digits or dashes"
                )));
            }
            Ok(ClientRequest::Join {
                room,
                token: env.token,
                session: env.session,
            })
        }
        "leave" => Ok(ClientRequest::Leave { room }),
        "offer" => match env.offer {
            Some(raw) if is_object(raw) => Ok(relay(RelayKind::Offer)),
            _ => Err(bad("\"offer\" message needs an \"offer\" object")),
        },
        "answer" => match env.answer {
            Some(raw) if is_object(raw) => Ok(relay(RelayKind::Answer)),
            _ => Err(bad("\"answer\" message needs an \"answer\" object")),
        },
        "candidate" => match env.candidate {
            None => Ok(relay(RelayKind::Candidate)),
            Some(raw) if is_object(raw) || is_null(raw) => Ok(relay(RelayKind::Candidate)),
            Some(_) => Err(bad("\"candidate\" must be an object or null")),
        },
        other => Err(bad(format!(
            "unknown message type \"{}\"",
            other.chars().take(32).collect::<String>()
        ))),
    }
}

/// A message a client sends, for building messages in Rust clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ClientMessage {
    /// Join a room.
    Join {
        /// Room name.
        room: String,
        /// Room token, `hex(HMAC-SHA256(secret, room))`; needed only when the server was
        /// started with a room secret (see [`crate::room_token`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// Session id (an extension; see [`ClientRequest::Join`]): lets this client take its
        /// seat back after its connection dropped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
    },
    /// Leave a room, keeping the connection.
    Leave {
        /// Room name.
        room: String,
    },
    /// An SDP offer: `{"type":"offer","sdp":"..."}`.
    Offer {
        /// Room name.
        room: String,
        /// The session description.
        offer: serde_json::Value,
    },
    /// An SDP answer: `{"type":"answer","sdp":"..."}`.
    Answer {
        /// Room name.
        room: String,
        /// The session description.
        answer: serde_json::Value,
    },
    /// A trickled ICE candidate; `None` means end of candidates.
    Candidate {
        /// Room name.
        room: String,
        /// `{"candidate":"...","sdpMid":"0","sdpMLineIndex":0}` or null.
        candidate: Option<serde_json::Value>,
    },
}

impl ClientMessage {
    /// The message as JSON text.
    pub fn to_json(&self) -> String {
        // Serialising these plain types cannot fail; fall back to an empty object if it ever did.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// One entry of `ready`'s `iceServers`: the browser's `RTCIceServer` dictionary
/// (`{"urls":[...],"username":"...","credential":"..."}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:HOST:PORT`, `turn:HOST:PORT?transport=udp`, ...
    pub urls: Vec<String>,
    /// TURN username (`EXPIRY:LABEL`); absent for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password; absent for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A message the server sends (or relays), as a client reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    /// Both members are present; `offerer` is true for the member that joined first.
    /// The seed server sent no `offerer` field, hence the `Option`.
    Ready {
        /// Room name.
        room: String,
        /// Whether this client should send the offer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offerer: Option<bool>,
        /// STUN/TURN servers for this call, in the browser's `RTCIceServer` shape, with fresh
        /// TURN credentials (an extension: absent when the server offers none; seed clients
        /// ignore it).
        #[serde(
            rename = "iceServers",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        ice_servers: Option<Vec<IceServer>>,
    },
    /// The other member's offer.
    Offer {
        /// Room name.
        #[serde(default)]
        room: String,
        /// The session description.
        offer: serde_json::Value,
    },
    /// The other member's answer.
    Answer {
        /// Room name.
        #[serde(default)]
        room: String,
        /// The session description.
        answer: serde_json::Value,
    },
    /// The other member's ICE candidate; `None` means end of candidates.
    Candidate {
        /// Room name.
        #[serde(default)]
        room: String,
        /// The candidate, or null.
        #[serde(default)]
        candidate: Option<serde_json::Value>,
    },
    /// The other member left the room or its connection dropped.
    PeerLeft {
        /// Room name.
        room: String,
    },
    /// The other member's connection dropped and it came back in time to keep its seat
    /// (an extension; only sent to clients that joined with a `session`).
    PeerResumed {
        /// Room name.
        room: String,
    },
    /// The server rejected something this client sent.
    Error {
        /// Machine-readable code, see [`ErrorCode`].
        code: String,
        /// Human-readable explanation.
        message: String,
    },
}

impl ServerMessage {
    /// The message as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip_by_wire_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::from_wire("a-code-from-the-future"), None);
    }

    #[test]
    fn parses_seed_messages() {
        assert_eq!(
            parse_client_text(r#"{"type":"join","room":"a"}"#),
            Ok(ClientRequest::Join {
                room: "a".into(),
                token: None,
                session: None
            })
        );
        let offer = r#"{"type":"offer","room":"a","offer":{"type":"offer","sdp":"v=0"}}"#;
        assert_eq!(
            parse_client_text(offer),
            Ok(ClientRequest::Relay {
                kind: RelayKind::Offer,
                room: "a".into()
            })
        );
        let end = r#"{"type":"candidate","room":"a","candidate":null}"#;
        assert!(matches!(
            parse_client_text(end),
            Ok(ClientRequest::Relay {
                kind: RelayKind::Candidate,
                ..
            })
        ));
    }

    #[test]
    fn rejects_wrong_shapes() {
        for text in [
            "",
            "[]",
            "not json",
            r#"{"room":"a"}"#,
            r#"{"type":"join"}"#,
            r#"{"type":"join","room":5}"#,
            r#"{"type":7,"room":"a"}"#,
            r#"{"type":"offer","room":"a","offer":"sdp"}"#,
            r#"{"type":"answer","room":"a"}"#,
            r#"{"type":"candidate","room":"a","candidate":3}"#,
            r#"{"type":"dance","room":"a"}"#,
        ] {
            let err = parse_client_text(text).expect_err(text);
            assert_eq!(err.code, ErrorCode::BadMessage, "{text}");
        }
    }

    #[test]
    fn join_carries_an_optional_token() {
        let req = parse_client_text(r#"{"type":"join","room":"a","token":"00ff"}"#);
        assert_eq!(
            req,
            Ok(ClientRequest::Join {
                room: "a".into(),
                token: Some("00ff".into()),
                session: None
            })
        );
        assert!(parse_client_text(r#"{"type":"join","room":"a","token":5}"#).is_err());
        let msg = ClientMessage::Join {
            room: "a".into(),
            token: None,
            session: None,
        };
        assert_eq!(msg.to_json(), r#"{"type":"join","room":"a"}"#);
    }

    #[test]
    fn ready_carries_ice_servers_only_when_given() {
        let plain = ServerMessage::Ready {
            room: "a".into(),
            offerer: Some(true),
            ice_servers: None,
        };
        assert_eq!(
            plain.to_json(),
            r#"{"type":"ready","room":"a","offerer":true}"#
        );
        let with = ServerMessage::Ready {
            room: "a".into(),
            offerer: Some(false),
            ice_servers: Some(vec![
                IceServer {
                    urls: vec!["stun:h:3478".into()],
                    username: None,
                    credential: None,
                },
                IceServer {
                    urls: vec!["turn:h:3478?transport=udp".into()],
                    username: Some("9:x".into()),
                    credential: Some("pw".into()),
                },
            ]),
        };
        let json = with.to_json();
        assert_eq!(
            json,
            r#"{"type":"ready","room":"a","offerer":false,"iceServers":[{"urls":["stun:h:3478"]},{"urls":["turn:h:3478?transport=udp"],"username":"9:x","credential":"pw"}]}"#
        );
        let back: ServerMessage = serde_json::from_str(&json).unwrap_or(plain);
        assert_eq!(back, with);
    }

    #[test]
    fn unescapes_room_names() {
        let req = parse_client_text(r#"{"type":"join","room":"caf\u00e9"}"#);
        assert_eq!(req.map(|r| r.room().to_owned()), Ok("café".to_owned()));
    }

    #[test]
    fn error_codes_round_trip() {
        for code in [
            ErrorCode::RoomFull,
            ErrorCode::NotInRoom,
            ErrorCode::BadMessage,
            ErrorCode::TooLarge,
            ErrorCode::RateLimited,
            ErrorCode::TooManyRooms,
            ErrorCode::InvalidRoom,
            ErrorCode::Forbidden,
        ] {
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
        }
        for (i, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(code.index(), i);
        }
        for (i, kind) in RelayKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
    }
}
