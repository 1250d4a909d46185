//! What the engine tells its owner (events, stats, frames) and what the owner can ask of it
//! (commands). Shaped for a UI that must never block: events come through a bounded channel,
//! video frames through "latest frame" slots that always hold the newest picture.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use media::VideoFrame;
use serde::Serialize;

use crate::config::{AudioChoice, SpeakerChoice, VideoChoice};

/// Where the call is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "kebab-case")]
pub enum CallState {
    /// Connecting to the signal server and joining the room.
    Joining,
    /// In the room, alone.
    WaitingForPeer,
    /// The other person is here; offer/answer/ICE in progress.
    Connecting,
    /// Media flows.
    Connected,
    /// The media path was lost (network change, NAT mapping gone); ICE is being restarted.
    /// Back to `Connected` when it recovers, `Failed` if it does not.
    Reconnecting,
    /// The other person left; back to waiting in the same room.
    PeerLeft,
    /// Hung up.
    Ended,
    /// The call cannot go on; the reason is for people.
    Failed(String),
}

/// One snapshot of the call's numbers, sent once a second.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallStats {
    /// Seconds since the engine started.
    pub elapsed_s: f64,
    /// Video bits per second sent (encoder output).
    pub send_video_bps: f64,
    /// Video bits per second received (RTP payload).
    pub recv_video_bps: f64,
    /// Frames per second encoded and sent.
    pub send_fps: f64,
    /// Frames per second decoded.
    pub recv_fps: f64,
    /// Size of the video being sent.
    pub send_resolution: (u32, u32),
    /// Size of the video being received.
    pub recv_resolution: (u32, u32),
    /// The selected ICE pair's local candidate: type and address, e.g. `srflx 203.0.113.7:4000`.
    pub ice_local_candidate: Option<String>,
    /// The selected ICE pair's remote candidate, the same way.
    pub ice_remote_candidate: Option<String>,
    /// Round-trip time of the selected ICE candidate pair, milliseconds.
    pub rtt_ms: Option<f64>,
    /// Packets lost on the inbound video stream (cumulative).
    pub video_packets_lost: i64,
    /// Inbound video packet loss over the last second, percent.
    pub loss_percent: f64,
    /// Inbound video packet loss over the whole call, percent.
    pub loss_percent_total: f64,
    /// Inbound video jitter, milliseconds.
    pub jitter_ms: f64,
    /// The codecs in use, for people: "video H.264 out, VP8 in; audio Opus".
    pub codecs: String,
    /// The video codec being sent ("H.264", "VP8"), once the call sends.
    pub video_codec_sent: Option<String>,
    /// The video codec being received and decoded, once remote video arrived.
    pub video_codec_received: Option<String>,
    /// Mean encode time per frame, milliseconds.
    pub encode_ms: f64,
    /// Mean decode time per frame, milliseconds (decode worker, includes colour handling).
    pub decode_ms: f64,
    /// Video frames sent since the call connected.
    pub frames_sent: u64,
    /// Video frames decoded since the call connected.
    pub frames_decoded: u64,
    /// Frames the capture or decode stages dropped because a consumer was slow.
    pub frames_dropped: u64,
    /// Audio frames played (or given to the null sink).
    pub audio_frames_played: u64,
    /// Audio frames concealed (lost or late).
    pub audio_frames_concealed: u64,
    /// The audio jitter buffer's target delay (adapts to the measured jitter, 20–200 ms), ms.
    pub audio_jitter_target_ms: f64,
    /// The audio jitter buffer's current delay, ms.
    pub audio_jitter_delay_ms: f64,
    /// The loss the other side reports for our audio, percent.
    pub audio_remote_loss_percent: f64,
    /// The Opus encoder's expected-loss setting (drives in-band FEC), percent.
    pub audio_fec_loss_percent: f64,
    /// Whether the microphone's audio processing is on.
    pub audio_processing: bool,
    /// The echo canceller's estimate of how much echo it removes (ERLE), dB; a trend only.
    pub echo_erle_db: f64,
    /// Dominant frequency of the received audio over the last second, Hz.
    pub audio_dominant_hz: Option<f64>,
    /// RMS level of the received audio over the last half second, dBFS (-120: silence or
    /// nothing received yet).
    pub audio_received_dbfs: f64,
    /// Whether this side's video source (camera or test pattern) is open: "camera off"
    /// releases it.
    pub video_source_open: bool,
    /// Mouth-to-ear latency of the other side's timed tone bursts (`--audio bursts:HZ`), from
    /// capture to the moment the audio is handed to the speaker, median and 95th percentile
    /// over the call, ms; `None` without bursts.
    pub mouth_to_ear_p50_ms: Option<f64>,
    /// See `mouth_to_ear_p50_ms`.
    pub mouth_to_ear_p95_ms: Option<f64>,
    /// Bursts measured.
    pub mouth_to_ear_bursts: u64,
    /// PLIs sent / keyframe requests received.
    pub plis_sent: u64,
    /// Keyframe requests (PLI/FIR) received from the other side.
    pub keyframe_requests_received: u64,
    /// IDR pictures sent (the first one, plus one per honoured keyframe request).
    pub keyframes_sent: u64,
    /// The rate this side allows itself to send (video, audio and packet overhead), bits/s:
    /// the congestion controller's estimate, followed down at once and up gradually.
    pub target_bitrate_bps: f64,
    /// The sender's ladder rung: 0 sends the configured size, each rung halves it, and the
    /// last rung also halves the frame rate ([`CallStats::video_fps_halved`]).
    pub video_rung: u64,
    /// Whether the ladder's last rung has halved the frame rate sent.
    pub video_fps_halved: bool,
    /// The congestion controller's raw estimate (Google Congestion Control), bits/s.
    pub bandwidth_estimate_bps: f64,
    /// The bitrate the video encoder is set to (follows the estimate), bits/s.
    pub encoder_bitrate_bps: f64,
    /// Remote video frames given up: still incomplete after waiting for retransmissions.
    pub video_frames_lost: u64,
    /// Remote video packets that filled a hole: reordered, or recovered by a NACK.
    pub video_packets_recovered: u64,
    /// Remote video pictures shown with errors concealed: decoded after a frame was lost,
    /// on the last good picture, while a keyframe was on its way (they count as decoded).
    pub video_frames_concealed: u64,
    /// How long the receiver waits for a missing packet before giving its frame up, ms.
    pub video_reorder_wait_ms: f64,
    /// Freezes of the remote video, as browsers count them (a gap between two frames of more
    /// than three average frame intervals and at least 150 ms more than the average).
    pub freeze_count: u64,
    /// Total duration of those freezes, ms.
    pub freeze_total_ms: f64,
    /// The longest freeze, ms.
    pub freeze_longest_ms: f64,
    /// The most recent freezes (up to 64): `[seconds since the engine started when it ended,
    /// its duration in ms]`.
    pub freezes: Vec<[f64; 2]>,
    /// Offer collisions in which this side ignored the other's offer (the impolite side).
    pub glare_offers_ignored: u64,
    /// Offer collisions in which this side rolled back its own offer (the polite side).
    pub glare_rollbacks: u64,
    /// ICE restarts this side started (after the media path was lost).
    pub ice_restarts: u64,
    /// Times the signalling connection dropped and was restored without ending the call.
    pub signal_reconnects: u64,
    /// Test-pattern counters: first and last seen, and how many decoded frames carried one.
    pub pattern_first: Option<u32>,
    /// Last test-pattern counter seen.
    pub pattern_last: Option<u32>,
    /// Decoded frames whose test-pattern stamp was readable.
    pub pattern_frames: u64,
    /// Decoded frames whose counter went backwards (repeats of a picture are not counted).
    pub pattern_out_of_order: u64,
    /// Glass-to-glass latency (capture at the sender → decoded here), ms, p50 and p95 over
    /// the call so far; only with the test pattern (it carries the capture time).
    pub glass_to_glass_p50_ms: Option<f64>,
    /// See `glass_to_glass_p50_ms`.
    pub glass_to_glass_p95_ms: Option<f64>,
    /// The call's verification code (`"123 456"`, see [`crate::verify`]): the same on both
    /// sides unless someone rewrote the DTLS fingerprints in between. `None` until both
    /// descriptions are set.
    pub verification_code: Option<String>,
    /// Second join (`ready`) → first remote frame decoded, milliseconds.
    pub setup_ms: Option<f64>,
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The call moved to a new state.
    State(CallState),
    /// A problem the user can act on that does not end the call (camera busy, no speaker).
    Warning(String),
    /// Once a second.
    Stats(Box<CallStats>),
}

