//! One call session: the signalling connection, one peer connection per remote person, and
//! the media paths while connected. Runs as a single tokio task that owns all call state and
//! reacts to four inputs: signalling messages, peer-connection events, commands, and a stats
//! tick. After `peer-left` it goes back to waiting in the same room.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::statistics::report::RTCStatsReportEntry;
use serde_json::Value;
use signal::ServerMessage;
use signal::client::{SignalEvent, SignalSender};
use signal::protocol::ClientMessage;
use tokio::sync::mpsc;
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCPeerConnectionState, RTCSdpType, RTCSessionDescription,
    StatsSelector,
};
use webrtc::rtp_transceiver::RtpSender;

use crate::config::{CallConfig, SpeakerChoice, VideoChoice};
use crate::error::CallError;
use crate::events::{CallState, CallStats, Command, Event, FrameSlot};
use crate::media_io::{self, AudioCmd, MediaCounters, VideoCmd, VideoSendConfig, Waker, Worker};
use crate::negotiation::{Negotiator, OfferAction};
use crate::peer::{self, PeerEvent};
use crate::stats::Totals;

/// What the session needs from its owner.
pub struct SessionIo {
    /// Events out (bounded; a full channel drops stats, never blocks).
    pub events: crossbeam_channel::Sender<Event>,
    /// Commands in.
    pub commands: mpsc::Receiver<Command>,
    /// Latest local preview frame.
    pub local: Arc<FrameSlot>,
    /// Latest remote frame.
    pub remote: Arc<FrameSlot>,
    /// Wakes the display.
    pub wake: Waker,
}

impl SessionIo {
    fn emit(&self, event: Event) {
        if self.events.try_send(event).is_err() {
            tracing::debug!("event channel full; event dropped");
        }
        (self.wake)();
    }
}

/// The connection with one remote person.
struct PeerCall {
    pc: Arc<dyn PeerConnection>,
    events: mpsc::Receiver<PeerEvent>,
    negotiator: Negotiator,
    pending_candidates: Vec<RTCIceCandidateInit>,
    video_track: Arc<TrackLocalStaticSample>,
    audio_track: Arc<TrackLocalStaticSample>,
    video_sender: Arc<dyn RtpSender>,
    audio_sender: Arc<dyn RtpSender>,
    workers: Vec<Worker>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    video_cmd: Option<crossbeam_channel::Sender<VideoCmd>>,
    audio_cmd: Option<crossbeam_channel::Sender<AudioCmd>>,
    connected: bool,
    ready_at: Instant,
    counters: Arc<MediaCounters>,
    estimate: Arc<peer::BandwidthEstimate>,
}

