//! The media paths of a connected call, on named OS threads and short tokio tasks:
//!
//! - `duet-video-send`: source → (preview slot) → H.264 encoder → RTP track, paced by the
//!   capture timestamps; honours keyframe requests (PLI/FIR) and camera on/off/switch.
//! - `duet-audio-send`: source → Opus encoder → RTP track (silence while muted).
//! - remote video: RTP → H.264 access units (marker bit) → decode worker → `duet-video-out`
//!   (remote slot, pattern stamps, latency); PLI when the decoder needs a keyframe, at most
//!   one per [`PLI_INTERVAL`].
//! - remote audio: RTP → jitter buffer → `duet-audio-out` every 20 ms → Opus decode/conceal →
//!   sink.
//!
//! Every hand-over is a bounded channel or a latest-value slot; a slow stage drops video
//! frames (counted) instead of queueing them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use media::{
    AudioCapture, AudioFrame, AudioSink, AudioSource, Camera, DecodeWorker, H264Config,
    H264Encoder, JitterBuffer, JitterConfig, NullSink, OpusDecoder, OpusEncoder, Playout, Silence,
    Speaker, TestPattern, Tone, VideoCapture, VideoFrame, VideoSource, read_pattern_stamp,
    unix_time_us,
};
use rtc::media::Sample;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::config::{AudioChoice, SpeakerChoice, VideoChoice};
use crate::events::FrameSlot;

/// Minimum time between two PLIs sent for the same stream.
pub const PLI_INTERVAL: Duration = Duration::from_millis(500);

/// A callback that wakes whoever displays frames (the UI's `request_repaint`).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Counters shared by the media threads and read by the stats task.
#[derive(Debug, Default)]
pub struct MediaCounters {
    pub frames_sent: AtomicU64,
    pub video_bytes_sent: AtomicU64,
    pub encode_us_total: AtomicU64,
    pub video_bytes_received: AtomicU64,
    pub frames_decoded: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub audio_played: AtomicU64,
    pub audio_concealed: AtomicU64,
    pub plis_sent: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub keyframes_sent: AtomicU64,
    /// Set by the session to make the video receiver send a PLI now.
    pub send_pli_now: AtomicBool,
    pub want_keyframe: AtomicBool,
    pub send_width: AtomicU64,
    pub send_height: AtomicU64,
    pub recv_width: AtomicU64,
    pub recv_height: AtomicU64,
    pub mic_muted: AtomicBool,
    pub camera_off: AtomicBool,
    pub pattern: Mutex<PatternTrace>,
    pub first_frame_at: Mutex<Option<Instant>>,
    pub dominant_hz: Mutex<Option<f64>>,
}

/// What the receiver saw of the sender's test pattern.
#[derive(Debug, Default, Clone)]
pub struct PatternTrace {
    pub first: Option<u32>,
    pub last: Option<u32>,
    pub frames: u64,
    pub out_of_order: u64,
    /// Glass-to-glass latencies in ms (bounded: the last 100 000 frames).
    pub latencies_ms: Vec<f64>,
}

impl PatternTrace {
    fn record(&mut self, counter: u32, latency_ms: f64) {
        // A repeated counter is a repeated picture (a sender re-sending a frame to keep its
        // rate), not disorder; only going backwards counts.
        if let Some(last) = self.last
            && counter < last
        {
            self.out_of_order += 1;
        }
        self.first.get_or_insert(counter);
        self.last = Some(counter);
        self.frames += 1;
        if self.latencies_ms.len() >= 100_000 {
            self.latencies_ms.remove(0);
        }
        self.latencies_ms.push(latency_ms);
    }

