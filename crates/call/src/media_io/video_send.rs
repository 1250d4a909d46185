//! The video sender (`duet-video-send`) and the self-view preview (`duet-preview`): source →
//! encoder for the negotiated codec (rate following the estimate, keyframes on request) → RTP
//! track; and the sender side of keyframe requests (PLI/FIR).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, TryRecvError};
use media::{
    Camera, EncoderConfig, Screen, TestPattern, VideoCapture, VideoEncoder, VideoFrame,
    VideoSource, unix_time_us,
};
use rtc::media::Sample;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use super::*;
use crate::config::VideoChoice;
use crate::events::FrameSlot;
use crate::peer::BandwidthEstimate;
use crate::probe::ProbeSent;
use crate::video_track::VideoTrack;

/// RTP sample duration for `delta_us` at `clock_hz`, rounded so webrtc-rs (which truncates
/// `duration * clock`) advances the timestamp by the intended number of ticks.
pub(crate) fn sample_duration(delta_us: u64, clock_hz: u64) -> Duration {
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
    /// The most the encoder may use, bits/s (the congestion controller may allow less).
    pub bitrate_bps: u32,
    /// The audio bitrate, left out of the estimate the video gets.
    pub audio_bps: u32,
}

/// A source that gives no picture for this long is reported as stalled (a camera unplugged
/// under a driver that blocks, a frozen display server): the other side gets black pictures
/// meanwhile, and the source's pictures again when they come back.
pub const SOURCE_STALL: Duration = Duration::from_secs(3);

/// A shared screen's frame rate: screens change rarely and every picture is large, so fewer
/// of them leave the bits for sharp text (within [`media::SCREEN_FPS_RANGE`]).
pub const SCREEN_FPS: u32 = 10;
/// The most a shared screen is sent at, bits/s (up to 1080p at [`SCREEN_FPS`]); the congestion
/// controller's estimate still caps it like a camera's.
pub const SCREEN_MAX_BPS: u32 = 2_500_000;

/// How a source is encoded: its frame rate and its highest bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendProfile {
    /// Frames per second the encoder's rate control plans for.
    pub fps: u32,
    /// The most the encoder may use, bits/s, before the estimate is applied.
    pub max_bps: u32,
}

impl SendProfile {
    /// A screen share gets [`SCREEN_FPS`] and [`SCREEN_MAX_BPS`]; every other source the
    /// call's size, rate and bitrate.
    pub fn for_choice(choice: &VideoChoice, cfg: &VideoSendConfig) -> Self {
        match choice {
            VideoChoice::Screen(_) => Self {
                fps: SCREEN_FPS,
                max_bps: SCREEN_MAX_BPS,
            },
            _ => Self {
                fps: cfg.fps,
                max_bps: cfg.bitrate_bps,
            },
        }
    }
}

/// Commands to the video send thread.
#[derive(Debug)]
pub enum VideoCmd {
    Switch(VideoChoice),
}

pub(crate) fn open_video(
    choice: &VideoChoice,
    cfg: &VideoSendConfig,
) -> Result<Option<VideoCapture>, String> {
    match choice {
        VideoChoice::TestPattern => TestPattern::new(cfg.width, cfg.height, cfg.fps)
            .start(2)
            .map(Some)
            .map_err(|e| e.to_string()),
        VideoChoice::Camera(i) => Camera::new(*i, cfg.width, cfg.height, cfg.fps)
            .start(2)
            .map(Some)
            .map_err(|e| format!("camera {i} cannot be used: {e}")),
        VideoChoice::Screen(i) => Screen::new(*i, SCREEN_FPS)
            .start(2)
            .map(Some)
            .map_err(|e| e.to_string()),
        VideoChoice::None => Ok(None),
    }
}

/// Where the self-view's running source goes when the call starts sending, so the sender takes
/// it over instead of opening the device again (a camera reopened shows 0.5–2 s of dark video
/// while its exposure settles).
#[derive(Debug, Default)]
pub struct HandOver {
    wanted: std::sync::atomic::AtomicBool,
    slot: std::sync::Mutex<Option<(VideoChoice, VideoCapture)>>,
}

impl HandOver {
    /// Asks the preview to leave its source here when it stops (or not).
    pub fn want(&self, wanted: bool) {
        self.wanted.store(wanted, Ordering::Relaxed);
    }

