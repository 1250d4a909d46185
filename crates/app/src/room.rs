//! Room names: what the signal server accepts, and a friendly random suggestion.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Longest room name a `signal` server accepts by default, in bytes.
pub const MAX_ROOM_BYTES: usize = 128;

/// Why a room name cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomProblem {
    /// Nothing typed (or only spaces).
    Empty,
    /// Longer than [`MAX_ROOM_BYTES`].
    TooLong,
    /// Contains a control character (tab, newline, ...).
    ControlCharacter,
}

impl std::fmt::Display for RoomProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("type a room name"),
            Self::TooLong => write!(f, "room names are at most {MAX_ROOM_BYTES} bytes"),
            Self::ControlCharacter => f.write_str("room names cannot contain control characters"),
        }
    }
}

/// The room name that is actually joined: the typed text without surrounding spaces.
pub fn normalize_room(typed: &str) -> &str {
    typed.trim()
}

/// Checks a typed room name against the server's rules (1..=128 bytes after trimming, no
/// control characters).
pub fn validate_room(typed: &str) -> Result<&str, RoomProblem> {
    let room = normalize_room(typed);
    if room.is_empty() {
        Err(RoomProblem::Empty)
    } else if room.len() > MAX_ROOM_BYTES {
        Err(RoomProblem::TooLong)
    } else if room.chars().any(char::is_control) {
        Err(RoomProblem::ControlCharacter)
    } else {
        Ok(room)
    }
}

const ADJECTIVES: &[&str] = &[
    "amber", "brave", "calm", "clever", "cosy", "daring", "eager", "gentle", "golden", "happy",
    "jolly", "kind", "lively", "lucky", "mellow", "merry", "quiet", "rapid", "sunny", "swift",
    "tidy", "vivid", "witty", "zesty",
];
const NOUNS: &[&str] = &[
    "badger", "beacon", "comet", "falcon", "harbor", "island", "lantern", "maple", "meadow",
    "otter", "panda", "pebble", "puffin", "river", "robin", "canyon", "cedar", "spruce", "summit",
    "tiger", "walrus", "willow", "zebra", "orbit",
];

/// A random, easy-to-say room name such as `sunny-otter-4821`. Not a secret: anyone who
/// guesses a room name can join it.
pub fn suggest_room() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let bits = hasher.finish();
    let adjective = ADJECTIVES[(bits % ADJECTIVES.len() as u64) as usize];
    let noun = NOUNS[((bits >> 16) % NOUNS.len() as u64) as usize];
    let number = (bits >> 32) % 9000 + 1000;
    format!("{adjective}-{noun}-{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_rules() {
        assert_eq!(validate_room("  team sync "), Ok("team sync"));
        assert_eq!(validate_room(""), Err(RoomProblem::Empty));
        assert_eq!(validate_room("   "), Err(RoomProblem::Empty));
        assert_eq!(validate_room("a\tb"), Err(RoomProblem::ControlCharacter));
        assert_eq!(validate_room(&"x".repeat(128)), Ok(&*"x".repeat(128)));
        assert_eq!(validate_room(&"x".repeat(129)), Err(RoomProblem::TooLong));
        // 43 three-byte characters = 129 bytes.
        assert_eq!(validate_room(&"€".repeat(43)), Err(RoomProblem::TooLong));
    }

    #[test]
    fn suggestions_are_valid() {
        for _ in 0..50 {
            let room = suggest_room();
            assert!(validate_room(&room).is_ok(), "{room}");
            assert_eq!(room.split('-').count(), 3, "{room}");
        }
    }
}
