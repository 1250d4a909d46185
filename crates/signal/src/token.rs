//! Room tokens: who may join which room when the server has a room secret.
//!
//! A token is `hex(HMAC-SHA256(secret, room))`, lowercase. The operator mints one per room
//! (`signal token --secret S ROOM`, or [`room_token`]) and hands it out inside the link; the
//! server recomputes it on `join` and compares in constant time. Tokens never expire: rotate
//! the secret to revoke them all.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The server-side secret rooms are keyed with. `Debug` never prints it.
#[derive(Clone)]
pub struct RoomSecret {
    key: Arc<[u8]>,
}

impl RoomSecret {
    /// A secret from raw bytes (the `--room-secret` string's UTF-8 bytes in the binary).
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self {
            key: Arc::from(secret.as_ref()),
        }
    }

    fn mac(&self, room: &str) -> HmacSha256 {
        // HMAC accepts keys of any length, so this never fails; an empty MAC would only make
        // every token invalid, never valid.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
        mac.update(room.as_bytes());
        mac
    }

    /// The token for `room`: 64 lowercase hex digits.
    pub fn token(&self, room: &str) -> String {
        hex::encode(self.mac(room).finalize().into_bytes())
    }

    /// Whether `token` is the token for `room` (constant-time; hex in either case).
    pub fn verify(&self, room: &str, token: &str) -> bool {
        match hex::decode(token) {
            Ok(bytes) => self.mac(room).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}

impl std::fmt::Debug for RoomSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomSecret(..)")
    }
}

/// The token that lets a client join `room` on a server started with `secret`:
/// `hex(HMAC-SHA256(secret, room))`.
pub fn room_token(secret: &str, room: &str) -> String {
    RoomSecret::new(secret).token(room)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            room_token("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verifies_only_the_right_token() {
        let secret = RoomSecret::new("s3cret");
        let token = secret.token("kitchen");
        assert!(secret.verify("kitchen", &token));
        assert!(secret.verify("kitchen", &token.to_uppercase()));
        assert!(!secret.verify("garden", &token));
        assert!(!secret.verify("kitchen", &token[..62]));
        assert!(!secret.verify("kitchen", "not hex"));
        assert!(!secret.verify("kitchen", ""));
        assert!(!RoomSecret::new("other").verify("kitchen", &token));
        assert_eq!(format!("{secret:?}"), "RoomSecret(..)");
    }
}