    /// The `q` quantile of the latencies.
    pub fn latency_quantile(&self, q: f64) -> Option<f64> {
        if self.latencies_ms.is_empty() {
            return None;
        }
        let mut v = self.latencies_ms.clone();
        v.sort_by(f64::total_cmp);
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v.get(i).copied()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// RTP sample duration for `delta_us` at `clock_hz`, rounded so webrtc-rs (which truncates
/// `duration * clock`) advances the timestamp by the intended number of ticks.
fn sample_duration(delta_us: u64, clock_hz: u64) -> Duration {
    let ticks = (delta_us * clock_hz + 500_000) / 1_000_000;
    // Ceil to whole nanoseconds so truncation lands exactly on `ticks`.
    Duration::from_nanos((ticks * 1_000_000_000).div_ceil(clock_hz))
}

/// Settings for the video sender.
#[derive(Debug, Clone)]
pub struct VideoSendConfig {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_bps: u32,
}

/// Commands to the video send thread.
#[derive(Debug)]
pub enum VideoCmd {
    Switch(VideoChoice),
}

fn open_video(choice: &VideoChoice, cfg: &VideoSendConfig) -> Result<Option<VideoCapture>, String> {
    match choice {
        VideoChoice::TestPattern => TestPattern::new(cfg.width, cfg.height, cfg.fps)
            .start(2)
            .map(Some)
            .map_err(|e| e.to_string()),
        VideoChoice::Camera(i) => Camera::new(*i, cfg.width, cfg.height, cfg.fps)
            .start(2)
            .map(Some)
            .map_err(|e| format!("camera {i} cannot be used: {e}")),
        VideoChoice::None => Ok(None),
    }
}

/// Spawns `duet-preview`: the local source shown in the self-view while no call is connected
/// (waiting for someone, negotiating). Source errors are reported when the call starts sending.
pub fn spawn_preview(
    choice: VideoChoice,
    cfg: VideoSendConfig,
    preview: Arc<FrameSlot>,
    wake: Waker,
) -> std::io::Result<Worker> {
    Worker::spawn("duet-preview", move |stop| {
        let Ok(Some(capture)) = open_video(&choice, &cfg) else {
            return;
        };
        while !stop.load(Ordering::Relaxed) {
            if let Some(frame) = capture.recv_timeout(Duration::from_millis(100)) {
                preview.put(frame);
                wake();
            }
        }
    })
}

/// A running media thread; stopping joins it.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    fn spawn(
        name: &str,
        body: impl FnOnce(Arc<AtomicBool>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || body(flag))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Spawns `duet-video-send`. `warn` reports device problems (the call goes on).
#[allow(clippy::too_many_arguments)]
pub fn spawn_video_sender(
    rt: tokio::runtime::Handle,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    payload_type: u8,
    mut choice: VideoChoice,
    cfg: VideoSendConfig,
    counters: Arc<MediaCounters>,
    preview: Arc<FrameSlot>,
    commands: Receiver<VideoCmd>,
    warn: Arc<dyn Fn(String) + Send + Sync>,
    wake: Waker,
) -> std::io::Result<Worker> {
    Worker::spawn("duet-video-send", move |stop| {
        let h264 = H264Config {
            bitrate_bps: cfg.bitrate_bps,
            fps: cfg.fps as f32,
            keyframe_interval: 0,
        };
        let mut encoder = match H264Encoder::new(h264) {
            Ok(e) => e,
            Err(e) => {
                warn(format!("the H.264 encoder cannot start: {e}"));
                return;
            }
        };
        let mut capture = match open_video(&choice, &cfg) {
            Ok(c) => c,
            Err(e) => {
                warn(e);
                None
            }
        };
        let black_interval = Duration::from_millis(200);
        let mut last_capture_us: Option<u64> = None;
        let mut next_black = Instant::now();
        let mut dropped_before = 0;
        while !stop.load(Ordering::Relaxed) {
            match commands.try_recv() {
                Ok(VideoCmd::Switch(new)) => {
                    drop(capture.take());
                    choice = new;
                    capture = match open_video(&choice, &cfg) {
                        Ok(c) => c,
                        Err(e) => {
                            warn(e);
                            None
                        }
                    };
                    encoder.request_keyframe();
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => break,
            }
            let camera_off = counters.camera_off.load(Ordering::Relaxed);
            let frame = match (&capture, camera_off) {
                (Some(c), false) => match c.recv_timeout(Duration::from_millis(100)) {
                    Some(f) => {
                        let dropped = c.stats().dropped();
                        counters
                            .frames_dropped
                            .fetch_add(dropped - dropped_before.min(dropped), Ordering::Relaxed);
                        dropped_before = dropped;
                        f
                    }
                    None => {
                        if c.is_finished() {
                            warn(format!("{choice} stopped delivering pictures"));
                            capture = None;
                        }
                        continue;
                    }
                },
                _ => {
                    // Camera off or no source: a black picture a few times a second keeps the
                    // other side's decoder and layout alive.
                    let now = Instant::now();
                    if now < next_black {
                        std::thread::sleep((next_black - now).min(Duration::from_millis(50)));
                        continue;
                    }
                    next_black = now + black_interval;
                    match VideoFrame::new_black(cfg.width, cfg.height, unix_time_us()) {
                        Ok(f) => f,
                        Err(_) => continue,
                    }
                }
            };
            if !camera_off {
                preview.put(frame.clone());
                wake();
            }
            if counters.want_keyframe.swap(false, Ordering::Relaxed) {
                encoder.request_keyframe();
            }
            let started = Instant::now();
            let encoded = match encoder.encode(&frame) {
                Ok(Some(e)) => e,
                Ok(None) => continue, // rate control skipped this frame
                Err(e) => {
                    tracing::debug!(error = %e, "encode failed");
                    continue;
                }
            };
            counters
                .encode_us_total
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            let delta_us = match last_capture_us {
                Some(last) if encoded.capture_time_us > last => {
                    (encoded.capture_time_us - last).min(1_000_000)
                }
                _ => 1_000_000 / u64::from(cfg.fps.max(1)),
            };
            last_capture_us = Some(encoded.capture_time_us);
            let bytes = encoded.data.len() as u64;
            let sample = Sample {
                data: Bytes::from(encoded.data),
                duration: sample_duration(delta_us, 90_000),
                ..Sample::new(Instant::now())
            };
            if let Err(e) = rt.block_on(track.write_sample(ssrc, payload_type, &sample, &[])) {
                tracing::debug!(error = %e, "video write failed");
                continue;
            }
            counters.frames_sent.fetch_add(1, Ordering::Relaxed);
            if encoded.keyframe {
                counters.keyframes_sent.fetch_add(1, Ordering::Relaxed);
            }
            counters
                .video_bytes_sent
                .fetch_add(bytes, Ordering::Relaxed);
            counters
                .send_width
                .store(u64::from(encoded.width), Ordering::Relaxed);
            counters
                .send_height
                .store(u64::from(encoded.height), Ordering::Relaxed);
        }
    })
}

/// Commands to the audio send thread.
#[derive(Debug)]
pub enum AudioCmd {
    Switch(AudioChoice),
}

fn open_audio(choice: &AudioChoice) -> Result<Option<AudioCapture>, String> {
    match choice {
        AudioChoice::Tone(hz) => Tone::new(*hz).start(4).map(Some).map_err(|e| e.to_string()),
        AudioChoice::Microphone(name) => media::Microphone::new(name.as_deref())
            .start(4)
            .map(Some)
            .map_err(|e| format!("the microphone cannot be used: {e}")),
        AudioChoice::None => Silence { channels: 1 }
            .start(4)
            .map(Some)
            .map_err(|e| e.to_string()),
    }
}

/// Spawns `duet-audio-send`.
#[allow(clippy::too_many_arguments)]
pub fn spawn_audio_sender(
    rt: tokio::runtime::Handle,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    payload_type: u8,
    mut choice: AudioChoice,
    bitrate_bps: u32,
    counters: Arc<MediaCounters>,
    commands: Receiver<AudioCmd>,
    warn: Arc<dyn Fn(String) + Send + Sync>,
) -> std::io::Result<Worker> {
    Worker::spawn("duet-audio-send", move |stop| {
        let mut encoder = match OpusEncoder::new(1, bitrate_bps) {
            Ok(e) => e,
            Err(e) => {
                warn(format!("the Opus encoder cannot start: {e}"));
                return;
            }
        };
        let _ = encoder.set_packet_loss_perc(10);
        let mut capture = open_audio(&choice).unwrap_or_else(|e| {
            warn(e);
            open_audio(&AudioChoice::None).ok().flatten()
        });
        while !stop.load(Ordering::Relaxed) {
            if let Ok(AudioCmd::Switch(new)) = commands.try_recv() {
                drop(capture.take());
                choice = new;
                capture = open_audio(&choice).unwrap_or_else(|e| {
                    warn(e);
                    open_audio(&AudioChoice::None).ok().flatten()
                });
            }
            let Some(c) = &capture else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let Some(mut frame) = c.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            if frame.channels() != 1 {
                match frame.to_channels(1) {
                    Ok(mono) => frame = mono,
                    Err(_) => continue,
                }
            }
            if counters.mic_muted.load(Ordering::Relaxed) {
                frame.samples_mut().fill(0.0);
            }
            let Ok(packet) = encoder.encode(&frame) else {
                continue;
            };
            let sample = Sample {
                data: Bytes::from(packet),
                duration: Duration::from_millis(20),
                ..Sample::new(Instant::now())
            };
            if let Err(e) = rt.block_on(track.write_sample(ssrc, payload_type, &sample, &[])) {
                tracing::debug!(error = %e, "audio write failed");
            }
        }
    })
}

/// Drains RTCP arriving for a local track; PLI/FIR on the video track request a keyframe.
pub async fn drain_sender_rtcp(
    track: Arc<TrackLocalStaticSample>,
    counters: Arc<MediaCounters>,
    video: bool,
) {
    while let Some(event) = track.poll().await {
        if let TrackLocalEvent::OnRtcpPacket(packets) = event
            && video
        {
            note_keyframe_requests(&packets, &counters);
        }
    }
}

/// Counts PLI/FIR in `packets` and asks the video sender for a keyframe. webrtc-rs routes a
/// compound RTCP packet by its first packet's SSRC, so in a two-way call a PLI bundled after
/// the peer's sender report arrives on the *remote* track: both paths call this.
pub fn note_keyframe_requests(packets: &[Box<dyn rtc::rtcp::Packet>], counters: &MediaCounters) {
    for p in packets {
        let any = p.as_any();
        if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
            counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            counters.want_keyframe.store(true, Ordering::Relaxed);
        }
    }
}

/// Reassembles H.264 access units from RTP: payloads are depacketized in order and an access
/// unit ends at the marker bit. A sequence gap discards the unit in progress (the decoder then
/// asks for a keyframe).
#[derive(Default)]
pub struct AccessUnitAssembler {
    depacketizer: H264Packet,
    buf: Vec<u8>,
    last_seq: Option<u16>,
    broken: bool,
}

impl AccessUnitAssembler {
    /// Feeds one packet; returns `Ok(Some(au))` at the end of a complete access unit and
    /// `Err(())` when a unit was lost.
    #[allow(clippy::result_unit_err)]
    pub fn push(&mut self, packet: &rtp::Packet) -> Result<Option<Vec<u8>>, ()> {
        let seq = packet.header.sequence_number;
        let mut lost = false;
        if let Some(last) = self.last_seq
            && seq != last.wrapping_add(1)
        {
            if seq.wrapping_sub(last) > 0x8000 || seq == last {
                // Late or duplicate (e.g. a NACK retransmission of something already handled).
                return Ok(None);
            }
            lost = true;
            self.broken = true;
            self.depacketizer = H264Packet::default();
        }
        self.last_seq = Some(seq);
        match self.depacketizer.depacketize(&packet.payload) {
            Ok(bytes) => self.buf.extend_from_slice(&bytes),
            Err(_) => self.broken = true,
        }
        if self.buf.len() > 4 << 20 {
            self.buf.clear();
            self.broken = true;
        }
        if packet.header.marker {
            let au = std::mem::take(&mut self.buf);
            let ok = !self.broken;
            self.broken = false;
            if ok && !au.is_empty() {
                return Ok(Some(au));
            }
            return Err(());
        }
        if lost { Err(()) } else { Ok(None) }
    }
}

/// Receives the remote video track until it ends: RTP → access units → decoder (with PLIs),
/// and `duet-video-out` publishing frames. Runs on the engine's runtime.
pub async fn receive_video(
    track: Arc<dyn TrackRemote>,
    counters: Arc<MediaCounters>,
    remote: Arc<FrameSlot>,
    wake: Waker,
    ready_at: Arc<Mutex<Option<Instant>>>,
) {
    let decoder = match DecodeWorker::spawn(4) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "the H.264 decoder cannot start");
            return;
        }
    };
    let out = decoder.output().clone();
    let out_counters = counters.clone();
    let out_remote = remote.clone();
    let out_wake = wake.clone();
    let output = Worker::spawn("duet-video-out", move |stop| {
        while !stop.load(Ordering::Relaxed) {
            let frame = match out.recv_timeout(Duration::from_millis(100)) {
                Ok(f) => f,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let now_us = unix_time_us();
            {
                let mut first = lock(&out_counters.first_frame_at);
                if first.is_none() {
                    *first = Some(Instant::now());
                }
            }
            out_counters.frames_decoded.fetch_add(1, Ordering::Relaxed);
            out_counters
                .recv_width
                .store(u64::from(frame.width()), Ordering::Relaxed);
            out_counters
                .recv_height
                .store(u64::from(frame.height()), Ordering::Relaxed);
            if let Some(stamp) = read_pattern_stamp(&frame) {
                let latency_ms = now_us.saturating_sub(stamp.capture_time_us) as f64 / 1000.0;
                lock(&out_counters.pattern).record(stamp.counter, latency_ms);
            }
            out_remote.put(frame);
            out_wake();
        }
    });
    let _ = ready_at; // setup time is computed from `first_frame_at` by the session
    let ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
    let codec = track
        .codec(ssrc)
        .await
        .map(|c| format!("{} {}", c.mime_type, c.sdp_fmtp_line));
    tracing::debug!(ssrc, ?codec, "remote video track");
    let mut assembler = AccessUnitAssembler::default();
    let mut last_pli: Option<Instant> = None;
    let send_pli = async |counters: &MediaCounters, last_pli: &mut Option<Instant>| {
        if last_pli.is_some_and(|t| t.elapsed() < PLI_INTERVAL) {
            return;
        }
        *last_pli = Some(Instant::now());
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        match track.write_rtcp(vec![Box::new(pli)]).await {
            Ok(()) => {
                counters.plis_sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "sending a PLI failed"),
        }
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    loop {
        let event = tokio::select! {
            e = track.poll() => e,
            _ = ticker.tick() => {
                // Keep asking while the decoder waits for a keyframe (rate-limited), and honour
                // an explicit request from the owner.
                if counters.send_pli_now.swap(false, Ordering::Relaxed) {
                    last_pli = None;
                    send_pli(&counters, &mut last_pli).await;
                } else if counters.video_bytes_received.load(Ordering::Relaxed) > 0 && decoder.needs_keyframe() {
                    send_pli(&counters, &mut last_pli).await;
                }
                continue;
            }
        };
        let Some(event) = event else { break };
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                tracing::trace!(
                    pt = packet.header.payload_type,
                    seq = packet.header.sequence_number,
                    len = packet.payload.len(),
                    marker = packet.header.marker,
                    "video rtp"
                );
                counters
                    .video_bytes_received
                    .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
                match assembler.push(&packet) {
                    Ok(Some(au)) => {
                        tracing::trace!(len = au.len(), nals = ?media::nal_unit_types(&au), "video access unit");
                        if !decoder.push(au) {
                            counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(None) => {}
                    Err(()) => {
                        tracing::trace!("video access unit lost");
                        decoder.report_loss();
                        send_pli(&counters, &mut last_pli).await;
                    }
                }
            }
            TrackRemoteEvent::OnRtcpPacket(packets) => note_keyframe_requests(&packets, &counters),
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
    drop(decoder);
    drop(output);
    remote.clear();
    wake();
}

/// Builds the audio sink for `choice`; a speaker that cannot open falls back to a null sink
/// and the reason is returned for a warning.
pub fn open_sink(choice: &SpeakerChoice) -> (Box<dyn AudioSink>, Option<String>) {
    match choice {
        SpeakerChoice::Null => (Box::new(NullSink::new()), None),
        SpeakerChoice::Device(name) => match Speaker::open(name.as_deref()) {
            Ok(speaker) => (Box::new(speaker), None),
            Err(e) => (
                Box::new(NullSink::new()),
                Some(format!(
                    "no sound output ({e}); the call goes on without sound"
                )),
            ),
        },
    }
}

/// Receives the remote audio track until it ends: RTP → jitter buffer; `duet-audio-out`
/// plays out every 20 ms into the sink.
pub async fn receive_audio(
    track: Arc<dyn TrackRemote>,
    counters: Arc<MediaCounters>,
    speaker: SpeakerChoice,
    speaker_switch: Arc<Mutex<Option<SpeakerChoice>>>,
    warn: Arc<dyn Fn(String) + Send + Sync>,
) {
    let jitter = Arc::new(Mutex::new(JitterBuffer::new(JitterConfig::default())));
    let playout_jitter = jitter.clone();
    let out_counters = counters.clone();
    let playout = Worker::spawn("duet-audio-out", move |stop| {
        let mut decoder = match OpusDecoder::new(1) {
            Ok(d) => d,
            Err(e) => {
                warn(format!("the Opus decoder cannot start: {e}"));
                return;
            }
        };
        let (mut sink, problem) = open_sink(&speaker);
        if let Some(p) = problem {
            warn(p);
        }
        let mut analysis: Vec<f32> = Vec::with_capacity(48_000);
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            next += Duration::from_millis(20);
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else if now - next > Duration::from_millis(200) {
                next = now; // fell far behind (suspend, debugger): resynchronise
            }
            if let Some(new) = lock(&speaker_switch).take() {
                let (s, problem) = open_sink(&new);
                sink = s;
                if let Some(p) = problem {
                    warn(p);
                }
            }
            let slot = lock(&playout_jitter).pop();
            let frame: Option<AudioFrame> = match slot {
                Playout::Buffering => None,
                Playout::Packet { payload, .. } => decoder.decode(&payload).ok(),
                Playout::Lost { next_payload, .. } => {
                    out_counters.audio_concealed.fetch_add(1, Ordering::Relaxed);
                    match next_payload {
                        Some(next) => decoder
                            .decode_fec(&next)
                            .or_else(|_| decoder.conceal())
                            .ok(),
                        None => decoder.conceal().ok(),
                    }
                }
                #[allow(unreachable_patterns)]
                _ => None,
            };
            let Some(frame) = frame else { continue };
            out_counters.audio_played.fetch_add(1, Ordering::Relaxed);
            analysis.extend_from_slice(frame.samples());
            if analysis.len() >= 48_000 / 2 {
                *lock(&out_counters.dominant_hz) =
                    media::dominant_frequency_hz(&analysis, 48_000.0);
                analysis.clear();
            }
            if let Err(e) = sink.play(&frame) {
                tracing::debug!(error = %e, "sink failed; switching to a null sink");
                sink = Box::new(NullSink::new());
            }
        }
    });
    let mut first = true;
    while let Some(event) = track.poll().await {
        if first {
            first = false;
            let ssrcs = track.ssrcs().await;
            tracing::debug!(?ssrcs, "first audio track event");
        }
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let rtp::Packet {
                    header, payload, ..
                } = packet;
                lock(&jitter).push(header.sequence_number, header.timestamp, payload.to_vec());
            }
            TrackRemoteEvent::OnRtcpPacket(packets) => note_keyframe_requests(&packets, &counters),
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
    drop(playout);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_hit_whole_ticks() {
        for (us, clock, ticks) in [
            (33_333u64, 90_000u64, 3000u64),
            (20_000, 48_000, 960),
            (33_334, 90_000, 3000),
            (40_000, 90_000, 3600),
        ] {
            let d = sample_duration(us, clock);
            assert_eq!((d.as_secs_f64() * clock as f64) as u64, ticks, "{us} µs");
        }
    }
}
