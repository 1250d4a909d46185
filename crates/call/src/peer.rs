//! Building a webrtc-rs 0.21 peer connection the way duet needs it: H.264 (42e01f,
//! packetization-mode 1) and Opus only; send-side congestion control (Google Congestion
//! Control fed by transport-wide feedback, with the pacer), TWCC feedback for the other side's
//! sender, NACK and RTCP reports; inbound RTCP delivered to the application (for PLI/FIR and
//! receiver reports); loopback-only ICE when asked; and the handler that forwards the
//! connection's callbacks into a channel.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{
    Attribute, BandwidthEstimator, EstimatorStats, Interceptor, NackGeneratorBuilder, PacerBuilder,
    Packet as IPacket, PacketReport, Slot, StreamInfo, TaggedPacket,
};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::rtcp;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCIceServer,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, Registry, SettingEngineBuilder,
    configure_congestion_control, configure_nack, configure_rtcp_reports,
};

use crate::config::IceServer;
use crate::congestion::DuetGcc;
use crate::error::CallError;
use crate::probe::{ProbeRequest, ProbeSent};
use crate::resend::ResendGuard;
use crate::video_track::VideoTrack;

/// RTP payload type offered for H.264.
pub const H264_PT: u8 = 102;
/// RTP payload type offered for VP8.
pub const VP8_PT: u8 = 96;
/// RTP payload type offered for Opus.
pub const OPUS_PT: u8 = 111;
/// The H.264 format WebRTC peers (browsers included) agree on.
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// What the peer connection tells the session.
pub enum PeerEvent {
    /// A local ICE candidate to trickle to the other side (browser JSON shape).
    Candidate(RTCIceCandidateInit),
    /// Gathering finished: send the null end-of-candidates.
    GatheringComplete,
    /// The connection state changed.
    State(RTCPeerConnectionState),
    /// A remote track started (first RTP packet seen).
    Track(Arc<dyn TrackRemote>),
}

/// Forwards callbacks (which run on the connection's driver task) to the session, without
/// doing any work there.
struct Handler {
    events: mpsc::Sender<PeerEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, ev: RTCPeerConnectionIceEvent) {
        if let Ok(init) = ev.candidate.to_json() {
            let _ = self.events.send(PeerEvent::Candidate(init)).await;
        }
    }
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.events.send(PeerEvent::GatheringComplete).await;
        }
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.events.send(PeerEvent::State(state)).await;
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let (id, kind, ssrcs) = (
            track.track_id().await,
            track.kind().await,
            track.ssrcs().await,
        );
        tracing::debug!(%id, ?kind, ?ssrcs, "on_track");
        let _ = self.events.send(PeerEvent::Track(track)).await;
    }
}

/// Marks the RTCP the application acts on (PLI, FIR, NACK, receiver and sender reports) for
/// delivery to the track's `poll()`; webrtc-rs 0.21 swallows inbound RTCP otherwise.
#[derive(Default)]
struct RtcpToApp {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
    /// Where a peer's REMB goes (see [`BandwidthEstimate::receiver_estimate`]).
    estimate: Arc<BandwidthEstimate>,
}

