//! The local video track: one RTP stream (one SSRC, one sequence) whose codec is chosen when
//! the other side's description arrives.
//!
//! webrtc-rs fixes a [`TrackLocalStaticSample`]'s packetizer, and the codec its sender binds the
//! congestion-control, NACK and report interceptors with, when the track is made. But duet
//! offers H.264 and VP8 before it knows which one the other side will pick (a Firefox without
//! its H.264 plugin answers VP8), and answers with whatever the offer prefers. So this track
//! keeps its own description and packetizer: [`VideoTrack::set_codec`] changes both, and the
//! session hands the changed description to the sender (`replace_track` with this same track:
//! webrtc-rs then copies the description and keeps the binding) before the description that
//! starts the sender is applied. RTP writing, RTCP and binding are
//! [`TrackLocalStaticRTP`]'s.
//!
//! [`TrackLocalStaticSample`]: webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample

use std::sync::Mutex;
use std::time::Instant;

use media::VideoCodec;
use rtc::media::Sample;
use rtc::media_stream::{
    MediaStreamId, MediaStreamTrack, MediaStreamTrackId, MediaStreamTrackState,
    MediaTrackCapabilities, MediaTrackConstraints, MediaTrackSettings,
};
use rtc::rtp::packetizer::{Packetizer, new_packetizer};
use rtc::rtp::sequence::{Sequencer, new_random_sequencer};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RtpStreamId, SSRC};
use rtc::{rtcp, rtp};
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalContext, TrackLocalEvent};
use webrtc::runtime::Receiver;

/// The payload size the packetizer aims at (webrtc-rs's own track uses the same).
const MTU: usize = 1200;

struct State {
    codec: VideoCodec,
    description: MediaStreamTrack,
    packetizer: Box<dyn Packetizer + Send + Sync>,
    /// The RTP timestamp and payload type of the last frame written: padding carries them.
    last_frame: Option<(u32, u8)>,
}

/// See the module documentation.
pub struct VideoTrack {
    rtp: TrackLocalStaticRTP,
    ssrc: SSRC,
    sequencer: Box<dyn Sequencer>,
    created: Instant,
    state: Mutex<State>,
}

impl std::fmt::Debug for VideoTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoTrack")
            .field("ssrc", &self.ssrc)
            .field("codec", &self.codec())
            .finish_non_exhaustive()
    }
}

fn description(
    stream_id: &str,
    track_id: &str,
    ssrc: SSRC,
    codec: RTCRtpCodec,
) -> MediaStreamTrack {
    MediaStreamTrack::new(
        stream_id.to_owned(),
        track_id.to_owned(),
        "video".to_owned(),
        RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )
}

