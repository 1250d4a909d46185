//! The in-call screen: remote video filling the window, a self-view in the corner, the
//! waiting state with the share links, the control bar, banners and the stats overlay.
//!
//! Owns the [`Engine`] handle. Every frame it drains the engine's events with `try_recv` and
//! uploads new frames into one texture per stream; nothing here waits. Ending a call (whose
//! engine thread must be joined) happens on a short-lived thread of its own.

use std::time::Instant;

use call::{
    AudioChoice, CallConfig, CallState, Command, Engine, Event, SpeakerChoice, VideoChoice,
};
use crossbeam_channel::TryRecvError;
use egui::{Align2, Color32, CornerRadius, FontId, Rect, RichText, Stroke, StrokeKind, Vec2};

use crate::devices::{Choice, DeviceLists};
use crate::gpu_video::SharedGlVideo;
use crate::share::ShareLinks;
use crate::stats::StatsHistory;
use crate::video::{Renderer, VideoTexture, fit_aspect, self_view_rect};

/// The control bar's button size.
const CONTROL_SIZE: Vec2 = Vec2::new(104.0, 32.0);

/// What the start screen hands to a new call.
#[derive(Debug, Clone)]
pub struct CallSetup {
    /// The engine's configuration.
    pub config: CallConfig,
    /// How others join (shown while waiting).
    pub links: Option<ShareLinks>,
}

/// Why the call screen closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallExit {
    /// The user hung up.
    HangUp,
    /// The call could not go on; the reason is for people.
    Failed(String),
}

/// Where the two videos were drawn in the last frame, in points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoLayout {
    /// The remote picture.
    pub remote: Option<Rect>,
    /// The self-view picture.
    pub local: Option<Rect>,
}

/// A banner the user can dismiss.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Banner {
    text: String,
    error: bool,
}

/// The call screen's state.
pub struct CallView {
    engine: Option<Engine>,
    room: String,
    state: CallState,
    links: Option<ShareLinks>,
    remote: VideoTexture,
    local: VideoTexture,
    stats: StatsHistory,
    show_stats: bool,
    mic_muted: bool,
    /// Echo cancellation, noise suppression and gain control on the microphone.
    audio_processing: bool,
    camera_on: bool,
    banners: Vec<Banner>,
    connected_since: Option<Instant>,
    layout: VideoLayout,
    /// The video source in use.
    pub video: VideoChoice,
    /// The audio source in use.
    pub audio: AudioChoice,
    /// The audio output in use.
    pub speaker: SpeakerChoice,
    device_switched: bool,
    /// While the screen is shared: the source to go back to when sharing stops.
    sharing: Option<VideoChoice>,
    sharing_since: Option<Instant>,
    /// How the call ended, found while the window was hidden (see [`CallView::logic`]).
    pending_exit: Option<CallExit>,
    renderer: Renderer,
    gl_video: SharedGlVideo,
}