impl RtcpToApp {
    fn new(estimate: Arc<BandwidthEstimate>) -> Self {
        Self {
            read: VecDeque::new(),
            write: VecDeque::new(),
            estimate,
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtcpToApp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = webrtc::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let IPacket::Rtcp(packets) = &msg.message.packet {
            for remb in packets
                .iter()
                .filter_map(|p| p.as_any().downcast_ref::<ReceiverEstimatedMaximumBitrate>())
            {
                tracing::debug!(bps = remb.bitrate, "REMB from the peer");
                self.estimate.receiver_estimate(f64::from(remb.bitrate));
            }
            let keep: Vec<Box<dyn rtcp::Packet>> = packets
                .iter()
                .filter(|p| {
                    let any = p.as_any();
                    any.is::<PictureLossIndication>()
                        || any.is::<FullIntraRequest>()
                        || any.is::<TransportLayerNack>()
                        || any.is::<ReceiverReport>()
                        || any.is::<SenderReport>()
                })
                .cloned()
                .collect();
            // Anything else (transport-wide feedback above all) goes on unmarked: the chain's
            // end still reads the attributes on it, such as the new bandwidth estimate.
            if !keep.is_empty() {
                msg.message.packet = IPacket::Rtcp(keep);
                msg.message.add(Attribute::DeliverToApplication);
            }
        }
        self.read.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for RtcpToApp {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

/// The RTP description of a video codec duet sends and receives.
#[must_use]
pub fn video_rtp_codec(codec: media::VideoCodec) -> RTCRtpCodec {
    let (mime_type, fmtp) = match codec {
        media::VideoCodec::H264 => (MIME_TYPE_H264, H264_FMTP),
        media::VideoCodec::Vp8 => (MIME_TYPE_VP8, ""),
    };
    RTCRtpCodec {
        mime_type: mime_type.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: fmtp.to_owned(),
        // Transport-wide feedback and NACK are added with their interceptors (`build`).
        // `goog-remb` lets a peer with only a receiver-side estimator tell duet its rate.
        rtcp_feedback: vec![
            RTCPFeedback {
                typ: "ccm".to_owned(),
                parameter: "fir".to_owned(),
            },
            RTCPFeedback {
                typ: "goog-remb".to_owned(),
                parameter: String::new(),
            },
        ],
    }
}

/// The payload type duet offers for a video codec.
#[must_use]
pub fn video_payload_type(codec: media::VideoCodec) -> u8 {
    match codec {
        media::VideoCodec::H264 => H264_PT,
        media::VideoCodec::Vp8 => VP8_PT,
    }
}

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn media_engine(video_codecs: &[media::VideoCodec]) -> Result<MediaEngine, CallError> {
    let mut engine = MediaEngine::default();
    // Offered in this order (by default H.264 first, which duet ↔ duet keeps, then VP8 for the
    // browsers without it).
    for &codec in video_codecs {
        engine
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: video_rtp_codec(codec),
                    payload_type: video_payload_type(codec),
                },
                RtpCodecKind::Video,
            )
            .map_err(CallError::webrtc(format!("registering {codec}")))?;
    }
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus_codec(),
                payload_type: OPUS_PT,
            },
            RtpCodecKind::Audio,
        )
        .map_err(CallError::webrtc("registering Opus"))?;
    Ok(engine)
}

/// How long checks run before a server-reflexive pair may be chosen while no host pair works
/// (webrtc-rs's default: 500 ms), and before a relayed pair may be chosen while no direct pair
/// works (default: 2 s). webrtc-rs never switches away from the pair it chose, so the order
/// host < server-reflexive < relayed stays; see `build` and docs/benchmarks.md.
pub const SRFLX_MIN_WAIT: Duration = Duration::from_millis(100);
/// See [`SRFLX_MIN_WAIT`]. Between duet peers a relayed pair rarely validates before a direct
/// one that works: its checks cross the relay, a longer way, and a check lost to a NAT that
/// has not opened yet is sent again after 20 ms (`with_ice_connection_attempts`); the
/// cone-NAT lab test finds the direct path. A browser paces its own checks, so across cone
/// NATs a browser's relayed pair is usually valid first, at 300 ms as at 150 ms (35 of 40
/// runs; only renomination would help). At 300 ms calls through TURN took 0.47-0.53 s to set
/// up against Chromium's 0.38-0.43 s; at 150 ms 0.31-0.43 s against 0.36-0.43 s in the same
/// lab runs (docs/benchmarks.md, "Calls across NAT").
pub const RELAY_MIN_WAIT: Duration = Duration::from_millis(150);