impl VideoTrack {
    /// A track sending `codec` (until [`VideoTrack::set_codec`]) on `ssrc`; `rtp_codec` gives
    /// the RTP description of a codec (clock rate, fmtp, feedback).
    ///
    /// # Errors
    /// webrtc-rs's error if it has no packetizer for the codec.
    pub fn new(
        stream_id: &str,
        track_id: &str,
        ssrc: SSRC,
        codec: VideoCodec,
        rtp_codec: RTCRtpCodec,
    ) -> webrtc::error::Result<Self> {
        let created = Instant::now();
        let sequencer: Box<dyn Sequencer> = Box::new(new_random_sequencer());
        let packetizer = packetizer(created, ssrc, &rtp_codec, sequencer.clone())?;
        let desc = description(stream_id, track_id, ssrc, rtp_codec);
        Ok(Self {
            rtp: TrackLocalStaticRTP::new(desc.clone()),
            ssrc,
            sequencer,
            created,
            state: Mutex::new(State {
                codec,
                description: desc,
                packetizer,
                last_frame: None,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The codec this track packetizes for.
    #[must_use]
    pub fn codec(&self) -> VideoCodec {
        self.lock().codec
    }

    /// The SSRC of the one stream.
    #[must_use]
    pub fn ssrc(&self) -> SSRC {
        self.ssrc
    }

    /// Switches to `codec` (its RTP description `rtp_codec`): the packetizer and the
    /// description change; the SSRC and the sequence numbers go on.
    ///
    /// # Errors
    /// webrtc-rs's error if it has no packetizer for the codec.
    pub fn set_codec(
        &self,
        codec: VideoCodec,
        rtp_codec: RTCRtpCodec,
    ) -> webrtc::error::Result<()> {
        let mut state = self.lock();
        if state.codec == codec {
            return Ok(());
        }
        state.packetizer = packetizer(self.created, self.ssrc, &rtp_codec, self.sequencer.clone())?;
        state.description = description(
            state.description.stream_id(),
            state.description.track_id(),
            self.ssrc,
            rtp_codec,
        );
        state.codec = codec;
        Ok(())
    }

    /// Packetizes one encoded frame and sends its packets with `payload_type`.
    ///
    /// # Errors
    /// webrtc-rs's error if a packet cannot be written (the track is not bound yet, the
    /// connection closed).
    pub async fn write_sample(
        &self,
        payload_type: u8,
        sample: &Sample,
    ) -> webrtc::error::Result<()> {
        let packets = {
            let mut state = self.lock();
            let ticks = (sample.duration.as_secs_f64() * 90_000.0) as u32;
            let packets = state
                .packetizer
                .packetize(sample.timestamp, &sample.data, ticks)?;
            if let Some(last) = packets.last() {
                state.last_frame = Some((last.header.timestamp, payload_type));
            }
            packets
        };
        for mut packet in packets {
            packet.header.payload_type = payload_type;
            self.rtp.write_rtp(packet).await?;
        }
        Ok(())
    }
}

impl VideoTrack {
    /// Sends `count` padding-only packets ([`PADDING_BYTES`] octets of padding each) in the
    /// stream's sequence, with the last frame's timestamp, as a bandwidth probe's burst (see
    /// [`crate::probe`]); receivers count and drop them. Returns the first one's sequence
    /// number, or `None` (nothing sent) before the first frame.
    ///
    /// # Errors
    /// webrtc-rs's error if a packet cannot be written.
    pub async fn write_padding(&self, count: u16) -> webrtc::error::Result<Option<u16>> {
        let Some((timestamp, payload_type)) = self.lock().last_frame else {
            return Ok(None);
        };
        let padding = padding_payload();
        let mut first = None;
        for _ in 0..count {
            let sequence_number = self.sequencer.next_sequence_number();
            first.get_or_insert(sequence_number);
            let header = padding_header(self.ssrc, payload_type, sequence_number, timestamp);
            self.rtp
                .write_rtp(rtp::Packet {
                    header,
                    payload: padding.clone(),
                })
                .await?;
        }
        Ok(first)
    }
}

/// The padding in one padding-only packet, octets: the most RFC 3550's one-octet count allows.
pub const PADDING_BYTES: u8 = 255;

/// The payload of a padding-only RTP packet (RFC 3550 §5.1): [`PADDING_BYTES`] of padding whose
/// last octet counts them. Written as it is by the patched `rtc-rtp` (vendor/rtc-rtp).
fn padding_payload() -> bytes::Bytes {
    let mut padding = vec![0u8; usize::from(PADDING_BYTES)];
    padding[usize::from(PADDING_BYTES) - 1] = PADDING_BYTES;
    padding.into()
}

/// The header of a padding-only packet: the padding bit, the stream's next sequence number and
/// the last frame's timestamp.
fn padding_header(
    ssrc: SSRC,
    payload_type: u8,
    sequence_number: u16,
    timestamp: u32,
) -> rtp::header::Header {
    rtp::header::Header {
        version: 2,
        padding: true,
        payload_type,
        sequence_number,
        timestamp,
        ssrc,
        ..Default::default()
    }
}

fn packetizer(
    now: Instant,
    ssrc: SSRC,
    codec: &RTCRtpCodec,
    sequencer: Box<dyn Sequencer>,
) -> webrtc::error::Result<Box<dyn Packetizer + Send + Sync>> {
    Ok(Box::new(new_packetizer(
        now,
        MTU,
        0, // set per packet when writing
        ssrc,
        codec.payloader()?,
        sequencer,
        codec.clock_rate,
    )))
}

#[async_trait::async_trait]
impl Track for VideoTrack {
    async fn stream_id(&self) -> MediaStreamId {
        self.rtp.stream_id().await
    }
    async fn track_id(&self) -> MediaStreamTrackId {
        self.rtp.track_id().await
    }
    async fn label(&self) -> String {
        self.rtp.label().await
    }
    async fn kind(&self) -> RtpCodecKind {
        RtpCodecKind::Video
    }
    async fn rid(&self, ssrc: SSRC) -> Option<RtpStreamId> {
        self.rtp.rid(ssrc).await
    }
    async fn codec(&self, ssrc: SSRC) -> Option<RTCRtpCodec> {
        self.lock().description.codec(ssrc).cloned()
    }
    async fn ssrcs(&self) -> Vec<SSRC> {
        vec![self.ssrc]
    }
    async fn enabled(&self) -> bool {
        self.rtp.enabled().await
    }
    async fn set_enabled(&self, enabled: bool) {
        self.rtp.set_enabled(enabled).await;
    }
    async fn muted(&self) -> bool {
        self.rtp.muted().await
    }
    async fn set_muted(&self, muted: bool) {
        self.rtp.set_muted(muted).await;
    }
    async fn ready_state(&self) -> MediaStreamTrackState {
        self.rtp.ready_state().await
    }
    async fn stop(&self) {
        self.rtp.stop().await;
    }
    async fn get_capabilities(&self) -> MediaTrackCapabilities {
        self.rtp.get_capabilities().await
    }
    async fn get_constraints(&self) -> MediaTrackConstraints {
        self.rtp.get_constraints().await
    }
    async fn get_settings(&self) -> MediaTrackSettings {
        self.rtp.get_settings().await
    }
    async fn apply_constraints(&self, constraints: Option<MediaTrackConstraints>) {
        self.rtp.apply_constraints(constraints).await;
    }
    async fn codings(&self) -> Vec<RTCRtpEncodingParameters> {
        self.lock().description.codings().to_vec()
    }
    async fn add_coding(&self, _coding: RTCRtpEncodingParameters) {
        // One stream only: simulcast layers are not sent.
    }
}

#[async_trait::async_trait]
impl TrackLocal for VideoTrack {
    async fn track(&self) -> MediaStreamTrack {
        self.lock().description.clone()
    }
    async fn bind(&self, ctx: TrackLocalContext, evt_rx: Receiver<TrackLocalEvent>) {
        self.rtp.bind(ctx, evt_rx).await;
    }
    async fn unbind(&self) {
        self.rtp.unbind().await;
    }
    async fn write_rtp(&self, packet: rtp::Packet) -> webrtc::error::Result<()> {
        self.rtp.write_rtp(packet).await
    }
    async fn write_rtcp(&self, packets: Vec<Box<dyn rtcp::Packet>>) -> webrtc::error::Result<()> {
        self.rtp.write_rtcp(packets).await
    }
    async fn poll(&self) -> Option<TrackLocalEvent> {
        self.rtp.poll().await
    }
}

#[cfg(test)]
mod tests {
    use rtc::shared::marshal::{Marshal, MarshalSize, Unmarshal};

    use super::*;

    /// The probe's packets are as large as asked on the wire, and a receiver sees no payload:
    /// what the patched rtc-rtp is for (vendor/rtc-rtp/DUET-PATCH.md). As published it
    /// appended padding of its own and the packet carried 255 octets of garbage payload.
    #[test]
    fn padding_only_packets_keep_their_size() {
        let packet = rtp::Packet {
            header: padding_header(0x1234_5678, 102, 65_535, 90_000),
            payload: padding_payload(),
        };
        let header_size = packet.header.marshal_size();
        let wire = packet.marshal().expect("marshal");
        assert_eq!(wire.len(), header_size + usize::from(PADDING_BYTES));
        assert_eq!(packet.marshal_size(), wire.len());
        let received = rtp::Packet::unmarshal(&mut &wire[..]).expect("unmarshal");
        assert!(received.header.padding);
        assert!(
            received.payload.is_empty(),
            "{} octets",
            received.payload.len()
        );
        assert_eq!(received.header.sequence_number, 65_535);
        assert_eq!(received.header.timestamp, 90_000);
    }

    /// Every other packet is marshalled as before: a payload that does not end in its own
    /// length gets rtc-rtp's alignment padding.
    #[test]
    fn other_padded_packets_are_unchanged() {
        let packet = rtp::Packet {
            header: padding_header(1, 102, 1, 1),
            payload: vec![1u8, 2, 9].into(),
        };
        let wire = packet.marshal().expect("marshal");
        assert_eq!(wire.len(), packet.header.marshal_size() + 3 + 1);
        let received = rtp::Packet::unmarshal(&mut &wire[..]).expect("unmarshal");
        assert_eq!(&received.payload[..], &[1, 2, 9]);
    }
}
