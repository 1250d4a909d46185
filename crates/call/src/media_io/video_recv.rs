//! The video receiver: RTP → frame assembler → decode worker → `duet-video-out` (remote slot,
//! pattern stamps, latency, freezes), with PLIs when a frame is lost for good.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use media::{DecodeWorker, read_pattern_stamp, unix_time_us};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::*;
use crate::assembler::FrameAssembler;
use crate::events::FrameSlot;

/// Minimum time between two PLIs sent for the same stream: a keyframe takes a round trip
/// plus its own transmission time to arrive, and asking again sooner only makes the sender
/// spend its budget on keyframes (measured in the lab: a 300 ms interval on a 1 Mbit/s link
/// fed a keyframe-per-request spiral).
pub const PLI_INTERVAL: Duration = Duration::from_millis(500);

/// Receives the remote video track until it ends: RTP → access units → decoder (with PLIs),
/// and `duet-video-out` publishing frames. Runs on the engine's runtime.
pub async fn receive_video(
    track: Arc<dyn TrackRemote>,
    counters: Arc<MediaCounters>,
    remote: Arc<FrameSlot>,
    wake: Waker,
    ready_at: Arc<Mutex<Option<Instant>>>,
) {
    let ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
    let remote_codec = track.codec(ssrc).await;
    tracing::debug!(ssrc, codec = ?remote_codec.as_ref().map(|c| format!("{} {}", c.mime_type, c.sdp_fmtp_line)), "remote video track");
    let Some(codec) = remote_codec
        .as_ref()
        .and_then(|c| media::VideoCodec::from_name(&c.mime_type))
    else {
        tracing::warn!(codec = ?remote_codec.map(|c| c.mime_type), "remote video in a codec duet does not decode");
        return;
    };
    counters.set_recv_codec(codec);
    // The decoder's and the output's threads are joined off the runtime, also on abort.
    let decoder = match DecodeWorker::spawn(codec, 4) {
        Ok(d) => JoinOffRuntime::new(d),
        Err(e) => {
            tracing::warn!(error = %e, %codec, "the video decoder cannot start");
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
            lock(&out_counters.freezes).frame(Instant::now());
            out_counters
                .recv_width
                .store(u64::from(frame.width()), Ordering::Relaxed);
            out_counters
                .recv_height
                .store(u64::from(frame.height()), Ordering::Relaxed);
            if let Some(stamp) = read_pattern_stamp(&frame) {
                let latency_ms = now_us.saturating_sub(stamp.capture_time_us) as f64 / 1000.0;
                lock(&out_counters.pattern).record(stamp.counter, latency_ms, frame.concealed);
            }
            out_remote.put(frame);
            out_wake();
        }
    })
    .map(JoinOffRuntime::new);
    let _ = ready_at; // setup time is computed from `first_frame_at` by the session
    let mut assembler = FrameAssembler::new(codec);
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
        // Wake for the next packet, the end of a wait for a missing one, or the PLI tick.
        let hole_deadline = assembler.deadline();
        let event = tokio::select! {
            e = track.poll() => Some(e),
            () = async {
                match hole_deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => None,
            _ = ticker.tick() => {
                // Keep asking while the decoder waits for a keyframe (rate-limited), and honour
                // an explicit request from the owner.
                if counters.send_pli_now.swap(false, Ordering::Relaxed) {
                    last_pli = None;
                    send_pli(&counters, &mut last_pli).await;
                } else if counters.video_bytes_received.load(Ordering::Relaxed) > 0 && decoder.needs_keyframe() {
                    send_pli(&counters, &mut last_pli).await;
                }
                // Wait about a round trip plus the NACK generator's 100 ms interval.
                let rtt = Duration::from_micros(counters.rtt_us.load(Ordering::Relaxed));
                let wait = (rtt * 3 / 2 + Duration::from_millis(120))
                    .clamp(Duration::from_millis(120), Duration::from_millis(500));
                assembler.set_wait(wait);
                counters.reorder_wait_us.store(wait.as_micros() as u64, Ordering::Relaxed);
                continue;
            }
        };
        if let Some(event) = event {
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
                    assembler.push(&packet, Instant::now());
                }
                TrackRemoteEvent::OnRtcpPacket(packets) => {
                    note_keyframe_requests(&packets, &counters);
                    continue;
                }
                TrackRemoteEvent::OnEnded => break,
                _ => continue,
            }
        }
        let mut lost = false;
        while let Some(unit) = assembler.poll(Instant::now()) {
            tracing::trace!(
                len = unit.data.len(),
                after_loss = unit.after_loss,
                "video access unit"
            );
            if unit.after_loss {
                decoder.report_loss();
                lost = true;
            }
            if !decoder.push(unit.data) {
                counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        let stats = assembler.stats();
        counters
            .frames_lost
            .store(stats.frames_lost, Ordering::Relaxed);
        counters
            .packets_recovered
            .store(stats.packets_recovered, Ordering::Relaxed);
        counters
            .frames_concealed
            .store(decoder.stats().concealed(), Ordering::Relaxed);
        if lost {
            send_pli(&counters, &mut last_pli).await;
        }
    }
    drop(decoder);
    drop(output);
    remote.clear();
    wake();
}
