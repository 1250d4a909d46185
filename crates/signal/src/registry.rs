//! The room registry: who is in which room, and who gets which message.
//!
//! Pure state, no sockets and no async: the server shell feeds it events (a connection opened,
//! a text frame arrived, a connection closed) together with the current time, and it answers
//! with [`Delivery`] decisions — "send this to connection N". That keeps every rule of the relay
//! testable without a network, and keeps the shell a thin loop around it.
//!
//! Costs: a message is O(1) (hash lookups); closing a connection is O(rooms it is in), and a room
//! whose last member left is removed at once, so memory follows the live rooms.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::{ClientRequest, ErrorCode, Rejection, RelayKind, parse_client_text};
use crate::token::RoomSecret;

/// How many members a room holds. duet rooms are 1-to-1 calls; this is a property of the
/// protocol (`ready` names one offerer, relays go to "the other member"), not a tunable.
pub const ROOM_CAPACITY: usize = 2;

/// Identifies one client connection for the lifetime of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// The per-connection rules the registry enforces. Every limit is explicit here.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// How many rooms one connection may be a member of at once.
    pub max_rooms_per_connection: usize,
    /// Longest accepted room name, in bytes of UTF-8.
    pub max_room_name_bytes: usize,
    /// Sustained messages per second one connection may send (token bucket refill rate).
    pub rate_per_sec: f64,
    /// Messages one connection may send in a burst above the sustained rate (bucket size).
    pub rate_burst: f64,
    /// How long a member that joined with a `session` id keeps its seat after its connection
    /// dropped, for a new connection with the same id to take back (zero: no holding).
    pub seat_hold: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_rooms_per_connection: 4,
            max_room_name_bytes: 128,
            // ICE gathering trickles a burst of candidates; 200 covers any real negotiation.
            rate_per_sec: 50.0,
            rate_burst: 200.0,
            seat_hold: Duration::from_secs(10),
        }
    }
}

/// What to send to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// `{"type":"ready","room":..,"offerer":..}`.
    Ready {
        /// Room name.
        room: Arc<str>,
        /// Whether the recipient joined first and should offer.
        offerer: bool,
    },
    /// Forward the text frame that was just handled, unchanged.
    Forward,
    /// `{"type":"peer-left","room":..}`.
    PeerLeft {
        /// Room name.
        room: Arc<str>,
    },
    /// `{"type":"peer-resumed","room":..}`: the other member's connection dropped and it took
    /// its seat back.
    PeerResumed {
        /// Room name.
        room: Arc<str>,
    },
    /// `{"type":"error",...}` back to the sender.
    Error(Rejection),
}

impl Outbound {
    /// The message as JSON text; `None` for [`Outbound::Forward`], whose text the caller holds.
    pub fn to_json(&self) -> Option<String> {
        use crate::protocol::ServerMessage;
        let msg = match self {
            Self::Ready { room, offerer } => ServerMessage::Ready {
                room: room.to_string(),
                offerer: Some(*offerer),
                ice_servers: None,
            },
            Self::PeerLeft { room } => ServerMessage::PeerLeft {
                room: room.to_string(),
            },
            Self::PeerResumed { room } => ServerMessage::PeerResumed {
                room: room.to_string(),
            },
            Self::Error(rejection) => return Some(rejection.to_json()),
            Self::Forward => return None,
        };
        Some(msg.to_json())
    }
}

/// One decision of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The connection to send to.
    pub to: ConnId,
    /// What to send.
    pub msg: Outbound,
}

/// What happened to a handled frame, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Joined (or was already in) a room.
    Joined,
    /// Left a room.
    Left,
    /// A negotiation message was forwarded to the other member.
    Relayed(RelayKind),
    /// A negotiation message was accepted but nobody else is in the room yet.
    NoPeer(RelayKind),
    /// The frame was rejected with this code (an error reply was queued, except when rate
    /// limiting had already been reported).
    Rejected(ErrorCode),
    /// The connection is unknown (already closed); nothing happened.
    UnknownConnection,
}

#[derive(Debug)]
struct Room {
    /// Members in join order: `members[0]` is the offerer.
    members: Vec<ConnId>,
    /// The session ids members joined with.
    sessions: HashMap<ConnId, Arc<str>>,
    /// Members whose connection dropped, holding their seat until the hold runs out.
    held: Vec<Held>,
}

#[derive(Debug)]
struct Held {
    /// The dropped connection (still in `members`).
    id: ConnId,
    session: Arc<str>,
    since: Instant,
}

