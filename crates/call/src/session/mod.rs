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

mod codecs;
mod io;
mod paths;
mod sampling;

use codecs::{follow_video_codec, negotiated_pt, offer_video_codecs};
pub use io::SessionIo;

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
        handover: Arc::default(),
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
    /// Where the preview leaves its running source for the sender.
    handover: Arc<media_io::HandOver>,
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
}