/// How much faster than the estimate the pacer may send: bursts such as a keyframe leave
/// quickly while the average stays at the estimate (libwebrtc's factor; 1.5 was measured in
/// the lab too and did worse on a capped link, docs/benchmarks.md).
pub const PACING_FACTOR: f64 = 2.5;

/// The bandwidth the congestion controller currently allows, shared with the video sender,
/// when the last transport-wide feedback arrived, and the probes passed between the two
/// (the controller asks, the video sender queues the padding and says what it sent).
#[derive(Debug)]
pub struct BandwidthEstimate {
    /// The congestion controller's estimate (f64 bits).
    bits: AtomicU64,
    /// The peer's last REMB, clamped to `range` (f64 bits; 0 = none yet).
    remb_bits: AtomicU64,
    /// The call's bitrate range, (min, max) bits/s, which a REMB is clamped to.
    range: (f64, f64),
    created: Instant,
    /// Microseconds after `created` of the last feedback report + 1 (0 = none yet).
    last_report_us: AtomicU64,
    probes: Mutex<Probes>,
}

#[derive(Debug, Default)]
struct Probes {
    wanted: Option<ProbeRequest>,
    sent: Option<(ProbeSent, Instant)>,
}

impl Default for BandwidthEstimate {
    fn default() -> Self {
        Self {
            bits: AtomicU64::new(0),
            remb_bits: AtomicU64::new(0),
            range: (0.0, f64::MAX),
            created: Instant::now(),
            last_report_us: AtomicU64::new(0),
            probes: Mutex::new(Probes::default()),
        }
    }
}

impl BandwidthEstimate {
    /// An estimate that starts at `initial_bps` and takes a peer's REMB within
    /// `min_bps..=max_bps`.
    #[must_use]
    pub fn new(initial_bps: f64, min_bps: f64, max_bps: f64) -> Self {
        let estimate = Self {
            range: (min_bps, max_bps.max(min_bps)),
            ..Self::default()
        };
        estimate.set(initial_bps);
        estimate
    }

    /// The estimate in bits per second (0 before the controller started): the congestion
    /// controller's, capped by the peer's REMB when it sends one. A peer that sends REMB but
    /// no transport-wide feedback (a receiver-side estimator, as older WebRTC stacks and some
    /// servers have) leaves the controller blind, so its REMB is the estimate.
    #[must_use]
    pub fn bps(&self) -> f64 {
        let gcc = f64::from_bits(self.bits.load(Ordering::Relaxed));
        let has_feedback = self.last_report_us.load(Ordering::Relaxed) != 0;
        match (self.remb_bps(), has_feedback) {
            (None, _) => gcc,
            (Some(remb), true) => gcc.min(remb),
            (Some(remb), false) => remb,
        }
    }

    /// The peer's last receiver estimate (REMB), clamped to the call's range.
    #[must_use]
    pub fn remb_bps(&self) -> Option<f64> {
        match self.remb_bits.load(Ordering::Relaxed) {
            0 => None,
            bits => Some(f64::from_bits(bits)),
        }
    }

    /// The peer sent a REMB of `bps` (RTCP, `goog-remb`): libwebrtc treats it as a ceiling on
    /// its send-side estimate, and so does duet. Not counted as transport-wide feedback.
    pub fn receiver_estimate(&self, bps: f64) {
        if !bps.is_finite() || bps <= 0.0 {
            return;
        }
        let clamped = bps.clamp(self.range.0, self.range.1);
        self.remb_bits.store(clamped.to_bits(), Ordering::Relaxed);
    }