#[derive(Debug)]
struct Conn {
    rooms: Vec<Arc<str>>,
    bucket: TokenBucket,
}

#[derive(Debug)]
struct TokenBucket {
    tokens: f64,
    last: Instant,
    /// Set once a dropped message has been reported, so a flood gets one error, not one each.
    reported: bool,
}

impl TokenBucket {
    fn new(limits: &Limits, now: Instant) -> Self {
        Self {
            tokens: limits.rate_burst,
            last: now,
            reported: false,
        }
    }

    /// Takes a token. `Err(true)` when the caller should report the drop, `Err(false)` when it
    /// was reported already.
    fn take(&mut self, limits: &Limits, now: Instant) -> Result<(), bool> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * limits.rate_per_sec).min(limits.rate_burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.reported = false;
            Ok(())
        } else if self.reported {
            Err(false)
        } else {
            self.reported = true;
            Err(true)
        }
    }
}

/// All rooms and connections of one server.
#[derive(Debug, Default)]
pub struct Registry {
    limits: Limits,
    /// When set, `join` must carry the room's token.
    room_secret: Option<RoomSecret>,
    rooms: HashMap<Arc<str>, Room>,
    conns: HashMap<ConnId, Conn>,
}

impl Registry {
    /// An empty registry enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            room_secret: None,
            rooms: HashMap::new(),
            conns: HashMap::new(),
        }
    }

    /// Requires every `join` to carry `hex(HMAC-SHA256(secret, room))` (see
    /// [`crate::room_token`]); a missing or wrong token is refused with `forbidden`.
    pub fn with_room_secret(mut self, secret: Option<RoomSecret>) -> Self {
        self.room_secret = secret;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Number of rooms with at least one member.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Members of `room` in join order (empty if the room does not exist).
    pub fn members(&self, room: &str) -> &[ConnId] {
        self.rooms.get(room).map_or(&[], |r| &r.members)
    }

    /// A connection opened.
    pub fn connect(&mut self, id: ConnId, now: Instant) {
        self.conns.insert(
            id,
            Conn {
                rooms: Vec::new(),
                bucket: TokenBucket::new(&self.limits, now),
            },
        );
    }

    /// A ping or pong arrived from `from` (other than the answer to the server's own ping): it
    /// costs a token like a message. `false` when the bucket is empty: the caller closes the
    /// connection, since the frame cannot be dropped (tungstenite answers pings itself).
    pub fn handle_control(&mut self, from: ConnId, now: Instant) -> bool {
        self.conns
            .get_mut(&from)
            .is_some_and(|conn| conn.bucket.take(&self.limits, now).is_ok())
    }

    /// A binary frame arrived: the protocol is text only.
    pub fn handle_binary(
        &mut self,
        from: ConnId,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) -> Handled {
        self.handle_frame(from, None, now, out)
    }

    /// A text frame arrived from `from`. Decisions are appended to `out`.
    pub fn handle_text(
        &mut self,
        from: ConnId,
        text: &str,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) -> Handled {
        self.handle_frame(from, Some(text), now, out)
    }

    fn handle_frame(
        &mut self,
        from: ConnId,
        text: Option<&str>,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) -> Handled {
        let Some(conn) = self.conns.get_mut(&from) else {
            return Handled::UnknownConnection;
        };
        if let Err(report) = conn.bucket.take(&self.limits, now) {
            if report {
                let message = format!(
                    "more than {} messages per second; messages are being dropped",
                    self.limits.rate_per_sec
                );
                out.push(reject(
                    from,
                    Rejection::new(ErrorCode::RateLimited, message),
                ));
            }
            return Handled::Rejected(ErrorCode::RateLimited);
        }
        let request = match text {
            Some(text) => parse_client_text(text),
            None => Err(Rejection::new(
                ErrorCode::BadMessage,
                "binary frames are not part of the protocol; send JSON text",
            )),
        };
        let result = request.and_then(|request| self.apply(from, &request, out));
        match result {
            Ok(handled) => handled,
            Err(rejection) => {
                let code = rejection.code;
                out.push(reject(from, rejection));
                Handled::Rejected(code)
            }
        }
    }

    fn check_room_name(&self, room: &str) -> Result<(), Rejection> {
        if room.is_empty() {
            return Err(Rejection::new(ErrorCode::InvalidRoom, "room name is empty"));
        }
        if room.len() > self.limits.max_room_name_bytes {
            return Err(Rejection::new(
                ErrorCode::InvalidRoom,
                format!(
                    "room name is longer than {} bytes",
                    self.limits.max_room_name_bytes
                ),
            ));
        }
        if let Some(c) = room.chars().find(|&c| invisible(c)) {
            return Err(Rejection::new(
                ErrorCode::InvalidRoom,
                format!(
                    "room name contains the invisible or control character U+{:04X}; \
                     use visible characters only",
                    u32::from(c)
                ),
            ));
        }
        Ok(())
    }

    fn check_token(&self, room: &str, token: Option<&str>) -> Result<(), Rejection> {
        let Some(secret) = &self.room_secret else {
            return Ok(());
        };
        match token {
            Some(token) if secret.verify(room, token) => Ok(()),
            Some(_) => Err(Rejection::new(
                ErrorCode::Forbidden,
                format!("the token is not valid for room \"{room}\""),
            )),
            None => Err(Rejection::new(
                ErrorCode::Forbidden,
                format!("room \"{room}\" needs a token (this server has a room secret)"),
            )),
        }
    }

    fn apply(
        &mut self,
        from: ConnId,
        request: &ClientRequest<'_>,
        out: &mut Vec<Delivery>,
    ) -> Result<Handled, Rejection> {
        let room = request.room();
        self.check_room_name(room)?;
        match request {
            ClientRequest::Join { token, session, .. } => {
                self.check_token(room, token.as_deref())?;
                self.join(from, room, session.as_deref(), out)
            }
            ClientRequest::Leave { .. } => {
                if self.leave(from, room, out) {
                    Ok(Handled::Left)
                } else {
                    Err(not_in_room(room))
                }
            }
            ClientRequest::Relay { kind, .. } => {
                let members = self.members(room);
                if !members.contains(&from) {
                    return Err(not_in_room(room));
                }
                match members.iter().find(|&&m| m != from) {
                    Some(&to) => {
                        out.push(Delivery {
                            to,
                            msg: Outbound::Forward,
                        });
                        Ok(Handled::Relayed(*kind))
                    }
                    None => Ok(Handled::NoPeer(*kind)),
                }
            }
        }
    }

    fn join(
        &mut self,
        from: ConnId,
        room: &str,
        session: Option<&str>,
        out: &mut Vec<Delivery>,
    ) -> Result<Handled, Rejection> {
        if let Some(session) = session
            && self.resume(from, room, session, out)
        {
            return Ok(Handled::Joined);
        }
        let Some(conn) = self.conns.get_mut(&from) else {
            return Ok(Handled::UnknownConnection);
        };
        if conn.rooms.iter().any(|r| &**r == room) {
            // Joining twice is harmless: nothing changes and nobody is told.
            return Ok(Handled::Joined);
        }
        if conn.rooms.len() >= self.limits.max_rooms_per_connection {
            return Err(Rejection::new(
                ErrorCode::TooManyRooms,
                format!(
                    "a connection may be in at most {} rooms; leave one first",
                    self.limits.max_rooms_per_connection
                ),
            ));
        }
        let name: Arc<str> = match self.rooms.get_key_value(room) {
            Some((_, r)) if r.members.len() >= ROOM_CAPACITY => {
                return Err(Rejection::new(
                    ErrorCode::RoomFull,
                    format!("room \"{room}\" already has {ROOM_CAPACITY} people in it"),
                ));
            }
            Some((name, _)) => name.clone(),
            None => Arc::from(room),
        };
        conn.rooms.push(name.clone());
        let entry = self.rooms.entry(name.clone()).or_insert_with(|| Room {
            members: Vec::new(),
            sessions: HashMap::new(),
            held: Vec::new(),
        });
        entry.members.push(from);
        if let Some(session) = session {
            entry.sessions.insert(from, Arc::from(session));
        }
        if entry.members.len() == ROOM_CAPACITY {
            for (i, &to) in entry.members.iter().enumerate() {
                out.push(Delivery {
                    to,
                    msg: Outbound::Ready {
                        room: name.clone(),
                        offerer: i == 0,
                    },
                });
            }
        }
        Ok(Handled::Joined)
    }

    /// Removes `from` from `room`, telling the other member. Returns false if it was not in it.
    fn leave(&mut self, from: ConnId, room: &str, out: &mut Vec<Delivery>) -> bool {
        let Some(conn) = self.conns.get_mut(&from) else {
            return false;
        };
        let Some(pos) = conn.rooms.iter().position(|r| &**r == room) else {
            return false;
        };
        let name = conn.rooms.swap_remove(pos);
        self.remove_member(from, &name, out);
        true
    }

    /// A connection joining with the session id of a held seat takes it back: no `ready`
    /// (the call goes on), the other member is told `peer-resumed`. Returns whether it did.
    fn resume(&mut self, from: ConnId, room: &str, session: &str, out: &mut Vec<Delivery>) -> bool {
        let Some((name, entry)) = self
            .rooms
            .get_key_value(room)
            .map(|(k, _)| k.clone())
            .and_then(|k| self.rooms.get_mut(&k).map(|e| (k, e)))
        else {
            return false;
        };
        // The seat is held (its connection is known to have dropped), or still looks taken by
        // a connection that silently died (a new address breaks TCP without the server
        // hearing of it): the same session id takes it over in both cases.
        let old = match entry.held.iter().position(|h| &*h.session == session) {
            Some(pos) => entry.held.remove(pos).id,
            None => match entry
                .sessions
                .iter()
                .find(|(id, s)| &***s == session && **id != from)
            {
                Some((&id, _)) => id,
                None => return false,
            },
        };
        for m in &mut entry.members {
            if *m == old {
                *m = from;
            }
        }
        let session = entry
            .sessions
            .remove(&old)
            .unwrap_or_else(|| Arc::from(session));
        entry.sessions.insert(from, session);
        if let Some(stale) = self.conns.get_mut(&old) {
            stale.rooms.retain(|r| **r != *name);
        }
        let Some(entry) = self.rooms.get_mut(&name) else {
            return false;
        };
        for &to in entry.members.iter().filter(|&&m| m != from) {
            out.push(Delivery {
                to,
                msg: Outbound::PeerResumed { room: name.clone() },
            });
        }
        if let Some(conn) = self.conns.get_mut(&from)
            && !conn.rooms.iter().any(|r| **r == *name)
        {
            conn.rooms.push(name);
        }
        true
    }

    fn remove_member(&mut self, from: ConnId, name: &Arc<str>, out: &mut Vec<Delivery>) {
        let Some(entry) = self.rooms.get_mut(&**name) else {
            return;
        };
        entry.sessions.remove(&from);
        entry.held.retain(|h| h.id != from);
        entry.members.retain(|&m| m != from);
        for &to in &entry.members {
            out.push(Delivery {
                to,
                msg: Outbound::PeerLeft { room: name.clone() },
            });
        }
        if entry.members.is_empty() {
            self.rooms.remove(&**name);
        }
    }

    /// A connection closed (for any reason): it leaves all its rooms, the other members are
    /// told `peer-left`, and empty rooms are freed. O(rooms the connection was in).
    ///
    /// A member that joined with a `session` id keeps its seat for [`Limits::seat_hold`]
    /// instead: the other member hears nothing unless the hold runs out ([`Registry::expire`]).
    pub fn disconnect(&mut self, id: ConnId, now: Instant, out: &mut Vec<Delivery>) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        let hold = !self.limits.seat_hold.is_zero();
        for name in &conn.rooms {
            let session = self
                .rooms
                .get(&**name)
                .and_then(|r| r.sessions.get(&id).cloned());
            match (hold, session, self.rooms.get_mut(&**name)) {
                (true, Some(session), Some(entry)) => entry.held.push(Held {
                    id,
                    session,
                    since: now,
                }),
                _ => self.remove_member(id, name, out),
            }
        }
    }

    /// Frees the seats whose hold ran out by `now`, telling the other members `peer-left`.
    /// The server calls it about once a second.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Delivery>) {
        let hold = self.limits.seat_hold;
        let expired: Vec<(Arc<str>, ConnId)> = self
            .rooms
            .iter()
            .flat_map(|(name, r)| {
                r.held
                    .iter()
                    .filter(|h| now.saturating_duration_since(h.since) >= hold)
                    .map(|h| (name.clone(), h.id))
            })
            .collect();
        for (name, id) in expired {
            self.remove_member(id, &name, out);
        }
    }

    /// Seats held for dropped connections.
    pub fn held_seats(&self) -> usize {
        self.rooms.values().map(|r| r.held.len()).sum()
    }
}

/// Characters a room name may not hold: controls (Cc), format characters (Cf: bidi overrides,
/// zero-width joiners and spaces, the BOM, ...) and the line and paragraph separators, which
/// would let two different names look the same.
fn invisible(c: char) -> bool {
    use unicode_general_category::{GeneralCategory, get_general_category};
    matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

fn reject(to: ConnId, rejection: Rejection) -> Delivery {
    Delivery {
        to,
        msg: Outbound::Error(rejection),
    }
}

fn not_in_room(room: &str) -> Rejection {
    Rejection::new(
        ErrorCode::NotInRoom,
        format!("you have not joined room \"{room}\""),
    )
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
