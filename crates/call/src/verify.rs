//! The verification code: a short number both people can read to each other to check that no
//! one sits in the middle of their call.
//!
//! The signal server relays the SDP, so a malicious server could replace each side's DTLS
//! certificate fingerprint with its own and terminate DTLS on both sides. Each side then sees
//! a different pair of fingerprints. Both derive the code from the two fingerprints *they*
//! negotiated, sorted so both compute the same value: SHA-256 over
//! `"duet-verify-v1\n" + smaller + "\n" + larger`, the first four bytes as a big-endian number,
//! modulo 1 000 000, shown as `123 456`. With an honest server the codes match; with a
//! fingerprint-rewriting one they differ (unless the attacker finds, per call, certificates whose
//! fingerprints collide on 20 bits: about a million tries *before* seeing the code, which the
//! live conversation makes impractical). The page computes the same code
//! (`assets/web/negotiation.js`, `verificationCode`), checked against the same vectors
//! (`tests/verification/vectors.json`). docs/protocol.md says what it does not protect against.

use sha2::{Digest, Sha256};

/// The DTLS fingerprint an SDP carries (`a=fingerprint:sha-256 AB:CD:…`, the first one),
/// normalised: algorithm in lower case, hex in upper case, e.g. `sha-256 AB:CD:…`.
#[must_use]
pub fn sdp_fingerprint(sdp: &str) -> Option<String> {
    let line = sdp
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=fingerprint:"))?;
    let (algorithm, value) = line.trim().split_once(' ')?;
    let value = value.trim();
    if algorithm.is_empty() || value.is_empty() {
        return None;
    }
    Some(format!(
        "{} {}",
        algorithm.to_ascii_lowercase(),
        value.to_ascii_uppercase()
    ))
}

/// The six-digit code for a call whose two ends have fingerprints `a` and `b` (either order).
#[must_use]
pub fn verification_code(a: &str, b: &str) -> String {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    let digest = Sha256::digest(format!("duet-verify-v1\n{first}\n{second}").as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 1_000_000;
    format!("{:03} {:03}", n / 1000, n % 1000)
}

/// The code for a call, from its local and remote SDP; `None` until both carry a fingerprint.
#[must_use]
pub fn call_code(local_sdp: &str, remote_sdp: &str) -> Option<String> {
    Some(verification_code(
        &sdp_fingerprint(local_sdp)?,
        &sdp_fingerprint(remote_sdp)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_vectors() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/verification/vectors.json"
        );
        let text = std::fs::read_to_string(path).expect("vectors");
        let vectors: serde_json::Value = serde_json::from_str(&text).expect("json");
        let list = vectors.as_array().expect("a list");
        assert!(list.len() >= 3);
        for v in list {
            let (a, b) = (v["a"].as_str().expect("a"), v["b"].as_str().expect("b"));
            let code = v["code"].as_str().expect("code");
            assert_eq!(verification_code(a, b), code, "{v}");
            assert_eq!(verification_code(b, a), code, "symmetric: {v}");
        }
    }

    #[test]
    fn fingerprints_from_sdp() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\na=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=fingerprint:SHA-256 ab:cd:EF\r\na=fingerprint:sha-1 11:22\r\n";
        assert_eq!(sdp_fingerprint(sdp).as_deref(), Some("sha-256 AB:CD:EF"));
        assert_eq!(sdp_fingerprint("v=0\r\n"), None);
        assert_eq!(sdp_fingerprint("a=fingerprint:\r\n"), None);
        assert_eq!(call_code(sdp, "v=0\r\n"), None);
        let other = sdp.replace("ab:cd:EF", "00:11:22");
        let code = call_code(sdp, &other).expect("both have one");
        assert_eq!(
            code,
            call_code(&other, sdp).expect("both"),
            "same on both sides"
        );
        assert_ne!(
            code,
            call_code(sdp, sdp).expect("both"),
            "a swapped fingerprint changes it"
        );
        assert_eq!(code.len(), 7);
    }
}
