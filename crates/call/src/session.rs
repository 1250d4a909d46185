//! One call session: the shell around [`CallCore`]. It owns the signalling connection, the
//! webrtc-rs peer connection for the current remote person, and the media paths while
//! connected; it feeds the core what happens (signalling messages, peer-connection events,
//! commands, timers) and carries out what the core decides (send, build or close the peer,
//! create offers and answers, apply descriptions and candidates, start media, report
//! states). Every rule lives in the core; what is here is how to do each thing on webrtc-rs.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::statistics::report::RTCStatsReportEntry;
use serde_json::Value;
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
use crate::core::{CallCore, CoreConfig, Description, Input, Output, PcState, SdpKind, Timer};
use crate::error::CallError;
use crate::events::{CallState, CallStats, Command, Event, FrameSlot};
use crate::media_io::{self, AudioCmd, MediaCounters, VideoCmd, VideoSendConfig, Waker, Worker};
use crate::peer::{self, PeerEvent};
use crate::stats::Totals;
use crate::video_track::VideoTrack;

/// How long an important event (a state change, a warning) may wait for room in a full event
/// channel before it is dropped; stats are dropped at once instead.
const EVENT_WAIT: Duration = Duration::from_millis(250);

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
    /// States and warnings the owner had no room for yet, oldest first; they go out before
    /// anything newer (at most [`BACKLOG_LIMIT`]).
    pub(crate) backlog: Mutex<VecDeque<Event>>,
}

/// The most states and warnings kept for an owner that is behind. Past it the oldest warning
/// goes (a state is never dropped while a warning is there to drop instead).
const BACKLOG_LIMIT: usize = 256;

impl SessionIo {
    /// Stats are dropped when the owner is behind (the next second brings new ones). States and
    /// warnings wait up to [`EVENT_WAIT`] for room, and are then kept in the backlog and sent,
    /// in order, as soon as there is room: a `Failed` is never lost.
    fn emit(&self, event: Event) {
        use crossbeam_channel::TrySendError;
        let mut backlog = lock(&self.backlog);
        while let Some(older) = backlog.pop_front() {
            match self.events.try_send(older) {
                Ok(()) => {}
                Err(TrySendError::Full(older)) => {
                    backlog.push_front(older);
                    break;
                }
                // The owner is gone: nobody will read any of it.
                Err(TrySendError::Disconnected(_)) => backlog.clear(),
            }
        }
        match event {
            Event::Stats(_) => {
                if backlog.is_empty() && self.events.try_send(event).is_err() {
                    tracing::debug!("event channel full; stats dropped");
                }
            }
            other if !backlog.is_empty() => backlog.push_back(other),
            other => {
                if let Err(crossbeam_channel::SendTimeoutError::Timeout(other)) =
                    self.events.send_timeout(other, EVENT_WAIT)
                {
                    backlog.push_back(other);
                }
            }
        }
        while backlog.len() > BACKLOG_LIMIT {
            let oldest_warning = backlog.iter().position(|e| matches!(e, Event::Warning(_)));
            backlog.remove(oldest_warning.unwrap_or(0));
        }
        drop(backlog);
        (self.wake)();
    }

    /// At the end of the session: what is still in the backlog, each waiting up to
    /// [`EVENT_WAIT`].
    fn flush_backlog(&self) {
        let pending: Vec<Event> = lock(&self.backlog).drain(..).collect();
        for event in pending {
            if self.events.send_timeout(event, EVENT_WAIT).is_err() {
                break;
            }
        }
        (self.wake)();
    }
}

