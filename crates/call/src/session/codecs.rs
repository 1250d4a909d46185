//! Which video codec is sent: the payload types negotiated, the codecs offered, and following
//! the answer's choice on the switchable track.

use super::*;

/// The payload type negotiated for `mime_type` (any codec when `None`).
pub(super) async fn negotiated_pt(
    sender: &Arc<dyn RtpSender>,
    mime_type: Option<&str>,
) -> Result<u8, CallError> {
    let params = sender
        .get_parameters()
        .await
        .map_err(CallError::webrtc("reading the sender parameters"))?;
    let codecs = &params.rtp_parameters.codecs;
    mime_type
        .and_then(|mime| {
            codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
        })
        .or_else(|| codecs.first())
        .map(|c| c.payload_type)
        .ok_or_else(|| {
            CallError::Negotiation(
                "no codec was negotiated (does the other side support H.264 or VP8, and Opus?)"
                    .into(),
            )
        })
}

/// Makes the video transceiver offer `codecs` (in this order) rather than only the codec its
/// track was made with.
pub(super) async fn offer_video_codecs(
    pc: &Arc<dyn PeerConnection>,
    video_sender: &Arc<dyn RtpSender>,
    codecs: &[media::VideoCodec],
) -> Result<(), CallError> {
    let preferences: Vec<_> = codecs
        .iter()
        .map(
            |&codec| rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters {
                rtp_codec: peer::video_rtp_codec(codec),
                payload_type: peer::video_payload_type(codec),
            },
        )
        .collect();
    for transceiver in pc.get_transceivers().await {
        let sender = transceiver
            .sender()
            .await
            .map_err(CallError::webrtc("reading a transceiver"))?;
        if sender.is_some_and(|s| s.id() == video_sender.id()) {
            return transceiver
                .set_codec_preferences(preferences)
                .await
                .map_err(CallError::webrtc("setting the video codecs"));
        }
    }
    Err(CallError::Negotiation(
        "the video track has no transceiver".into(),
    ))
}

/// Before a remote description is applied: send the video codec it prefers (see
/// [`negotiation::preferred_video_codec`]). Only while nothing is being sent yet: webrtc-rs
/// binds a sender to its codec when it starts. Returns a warning for people when the other
/// side has video but none of our codecs.
pub(super) async fn follow_video_codec(
    call: &PeerCall,
    sdp: &str,
    ours: &[media::VideoCodec],
) -> Option<String> {
    let ours = if ours.is_empty() {
        &media::VideoCodec::ALL[..]
    } else {
        ours
    };
    let Some(codec) = crate::negotiation::preferred_video_codec(sdp, ours) else {
        let has_video = sdp
            .lines()
            .any(|l| l.starts_with("m=video ") && !l.starts_with("m=video 0 "));
        let names: Vec<String> = ours.iter().map(ToString::to_string).collect();
        return has_video.then(|| {
            format!(
                "no video codec in common: the other side does not offer {}",
                names.join(" or ")
            )
        });
    };
    if call.connected || call.video_track.codec() == codec {
        return None;
    }
    if let Err(e) = call
        .video_track
        .set_codec(codec, peer::video_rtp_codec(codec))
    {
        tracing::warn!(error = %e, %codec, "cannot switch the video track's codec");
        return None;
    }
    // webrtc-rs copies the track's description into the sender: hand it the changed one.
    if let Err(e) = call
        .video_sender
        .replace_track(call.video_track.clone() as Arc<dyn TrackLocal>)
        .await
    {
        tracing::warn!(error = %e, %codec, "cannot hand the video codec to the sender");
        return None;
    }
    tracing::debug!(%codec, "video codec chosen from the remote description");
    None
}
