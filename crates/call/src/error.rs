//! The call engine's errors.

/// Why a call could not start or ended.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The signal server could not be reached or closed the connection.
    #[error("signal server: {0}")]
    Signal(String),
    /// The server refused something (room full, bad room name, ...).
    #[error("{0}")]
    Refused(String),
    /// The WebRTC stack failed.
    #[error("WebRTC: {0}")]
    WebRtc(String),
    /// The other side sent something unusable (bad SDP or candidate).
    #[error("the other side sent an invalid {what}: {reason}")]
    BadRemote {
        /// "offer", "answer", "candidate".
        what: &'static str,
        /// Details.
        reason: String,
    },
    /// A media device or codec failed.
    #[error("media: {0}")]
    Media(String),
    /// No media path between the two peers; the reason says what was tried.
    #[error("could not connect to the other side: {0}")]
    NoPath(String),
    /// ICE or DTLS failed: no media path between the two peers.
    #[error("no connection to the other side could be established (ICE failed)")]
    IceFailed,
    /// The engine runtime could not start.
    #[error("engine: {0}")]
    Engine(String),
}