/// The connection with one remote person.
struct PeerCall {
    pc: Arc<dyn PeerConnection>,
    events: mpsc::Receiver<PeerEvent>,
    video_track: Arc<VideoTrack>,
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
    /// The microphone's processor, until the audio sender takes it.
    processor: Option<media::AudioProcessor>,
    /// Its far-end reference, until the audio receiver takes it.
    render_tap: Option<media::RenderTap>,
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

fn pc_state(state: RTCPeerConnectionState) -> PcState {
    match state {
        RTCPeerConnectionState::Connecting => PcState::Connecting,
        RTCPeerConnectionState::Connected => PcState::Connected,
        RTCPeerConnectionState::Disconnected => PcState::Disconnected,
        RTCPeerConnectionState::Failed => PcState::Failed,
        RTCPeerConnectionState::Closed => PcState::Closed,
        _ => PcState::New,
    }
}

fn description(desc: &RTCSessionDescription) -> Description {
    Description {
        kind: if desc.sdp_type == RTCSdpType::Answer {
            SdpKind::Answer
        } else {
            SdpKind::Offer
        },
        sdp: desc.sdp.clone(),
    }
}

/// Runs the session until hang-up or failure; returns the final state.
pub async fn run(config: CallConfig, mut io: SessionIo) -> CallState {
    let started = Instant::now();
    io.emit(Event::State(CallState::Joining));
    // Our seat's key on the server: a dropped connection takes the seat back with it.
    let session_id = random_session_id();
    let (sig, sig_rx) = match join(&config, &session_id, Duration::from_secs(10)).await {
        Ok(pair) => pair,
        Err(e) => return fail(&io, e),
    };
    let mut sig_rx = Some(sig_rx);
    let (reconnected_tx, mut reconnected) =
        mpsc::channel::<Result<(SignalSender, signal::client::SignalReceiver), String>>(1);
    let urls = || config.ice_servers.iter().flat_map(|s| s.urls.iter());
    let mut core = CallCore::new(CoreConfig {
        room: config.room.clone(),
        loopback_only: config.loopback_only,
        has_stun: urls().any(|u| u.starts_with("stun:") || u.starts_with("stuns:")),
        has_turn: urls().any(|u| u.starts_with("turn:") || u.starts_with("turns:")),
    });
    core.handle(Input::Joined, Instant::now());
    let audio_processing = config.audio_processing;
    let mut session = Session {
        config,
        sig,
        call: None,
        counters: Arc::new(MediaCounters::default()),
        started,
        mic_muted: false,
        camera_off: false,
        audio_processing,
        speaker_switch: Arc::new(Mutex::new(None)),
        preview: None,
        timers: BTreeMap::new(),
        code_due: false,
    };
    let mut stats_tick = tokio::time::interval(Duration::from_secs(1));
    stats_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = loop {
        if let Some(end) = session
            .carry_out(&mut core, &io, &session_id, &reconnected_tx)
            .await
        {
            break end;
        }
        if std::mem::take(&mut session.code_due) {
            stats_tick.reset_immediately();
        }
        let peer_event = async {
            match session.call.as_mut() {
                Some(call) => call.events.recv().await,
                None => std::future::pending().await,
            }
        };
        let next_timer = session
            .timers
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(t, at)| (*t, *at));
        let timer = async {
            match next_timer {
                Some((t, at)) => {
                    tokio::time::sleep_until(at.into()).await;
                    t
                }
                None => std::future::pending().await,
            }
        };
        let signal_event = async {
            match sig_rx.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = signal_event => {
                let input = match event {
                    Some(SignalEvent::Message(msg)) => Input::Signal(msg),
                    Some(SignalEvent::Closed(reason)) => {
                        sig_rx = None;
                        Input::SignalLost { reason: reason.unwrap_or_else(|| "closed".into()) }
                    }
                    None => {
                        sig_rx = None;
                        Input::SignalLost { reason: "closed".into() }
                    }
                };
                core.handle(input, Instant::now());
            }
            Some(result) = reconnected.recv() => {
                let input = match result {
                    Ok((tx, rx)) => {
                        session.sig = tx;
                        sig_rx = Some(rx);
                        Input::SignalRestored
                    }
                    Err(reason) => Input::SignalLost { reason },
                };
                core.handle(input, Instant::now());
            }
            Some(event) = peer_event => {
                let input = match event {
                    PeerEvent::Candidate(init) => {
                        Input::LocalCandidate(serde_json::to_value(&init).unwrap_or(Value::Null))
                    }
                    PeerEvent::GatheringComplete => Input::GatheringComplete,
                    PeerEvent::State(state) => Input::PcState(pc_state(state)),
                    PeerEvent::Track(track) => {
                        session.start_receiving(track, &io).await;
                        continue;
                    }
                };
                core.handle(input, Instant::now());
            }
            command = io.commands.recv() => match command {
                Some(Command::HangUp) | None => core.handle(Input::HangUp, Instant::now()),
                Some(command) => session.on_command(command, &io),
            },
            t = timer => {
                session.timers.remove(&t);
                core.handle(Input::Timer(t), Instant::now());
            }
            _ = stats_tick.tick() => session.emit_stats(&io, &mut core).await,
        }
    };
    if let Some(call) = session.call.take() {
        call.close().await;
    }
    drop(sig_rx);
    io.flush_backlog();
    end
}