impl std::fmt::Debug for CallView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallView")
            .field("room", &self.room)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl CallView {
    /// Starts the engine; it wakes `ctx` whenever there is something new to show.
    pub fn start(setup: CallSetup, ctx: &egui::Context) -> Result<Self, String> {
        let repaint = ctx.clone();
        let waker: call::media_io::Waker = std::sync::Arc::new(move || repaint.request_repaint());
        let room = setup.config.room.clone();
        let audio_processing = setup.config.audio_processing;
        let (video, audio, speaker) = (
            setup.config.video.clone(),
            setup.config.audio.clone(),
            setup.config.speaker.clone(),
        );
        let engine = Engine::start(setup.config, Some(waker)).map_err(|e| e.to_string())?;
        let renderer = Renderer::from_env();
        Ok(Self {
            engine: Some(engine),
            room,
            state: CallState::Joining,
            links: setup.links,
            remote: VideoTexture::new("remote-video", renderer),
            local: VideoTexture::new("local-video", renderer),
            stats: StatsHistory::default(),
            // Handy when measuring: start with the overlay open.
            show_stats: std::env::var_os("DUET_SHOW_STATS").is_some_and(|v| v == "1"),
            mic_muted: false,
            camera_on: true,
            audio_processing,
            banners: Vec::new(),
            connected_since: None,
            layout: VideoLayout {
                remote: None,
                local: None,
            },
            video,
            audio,
            speaker,
            device_switched: false,
            sharing: None,
            sharing_since: None,
            pending_exit: None,
            renderer,
            gl_video: crate::gpu_video::shared(ctx),
        })
    }

    /// Whether the screen is being shared (instead of the camera).
    pub fn sharing_screen(&self) -> bool {
        self.sharing.is_some()
    }

    /// For how long the screen has been shared (`None` when it is not).
    pub fn sharing_screen_for(&self) -> Option<std::time::Duration> {
        self.sharing_since.map(|t| t.elapsed())
    }

    /// Starts sharing the (first) screen in place of the camera, or goes back to the camera.
    pub fn toggle_screen_share(&mut self) {
        self.sharing_since = if self.sharing.is_some() {
            None
        } else {
            Some(Instant::now())
        };
        match self.sharing.take() {
            Some(previous) => {
                self.video = previous.clone();
                self.send(Command::SwitchVideo(previous));
            }
            None => {
                self.sharing = Some(self.video.clone());
                self.video = VideoChoice::Screen(0);
                self.send(Command::SwitchVideo(VideoChoice::Screen(0)));
            }
        }
    }

    /// UI-thread microseconds spent on video pictures so far (both streams) and the number of
    /// pictures taken: what docs/benchmarks.md compares between the two renderers.
    pub fn video_ui_cost(&self) -> (u64, u64) {
        (
            self.remote.ui_thread_us() + self.local.ui_thread_us(),
            self.remote.frames_shown() + self.local.frames_shown(),
        )
    }

    /// The remote picture's size in pixels (0×0 before the first).
    pub fn remote_size(&self) -> (u32, u32) {
        let s = self.remote.size();
        (s.x as u32, s.y as u32)
    }

    /// The video source to remember: the camera in use, also while the screen is shared.
    pub fn chosen_video(&self) -> &VideoChoice {
        self.sharing.as_ref().unwrap_or(&self.video)
    }

    /// How video is drawn in this call.
    pub fn renderer(&self) -> Renderer {
        self.remote.renderer()
    }

    /// The room of this call.
    pub fn room(&self) -> &str {
        &self.room
    }

    /// The call's current state.
    pub fn state(&self) -> &CallState {
        &self.state
    }

    /// Since when media flows (None while not connected).
    pub fn connected_since(&self) -> Option<Instant> {
        self.connected_since
    }

    /// Where the videos were drawn in the last frame.
    pub fn layout(&self) -> VideoLayout {
        self.layout
    }

    /// Remote pictures shown so far.
    pub fn remote_frames_shown(&self) -> u64 {
        self.remote.frames_shown()
    }

    /// True once after the user switched a device mid-call (the app then remembers the keys).
    pub fn take_device_switch(&mut self) -> bool {
        std::mem::take(&mut self.device_switched)
    }

    /// Ends the call without waiting for the engine (it finishes on a thread of its own).
    pub fn end(&mut self) {
        if let Some(engine) = self.engine.take() {
            let spawned = std::thread::Builder::new()
                .name("duet-hangup".into())
                .spawn(move || {
                    let state = engine.hang_up();
                    tracing::debug!(?state, "engine finished");
                });
            if let Err(e) = spawned {
                // Without a thread the engine is dropped here, which waits for it: rare, and
                // still correct.
                tracing::warn!(error = %e, "cannot start the hang-up thread");
            }
        }
    }

    /// Applies what the engine said since the last frame; `Some` when the call is over.
    fn drain_events(&mut self) -> Option<CallExit> {
        let events = self.engine.as_ref()?.events().clone();
        loop {
            match events.try_recv() {
                Ok(Event::State(state)) => {
                    match &state {
                        CallState::Connected => {
                            self.connected_since = Some(Instant::now());
                            self.banners.retain(|b| b.error);
                        }
                        CallState::Connecting => {
                            self.banners.retain(|b| b.error);
                        }
                        CallState::Reconnecting => {
                            self.push_banner(
                                "The connection was lost. Reconnecting…".into(),
                                false,
                            );
                        }
                        CallState::PeerLeft => {
                            self.connected_since = None;
                            self.remote = VideoTexture::new("remote-video", self.renderer);
                            self.push_banner(
                                format!("The other person left. Waiting in {}.", self.room),
                                false,
                            );
                        }
                        CallState::Failed(reason) => {
                            self.state = state.clone();
                            return Some(CallExit::Failed(reason.clone()));
                        }
                        CallState::Ended => return Some(CallExit::HangUp),
                        CallState::Joining | CallState::WaitingForPeer => {}
                    }
                    self.state = state;
                }
                Ok(Event::Warning(text)) => self.push_banner(text, true),
                Ok(Event::Stats(stats)) => self.stats.push(*stats),
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => {
                    return Some(CallExit::Failed("the call engine stopped".into()));
                }
            }
        }
    }

    fn push_banner(&mut self, text: String, error: bool) {
        if !self.banners.iter().any(|b| b.text == text) {
            self.banners.push(Banner { text, error });
        }
        // A long call with a flaky device must not grow a wall of banners.
        if self.banners.len() > 4 {
            self.banners.remove(0);
        }
    }

    fn send(&mut self, command: Command) {
        let sent = self.engine.as_ref().is_some_and(|e| e.command(command));
        if !sent {
            self.push_banner("The call engine is busy; try again.".into(), true);
        }
    }

    /// Keeps up with the engine while nothing is drawn (the window is covered or minimised,
    /// for example by the window being shared): its events are taken so none are lost, and how
    /// the call ended waits for the next [`CallView::ui`].
    pub fn logic(&mut self) {
        if self.pending_exit.is_none() {
            self.pending_exit = self.drain_events();
        }
    }

    /// Draws the call screen; `Some` when the call is over (the engine is then being ended).
    pub fn ui(&mut self, ui: &mut egui::Ui, devices: &DeviceLists) -> Option<CallExit> {
        if let Some(exit) = self.pending_exit.take().or_else(|| self.drain_events()) {
            self.end();
            return Some(exit);
        }
        if let Some(engine) = &self.engine {
            let (remote, local) = (
                engine.remote_frames().clone(),
                engine.local_frames().clone(),
            );
            self.remote.update(ui.ctx(), &self.gl_video, &remote);
            self.local.update(ui.ctx(), &self.gl_video, &local);
        }
        let mut exit = None;
        // Keyboard shortcuts (shown on the buttons): M mute, V camera, S share the screen,
        // H hang up. Not while typing in a text field.
        if !ui.ctx().egui_wants_keyboard_input() {
            let (m, v, s, h) = ui.input(|i| {
                (
                    i.key_pressed(egui::Key::M),
                    i.key_pressed(egui::Key::V),
                    i.key_pressed(egui::Key::S),
                    i.key_pressed(egui::Key::H),
                )
            });
            if s {
                self.toggle_screen_share();
            }
            if m {
                self.mic_muted = !self.mic_muted;
                self.send(Command::SetMicMuted(self.mic_muted));
            }
            if v {
                self.camera_on = !self.camera_on;
                self.send(Command::SetCameraEnabled(self.camera_on));
            }
            if h {
                exit = Some(CallExit::HangUp);
            }
        }
        egui::Panel::top("call-header").show(ui, |ui| self.header_ui(ui));
        egui::Panel::bottom("call-controls").show(ui, |ui| {
            if self.controls_ui(ui, devices) {
                exit = Some(CallExit::HangUp);
            }
        });
        if !self.banners.is_empty() {
            egui::Panel::top("call-banners").show(ui, |ui| self.banners_ui(ui));
        }
        egui::CentralPanel::default()
            .frame(egui::Frame::new().fill(Color32::from_gray(18)))
            .show(ui, |ui| self.video_ui(ui));
        if self.show_stats {
            egui::Window::new("Call statistics")
                .anchor(Align2::LEFT_TOP, [12.0, 56.0])
                .resizable(false)
                .collapsible(false)
                .open(&mut self.show_stats)
                .show(ui.ctx(), |ui| self.stats.ui(ui));
        }
        if exit.is_some() {
            self.end();
        }
        exit
    }

    fn header_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading(&self.room);
            ui.add_space(8.0);
            let (color, text) = badge(&self.state, self.stats.latest().and_then(|s| s.rtt_ms));
            let (dot, _) = ui.allocate_exact_size(Vec2::splat(12.0), egui::Sense::hover());
            ui.painter().circle_filled(dot.center(), 5.0, color);
            ui.label(RichText::new(text).color(color));
            if let Some(code) = self
                .stats
                .latest()
                .and_then(|s| s.verification_code.clone())
            {
                ui.add_space(12.0);
                ui.label(RichText::new(format!("Code {code}")).monospace())
                    .on_hover_text(
                        "Read this code to each other: if it is the same on both sides, \
                         nobody is in the middle of your call",
                    );
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.toggle_value(&mut self.show_stats, "Stats");
            });
        });
    }

    fn banners_ui(&mut self, ui: &mut egui::Ui) {
        let mut dismiss = None;
        for (i, banner) in self.banners.iter().enumerate() {
            let fill = if banner.error {
                Color32::from_rgb(110, 70, 0)
            } else {
                Color32::from_rgb(30, 60, 100)
            };
            egui::Frame::new()
                .fill(fill)
                .inner_margin(6.0)
                .corner_radius(4.0)
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.label(RichText::new(&banner.text).color(Color32::WHITE));
                        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                            if ui.small_button("Dismiss").clicked() {
                                dismiss = Some(i);
                            }
                        });
                    });
                });
        }
        if let Some(i) = dismiss {
            self.banners.remove(i);
        }
    }

    /// The control bar; true when "Hang up" was clicked.
    fn controls_ui(&mut self, ui: &mut egui::Ui, devices: &DeviceLists) -> bool {
        let mut hang_up = false;
        ui.add_space(6.0);
        ui.horizontal(|ui| {
            ui.spacing_mut().item_spacing.x = 10.0;
            let mute_text = if self.mic_muted { "Unmute" } else { "Mute" };
            if ui
                .add(
                    egui::Button::new(mute_text)
                        .selected(self.mic_muted)
                        .min_size(CONTROL_SIZE),
                )
                .on_hover_text("Send silence instead of your microphone (M)")
                .clicked()
            {
                self.mic_muted = !self.mic_muted;
                self.send(Command::SetMicMuted(self.mic_muted));
            }
            let camera_text = if self.camera_on {
                "Camera off"
            } else {
                "Camera on"
            };
            if ui
                .add(
                    egui::Button::new(camera_text)
                        .selected(!self.camera_on)
                        .min_size(CONTROL_SIZE),
                )
                .on_hover_text("Stop or restart sending your camera (V)")
                .clicked()
            {
                self.camera_on = !self.camera_on;
                self.send(Command::SetCameraEnabled(self.camera_on));
            }
            let share_text = if self.sharing.is_some() {
                "Stop sharing"
            } else {
                "Share screen"
            };
            if ui
                .add(
                    egui::Button::new(share_text)
                        .selected(self.sharing.is_some())
                        .min_size(CONTROL_SIZE),
                )
                .on_hover_text("Send your screen instead of your camera, or go back (S)")
                .clicked()
            {
                self.toggle_screen_share();
            }
            egui::containers::menu::MenuButton::from_button(
                egui::Button::new("Devices").min_size(CONTROL_SIZE),
            )
            .ui(ui, |ui| self.devices_menu(ui, devices));
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let hang = egui::Button::new(RichText::new("Hang up").color(Color32::WHITE))
                    .fill(Color32::from_rgb(190, 40, 40))
                    .min_size(CONTROL_SIZE);
                if ui.add(hang).on_hover_text("Leave the call (H)").clicked() {
                    hang_up = true;
                }
            });
        });
        ui.add_space(6.0);
        hang_up
    }

    fn devices_menu(&mut self, ui: &mut egui::Ui, devices: &DeviceLists) {
        if let Some(video) = picked(ui, "Camera", &devices.video_choices(), &self.video) {
            self.video = video.clone();
            self.sharing = None;
            self.sharing_since = None;
            self.device_switched = true;
            self.send(Command::SwitchVideo(video));
        }
        ui.separator();
        if let Some(audio) = picked(ui, "Microphone", &devices.audio_choices(), &self.audio) {
            self.audio = audio.clone();
            self.device_switched = true;
            self.send(Command::SwitchAudio(audio));
        }
        if ui
            .checkbox(
                &mut self.audio_processing,
                "Echo cancellation and noise suppression",
            )
            .on_hover_text("Keeps the other person from hearing themselves through your speakers")
            .changed()
        {
            self.send(Command::SetAudioProcessing(self.audio_processing));
        }
        ui.separator();
        if let Some(speaker) = picked(ui, "Speaker", &devices.speaker_choices(), &self.speaker) {
            self.speaker = speaker.clone();
            self.device_switched = true;
            self.send(Command::SwitchSpeaker(speaker));
        }
        if !devices.scanned {
            ui.separator();
            ui.weak("Looking for devices…");
        }
    }

    fn video_ui(&mut self, ui: &mut egui::Ui) {
        let area = ui.max_rect();
        let painter = ui.painter().clone();
        let connected = self.state == CallState::Connected;
        let mut layout = VideoLayout {
            remote: None,
            local: None,
        };
        match (connected, self.remote.has_picture()) {
            (true, true) => {
                let rect = fit_aspect(area, self.remote.size());
                self.remote.paint(&painter, &self.gl_video, rect, false);
                layout.remote = Some(rect);
            }
            (true, false) => {
                painter.text(
                    area.center(),
                    Align2::CENTER_CENTER,
                    "Connected — waiting for the first picture…",
                    FontId::proportional(18.0),
                    Color32::from_gray(200),
                );
            }
            (false, _) => self.waiting_ui(ui, area),
        }
        if self.local.has_picture() {
            let rect = self_view_rect(area, self.local.size(), 16.0);
            painter.rect_filled(
                rect.expand(2.0),
                CornerRadius::same(4),
                Color32::from_gray(40),
            );
            // Like a mirror, as every call app shows you to yourself; a shared screen is shown
            // the way the other side sees it.
            let mirror = self.sharing.is_none();
            self.local.paint(&painter, &self.gl_video, rect, mirror);
            painter.rect_stroke(
                rect.expand(2.0),
                CornerRadius::same(4),
                Stroke::new(1.0, Color32::from_gray(120)),
                StrokeKind::Outside,
            );
            if self.sharing.is_some() {
                painter.text(
                    rect.center_bottom() - Vec2::new(0.0, 6.0),
                    Align2::CENTER_BOTTOM,
                    "Sharing your screen",
                    FontId::proportional(13.0),
                    Color32::WHITE,
                );
            }
            if !self.camera_on {
                painter.text(
                    rect.center(),
                    Align2::CENTER_CENTER,
                    "Camera off",
                    FontId::proportional(14.0),
                    Color32::WHITE,
                );
            }
            layout.local = Some(rect);
        }
        self.layout = layout;
    }

    fn waiting_ui(&self, ui: &mut egui::Ui, area: Rect) {
        let width = (area.width() - 40.0).clamp(200.0, 560.0);
        let top = Rect::from_center_size(
            area.center() - Vec2::new(0.0, area.height() * 0.15),
            Vec2::new(width, area.height() * 0.6),
        );
        ui.scope_builder(egui::UiBuilder::new().max_rect(top), |ui| {
            ui.vertical_centered(|ui| {
                let title = match &self.state {
                    CallState::Joining => format!("Connecting to the server for {}…", self.room),
                    CallState::Connecting => "Someone joined — connecting…".to_owned(),
                    _ => format!("Waiting for someone to join {}", self.room),
                };
                ui.label(RichText::new(title).size(22.0).color(Color32::WHITE));
                if let Some(links) = &self.links {
                    ui.add_space(12.0);
                    ui.label(
                        RichText::new("Send one of these to the other person:")
                            .color(Color32::from_gray(200)),
                    );
                    ui.add_space(4.0);
                    link_row(ui, "In a browser", &links.browser);
                    link_row(ui, "In duet", &links.duet);
                }
            });
        });
    }
}

