//! Building the peer connection for a new person, and the media paths: the self-view preview,
//! sending, receiving, and the owner's device commands.

use super::*;

impl Session {
    pub(super) async fn new_call(
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
    pub(super) fn max_video_bps(&self) -> u32 {
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
    pub(super) fn bitrate_range(&self) -> peer::BitrateRange {
        let total = f64::from(self.max_video_bps()) + f64::from(self.config.audio_bitrate_bps);
        let total = total / (1.0 - media_io::OVERHEAD_SHARE);
        peer::BitrateRange {
            initial_bps: total.min(peer::INITIAL_BITRATE_BPS),
            min_bps: peer::MIN_BITRATE_BPS.min(total),
            max_bps: total,
        }
    }

    /// Shows the local source in the self-view until a call sends video.
    pub(super) fn start_preview(&mut self, io: &SessionIo) {
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
        self.handover.want(false);
        match media_io::spawn_preview(
            self.config.video.clone(),
            cfg,
            io.local.clone(),
            io.wake.clone(),
            self.handover.clone(),
        ) {
            Ok(worker) => self.preview = Some(worker),
            Err(e) => tracing::debug!(error = %e, "no preview thread"),
        }
    }

    /// Stops the preview and returns its running source for the sender (a camera can only be
    /// opened once, and a reopened one starts dark); joining happens off the runtime.
    pub(super) async fn stop_preview(&mut self) -> Option<media::VideoCapture> {
        let preview = self.preview.take()?;
        self.handover.want(true);
        let _ = tokio::task::spawn_blocking(move || drop(preview)).await;
        self.handover.want(false);
        self.handover.take(&self.config.video)
    }

    pub(super) async fn start_sending(&mut self, io: &SessionIo) -> Result<(), CallError> {
        let handed_over = self.stop_preview().await;
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
            handed_over,
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

    pub(super) async fn start_receiving(
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

    pub(super) fn on_command(&mut self, command: Command, io: &SessionIo) {
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
}