/// Connects to the signal server and joins the room with `session_id`.
async fn join(
    config: &CallConfig,
    session_id: &str,
    timeout: Duration,
) -> Result<(SignalSender, signal::client::SignalReceiver), CallError> {
    let (sig, rx) = signal::client::connect(&config.signal_url, timeout)
        .await
        .map_err(|e| CallError::SignalConnect(Arc::new(e)))?;
    let join = ClientMessage::Join {
        room: config.room.clone(),
        token: config.token.clone(),
        session: Some(session_id.to_owned()),
    };
    sig.send(join)
        .await
        .map_err(|_| CallError::Signal("the connection closed while joining".into()))?;
    Ok((sig, rx))
}

/// 32 random hex digits.
fn random_session_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut id = String::with_capacity(32);
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        id.push_str(&format!("{:016x}", h.finish()));
    }
    id
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
    started: Instant,
    mic_muted: bool,
    camera_off: bool,
    audio_processing: bool,
    speaker_switch: Arc<Mutex<Option<SpeakerChoice>>>,
    /// The self-view while no call sends video.
    preview: Option<Worker>,
    /// The core's armed timers and when they fire.
    timers: BTreeMap<Timer, Instant>,
    /// Both descriptions have just been set: report the verification code now rather than at
    /// the next second (a call that fails at once still shows it).
    code_due: bool,
}

