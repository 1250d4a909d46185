//! The call engine's errors. Errors from the libraries the engine drives (the signal client,
//! webrtc-rs, the OS) are kept as the [`std::error::Error::source`] of the variant that says
//! what the engine was doing; the core's own verdicts (refused, no path, bad remote) are
//! plain data, since the core sees only plain data.

use std::sync::Arc;

/// Why a call could not start or ended.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The signal server could not be reached.
    #[error("signal server: {0}")]
    SignalConnect(#[source] Arc<signal::client::ClientError>),
    /// The signal server closed the connection or stopped answering.
    #[error("signal server: {0}")]
    Signal(String),
    /// The server refused something (room full, bad room name, ...).
    #[error("{0}")]
    Refused(String),
    /// The WebRTC stack failed while doing `context`.
    #[error("WebRTC: {context}: {source}")]
    WebRtc {
        /// What the engine was doing, for example "creating the peer connection".
        context: String,
        /// What webrtc-rs said.
        #[source]
        source: Arc<webrtc::error::Error>,
    },
    /// Negotiation cannot go on: a step failed, or the two sides share no codec.
    #[error("WebRTC: {0}")]
    Negotiation(String),
    /// The other side sent something unusable (bad SDP or candidate).
    #[error("the other side sent an invalid {what}: {reason}")]
    BadRemote {
        /// "offer", "answer", "candidate".
        what: &'static str,
        /// Details.
        reason: String,
    },
    /// A media thread could not start.
    #[error("media: {context}: {source}")]
    Media {
        /// What was starting, for example "the video thread".
        context: &'static str,
        /// What the OS said.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// No media path between the two peers; the reason says what was tried.
    #[error("could not connect to the other side: {0}")]
    NoPath(String),
    /// ICE or DTLS failed: no media path between the two peers.
    #[error("no connection to the other side could be established (ICE failed)")]
    IceFailed,
    /// The engine's runtime or thread could not start.
    #[error("engine: {0}")]
    Engine(#[source] Arc<std::io::Error>),
}

impl CallError {
    /// A mapper for `map_err`: a webrtc-rs error while doing `context`.
    pub(crate) fn webrtc(context: impl Into<String>) -> impl FnOnce(webrtc::error::Error) -> Self {
        let context = context.into();
        move |source| Self::WebRtc {
            context,
            source: Arc::new(source),
        }
    }

    /// A mapper for `map_err`: a media thread that could not start.
    pub(crate) fn media(context: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Media {
            context,
            source: Arc::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn library_errors_stay_reachable_as_the_source() {
        let e = CallError::media("the video thread")(std::io::Error::other("no threads left"));
        assert_eq!(e.to_string(), "media: the video thread: no threads left");
        assert_eq!(
            e.source().map(ToString::to_string).as_deref(),
            Some("no threads left")
        );
        let e = CallError::webrtc("creating the peer connection")(
            webrtc::error::Error::ErrConnectionClosed,
        );
        assert!(
            e.to_string()
                .starts_with("WebRTC: creating the peer connection: ")
        );
        assert!(e.source().is_some());
    }
}