    /// The source the preview left, if it was running `choice`.
    pub fn take(&self, choice: &VideoChoice) -> Option<VideoCapture> {
        let handed = self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match handed {
            Some((c, capture)) if c == *choice && !capture.is_finished() => Some(capture),
            _ => None,
        }
    }
}

/// Spawns `duet-preview`: the local source shown in the self-view while no call is connected
/// (waiting for someone, negotiating). Source errors are reported when the call starts sending.
/// When stopped with [`HandOver::want`] set, it leaves its running source in `handover`.
pub fn spawn_preview(
    choice: VideoChoice,
    cfg: VideoSendConfig,
    preview: Arc<FrameSlot>,
    wake: Waker,
    handover: Arc<HandOver>,
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
        if handover.wanted.load(Ordering::Relaxed) {
            *handover
                .slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((choice, capture));
        }
    })
}

/// Spawns `duet-video-send`. `warn` reports device problems (the call goes on).
#[allow(clippy::too_many_arguments)]
pub fn spawn_video_sender(
    rt: tokio::runtime::Handle,
    track: Arc<VideoTrack>,
    payload_type: u8,
    mut choice: VideoChoice,
    cfg: VideoSendConfig,
    counters: Arc<MediaCounters>,
    preview: Arc<FrameSlot>,
    commands: Receiver<VideoCmd>,
    estimate: Arc<BandwidthEstimate>,
    warn: Arc<dyn Fn(String) + Send + Sync>,
    wake: Waker,
    handed_over: Option<VideoCapture>,
) -> std::io::Result<Worker> {
    Worker::spawn("duet-video-send", move |stop| {
        let mut profile = SendProfile::for_choice(&choice, &cfg);
        let mut bitrate_bps =
            video_bitrate_for(estimate.bps(), cfg.audio_bps, profile.max_bps).max(1);
        let codec = track.codec();
        let new_encoder = |profile: SendProfile, bitrate_bps: u32| {
            let settings = EncoderConfig {
                bitrate_bps,
                fps: profile.fps as f32,
                keyframe_interval: 0,
            };
            VideoEncoder::new(codec, settings)
                .map_err(|e| format!("the {codec} encoder cannot start: {e}"))
        };
        let mut encoder = match new_encoder(profile, bitrate_bps) {
            Ok(e) => e,
            Err(e) => {
                warn(e);
                return;
            }
        };
        let open = |choice: &VideoChoice| match open_video(choice, &cfg) {
            Ok(c) => c,
            Err(e) => {
                warn(e);
                None
            }
        };
        // "Camera off" releases the source (a camera's light goes off, its decoding stops);
        // `released` tells that apart from a source that failed or was never chosen.
        let mut released = counters.camera_off.load(Ordering::Relaxed);
        // The self-view's running source, when it hands one over, is used as it is.
        let mut capture = match (released, handed_over) {
            (true, _) => None,
            (false, Some(running)) => Some(running),
            (false, None) => open(&choice),
        };
        let black_interval = Duration::from_millis(200);
        // When the open source last gave a picture, and whether the watchdog has called it
        // stalled (SOURCE_STALL).
        let mut last_picture = Instant::now();
        let mut stalled = false;
        let mut last_capture_us: Option<u64> = None;
        let mut next_black = Instant::now();
        let mut dropped_before = 0;
        let mut next_rate_update = Instant::now();
        let mut allowed_bps = estimate.bps();
        let mut queue_guard = QueueGuard::default();
        let mut ladder = Ladder::new(cfg.width, cfg.height);
        // What the ladder divides the frame rate by now (its last rung sends every other
        // picture), and the pictures seen, to pick which to send.
        let mut fps_divisor = 1u32;
        let mut pictures = 0u64;
        // The source's picture size (a screen's is its own), for the ladder.
        let mut source_size = (cfg.width, cfg.height);
        let mut keyframes = KeyframeWindow::default();
        counters
            .encoder_bps
            .store(u64::from(bitrate_bps), Ordering::Relaxed);
        while !stop.load(Ordering::Relaxed) {
            if Instant::now() >= next_rate_update {
                next_rate_update = Instant::now() + RATE_UPDATE_INTERVAL;
                let now = Instant::now();
                let estimated = estimate.bps();
                allowed_bps = match estimate.since_last_report(now) {
                    // No feedback for a while: the link is too congested for it to get
                    // through, and the estimate is stale. Back off until it returns.
                    Some(silence) if silence > FEEDBACK_TIMEOUT => {
                        (allowed_bps * BACKOFF_PER_UPDATE).max(f64::from(MIN_VIDEO_BPS))
                    }
                    _ => ramp_toward(allowed_bps, estimated),
                };
                let rtt_ms = counters.rtt_us.load(Ordering::Relaxed) as f64 / 1000.0;
                let measurement = counters.rtt_responses.load(Ordering::Relaxed);
                if queue_guard.sample(rtt_ms, measurement, now) {
                    allowed_bps = (allowed_bps * QUEUE_CUT).max(f64::from(MIN_VIDEO_BPS));
                }
                let target = allowed_bps;
                counters
                    .estimate_bps
                    .store(estimated as u64, Ordering::Relaxed);
                counters.target_bps.store(target as u64, Ordering::Relaxed);
                let want = video_bitrate_for(target, cfg.audio_bps, profile.max_bps);
                let rung = ladder.update(want, source_size.0, source_size.1, profile.fps, now);
                counters.send_rung.store(u64::from(rung), Ordering::Relaxed);
                let divisor = ladder.fps_divisor();
                if divisor != fps_divisor {
                    // The encoder plans each frame's bits from the frame rate it is told.
                    match encoder.set_fps(profile.fps as f32 / divisor as f32) {
                        Ok(()) => fps_divisor = divisor,
                        Err(e) => tracing::debug!(error = %e, "setting the frame rate failed"),
                    }
                    counters
                        .send_fps_halved
                        .store(u64::from(fps_divisor > 1), Ordering::Relaxed);
                }
                // Small wobbles are not worth a rate-control reset.
                if want.abs_diff(bitrate_bps) > bitrate_bps / 20 {
                    match encoder.set_bitrate(want) {
                        Ok(()) => {
                            bitrate_bps = want;
                            counters
                                .encoder_bps
                                .store(u64::from(want), Ordering::Relaxed);
                        }
                        Err(e) => tracing::debug!(error = %e, "setting the bitrate failed"),
                    }
                }
            }
            match commands.try_recv() {
                Ok(VideoCmd::Switch(new)) => {
                    drop(capture.take());
                    choice = new;
                    if !released {
                        capture = open(&choice);
                    }
                    (last_picture, stalled) = (Instant::now(), false);
                    // A screen and a camera want different rates: a new encoder (which
                    // starts with a keyframe) plans for the new one.
                    let next = SendProfile::for_choice(&choice, &cfg);
                    if next != profile {
                        profile = next;
                        bitrate_bps = bitrate_bps.min(profile.max_bps);
                        match new_encoder(profile, bitrate_bps) {
                            Ok(e) => {
                                encoder = e;
                                // At the full frame rate: the next rate update halves it
                                // again if the ladder is on its last rung.
                                fps_divisor = 1;
                            }
                            Err(e) => warn(e),
                        }
                        counters
                            .encoder_bps
                            .store(u64::from(bitrate_bps), Ordering::Relaxed);
                    }
                    encoder.request_keyframe();
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => break,
            }
            let camera_off = counters.camera_off.load(Ordering::Relaxed);
            if camera_off && !released {
                // Stopping waits for the source's thread (at most media::STOP_TIMEOUT).
                drop(capture.take());
                released = true;
            } else if !camera_off && released {
                capture = open(&choice);
                released = false;
                (last_picture, stalled) = (Instant::now(), false);
                encoder.request_keyframe();
            }
            counters
                .video_source_open
                .store(capture.is_some(), Ordering::Relaxed);
            // Camera off, no source or a stalled one: a black picture a few times a second
            // keeps the other side's decoder and layout alive.
            let mut black = || {
                let now = Instant::now();
                if now < next_black {
                    std::thread::sleep((next_black - now).min(Duration::from_millis(50)));
                    return None;
                }
                next_black = now + black_interval;
                VideoFrame::new_black(cfg.width, cfg.height, unix_time_us()).ok()
            };
            let frame = match (&capture, camera_off) {
                (Some(c), false) => match c.recv_timeout(Duration::from_millis(100)) {
                    Some(f) => {
                        let dropped = c.stats().dropped();
                        counters
                            .frames_dropped
                            .fetch_add(dropped - dropped_before.min(dropped), Ordering::Relaxed);
                        dropped_before = dropped;
                        last_picture = Instant::now();
                        if std::mem::take(&mut stalled) {
                            warn(format!("{choice} is sending pictures again"));
                        }
                        f
                    }
                    None => {
                        if c.is_finished() {
                            warn(format!("{choice} stopped delivering pictures"));
                            capture = None;
                            continue;
                        }
                        // The watchdog: a source can block without ending (a camera unplugged
                        // under a driver that never returns, a frozen display server).
                        if !stalled && last_picture.elapsed() >= SOURCE_STALL {
                            stalled = true;
                            warn(format!(
                                "{choice} has sent no picture for {} s (unplugged or stalled?); \
                                 the other person sees black until it comes back",
                                SOURCE_STALL.as_secs()
                            ));
                        }
                        match (stalled, black()) {
                            (true, Some(f)) => f,
                            _ => continue,
                        }
                    }
                },
                _ => match black() {
                    Some(f) => f,
                    None => continue,
                },
            };
            if !camera_off {
                source_size = (frame.width(), frame.height());
                preview.put(frame.clone());
                wake();
            }
            // At most one keyframe per window: requests arriving sooner (a receiver asking
            // again while the last keyframe is still on its way) wait for the window's end.
            let rtt = Duration::from_micros(counters.rtt_us.load(Ordering::Relaxed));
            if keyframes.may_answer(Instant::now(), rtt)
                && counters.want_keyframe.swap(false, Ordering::Relaxed)
            {
                keyframes.answered();
                encoder.request_keyframe();
            }
            // The ladder's last rung sends every other picture; a keyframe that was asked for
            // goes out with the next one sent.
            pictures += 1;
            if !pictures.is_multiple_of(u64::from(fps_divisor)) {
                continue;
            }
            // A narrow link sends a smaller picture (the encoder restarts with an IDR).
            let mut frame = frame;
            for _ in 0..ladder.size_halvings() {
                frame = frame.half_size();
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
                _ => 1_000_000 / u64::from(profile.fps.max(1)),
            };
            last_capture_us = Some(encoded.capture_time_us);
            let bytes = encoded.data.len() as u64;
            let sample = Sample {
                data: Bytes::from(encoded.data),
                duration: sample_duration(delta_us, 90_000),
                ..Sample::new(Instant::now())
            };
            if let Err(e) = rt.block_on(track.write_sample(payload_type, &sample)) {
                tracing::debug!(error = %e, "video write failed");
                continue;
            }
            counters.frames_sent.fetch_add(1, Ordering::Relaxed);
            // A bandwidth probe the congestion controller asked for: its padding goes out
            // behind this frame, at the probe's rate (crate::probe).
            if let Some(probe) = estimate.take_probe() {
                match rt.block_on(track.write_padding(probe.packets)) {
                    Ok(Some(first_sequence)) => estimate.probe_sent(
                        ProbeSent {
                            id: probe.id,
                            ssrc: track.ssrc(),
                            first_sequence,
                            packets: probe.packets,
                        },
                        Instant::now(),
                    ),
                    Ok(None) => {}
                    Err(e) => tracing::debug!(error = %e, "probe write failed"),
                }
            }
            if encoded.keyframe {
                counters.keyframes_sent.fetch_add(1, Ordering::Relaxed);
                keyframes.sent_keyframe(Instant::now());
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

/// Drains RTCP arriving for a local track; PLI/FIR on the video track request a keyframe.
pub async fn drain_sender_rtcp(
    track: Arc<dyn TrackLocal>,
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
///
/// It also notes the loss the other side reports for our audio stream (receiver reports, or
/// the reception blocks of its sender reports), which sets the Opus encoder's expected loss.
pub fn note_keyframe_requests(packets: &[Box<dyn rtc::rtcp::Packet>], counters: &MediaCounters) {
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::rtcp::sender_report::SenderReport;
    let audio_ssrc = counters.audio_ssrc.load(Ordering::Relaxed);
    for p in packets {
        let any = p.as_any();
        if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
            counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            counters.want_keyframe.store(true, Ordering::Relaxed);
        }
        let reports = if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
            &rr.reports[..]
        } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
            &sr.reports[..]
        } else {
            &[]
        };
        for r in reports {
            if audio_ssrc != 0 && u64::from(r.ssrc) == audio_ssrc {
                let permille = u64::from(r.fraction_lost) * 1000 / 256;
                counters
                    .audio_remote_loss_permille
                    .store(permille, Ordering::Relaxed);
            }
        }
    }
}