/// What the owner can ask during a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Send silence instead of the microphone.
    SetMicMuted(bool),
    /// Stop (or restart) sending camera pictures; black frames are sent while off.
    SetCameraEnabled(bool),
    /// Switch the video source mid-call.
    SwitchVideo(VideoChoice),
    /// Switch the audio source mid-call.
    SwitchAudio(AudioChoice),
    /// Switch the audio output mid-call.
    SwitchSpeaker(SpeakerChoice),
    /// Ask the other side for a fresh keyframe (sends a PLI), e.g. after a glitch.
    RequestKeyframe,
    /// Turn the microphone's audio processing (echo cancellation, noise suppression, gain
    /// control) on or off mid-call.
    SetAudioProcessing(bool),
    /// Leave the room and end the engine.
    HangUp,
}

/// The newest video frame of one stream; readers take the latest, never a queue.
#[derive(Debug, Default)]
pub struct FrameSlot {
    frame: Mutex<Option<Arc<VideoFrame>>>,
    seq: AtomicU64,
}

impl FrameSlot {
    /// Replaces the frame.
    pub fn put(&self, frame: VideoFrame) {
        *self.frame.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(frame));
        self.seq.fetch_add(1, Ordering::Release);
    }

    /// Clears the slot (the stream ended).
    pub fn clear(&self) {
        *self.frame.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.seq.fetch_add(1, Ordering::Release);
    }

    /// The latest frame and its sequence number (increases with every `put`/`clear`).
    pub fn latest(&self) -> (u64, Option<Arc<VideoFrame>>) {
        let seq = self.seq.load(Ordering::Acquire);
        (
            seq,
            self.frame
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }

    /// The sequence number alone, to check cheaply whether anything changed.
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }
}