    /// How long ago the last feedback report arrived; `None` before the first. The estimate
    /// only moves when feedback arrives, so a long silence means the link is too congested
    /// for the feedback itself to get through.
    #[must_use]
    pub fn since_last_report(&self, now: Instant) -> Option<Duration> {
        match self.last_report_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(now.saturating_duration_since(self.created + Duration::from_micros(us - 1))),
        }
    }

    /// The probe the congestion controller wants sent, once (see [`crate::probe`]).
    pub fn take_probe(&self) -> Option<ProbeRequest> {
        self.probes().wanted.take()
    }

    /// The video sender queued a probe's padding at `now`.
    pub fn probe_sent(&self, sent: ProbeSent, now: Instant) {
        self.probes().sent = Some((sent, now));
    }

    fn probes(&self) -> std::sync::MutexGuard<'_, Probes> {
        self.probes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set(&self, bps: f64) {
        self.bits.store(bps.to_bits(), Ordering::Relaxed);
    }

    fn reported(&self, now: Instant) {
        let us = now.saturating_duration_since(self.created).as_micros() as u64;
        self.last_report_us.store(us + 1, Ordering::Relaxed);
    }
}

/// duet's congestion controller ([`DuetGcc`]: webrtc-rs's `Gcc` collapsed to its floor on
/// narrow links, see its docs), publishing each new estimate and probe request for the video
/// sender, and handing the chain (the pacer) [`PACING_FACTOR`] times the estimate, or a
/// probe's rate while one is outstanding.
struct PublishingGcc {
    inner: DuetGcc,
    estimate: Arc<BandwidthEstimate>,
}

impl BandwidthEstimator for PublishingGcc {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        let sent = self.estimate.probes().sent.take();
        if let Some((sent, at)) = sent {
            self.inner.probe_sent(at, sent);
        }
        self.inner.on_reports(now, reports);
        self.estimate.set(self.inner.target_bitrate());
        self.estimate.reported(now);
        if let Some(request) = self.inner.take_probe_request() {
            self.estimate.probes().wanted = Some(request);
        }
    }
    fn target_bitrate(&self) -> f64 {
        // What the sender is allowed: the controller's estimate, or the peer's REMB (see
        // `BandwidthEstimate::bps`).
        let paced = self.estimate.bps() * PACING_FACTOR;
        self.inner
            .probe_pacing_bps()
            .map_or(paced, |probe| paced.max(probe))
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        self.estimate.set(self.inner.target_bitrate());
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
    fn stats(&self) -> EstimatorStats {
        self.inner.stats()
    }
}

/// Silence on the selected pair after which ICE reports `disconnected`.
pub const ICE_DISCONNECTED_AFTER: Duration = Duration::from_secs(1);
/// ICE keepalive interval, and so webrtc-rs's driver tick once connected. Measured through
/// signal's TURN across symmetric NATs (docs/benchmarks.md): with webrtc-rs's 200 ms the
/// relayed side's ClientHello and flight 5 each waited ~200 ms and setup was 0.8-1.5 s; with
/// 40 ms the first side shows video after 0.44-0.50 s. Keepalives only go out on an idle
/// path, so media calls send none.
pub const ICE_TICK: Duration = Duration::from_millis(40);
/// Silence after which ICE reports `failed`.
pub const ICE_FAILED_AFTER: Duration = Duration::from_secs(8);

/// Where [`ResendGuard`] sits in the interceptor chain: wire-ward of the NACK responder (4000),
/// application-ward of the pacer (3000).
const RESEND_GUARD_SLOT: usize = 3_500;

/// Packets the pacer may hold (see `build`).
pub const PACER_QUEUE_PACKETS: usize = 256;

/// Where the congestion controller starts when the configured bitrate is higher, bits/s.
/// The first feedback of the call probes at 3 × this (`probe::STARTUP_FACTOR`) and a probe
/// that finds room is followed by another, so a clear path is found within about a second;
/// starting at 1 Mbit/s, as duet did before it probed, overshot a 500 kbit/s link (seconds
/// of freezes and a 406 ms glass-to-glass p95 in the lab). Chromium starts at 300 kbit/s.
pub const INITIAL_BITRATE_BPS: f64 = 500_000.0;
/// The least the congestion controller goes down to, bits/s.
pub const MIN_BITRATE_BPS: f64 = 150_000.0;