impl PeerCall {
    async fn close(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let _ = self.pc.close().await;
        let workers = std::mem::take(&mut self.workers);
        // Joining threads blocks: do it off the runtime.
        let _ = tokio::task::spawn_blocking(move || drop(workers)).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn description_message(room: &str, desc: &RTCSessionDescription) -> Option<ClientMessage> {
    let value = serde_json::to_value(desc).ok()?;
    Some(match desc.sdp_type {
        RTCSdpType::Answer => ClientMessage::Answer {
            room: room.to_owned(),
            answer: value,
        },
        _ => ClientMessage::Offer {
            room: room.to_owned(),
            offer: value,
        },
    })
}

/// Runs the session until hang-up or failure; returns the final state.
pub async fn run(config: CallConfig, mut io: SessionIo) -> CallState {
    let started = Instant::now();
    io.emit(Event::State(CallState::Joining));
    let (sig, mut sig_rx) =
        match signal::client::connect(&config.signal_url, Duration::from_secs(10)).await {
            Ok(pair) => pair,
            Err(e) => return fail(&io, CallError::Signal(e.to_string())),
        };
    let join = ClientMessage::Join {
        room: config.room.clone(),
        token: config.token.clone(),
    };
    if sig.send(join).await.is_err() {
        return fail(
            &io,
            CallError::Signal("the connection closed while joining".into()),
        );
    }
    io.emit(Event::State(CallState::WaitingForPeer));
    let mut session = Session {
        config,
        sig,
        call: None,
        counters: Arc::new(MediaCounters::default()),
        rates: None,
        started,
        mic_muted: false,
        camera_off: false,
        speaker_switch: Arc::new(Mutex::new(None)),
        preview: None,
    };
    session.start_preview(&io);
    let mut stats_tick = tokio::time::interval(Duration::from_secs(1));
    stats_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = loop {
        let peer_event = async {
            match session.call.as_mut() {
                Some(call) => call.events.recv().await,
                None => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            event = sig_rx.recv() => session.on_signal(event, &io).await,
            Some(event) = peer_event => session.on_peer_event(event, &io).await,
            command = io.commands.recv() => match command {
                Some(Command::HangUp) | None => break CallState::Ended,
                Some(command) => { session.on_command(command, &io); Ok(None) }
            },
            _ = stats_tick.tick() => { session.emit_stats(&io).await; Ok(None) }
        };
        match result {
            Ok(None) => {}
            Ok(Some(state)) => break state,
            Err(e) => break fail(&io, e),
        }
    };
    if let Some(call) = session.call.take() {
        call.close().await;
    }
    if end == CallState::Ended {
        let _ = session.sig.leave(&session.config.room).await;
    }
    drop(sig_rx);
    io.emit(Event::State(end.clone()));
    end
}

fn fail(io: &SessionIo, error: CallError) -> CallState {
    let state = CallState::Failed(error.to_string());
    io.emit(Event::State(state.clone()));
    state
}

struct Session {
    config: CallConfig,
    sig: SignalSender,
    call: Option<PeerCall>,
    counters: Arc<MediaCounters>,
    /// The counters at the last stats tick.
    rates: Option<Totals>,
    started: Instant,
    mic_muted: bool,
    camera_off: bool,
    speaker_switch: Arc<Mutex<Option<SpeakerChoice>>>,
    /// The self-view while no call sends video.
    preview: Option<Worker>,
}

type Step = Result<Option<CallState>, CallError>;

impl Session {
    async fn send(&self, msg: ClientMessage) -> Result<(), CallError> {
        self.sig
            .send(msg)
            .await
            .map_err(|e| CallError::Signal(e.to_string()))
    }

    async fn on_signal(&mut self, event: Option<SignalEvent>, io: &SessionIo) -> Step {
        let msg = match event {
            Some(SignalEvent::Message(msg)) => msg,
            other => {
                let why = match other {
                    Some(SignalEvent::Closed(Some(reason))) => reason,
                    _ => "closed".into(),
                };
                return Err(CallError::Signal(format!(
                    "the connection to the signal server was lost ({why})"
                )));
            }
        };
        match msg {
            ServerMessage::Ready { offerer, .. } => {
                if let Some(old) = self.call.take() {
                    old.close().await;
                }
                self.counters = Arc::new(MediaCounters::default());
                self.counters
                    .mic_muted
                    .store(self.mic_muted, Ordering::Relaxed);
                self.counters
                    .camera_off
                    .store(self.camera_off, Ordering::Relaxed);
                self.rates = None;
                io.local.clear();
                io.remote.clear();
                let call = self.new_call(offerer).await?;
                let offer_now = call.negotiator.should_offer_on_ready();
                self.call = Some(call);
                io.emit(Event::State(CallState::Connecting));
                if offer_now {
                    self.make_offer().await?;
                }
                Ok(None)
            }
            ServerMessage::Offer { offer, .. } => self.on_remote_offer(offer).await.map(|()| None),
            ServerMessage::Answer { answer, .. } => {
                self.on_remote_answer(answer).await.map(|()| None)
            }
            ServerMessage::Candidate { candidate, .. } => {
                self.on_remote_candidate(candidate).await.map(|()| None)
            }
            ServerMessage::PeerLeft { .. } => {
                if let Some(call) = self.call.take() {
                    call.close().await;
                }
                io.local.clear();
                io.remote.clear();
                self.start_preview(io);
                io.emit(Event::State(CallState::PeerLeft));
                io.emit(Event::State(CallState::WaitingForPeer));
                Ok(None)
            }
            ServerMessage::Error { code, message } => match code.as_str() {
                "room-full" | "invalid-room" | "forbidden" | "too-many-rooms" => {
                    Err(CallError::Refused(message))
                }
                _ => {
                    io.emit(Event::Warning(format!("signal server: {message}")));
                    Ok(None)
                }
            },
        }
    }

    async fn new_call(&self, offerer: Option<bool>) -> Result<PeerCall, CallError> {
        let (pc, events, estimate) = peer::build(
            &self.config.ice_servers,
            self.config.loopback_only,
            self.bitrate_range(),
        )
        .await?;
        let video_track = peer::local_track(RtpCodecKind::Video, "video")?;
        let audio_track = peer::local_track(RtpCodecKind::Audio, "audio")?;
        let video_sender = pc
            .add_track(video_track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| CallError::WebRtc(format!("adding the video track: {e}")))?;
        let audio_sender = pc
            .add_track(audio_track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| CallError::WebRtc(format!("adding the audio track: {e}")))?;
        Ok(PeerCall {
            pc,
            events,
            negotiator: Negotiator::new(offerer),
            pending_candidates: Vec::new(),
            video_track,
            audio_track,
            video_sender,
            audio_sender,
            workers: Vec::new(),
            tasks: Vec::new(),
            video_cmd: None,
            audio_cmd: None,
            connected: false,
            ready_at: Instant::now(),
            counters: self.counters.clone(),
            estimate,
        })
    }

    /// What the congestion controller may allow, video and audio together: it starts at
    /// [`peer::INITIAL_BITRATE_BPS`] (or the configured total if lower) and never goes past the
    /// configured total, which the encoders could not use.
    fn bitrate_range(&self) -> peer::BitrateRange {
        let total =
            f64::from(self.config.video_bitrate_bps) + f64::from(self.config.audio_bitrate_bps);
        let total = total / (1.0 - media_io::OVERHEAD_SHARE);
        peer::BitrateRange {
            initial_bps: total.min(peer::INITIAL_BITRATE_BPS),
            min_bps: peer::MIN_BITRATE_BPS.min(total),
            max_bps: total,
        }
    }

    async fn make_offer(&mut self) -> Result<(), CallError> {
        let Some(call) = self.call.as_mut() else {
            return Ok(());
        };
        let offer = call
            .pc
            .create_offer(None)
            .await
            .map_err(|e| CallError::WebRtc(format!("creating an offer: {e}")))?;
        call.pc
            .set_local_description(offer.clone())
            .await
            .map_err(|e| CallError::WebRtc(format!("applying our offer: {e}")))?;
        call.negotiator.local_offer_made(&offer.sdp);
        if let Some(msg) = description_message(&self.config.room, &offer) {
            self.send(msg).await?;
        }
        Ok(())
    }

    async fn on_remote_offer(&mut self, offer: Value) -> Result<(), CallError> {
        let Some(call) = self.call.as_mut() else {
            return Ok(());
        };
        let desc: RTCSessionDescription =
            serde_json::from_value(offer).map_err(|e| CallError::BadRemote {
                what: "offer",
                reason: e.to_string(),
            })?;
        if desc.sdp_type != RTCSdpType::Offer {
            return Err(CallError::BadRemote {
                what: "offer",
                reason: format!("type is {}", desc.sdp_type),
            });
        }
        let have_local_offer = matches!(call.pc.pending_local_description().await, Some(d) if d.sdp_type == RTCSdpType::Offer);
        match call.negotiator.on_remote_offer(&desc.sdp, have_local_offer) {
            OfferAction::Ignore => {
                call.counters.glare_ignored.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            OfferAction::Accept { rollback_first } => {
                if rollback_first {
                    call.counters
                        .glare_rollbacks
                        .fetch_add(1, Ordering::Relaxed);
                    let rollback = RTCSessionDescription::rollback(None)
                        .map_err(|e| CallError::WebRtc(format!("rollback: {e}")))?;
                    call.pc
                        .set_local_description(rollback)
                        .await
                        .map_err(|e| CallError::WebRtc(format!("rolling back our offer: {e}")))?;
                }
            }
        }
        call.pc
            .set_remote_description(desc)
            .await
            .map_err(|e| CallError::BadRemote {
                what: "offer",
                reason: e.to_string(),
            })?;
        self.flush_candidates().await?;
        let Some(call) = self.call.as_mut() else {
            return Ok(());
        };
        let answer = call
            .pc
            .create_answer(None)
            .await
            .map_err(|e| CallError::WebRtc(format!("creating an answer: {e}")))?;
        call.pc
            .set_local_description(answer.clone())
            .await
            .map_err(|e| CallError::WebRtc(format!("applying our answer: {e}")))?;
        tracing::debug!(sdp = %answer.sdp, "local answer");
        if let Some(msg) = description_message(&self.config.room, &answer) {
            self.send(msg).await?;
        }
        Ok(())
    }

    async fn on_remote_answer(&mut self, answer: Value) -> Result<(), CallError> {
        let Some(call) = self.call.as_mut() else {
            return Ok(());
        };
        let desc: RTCSessionDescription =
            serde_json::from_value(answer).map_err(|e| CallError::BadRemote {
                what: "answer",
                reason: e.to_string(),
            })?;
        if desc.sdp_type != RTCSdpType::Answer {
            return Err(CallError::BadRemote {
                what: "answer",
                reason: format!("type is {}", desc.sdp_type),
            });
        }
        let have_local_offer = matches!(call.pc.pending_local_description().await, Some(d) if d.sdp_type == RTCSdpType::Offer);
        if !have_local_offer {
            // A stale answer to an offer we rolled back: harmless.
            return Ok(());
        }
        call.pc
            .set_remote_description(desc)
            .await
            .map_err(|e| CallError::BadRemote {
                what: "answer",
                reason: e.to_string(),
            })?;
        self.flush_candidates().await
    }

    async fn on_remote_candidate(&mut self, candidate: Option<Value>) -> Result<(), CallError> {
        let loopback_only = self.config.loopback_only;
        let Some(call) = self.call.as_mut() else {
            return Ok(());
        };
        let init: RTCIceCandidateInit = match candidate {
            None | Some(Value::Null) => RTCIceCandidateInit::default(),
            Some(v) => serde_json::from_value(v).map_err(|e| CallError::BadRemote {
                what: "candidate",
                reason: e.to_string(),
            })?,
        };
        if init.candidate.is_empty() {
            // End of candidates: webrtc-rs 0.21 keeps checking what it has.
            return Ok(());
        }
        let line = init
            .candidate
            .strip_prefix("candidate:")
            .unwrap_or(&init.candidate);
        if let Err(e) = rtc::ice::candidate::unmarshal_candidate(line) {
            return Err(CallError::BadRemote {
                what: "candidate",
                reason: e.to_string(),
            });
        }
        if loopback_only && !peer::is_loopback_candidate(&init.candidate) {
            tracing::debug!(candidate = %init.candidate, "ignoring a non-loopback candidate");
            return Ok(());
        }
        if call.pc.remote_description().await.is_none() {
            if call.pending_candidates.len() < 256 {
                call.pending_candidates.push(init);
            }
            return Ok(());
        }
        if let Err(e) = call.pc.add_ice_candidate(init).await
            && !call.negotiator.ignoring_offer()
        {
            return Err(CallError::BadRemote {
                what: "candidate",
                reason: e.to_string(),
            });
        }
        Ok(())
    }

    async fn flush_candidates(&mut self) -> Result<(), CallError> {
        let Some(call) = self.call.as_mut() else {
            return Ok(());
        };
        for init in std::mem::take(&mut call.pending_candidates) {
            if let Err(e) = call.pc.add_ice_candidate(init).await {
                return Err(CallError::BadRemote {
                    what: "candidate",
                    reason: e.to_string(),
                });
            }
        }
        Ok(())
    }

    async fn on_peer_event(&mut self, event: PeerEvent, io: &SessionIo) -> Step {
        let room = self.config.room.clone();
        match event {
            PeerEvent::Candidate(init) => {
                let mut value = serde_json::to_value(&init).unwrap_or(Value::Null);
                // webrtc-rs leaves sdpMid empty; browsers want the bundled m-line's mid.
                if value.get("sdpMid").and_then(Value::as_str) == Some("") {
                    value["sdpMid"] = Value::String("0".into());
                }
                self.send(ClientMessage::Candidate {
                    room,
                    candidate: Some(value),
                })
                .await?;
            }
            PeerEvent::GatheringComplete => {
                self.send(ClientMessage::Candidate {
                    room,
                    candidate: None,
                })
                .await?;
            }
            PeerEvent::State(state) => match state {
                RTCPeerConnectionState::Connected => {
                    let first = self.call.as_ref().is_some_and(|c| !c.connected);
                    if first {
                        self.start_sending(io).await?;
                        io.emit(Event::State(CallState::Connected));
                    }
                }
                RTCPeerConnectionState::Failed => return Err(CallError::IceFailed),
                _ => {}
            },
            PeerEvent::Track(track) => self.start_receiving(track, io).await,
        }
        Ok(None)
    }

    /// Shows the local source in the self-view until a call sends video.
    fn start_preview(&mut self, io: &SessionIo) {
        let sending = self.call.as_ref().is_some_and(|c| c.connected);
        if self.preview.is_some()
            || sending
            || self.camera_off
            || self.config.video == VideoChoice::None
        {
            return;
        }
        let cfg = VideoSendConfig {
            width: self.config.width,
            height: self.config.height,
            fps: self.config.fps,
            bitrate_bps: self.config.video_bitrate_bps,
            audio_bps: self.config.audio_bitrate_bps,
        };
        match media_io::spawn_preview(
            self.config.video.clone(),
            cfg,
            io.local.clone(),
            io.wake.clone(),
        ) {
            Ok(worker) => self.preview = Some(worker),
            Err(e) => tracing::debug!(error = %e, "no preview thread"),
        }
    }

    /// Stops the preview (the camera can only be opened once); joining happens off the runtime.
    async fn stop_preview(&mut self) {
        if let Some(preview) = self.preview.take() {
            let _ = tokio::task::spawn_blocking(move || drop(preview)).await;
        }
    }

    async fn start_sending(&mut self, io: &SessionIo) -> Result<(), CallError> {
        self.stop_preview().await;
        let rt = tokio::runtime::Handle::current();
        let config = self.config.clone();
        let warn_tx = io.events.clone();
        let wake = io.wake.clone();
        let warn: Arc<dyn Fn(String) + Send + Sync> = Arc::new(move |message: String| {
            tracing::warn!(%message, "media");
            let _ = warn_tx.try_send(Event::Warning(message));
            wake();
        });
        let Some(call) = self.call.as_mut() else {
            return Ok(());
        };
        call.connected = true;
        let video_pt = negotiated_pt(&call.video_sender).await?;
        let audio_pt = negotiated_pt(&call.audio_sender).await?;
        let video_ssrc = call.video_track.ssrcs().await.first().copied().unwrap_or(0);
        let audio_ssrc = call.audio_track.ssrcs().await.first().copied().unwrap_or(0);
        let (vtx, vrx) = crossbeam_channel::bounded(4);
        let (atx, arx) = crossbeam_channel::bounded(4);
        let video = media_io::spawn_video_sender(
            rt.clone(),
            call.video_track.clone(),
            video_ssrc,
            video_pt,
            config.video.clone(),
            VideoSendConfig {
                width: config.width,
                height: config.height,
                fps: config.fps,
                bitrate_bps: config.video_bitrate_bps,
                audio_bps: config.audio_bitrate_bps,
            },
            call.counters.clone(),
            io.local.clone(),
            vrx,
            call.estimate.clone(),
            warn.clone(),
            io.wake.clone(),
        )
        .map_err(|e| CallError::Media(format!("starting the video thread: {e}")))?;
        let audio = media_io::spawn_audio_sender(
            rt,
            call.audio_track.clone(),
            audio_ssrc,
            audio_pt,
            config.audio.clone(),
            config.audio_bitrate_bps,
            call.counters.clone(),
            arx,
            warn,
        )
        .map_err(|e| CallError::Media(format!("starting the audio thread: {e}")))?;
        call.workers.push(video);
        call.workers.push(audio);
        call.video_cmd = Some(vtx);
        call.audio_cmd = Some(atx);
        call.tasks.push(tokio::spawn(media_io::drain_sender_rtcp(
            call.video_track.clone(),
            call.counters.clone(),
            true,
        )));
        call.tasks.push(tokio::spawn(media_io::drain_sender_rtcp(
            call.audio_track.clone(),
            call.counters.clone(),
            false,
        )));
        Ok(())
    }

    async fn start_receiving(
        &mut self,
        track: Arc<dyn webrtc::media_stream::track_remote::TrackRemote>,
        io: &SessionIo,
    ) {
        let speaker = self.config.speaker.clone();
        let switch = self.speaker_switch.clone();
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let counters = call.counters.clone();
        let task = match track.kind().await {
            RtpCodecKind::Video => {
                let ready = Arc::new(Mutex::new(Some(call.ready_at)));
                tokio::spawn(media_io::receive_video(
                    track,
                    counters,
                    io.remote.clone(),
                    io.wake.clone(),
                    ready,
                ))
            }
            RtpCodecKind::Audio => {
                let warn_tx = io.events.clone();
                let warn: Arc<dyn Fn(String) + Send + Sync> = Arc::new(move |message: String| {
                    let _ = warn_tx.try_send(Event::Warning(message));
                });
                tokio::spawn(media_io::receive_audio(
                    track, counters, speaker, switch, warn,
                ))
            }
            _ => return,
        };
        call.tasks.push(task);
    }

    fn on_command(&mut self, command: Command, io: &SessionIo) {
        match command {
            Command::SetMicMuted(muted) => {
                self.mic_muted = muted;
                self.counters.mic_muted.store(muted, Ordering::Relaxed);
            }
            Command::SetCameraEnabled(enabled) => {
                self.camera_off = !enabled;
                self.counters.camera_off.store(!enabled, Ordering::Relaxed);
                if enabled {
                    self.counters.want_keyframe.store(true, Ordering::Relaxed);
                    self.start_preview(io);
                } else {
                    // Dropping joins the preview thread: it checks its stop flag every 100 ms.
                    self.preview = None;
                    io.local.clear();
                }
            }
            Command::SwitchVideo(choice) => {
                self.config.video = choice.clone();
                if let Some(tx) = self.call.as_ref().and_then(|c| c.video_cmd.as_ref()) {
                    let _ = tx.try_send(VideoCmd::Switch(choice));
                } else {
                    self.preview = None;
                    io.local.clear();
                    self.start_preview(io);
                }
            }
            Command::SwitchAudio(choice) => {
                self.config.audio = choice.clone();
                if let Some(tx) = self.call.as_ref().and_then(|c| c.audio_cmd.as_ref()) {
                    let _ = tx.try_send(AudioCmd::Switch(choice));
                }
            }
            Command::SwitchSpeaker(choice) => {
                self.config.speaker = choice.clone();
                *lock(&self.speaker_switch) = Some(choice);
            }
            Command::RequestKeyframe => self.counters.send_pli_now.store(true, Ordering::Relaxed),
            Command::HangUp => {}
        }
    }

    async fn emit_stats(&mut self, io: &SessionIo) {
        let c = &self.counters;
        let now = Instant::now();
        let mut stats = CallStats {
            elapsed_s: self.started.elapsed().as_secs_f64(),
            ..CallStats::default()
        };
        let bytes_sent = c.video_bytes_sent.load(Ordering::Relaxed);
        let bytes_received = c.video_bytes_received.load(Ordering::Relaxed);
        let frames_sent = c.frames_sent.load(Ordering::Relaxed);
        let frames_decoded = c.frames_decoded.load(Ordering::Relaxed);
        let encode_us = c.encode_us_total.load(Ordering::Relaxed);
        let mut packets_received = 0u64;
        let mut packets_lost = 0i64;
        if let Some(call) = &self.call {
            let report = call.pc.get_stats(now, StatsSelector::None).await;
            let mut candidates = std::collections::HashMap::new();
            let mut selected = None;
            for entry in report.iter() {
                if let RTCStatsReportEntry::LocalCandidate(c)
                | RTCStatsReportEntry::RemoteCandidate(c) = entry
                {
                    candidates.insert(
                        c.stats.id.clone(),
                        format!(
                            "{} {}:{}",
                            c.candidate_type,
                            c.address.as_deref().unwrap_or("?"),
                            c.port
                        ),
                    );
                }
                if let RTCStatsReportEntry::IceCandidatePair(p) = entry
                    && p.nominated
                {
                    selected = Some((p.local_candidate_id.clone(), p.remote_candidate_id.clone()));
                }
            }
            if let Some((local, remote)) = selected {
                // webrtc-rs 0.21 names candidate entries `RTC{Local,Remote}IceCandidate_<id>`
                // but refers to them from the pair by the bare id; peer-reflexive remote
                // candidates (learned from the peer's checks) have no entry at all.
                let find = |prefix: &str, id: &str| {
                    candidates
                        .get(id)
                        .or_else(|| candidates.get(&format!("{prefix}_{id}")))
                        .cloned()
                };
                stats.ice_local_candidate = find("RTCLocalIceCandidate", &local);
                stats.ice_remote_candidate = find("RTCRemoteIceCandidate", &remote)
                    .or(Some("prflx (learned from the other side's checks)".into()));
            }
            for entry in report.iter() {
                match entry {
                    RTCStatsReportEntry::IceCandidatePair(p)
                        if p.nominated && p.current_round_trip_time > 0.0 =>
                    {
                        stats.rtt_ms = Some(p.current_round_trip_time * 1000.0);
                        c.rtt_us
                            .store((p.current_round_trip_time * 1e6) as u64, Ordering::Relaxed);
                    }
                    RTCStatsReportEntry::InboundRtp(i)
                        if i.received_rtp_stream_stats.rtp_stream_stats.kind
                            == RtpCodecKind::Video =>
                    {
                        packets_received = i.received_rtp_stream_stats.packets_received;
                        packets_lost = i.received_rtp_stream_stats.packets_lost;
                        // RTP jitter is in timestamp units of the 90 kHz video clock.
                        stats.jitter_ms = i.received_rtp_stream_stats.jitter / 90.0;
                    }
                    _ => {}
                }
            }
            if call.connected {
                stats.codecs = "H264 42e01f / opus 48000".into();
            }
        }
        let totals = Totals {
            at: now,
            bytes_sent,
            bytes_received,
            frames_sent,
            frames_decoded,
            encode_us,
            packets_received,
            packets_lost,
        };
        if let Some(earlier) = &self.rates {
            let r = totals.rates_since(earlier);
            stats.send_video_bps = r.send_video_bps;
            stats.recv_video_bps = r.recv_video_bps;
            stats.send_fps = r.send_fps;
            stats.recv_fps = r.recv_fps;
            stats.encode_ms = r.encode_ms;
            stats.loss_percent = r.loss_percent;
        }
        stats.loss_percent_total = totals.loss_percent_total();
        self.rates = Some(totals);
        stats.video_packets_lost = packets_lost;
        stats.frames_sent = frames_sent;
        stats.frames_decoded = frames_decoded;
        stats.frames_dropped = c.frames_dropped.load(Ordering::Relaxed);
        stats.send_resolution = (
            c.send_width.load(Ordering::Relaxed) as u32,
            c.send_height.load(Ordering::Relaxed) as u32,
        );
        stats.recv_resolution = (
            c.recv_width.load(Ordering::Relaxed) as u32,
            c.recv_height.load(Ordering::Relaxed) as u32,
        );
        stats.audio_frames_played = c.audio_played.load(Ordering::Relaxed);
        stats.audio_frames_concealed = c.audio_concealed.load(Ordering::Relaxed);
        stats.audio_dominant_hz = *lock(&c.dominant_hz);
        stats.plis_sent = c.plis_sent.load(Ordering::Relaxed);
        stats.keyframe_requests_received = c.keyframe_requests.load(Ordering::Relaxed);
        stats.keyframes_sent = c.keyframes_sent.load(Ordering::Relaxed);
        stats.glare_offers_ignored = c.glare_ignored.load(Ordering::Relaxed);
        stats.target_bitrate_bps = c.target_bps.load(Ordering::Relaxed) as f64;
        stats.bandwidth_estimate_bps = c.estimate_bps.load(Ordering::Relaxed) as f64;
        stats.encoder_bitrate_bps = c.encoder_bps.load(Ordering::Relaxed) as f64;
        stats.video_frames_lost = c.frames_lost.load(Ordering::Relaxed);
        stats.video_packets_recovered = c.packets_recovered.load(Ordering::Relaxed);
        stats.video_reorder_wait_ms = c.reorder_wait_us.load(Ordering::Relaxed) as f64 / 1000.0;
        {
            let f = lock(&c.freezes);
            stats.freeze_count = f.count;
            stats.freeze_total_ms = f.total_ms;
            stats.freeze_longest_ms = f.longest_ms;
            stats.freezes = f
                .recent
                .iter()
                .map(|(at, ms)| {
                    [
                        at.saturating_duration_since(self.started).as_secs_f64(),
                        *ms,
                    ]
                })
                .collect();
        }
        stats.glare_rollbacks = c.glare_rollbacks.load(Ordering::Relaxed);
        {
            let pattern = lock(&c.pattern);
            stats.pattern_first = pattern.first;
            stats.pattern_last = pattern.last;
            stats.pattern_frames = pattern.frames;
            stats.pattern_out_of_order = pattern.out_of_order;
            stats.glass_to_glass_p50_ms = pattern.latency_quantile(0.5);
            stats.glass_to_glass_p95_ms = pattern.latency_quantile(0.95);
        }
        if let (Some(call), Some(first)) = (&self.call, *lock(&c.first_frame_at)) {
            stats.setup_ms =
                Some(first.saturating_duration_since(call.ready_at).as_secs_f64() * 1000.0);
        }
        io.emit(Event::Stats(Box::new(stats)));
    }
}

async fn negotiated_pt(sender: &Arc<dyn RtpSender>) -> Result<u8, CallError> {
    let params = sender
        .get_parameters()
        .await
        .map_err(|e| CallError::WebRtc(format!("sender parameters: {e}")))?;
    params
        .rtp_parameters
        .codecs
        .first()
        .map(|c| c.payload_type)
        .ok_or_else(|| {
            CallError::WebRtc(
                "no codec was negotiated (does the other side support H.264 and Opus?)".into(),
            )
        })
}