impl Drop for CallView {
    fn drop(&mut self) {
        self.end();
    }
}

/// One share link with a copy button.
pub fn link_row(ui: &mut egui::Ui, title: &str, link: &str) {
    ui.horizontal(|ui| {
        ui.label(RichText::new(title).color(Color32::from_gray(180)));
        ui.monospace(RichText::new(link).color(Color32::from_rgb(150, 200, 255)));
        if ui
            .small_button("Copy")
            .on_hover_text(format!("Copy {title:?} link"))
            .clicked()
        {
            ui.ctx().copy_text(link.to_owned());
        }
    });
}

/// The connection badge's colour and text.
fn badge(state: &CallState, rtt_ms: Option<f64>) -> (Color32, String) {
    let yellow = Color32::from_rgb(230, 180, 40);
    match state {
        CallState::Joining => (yellow, "Connecting to the server".into()),
        CallState::WaitingForPeer | CallState::PeerLeft => {
            (Color32::from_rgb(90, 150, 230), "Waiting".into())
        }
        CallState::Connecting => (yellow, "Connecting…".into()),
        CallState::Reconnecting => (yellow, "Reconnecting…".into()),
        CallState::Connected => (
            Color32::from_rgb(60, 190, 90),
            match rtt_ms {
                Some(rtt) => format!("Connected · {rtt:.0} ms"),
                None => "Connected".into(),
            },
        ),
        CallState::Ended => (Color32::GRAY, "Ended".into()),
        CallState::Failed(_) => (Color32::from_rgb(220, 60, 60), "Failed".into()),
    }
}

/// A titled list of `choices` in the devices menu; the one picked this frame, if it differs
/// from `current`.
fn picked<T: PartialEq + Clone>(
    ui: &mut egui::Ui,
    title: &str,
    choices: &[Choice<T>],
    current: &T,
) -> Option<T> {
    let mut chosen = None;
    ui.label(RichText::new(title).strong());
    for choice in choices {
        let selected = choice.value == *current;
        if ui.selectable_label(selected, &choice.label).clicked() && !selected {
            chosen = Some(choice.value.clone());
        }
    }
    chosen
}