impl Session {
    /// Carries out everything the core asked for, feeding results back, until it has nothing
    /// left to do. Returns the final state once the core reached one.
    async fn carry_out(
        &mut self,
        core: &mut CallCore,
        io: &SessionIo,
        session_id: &str,
        reconnected: &mpsc::Sender<Result<(SignalSender, signal::client::SignalReceiver), String>>,
    ) -> Option<CallState> {
        while let Some(output) = core.poll() {
            if let Output::ReconnectSignal { in_ms } = output {
                // Off the loop: media and the peer connection go on meanwhile.
                let (config, session_id, tx) = (
                    self.config.clone(),
                    session_id.to_owned(),
                    reconnected.clone(),
                );
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(in_ms)).await;
                    let result = join(&config, &session_id, Duration::from_secs(5))
                        .await
                        .map_err(|e| e.to_string());
                    let _ = tx.send(result).await;
                });
                continue;
            }
            if let Some(input) = self.execute(output.clone(), io).await {
                core.handle(input, Instant::now());
            }
            if let Output::State(state) = output
                && matches!(state, CallState::Ended | CallState::Failed(_))
            {
                // Anything still queued (cancelled timers) no longer matters.
                return Some(state);
            }
        }
        None
    }

    /// Does one thing the core asked; returns what came of it, if the core needs to know.
    async fn execute(&mut self, output: Output, io: &SessionIo) -> Option<Input> {
        match output {
            Output::ProbeSignal => {
                self.sig.probe();
                None
            }
            Output::Send(msg) => match self.sig.send(msg).await {
                Ok(()) => None,
                Err(e) => Some(Input::SignalLost {
                    reason: e.to_string(),
                }),
            },
            Output::NewPeer { ice_servers, .. } => {
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
                self.counters
                    .audio_processing
                    .store(self.audio_processing, Ordering::Relaxed);
                io.remote.clear();
                match self.new_call(&ice_servers).await {
                    Ok(call) => {
                        self.call = Some(call);
                        None
                    }
                    Err(e) => Some(Input::OperationFailed {
                        what: "creating the peer connection".into(),
                        reason: e.to_string(),
                    }),
                }
            }
            Output::ClosePeer => {
                if let Some(call) = self.call.take() {
                    call.close().await;
                }
                io.local.clear();
                io.remote.clear();
                None
            }
            Output::CreateOffer { ice_restart } => {
                let call = self.call.as_ref()?;
                let options = rtc::peer_connection::configuration::RTCOfferOptions { ice_restart };
                let result = async {
                    let offer = call
                        .pc
                        .create_offer(Some(options))
                        .await
                        .map_err(|e| ("creating an offer", e.to_string()))?;
                    call.pc
                        .set_local_description(offer.clone())
                        .await
                        .map_err(|e| ("applying our offer", e.to_string()))?;
                    tracing::trace!(sdp = %offer.sdp, "local offer");
                    Ok::<_, (&str, String)>(offer)
                }
                .await;
                Some(match result {
                    Ok(offer) => Input::LocalOffer(description(&offer)),
                    Err((what, reason)) => Input::OperationFailed {
                        what: what.into(),
                        reason,
                    },
                })
            }
            Output::Rollback => {
                let call = self.call.as_ref()?;
                let result = match RTCSessionDescription::rollback(None) {
                    Ok(rollback) => call
                        .pc
                        .set_local_description(rollback)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                result.err().map(|reason| Input::OperationFailed {
                    what: "rolling back our offer".into(),
                    reason,
                })
            }
            Output::SetRemote(desc) => {
                let call = self.call.as_ref()?;
                tracing::trace!(kind = ?desc.kind, sdp = %desc.sdp, "remote description");
                if let Some(warning) =
                    follow_video_codec(call, &desc.sdp, &self.config.video_codecs).await
                {
                    io.emit(Event::Warning(warning));
                }
                let kind = desc.kind;
                let parsed = match kind {
                    SdpKind::Offer => RTCSessionDescription::offer(desc.sdp),
                    SdpKind::Answer => RTCSessionDescription::answer(desc.sdp),
                };
                let result = match parsed {
                    Ok(d) => call
                        .pc
                        .set_remote_description(d)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                Some(match result {
                    Ok(()) => {
                        self.code_due |= kind == SdpKind::Answer;
                        Input::RemoteApplied { kind }
                    }
                    Err(reason) => Input::RemoteRejected { kind, reason },
                })
            }
            Output::CreateAnswer => {
                let call = self.call.as_ref()?;
                let result = async {
                    let answer = call
                        .pc
                        .create_answer(None)
                        .await
                        .map_err(|e| ("creating an answer", e.to_string()))?;
                    call.pc
                        .set_local_description(answer.clone())
                        .await
                        .map_err(|e| ("applying our answer", e.to_string()))?;
                    Ok::<_, (&str, String)>(answer)
                }
                .await;
                Some(match result {
                    Ok(answer) => {
                        self.code_due = true;
                        Input::LocalAnswer(description(&answer))
                    }
                    Err((what, reason)) => Input::OperationFailed {
                        what: what.into(),
                        reason,
                    },
                })
            }
            Output::AddCandidate(value) => {
                let call = self.call.as_ref()?;
                let init: RTCIceCandidateInit = match serde_json::from_value(value) {
                    Ok(init) => init,
                    Err(e) => {
                        return Some(Input::CandidateRejected {
                            reason: e.to_string(),
                        });
                    }
                };
                call.pc
                    .add_ice_candidate(init)
                    .await
                    .err()
                    .map(|e| Input::CandidateRejected {
                        reason: e.to_string(),
                    })
            }
            Output::StartMedia => match self.start_sending(io).await {
                Ok(()) => None,
                Err(e) => Some(Input::OperationFailed {
                    what: "starting media".into(),
                    reason: e.to_string(),
                }),
            },
            Output::State(state) => {
                if state == CallState::WaitingForPeer {
                    self.start_preview(io);
                }
                io.emit(Event::State(state));
                None
            }
            Output::Warning(message) => {
                io.emit(Event::Warning(message));
                None
            }
            Output::ArmTimer { timer, in_ms } => {
                self.timers
                    .insert(timer, Instant::now() + Duration::from_millis(in_ms));
                None
            }
            Output::CancelTimer(timer) => {
                self.timers.remove(&timer);
                None
            }
            Output::ReconnectSignal { .. } => None, // handled in `carry_out`
        }
    }

    async fn new_call(
        &self,
        from_server: &[signal::protocol::IceServer],
    ) -> Result<PeerCall, CallError> {
        // The servers configured here, then the ones the signal server handed out.
        let mut servers = self.config.ice_servers.clone();
        servers.extend(from_server.iter().map(|s| crate::config::IceServer {
            urls: s.urls.clone(),
            username: s.username.clone().unwrap_or_default(),
            credential: s.credential.clone().unwrap_or_default(),
        }));
        let codecs = if self.config.video_codecs.is_empty() {
            media::VideoCodec::ALL.to_vec()
        } else {
            self.config.video_codecs.clone()
        };
        let (pc, events, estimate) = peer::build(
            &servers,
            self.config.loopback_only,
            self.bitrate_range(),
            &codecs,
        )
        .await?;
        let video_track = peer::video_track(codecs[0])?;
        let audio_track = peer::audio_track()?;
        let processor = media::AudioProcessor::new(media::ProcessingConfig::default());
        let video_sender = pc
            .add_track(video_track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(CallError::webrtc("adding the video track"))?;
        let audio_sender = pc
            .add_track(audio_track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(CallError::webrtc("adding the audio track"))?;
        // webrtc-rs offers only the track's own codec; offer every configured one, in order.
        offer_video_codecs(&pc, &video_sender, &codecs).await?;
        Ok(PeerCall {
            pc,
            events,
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
            render_tap: Some(processor.render_tap()),
            processor: Some(processor),
        })
    }

    /// The most the video encoder will use: the configured bitrate, capped by what the
    /// picture size can use.
    fn max_video_bps(&self) -> u32 {
        media_io::max_video_bitrate(
            self.config.width,
            self.config.height,
            self.config.fps,
            self.config.video_bitrate_bps,
        )
    }

    /// What the congestion controller may allow, video and audio together: it starts at
    /// [`peer::INITIAL_BITRATE_BPS`] (or the configured total if lower) and never goes past the
    /// configured total, which the encoders could not use.
    fn bitrate_range(&self) -> peer::BitrateRange {
        let total = f64::from(self.max_video_bps()) + f64::from(self.config.audio_bitrate_bps);
        let total = total / (1.0 - media_io::OVERHEAD_SHARE);
        peer::BitrateRange {
            initial_bps: total.min(peer::INITIAL_BITRATE_BPS),
            min_bps: peer::MIN_BITRATE_BPS.min(total),
            max_bps: total,
        }
    }

    /// Shows the local source in the self-view until a call sends video.
    fn start_preview(&mut self, io: &SessionIo) {
        let sending = self.call.as_ref().is_some_and(|c| c.connected);
        // A screen is opened once, by the sender: on Wayland each opening asks the person
        // which screen to share, and the call would wait for the preview's to close.
        if self.preview.is_some()
            || sending
            || self.camera_off
            || matches!(
                self.config.video,
                VideoChoice::None | VideoChoice::Screen(_)
            )
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
        let max_video_bps = self.max_video_bps();
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
        let video_codec = call.video_track.codec();
        let video_pt = negotiated_pt(&call.video_sender, Some(video_codec.mime_type())).await?;
        let audio_pt = negotiated_pt(&call.audio_sender, None).await?;
        let audio_ssrc = call.audio_track.ssrcs().await.first().copied().unwrap_or(0);
        let (vtx, vrx) = crossbeam_channel::bounded(4);
        let (atx, arx) = crossbeam_channel::bounded(4);
        let video = media_io::spawn_video_sender(
            rt.clone(),
            call.video_track.clone(),
            video_pt,
            config.video.clone(),
            VideoSendConfig {
                width: config.width,
                height: config.height,
                fps: config.fps,
                bitrate_bps: max_video_bps,
                audio_bps: config.audio_bitrate_bps,
            },
            call.counters.clone(),
            io.local.clone(),
            vrx,
            call.estimate.clone(),
            warn.clone(),
            io.wake.clone(),
        )
        .map_err(CallError::media("starting the video thread"))?;
        let audio = media_io::spawn_audio_sender(
            rt,
            call.audio_track.clone(),
            audio_ssrc,
            audio_pt,
            config.audio.clone(),
            config.audio_bitrate_bps,
            call.counters.clone(),
            arx,
            call.processor
                .take()
                .unwrap_or_else(|| media::AudioProcessor::new(media::ProcessingConfig::NONE)),
            warn,
        )
        .map_err(CallError::media("starting the audio thread"))?;
        call.workers.push(video);
        call.workers.push(audio);
        call.video_cmd = Some(vtx);
        call.audio_cmd = Some(atx);
        call.tasks.push(tokio::spawn(media_io::drain_sender_rtcp(
            call.video_track.clone() as Arc<dyn TrackLocal>,
            call.counters.clone(),
            true,
        )));
        call.tasks.push(tokio::spawn(media_io::drain_sender_rtcp(
            call.audio_track.clone() as Arc<dyn TrackLocal>,
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
                let render = call.render_tap.take();
                tokio::spawn(media_io::receive_audio(
                    track, counters, speaker, switch, render, warn,
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
                    // Dropping joins the preview thread (it checks its stop flag every 100 ms),
                    // which releases the camera before anything opens it again.
                    let preview = self.preview.take();
                    media_io::off_runtime(move || drop(preview));
                    io.local.clear();
                }
            }
            Command::SwitchVideo(choice) => {
                self.config.video = choice.clone();
                if let Some(tx) = self.call.as_ref().and_then(|c| c.video_cmd.as_ref()) {
                    let _ = tx.try_send(VideoCmd::Switch(choice));
                } else {
                    let preview = self.preview.take();
                    media_io::off_runtime(move || drop(preview));
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
            Command::SetAudioProcessing(on) => {
                self.audio_processing = on;
                self.counters.audio_processing.store(on, Ordering::Relaxed);
            }
            Command::HangUp => {}
        }
    }

    async fn emit_stats(&mut self, io: &SessionIo, core: &mut CallCore) {
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
                let sent = call.video_track.codec();
                let received = call.counters.recv_codec();
                stats.video_codec_sent = Some(sent.to_string());
                stats.video_codec_received = received.map(|c| c.to_string());
                stats.codecs = match received {
                    Some(r) if r == sent => format!("video {sent}; audio Opus"),
                    Some(r) => format!("video {sent} out, {r} in; audio Opus"),
                    None => format!("video {sent} out; audio Opus"),
                };
            }
            if let (Some(local), Some(remote)) = (
                call.pc.local_description().await,
                call.pc.remote_description().await,
            ) {
                stats.verification_code = crate::verify::call_code(&local.sdp, &remote.sdp);
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
        if let Some(r) = core.stats_tick(totals) {
            stats.send_video_bps = r.send_video_bps;
            stats.recv_video_bps = r.recv_video_bps;
            stats.send_fps = r.send_fps;
            stats.recv_fps = r.recv_fps;
            stats.encode_ms = r.encode_ms;
            stats.loss_percent = r.loss_percent;
        }
        stats.loss_percent_total = totals.loss_percent_total();
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
        stats.video_source_open = c.video_source_open.load(Ordering::Relaxed);
        {
            let m2e = lock(&c.mouth_to_ear);
            stats.mouth_to_ear_p50_ms = m2e.quantile(0.5);
            stats.mouth_to_ear_p95_ms = m2e.quantile(0.95);
            stats.mouth_to_ear_bursts = m2e.len();
        }
        stats.audio_received_dbfs = if stats.audio_frames_played == 0 {
            -120.0
        } else {
            c.received_centi_dbfs.load(Ordering::Relaxed) as f64 / 100.0
        };
        stats.audio_jitter_target_ms =
            c.audio_jitter_target_us.load(Ordering::Relaxed) as f64 / 1000.0;
        stats.audio_jitter_delay_ms =
            c.audio_jitter_delay_us.load(Ordering::Relaxed) as f64 / 1000.0;
        stats.audio_remote_loss_percent =
            c.audio_remote_loss_permille.load(Ordering::Relaxed) as f64 / 10.0;
        stats.audio_fec_loss_percent = c.audio_fec_loss_percent.load(Ordering::Relaxed) as f64;
        stats.audio_processing = c.audio_processing.load(Ordering::Relaxed);
        stats.echo_erle_db = c.aec_erle_centi_db.load(Ordering::Relaxed) as f64 / 100.0;
        stats.plis_sent = c.plis_sent.load(Ordering::Relaxed);
        stats.keyframe_requests_received = c.keyframe_requests.load(Ordering::Relaxed);
        stats.keyframes_sent = c.keyframes_sent.load(Ordering::Relaxed);
        let decided = core.counters();
        stats.glare_offers_ignored = decided.glare_ignored;
        stats.ice_restarts = decided.ice_restarts;
        stats.signal_reconnects = decided.signal_reconnects;
        stats.target_bitrate_bps = c.target_bps.load(Ordering::Relaxed) as f64;
        stats.bandwidth_estimate_bps = c.estimate_bps.load(Ordering::Relaxed) as f64;
        stats.video_rung = c.send_rung.load(Ordering::Relaxed);
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
        stats.glare_rollbacks = decided.glare_rollbacks;
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

/// The payload type negotiated for `mime_type` (any codec when `None`).
async fn negotiated_pt(
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
async fn offer_video_codecs(
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
async fn follow_video_codec(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn io(capacity: usize) -> (SessionIo, crossbeam_channel::Receiver<Event>) {
        let (events, rx) = crossbeam_channel::bounded(capacity);
        let (_commands_tx, commands) = mpsc::channel(1);
        let io = SessionIo {
            events,
            commands,
            local: Arc::default(),
            remote: Arc::default(),
            wake: Arc::new(|| {}),
            backlog: Mutex::default(),
        };
        (io, rx)
    }

    fn important(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::State(s) => Some(format!("{s:?}")),
                Event::Warning(w) => Some(w.clone()),
                Event::Stats(_) => None,
            })
            .collect()
    }

    #[test]
    fn states_and_warnings_wait_for_a_slow_owner_and_are_never_dropped() {
        let (io, rx) = io(1);
        io.emit(Event::State(CallState::Connecting)); // fills the channel
        io.emit(Event::Warning("camera lost".into())); // no room: kept
        io.emit(Event::Stats(Box::default())); // behind important ones: dropped
        io.emit(Event::State(CallState::Failed("ICE failed".into())));
        let mut got = Vec::new();
        for _ in 0..10 {
            if let Ok(e) = rx.recv_timeout(Duration::from_millis(50)) {
                got.push(e);
            }
            io.emit(Event::Stats(Box::default())); // each emit sends what waits, in order
        }
        assert_eq!(
            important(&got),
            ["Connecting", "camera lost", "Failed(\"ICE failed\")"]
        );
    }

    #[test]
    fn the_backlog_is_bounded_and_drops_warnings_before_states() {
        let (io, _rx) = io(1);
        io.emit(Event::State(CallState::Connecting)); // fills the channel; nobody reads
        io.emit(Event::State(CallState::Reconnecting)); // kept
        for i in 0..BACKLOG_LIMIT {
            io.emit(Event::Warning(format!("w{i}")));
        }
        io.emit(Event::State(CallState::Ended));
        let backlog = important(&lock(&io.backlog).iter().cloned().collect::<Vec<_>>());
        assert_eq!(backlog.len(), BACKLOG_LIMIT);
        assert_eq!(backlog.first().map(String::as_str), Some("Reconnecting"));
        assert_eq!(backlog.last().map(String::as_str), Some("Ended"));
        assert!(
            !backlog.iter().any(|w| w == "w0"),
            "the oldest warning went"
        );
    }
}