/// The range the congestion controller works in, bits per second (video and audio together).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BitrateRange {
    pub initial_bps: f64,
    pub min_bps: f64,
    pub max_bps: f64,
}

/// A new peer connection, the channel its events arrive on, and the live bandwidth estimate.
pub async fn build(
    ice_servers: &[IceServer],
    loopback_only: bool,
    bitrate: BitrateRange,
    video_codecs: &[media::VideoCodec],
) -> Result<
    (
        Arc<dyn PeerConnection>,
        mpsc::Receiver<PeerEvent>,
        Arc<BandwidthEstimate>,
    ),
    CallError,
> {
    let mut engine = media_engine(video_codecs)?;
    let estimate = Arc::new(BandwidthEstimate::new(
        bitrate.initial_bps,
        bitrate.min_bps,
        bitrate.max_bps,
    ));
    let gcc = PublishingGcc {
        inner: DuetGcc::new(bitrate.initial_bps, bitrate.min_bps, bitrate.max_bps),
        estimate: estimate.clone(),
    };
    // Codecs first: the helper adds transport-cc feedback to the codecs already registered.
    let registry = configure_congestion_control(
        Registry::new(),
        gcc,
        webrtc::peer_connection::CongestionFeedback::Twcc,
        &mut engine,
    )
    .map_err(CallError::webrtc("setting up congestion control"))?;
    let registry = configure_nack(registry, &mut engine)
        // Ask again every 50 ms, at most 5 times (250 ms): enough for a lost retransmission
        // to be asked for again on any link the call survives, and bounded so that on a link
        // losing most packets the NACKs and their retransmissions cannot crowd out new media.
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_interval(Duration::from_millis(50))
                .with_max_nacks_per_packet(5)
                .build(),
        )
        // The pacer's queue: bounded so that what waits in it cannot grow to tens of seconds
        // behind a collapsed estimate (the default holds 4096 packets; with it a call stalled
        // for the rest of a lab run after a step down to 500 kbit/s). webrtc-rs's pacer drops
        // new packets when full, so the bound is a compromise: 256 packets is about 1 s at
        // 2.5 Mbit/s and 6 s at the 375 kbit/s it paces at when the estimate is at its floor.
        .with(
            Slot::Pacer,
            PacerBuilder::new()
                .with_queue_limit(PACER_QUEUE_PACKETS)
                .build(),
        );
    // Between the pacer and the NACK responder: each NACKed packet is sent again at most once
    // per 100 ms, while it is young enough to help, within a budget of the estimate
    // (crate::resend; without it a step down to 500 kbit/s filled the pacer with resends).
    let registry = registry.with(
        Slot::from(RESEND_GUARD_SLOT),
        ResendGuard::new(estimate.clone()),
    );
    let registry = configure_rtcp_reports(registry);
    let registry = registry.with(Slot::from(14_000), RtcpToApp::new(estimate.clone()));
    // Work-arounds measured in docs/benchmarks.md (call setup): without them the first DTLS
    // flight waits for the 200 ms ICE tick, and a peer-reflexive pair waits a full second.
    let settings = SettingEngineBuilder::new()
        // Browsers on a LAN hide their addresses behind `.local` names: resolve them (but never
        // publish our own names). Loopback-only calls (tests on one machine) have no LAN.
        .with_multicast_dns_mode(if loopback_only {
            MulticastDnsMode::Disabled
        } else {
            MulticastDnsMode::QueryOnly
        })
        .with_ice_connection_attempts(Some(Duration::from_millis(20)), Some(70))
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        // webrtc-rs nominates a relay pair only 2 s after checks start, a server-reflexive one
        // after 500 ms (and never switches later): most of the 2.8-3.2 s setup through TURN,
        // and of the 575 ms across cone NATs. A pair is nominated only while no better pair is
        // valid, so a shorter wait changes nothing where a better path answers first; the
        // waits leave a better path that long to do so.
        .with_srflx_acceptance_min_wait(Some(SRFLX_MIN_WAIT))
        .with_relay_acceptance_min_wait(Some(RELAY_MIN_WAIT))
        // NACK retransmissions of a keyframe's early packets arrive more than 64 packets
        // behind the newest one; the default replay window would reject them.
        .with_srtp_replay_protection_window(1024)
        // Notice a lost path within a second (media flows many times a second, and keepalive
        // checks go out when it does not), so the call core can restart ICE quickly; give up
        // on a path after 8 s instead of webrtc-rs's 25 s. The keepalive interval is also the
        // driver's tick once ICE is connected: a DTLS flight sent through a TURN relay waits for
        // that tick (200 ms by default, twice per handshake), so it is `ICE_TICK`.
        .with_ice_timeouts(
            Some(ICE_DISCONNECTED_AFTER),
            Some(ICE_FAILED_AFTER),
            Some(ICE_TICK),
        )
        .build();
    let servers = ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.iter().filter(|u| usable_url(u)).cloned().collect(),
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .filter(|s| !s.urls.is_empty())
        .collect();
    let configuration = RTCConfigurationBuilder::new()
        .with_ice_servers(servers)
        .build();
    let (tx, rx) = mpsc::channel(256);
    // A concrete address gives exactly that host candidate; the wildcard expands to every
    // non-loopback interface.
    let addrs = if loopback_only {
        vec!["127.0.0.1:0"]
    } else {
        vec!["0.0.0.0:0"]
    };
    let pc = PeerConnectionBuilder::new()
        .with_configuration(configuration)
        .with_media_engine(engine)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler { events: tx }))
        .with_udp_addrs(addrs)
        .build()
        .await
        .map_err(CallError::webrtc("creating the peer connection"))?;
    Ok((Arc::new(pc), rx, estimate))
}

