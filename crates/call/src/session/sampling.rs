//! The once-a-second stats: counters and webrtc-rs's reports sampled into [`CallStats`], the
//! rates worked out by the core.

use super::*;

impl Session {
    pub(super) async fn emit_stats(&mut self, io: &SessionIo, core: &mut CallCore) {
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
                        c.rtt_responses
                            .store(p.responses_received, Ordering::Relaxed);
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
        stats.video_fps_halved = c.send_fps_halved.load(Ordering::Relaxed) != 0;
        stats.encoder_bitrate_bps = c.encoder_bps.load(Ordering::Relaxed) as f64;
        stats.video_frames_lost = c.frames_lost.load(Ordering::Relaxed);
        stats.video_packets_recovered = c.packets_recovered.load(Ordering::Relaxed);
        stats.video_frames_concealed = c.frames_concealed.load(Ordering::Relaxed);
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