/// Whether webrtc-rs can use an ICE server URL: it gathers over UDP only and skips TURN over
/// TCP or TLS (`?transport=tcp`, `turns:`) with a warning each time; servers offer those for
/// browsers (signal's `ready` does), so they are left out quietly here.
fn usable_url(url: &str) -> bool {
    !(url.starts_with("turns:") || url.contains("transport=tcp"))
}

/// The local video track, with a random SSRC, sending `codec` until the other side's
/// description says otherwise (see [`crate::video_track`]).
pub fn video_track(codec: media::VideoCodec) -> Result<Arc<VideoTrack>, CallError> {
    // Track ids must be unique across both peers: webrtc-rs routes RTP and RTCP by track id,
    // and a remote track named like one of ours would receive our feedback.
    let track_id = format!("duet-video-{:08x}", random_u32());
    VideoTrack::new(
        "duet",
        &track_id,
        random_u32(),
        codec,
        video_rtp_codec(codec),
    )
    .map(Arc::new)
    .map_err(CallError::webrtc("creating the video track"))
}

/// The local audio track (Opus) with a random SSRC.
pub fn audio_track() -> Result<Arc<TrackLocalStaticSample>, CallError> {
    let track_id = format!("duet-audio-{:08x}", random_u32());
    let track = TrackLocalStaticSample::new(
        Instant::now(),
        MediaStreamTrack::new(
            "duet".to_owned(),
            track_id,
            "audio".to_owned(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(random_u32()),
                    ..Default::default()
                },
                codec: opus_codec(),
                ..Default::default()
            }],
        ),
    )
    .map_err(CallError::webrtc("creating the audio track"))?;
    Ok(Arc::new(track))
}

fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() as u32 | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_and_tls_turn_urls_are_left_to_browsers() {
        assert!(usable_url("stun:203.0.113.10:3478"));
        assert!(usable_url("turn:203.0.113.10:3478?transport=udp"));
        assert!(usable_url("turn:203.0.113.10:3478"));
        assert!(!usable_url("turn:203.0.113.10:3478?transport=tcp"));
        assert!(!usable_url("turns:turn.example.com:5349?transport=tcp"));
    }

    /// A REMB as it comes off the wire: marshalled, then parsed as webrtc-rs parses inbound
    /// RTCP.
    fn remb_from_the_wire(bps: f32) -> TaggedPacket {
        use rtc::shared::marshal::Marshal;
        let remb = ReceiverEstimatedMaximumBitrate {
            sender_ssrc: 1,
            bitrate: bps,
            ssrcs: vec![2],
        };
        let mut wire = remb.marshal().expect("marshal");
        let packets = rtcp::packet::unmarshal(&mut wire).expect("unmarshal");
        TaggedPacket {
            now: Instant::now(),
            transport: Default::default(),
            message: rtc::interceptor::AttributedPacket::new(IPacket::Rtcp(packets)),
        }
    }

    fn read_through(estimate: &Arc<BandwidthEstimate>, packet: TaggedPacket) -> TaggedPacket {
        let mut rtcp = RtcpToApp::new(estimate.clone());
        rtcp.handle_read(packet).expect("read");
        rtcp.poll_read().expect("passed on")
    }

    #[test]
    fn a_peers_remb_caps_the_controllers_estimate() {
        let estimate = Arc::new(BandwidthEstimate::new(500_000.0, 150_000.0, 2_500_000.0));
        estimate.set(1_200_000.0);
        estimate.reported(Instant::now());
        assert_eq!(estimate.bps(), 1_200_000.0);
        let passed = read_through(&estimate, remb_from_the_wire(800_000.0));
        assert_eq!(estimate.bps(), 800_000.0, "the REMB is a ceiling");
        // A REMB is not for the application (only PLI, FIR, NACK and reports are).
        assert!(!passed.message.has(&Attribute::DeliverToApplication));
        // Above the controller's estimate it changes nothing.
        read_through(&estimate, remb_from_the_wire(3_000_000.0));
        assert_eq!(estimate.bps(), 1_200_000.0);
    }

    /// What a REMB-only peer's REMB does to the sender: the pacer lets video out at the
    /// REMB's rate (times the pacing factor), not at the controller's unfed start.
    #[test]
    fn the_pacer_follows_a_remb_only_peer() {
        let estimate = Arc::new(BandwidthEstimate::new(500_000.0, 150_000.0, 2_500_000.0));
        let gcc = PublishingGcc {
            inner: DuetGcc::new(500_000.0, 150_000.0, 2_500_000.0),
            estimate: estimate.clone(),
        };
        assert_eq!(gcc.target_bitrate(), 500_000.0 * PACING_FACTOR);
        read_through(&estimate, remb_from_the_wire(1_800_000.0));
        assert_eq!(gcc.target_bitrate(), 1_800_000.0 * PACING_FACTOR);
    }

    #[test]
    fn without_transport_feedback_the_remb_is_the_estimate_within_the_range() {
        let estimate = Arc::new(BandwidthEstimate::new(500_000.0, 150_000.0, 2_500_000.0));
        assert_eq!(estimate.bps(), 500_000.0, "the start, before any feedback");
        read_through(&estimate, remb_from_the_wire(1_800_000.0));
        assert_eq!(estimate.bps(), 1_800_000.0);
        read_through(&estimate, remb_from_the_wire(40_000_000.0));
        assert_eq!(estimate.bps(), 2_500_000.0, "clamped to the call's maximum");
        read_through(&estimate, remb_from_the_wire(1_000.0));
        assert_eq!(estimate.bps(), 150_000.0, "and its minimum");
        // The wire cannot carry these; the estimate ignores them all the same.
        for nonsense in [f64::NAN, f64::INFINITY, 0.0, -1.0] {
            estimate.receiver_estimate(nonsense);
        }
        assert_eq!(estimate.bps(), 150_000.0);
    }
}
