//! The app: the start screen, the switch into a call and back, hosting the signal server, and
//! keeping the settings on disk.
//!
//! [`DuetApp::ui`] is the whole UI for one frame. It is independent of eframe's `Frame`, so
//! `egui_kittest` drives it in tests exactly as the window does.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use call::{AudioChoice, CallConfig, SpeakerChoice, VideoChoice};
use egui::{Color32, RichText};
use signal::HostedSignal;

use crate::call_view::{CallExit, CallSetup, CallView, link_row};
use crate::devices::{Choice, DeviceLists, DeviceScan, camera_after_scan, label_for};
use crate::room::{suggest_room, validate_room};
use crate::screenshot::{ScreenshotPlan, ScreenshotTaker};
use crate::settings::{
    IceServerSetting, RESOLUTIONS, ServerMode, Settings, default_config_dir, resolution_label,
};
use crate::share::{
    DEFAULT_HOST_PORT, ShareLinks, host_signal, lan_address, parse_server, share_links,
    share_links_for_url,
};

/// How long settings stay unsaved after a change (typing is not written key by key).
const SAVE_DELAY: Duration = Duration::from_millis(800);

/// How the app was started.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Where settings are kept; `None`: not kept.
    pub config_dir: Option<PathBuf>,
    /// Media over loopback only and no ICE servers (two programs on one machine; tests).
    pub loopback_only: bool,
    /// Where "Host on this computer" listens (all interfaces by default).
    pub host_ip: IpAddr,
    /// The port it tries first (a free one when taken).
    pub host_port: u16,
    /// List the real cameras, microphones and speakers (off in UI tests).
    pub scan_devices: bool,
    /// Go straight into this call.
    pub launch: Option<LaunchCall>,
    /// Take a screenshot once connected (a test hook).
    pub screenshot: Option<ScreenshotPlan>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            config_dir: default_config_dir(),
            loopback_only: false,
            host_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            host_port: DEFAULT_HOST_PORT,
            scan_devices: true,
            launch: None,
            screenshot: None,
        }
    }
}

/// `duet --join ROOM ...`: a call started from the command line. Unset fields come from the
/// settings; nothing here is saved except the room.
#[derive(Debug, Clone, Default)]
pub struct LaunchCall {
    /// The room.
    pub room: String,
    /// The signal server; `None`: host one on this computer.
    pub signal_url: Option<String>,
    /// Video source.
    pub video: Option<VideoChoice>,
    /// Audio source.
    pub audio: Option<AudioChoice>,
    /// Audio output.
    pub speaker: Option<SpeakerChoice>,
    /// Video size.
    pub size: Option<(u32, u32)>,
}

/// Where a call's signal server comes from.
enum Server {
    Hosted,
    Url(String),
}

/// How often the device lists refresh themselves during a call.
pub const DEVICE_RESCAN_IN_CALL: std::time::Duration = std::time::Duration::from_secs(5);

/// The desktop app's state.
pub struct DuetApp {
    options: AppOptions,
    settings: Settings,
    saved: Settings,
    changed_at: Option<Instant>,
    first_run: bool,
    devices: DeviceLists,
    scan: Option<DeviceScan>,
    scan_started: bool,
    /// When the device lists were last asked for (they refresh themselves during a call).
    last_scan: Option<Instant>,
    hosted: Option<HostedSignal>,
    host_error: Option<String>,
    lan_ip: Option<Option<IpAddr>>,
    call: Option<Box<CallView>>,
    banner: Option<String>,
    pending_launch: Option<LaunchCall>,
    screenshot: Option<ScreenshotTaker>,
    frame_times: Option<crate::frame_times::FrameTimes>,
    /// eframe's time for the previous frame (for the frame-times hook).
    last_frame_s: Option<f32>,
    /// The window's context, for freeing its GL objects at exit.
    egui_ctx: Option<egui::Context>,
}

impl std::fmt::Debug for DuetApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuetApp")
            .field("settings", &self.settings)
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

impl DuetApp {
    /// Loads the settings (a broken file becomes a banner, not a failure).
    pub fn new(mut options: AppOptions) -> Self {
        let (mut settings, warning, first_run) = match &options.config_dir {
            Some(dir) => {
                let first_run = !dir.join(crate::settings::FILE_NAME).exists();
                let (settings, warning) = Settings::load(dir);
                (settings, warning, first_run)
            }
            None => (Settings::default(), None, true),
        };
        if validate_room(&settings.room).is_err() {
            settings.room = suggest_room();
        }
        Self {
            pending_launch: options.launch.take(),
            screenshot: options.screenshot.take().map(ScreenshotTaker::new),
            options,
            saved: settings.clone(),
            settings,
            changed_at: None,
            first_run,
            devices: DeviceLists::default(),
            scan: None,
            scan_started: false,
            last_scan: None,
            hosted: None,
            host_error: None,
            lan_ip: None,
            call: None,
            banner: warning,
            frame_times: crate::frame_times::FrameTimes::from_env(),
            last_frame_s: None,
            egui_ctx: None,
        }
    }

    /// The settings as they are now (saved or about to be).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether a call screen is showing.
    pub fn in_call(&self) -> bool {
        self.call.is_some()
    }

    /// The current call's state.
    pub fn call_state(&self) -> Option<&call::CallState> {
        self.call.as_deref().map(CallView::state)
    }

    /// The error banner of the start screen.
    pub fn banner(&self) -> Option<&str> {
        self.banner.as_deref()
    }

    /// Writes the settings now if they changed (also called on exit).
    pub fn save_settings(&mut self) {
        self.changed_at = None;
        if self.settings == self.saved {
            return;
        }
        let Some(dir) = &self.options.config_dir else {
            return;
        };
        match self.settings.save(dir) {
            Ok(()) => self.saved = self.settings.clone(),
            Err(e) => {
                // Shown once; the next change tries again.
                self.saved = self.settings.clone();
                self.banner = Some(format!("Cannot save settings in {}: {e}", dir.display()));
            }
        }
    }

    /// Ends the call (if any) and stops hosting; for shutdown.
    pub fn shut_down(&mut self) {
        self.save_settings();
        self.call = None;
        self.stop_hosting();
    }

    /// One frame of the whole UI.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if self.egui_ctx.is_none() {
            self.egui_ctx = Some(ctx.clone());
        }
        self.poll_devices(&ctx);
        if let Some(launch) = self.pending_launch.take() {
            self.launch(&ctx, launch);
        }
        if let Some(view) = &mut self.call {
            let exit = view.ui(ui, &self.devices);
            // Devices picked during a call are remembered (flags given to --join are not).
            if view.take_device_switch() {
                self.settings.video.clone_from(view.chosen_video());
                remember_camera(&mut self.settings, &self.devices);
                self.settings.audio.clone_from(&view.audio);
                self.settings.speaker.clone_from(&view.speaker);
            }
            if let Some(taker) = &mut self.screenshot {
                taker.poll(&ctx, view);
            }
            if let Some(times) = &mut self.frame_times {
                times.poll(&ctx, view, self.last_frame_s);
            }
            match exit {
                None => {}
                Some(CallExit::HangUp) => self.call = None,
                Some(CallExit::Failed(reason)) => {
                    let joined = view.connected_since().is_some();
                    let room = view.room().to_owned();
                    self.banner = Some(if joined {
                        format!("The call in {room} ended: {reason}")
                    } else {
                        format!("Could not join {room}: {reason}")
                    });
                    self.call = None;
                }
            }
        } else {
            self.start_ui(ui);
        }
        self.autosave(&ctx);
    }

    fn autosave(&mut self, ctx: &egui::Context) {
        if self.settings == self.saved {
            self.changed_at = None;
            return;
        }
        let changed_at = *self.changed_at.get_or_insert_with(Instant::now);
        let waited = changed_at.elapsed();
        if waited >= SAVE_DELAY {
            self.save_settings();
        } else {
            ctx.request_repaint_after(SAVE_DELAY - waited);
        }
    }

    fn poll_devices(&mut self, ctx: &egui::Context) {
        if self.options.scan_devices && !self.scan_started {
            self.scan_started = true;
            self.rescan_devices(ctx);
        }
        // During a call devices come and go (a headset plugged in): the lists refresh
        // themselves every DEVICE_RESCAN_IN_CALL, on the scan thread.
        if self.options.scan_devices && self.call.is_some() {
            if self
                .last_scan
                .is_none_or(|t| t.elapsed() >= DEVICE_RESCAN_IN_CALL)
            {
                self.rescan_devices(ctx);
            }
            ctx.request_repaint_after(DEVICE_RESCAN_IN_CALL);
        }
        let Some(lists) = self.scan.as_ref().and_then(DeviceScan::poll) else {
            return;
        };
        self.scan = None;
        // A first run on a machine without a camera starts with the test pattern.
        if self.first_run
            && lists.cameras.is_empty()
            && matches!(self.settings.video, VideoChoice::Camera(_))
        {
            self.settings.video = VideoChoice::TestPattern;
        }
        self.devices = lists;
        if self.call.is_none() {
            self.follow_remembered_camera();
        }
    }

    /// After a scan: the camera chosen last time may be listed under another index now (a
    /// USB camera plugged into another port, or the built-in one gone). A camera that is not
    /// there at all gives way to the first one listed, and is still remembered for when it
    /// comes back.
    fn follow_remembered_camera(&mut self) {
        let VideoChoice::Camera(index) = self.settings.video else {
            return;
        };
        if let Some(now) = camera_after_scan(&self.settings.camera, index, &self.devices.cameras) {
            tracing::info!(
                camera = %self.settings.camera.name,
                from = index,
                to = now,
                "the chosen camera is listed under another index, or gone"
            );
            self.settings.video = VideoChoice::Camera(now);
        }
    }

    fn rescan_devices(&mut self, ctx: &egui::Context) {
        if self.scan.is_none() {
            let repaint = ctx.clone();
            self.scan = DeviceScan::start(move || repaint.request_repaint());
            self.last_scan = Some(Instant::now());
        }
    }

    /// The device lists as last scanned.
    pub fn device_lists(&self) -> &DeviceLists {
        &self.devices
    }

    fn lan_ip(&mut self) -> Option<IpAddr> {
        *self.lan_ip.get_or_insert_with(lan_address)
    }

    fn ensure_hosted(&mut self) {
        if self.hosted.is_some() || self.host_error.is_some() {
            return;
        }
        match host_signal(self.options.host_ip, self.options.host_port) {
            Ok(hosted) => {
                tracing::info!(addr = %hosted.addr(), "hosting the signal server");
                self.hosted = Some(hosted);
            }
            Err(e) => self.host_error = Some(e),
        }
    }

    fn stop_hosting(&mut self) {
        self.host_error = None;
        if let Some(hosted) = self.hosted.take() {
            // Stopping joins the server thread; never on the UI thread.
            let _ = std::thread::Builder::new()
                .name("duet-signal-stop".into())
                .spawn(move || drop(hosted));
        }
    }

    /// Share links for the hosted server, as seen from the network.
    fn hosted_links(&mut self, room: &str) -> Option<ShareLinks> {
        let addr = self.hosted.as_ref()?.addr();
        let ip = if addr.ip().is_unspecified() {
            self.lan_ip().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else {
            addr.ip()
        };
        Some(share_links(ip, addr.port(), room))
    }

    fn launch(&mut self, ctx: &egui::Context, launch: LaunchCall) {
        self.settings.room.clone_from(&launch.room);
        let server = match launch.signal_url {
            Some(url) => Server::Url(url),
            None => Server::Hosted,
        };
        let devices = (
            launch.video.unwrap_or_else(|| self.settings.video.clone()),
            launch.audio.unwrap_or_else(|| self.settings.audio.clone()),
            launch
                .speaker
                .unwrap_or_else(|| self.settings.speaker.clone()),
        );
        let size = launch
            .size
            .unwrap_or((self.settings.width, self.settings.height));
        self.start_call(ctx, &launch.room, server, devices, size);
    }

    fn join_from_start_screen(&mut self, ctx: &egui::Context) {
        let server = match self.settings.server_mode {
            ServerMode::Host => Server::Hosted,
            ServerMode::Connect => match parse_server(&self.settings.server_url) {
                Ok(target) => Server::Url(target.signal_url),
                Err(e) => {
                    self.banner = Some(e);
                    return;
                }
            },
        };
        let room = self.settings.room.clone();
        let devices = (
            self.settings.video.clone(),
            self.settings.audio.clone(),
            self.settings.speaker.clone(),
        );
        let size = (self.settings.width, self.settings.height);
        self.start_call(ctx, &room, server, devices, size);
        self.save_settings();
    }

    fn start_call(
        &mut self,
        ctx: &egui::Context,
        typed_room: &str,
        server: Server,
        (video, audio, speaker): (VideoChoice, AudioChoice, SpeakerChoice),
        (width, height): (u32, u32),
    ) {
        let room = match validate_room(typed_room) {
            Ok(room) => room.to_owned(),
            Err(problem) => {
                self.banner = Some(format!("Cannot join {typed_room:?}: {problem}"));
                return;
            }
        };
        let (signal_url, links) = match server {
            Server::Hosted => {
                self.ensure_hosted();
                let Some(url) = self.hosted.as_ref().map(HostedSignal::local_url) else {
                    let reason = self.host_error.clone().unwrap_or_default();
                    self.banner = Some(format!(
                        "Cannot host a server on this computer ({reason}). Choose \"Connect to server\"."
                    ));
                    return;
                };
                let links = self.hosted_links(&room);
                (url, links)
            }
            Server::Url(url) => {
                let links = share_links_for_url(&url, &room);
                (url, Some(links))
            }
        };
        let mut config = CallConfig::new(signal_url, room);
        config.video = video;
        config.audio = audio;
        config.speaker = speaker;
        (config.width, config.height) = (width, height);
        config.loopback_only = self.options.loopback_only;
        config.audio_processing = self.settings.audio_processing;
        config.ice_servers = if self.options.loopback_only {
            Vec::new()
        } else {
            self.settings.ice_server_list()
        };
        let setup = CallSetup { config, links };
        match CallView::start(setup, ctx) {
            Ok(view) => {
                self.banner = None;
                self.call = Some(Box::new(view));
            }
            Err(e) => self.banner = Some(format!("Cannot start the call: {e}")),
        }
    }

    fn start_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        match self.settings.server_mode {
            ServerMode::Host => self.ensure_hosted(),
            ServerMode::Connect => {
                if self.hosted.is_some() || self.host_error.is_some() {
                    self.stop_hosting();
                }
            }
        }
        let mut join = false;
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                let width = ui.available_width().min(600.0);
                let margin = ((ui.available_width() - width) / 2.0).max(0.0);
                ui.horizontal(|ui| {
                    ui.add_space(margin);
                    ui.vertical(|ui| {
                        ui.set_max_width(width);
                        join = self.start_form(ui, &ctx);
                    });
                });
            });
        });
        if join {
            self.join_from_start_screen(&ctx);
        }
    }

    /// The start screen's content; true when Join was pressed.
    fn start_form(&mut self, ui: &mut egui::Ui, ctx: &egui::Context) -> bool {
        ui.add_space(16.0);
        ui.heading(RichText::new("duet").size(32.0).strong());
        ui.label("Video calls for two: pick a room name, share it, talk.");
        ui.add_space(12.0);

        if let Some(text) = self.banner.clone() {
            let mut dismissed = false;
            egui::Frame::new()
                .fill(Color32::from_rgb(140, 35, 35))
                .inner_margin(8.0)
                .corner_radius(4.0)
                .show(ui, |ui| {
                    ui.horizontal_wrapped(|ui| {
                        ui.label(RichText::new(&text).color(Color32::WHITE));
                        dismissed = ui.small_button("Dismiss").clicked();
                    });
                });
            if dismissed {
                self.banner = None;
            }
            ui.add_space(8.0);
        }

        // Room.
        let room_label = ui.label(RichText::new("Room name").strong());
        let mut enter = false;
        ui.horizontal(|ui| {
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut self.settings.room)
                        .hint_text("e.g. sunny-otter-4821")
                        .desired_width(360.0),
                )
                .labelled_by(room_label.id);
            enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui
                .button("New name")
                .on_hover_text("Suggest a random room name")
                .clicked()
            {
                self.settings.room = suggest_room();
            }
        });
        let room_ok = match validate_room(&self.settings.room) {
            Ok(_) => true,
            Err(problem) => {
                ui.label(RichText::new(problem.to_string()).color(Color32::from_rgb(230, 90, 90)));
                false
            }
        };
        ui.add_space(12.0);

        // Server.
        ui.label(RichText::new("Signal server").strong());
        ui.radio_value(
            &mut self.settings.server_mode,
            ServerMode::Host,
            "Host on this computer",
        );
        let mut server_ok = true;
        if self.settings.server_mode == ServerMode::Host {
            ui.indent("host", |ui| server_ok = self.host_section(ui));
        }
        ui.radio_value(
            &mut self.settings.server_mode,
            ServerMode::Connect,
            "Connect to server",
        );
        if self.settings.server_mode == ServerMode::Connect {
            ui.indent("connect", |ui| server_ok = self.connect_section(ui));
        }
        ui.add_space(12.0);

        // Devices.
        self.devices_section(ui, ctx);
        ui.add_space(8.0);
        egui::CollapsingHeader::new("Network: STUN/TURN servers")
            .id_salt("ice-servers")
            .show(ui, |ui| self.ice_section(ui));
        ui.add_space(16.0);

        let can_join = room_ok && server_ok;
        let join = ui
            .add_enabled(
                can_join,
                egui::Button::new(RichText::new("Join").size(20.0).color(Color32::WHITE))
                    .fill(Color32::from_rgb(40, 110, 200))
                    .min_size(egui::vec2(160.0, 40.0)),
            )
            .on_disabled_hover_text("Type a valid room name first")
            .clicked();
        if let Some(dir) = &self.options.config_dir {
            ui.add_space(8.0);
            ui.weak(format!(
                "Settings are saved in {}",
                dir.join(crate::settings::FILE_NAME).display()
            ));
        }
        join || (enter && can_join)
    }

    fn host_section(&mut self, ui: &mut egui::Ui) -> bool {
        if let Some(error) = self.host_error.clone() {
            ui.label(
                RichText::new(format!("Cannot host a server here: {error}"))
                    .color(Color32::from_rgb(230, 90, 90)),
            );
            if ui.button("Try again").clicked() {
                self.host_error = None;
            }
            return false;
        }
        let room = validate_room(&self.settings.room)
            .unwrap_or_default()
            .to_owned();
        let port = self.hosted.as_ref().map(|h| h.addr().port());
        match (port, self.hosted_links(&room)) {
            (Some(port), Some(links)) => {
                ui.label(format!(
                    "Listening on port {port}. The other person opens one of these:"
                ));
                link_row(ui, "Browser", &links.browser);
                link_row(ui, "duet", &links.duet);
                if self.lan_ip().is_none() && self.options.host_ip.is_unspecified() {
                    ui.weak("No network found: these links only work on this computer.");
                }
                true
            }
            _ => {
                ui.weak("Starting the server…");
                false
            }
        }
    }

    fn connect_section(&mut self, ui: &mut egui::Ui) -> bool {
        let label = ui.label("Server address (ws:// or wss://, or a share link)");
        let edit = ui
            .add(
                egui::TextEdit::singleline(&mut self.settings.server_url)
                    .hint_text("wss://call.example.org/")
                    .desired_width(420.0),
            )
            .labelled_by(label.id);
        match parse_server(&self.settings.server_url) {
            Ok(target) => {
                // A pasted browser link carries the room: take both apart.
                if edit.changed()
                    && let Some(room) = target.room
                {
                    self.settings.room = room;
                    self.settings.server_url = target.signal_url;
                }
                true
            }
            Err(e) => {
                ui.label(RichText::new(e).color(Color32::from_rgb(230, 90, 90)));
                false
            }
        }
    }

    fn devices_section(&mut self, ui: &mut egui::Ui, ctx: &egui::Context) {
        ui.horizontal(|ui| {
            ui.label(RichText::new("Devices").strong());
            if self.scan.is_some() {
                ui.spinner();
                ui.weak("looking for devices…");
            } else if self.options.scan_devices && ui.small_button("Refresh").clicked() {
                self.rescan_devices(ctx);
            }
        });
        let devices = self.devices.clone();
        egui::Grid::new("devices")
            .num_columns(2)
            .spacing([12.0, 6.0])
            .show(ui, |ui| {
                let before = self.settings.video.clone();
                combo(
                    ui,
                    "Camera",
                    &devices.video_choices(),
                    &mut self.settings.video,
                );
                if self.settings.video != before {
                    remember_camera(&mut self.settings, &devices);
                }
                ui.end_row();
                combo(
                    ui,
                    "Microphone",
                    &devices.audio_choices(),
                    &mut self.settings.audio,
                );
                ui.end_row();
                combo(
                    ui,
                    "Speaker",
                    &devices.speaker_choices(),
                    &mut self.settings.speaker,
                );
                ui.end_row();
                let resolutions: Vec<_> = RESOLUTIONS
                    .iter()
                    .map(|&(w, h)| Choice::new(VideoSize(w, h), resolution_label((w, h))))
                    .collect();
                let mut size = VideoSize(self.settings.width, self.settings.height);
                combo(ui, "Resolution", &resolutions, &mut size);
                VideoSize(self.settings.width, self.settings.height) = size;
                ui.end_row();
            });
    }

    fn ice_section(&mut self, ui: &mut egui::Ui) {
        ui.weak(
            "STUN finds your public address; TURN relays media when a direct path is blocked. \
             Leave the list empty for calls on one network.",
        );
        let mut remove = None;
        egui::Grid::new("ice-grid")
            .num_columns(4)
            .spacing([6.0, 4.0])
            .show(ui, |ui| {
                ui.weak("URL");
                ui.weak("User name");
                ui.weak("Password");
                ui.end_row();
                for (i, server) in self.settings.ice_servers.iter_mut().enumerate() {
                    ui.add(
                        egui::TextEdit::singleline(&mut server.url)
                            .hint_text("stun:host:3478 or turn:host:3478")
                            .desired_width(240.0),
                    );
                    ui.add(
                        egui::TextEdit::singleline(&mut server.username)
                            .hint_text("user")
                            .desired_width(90.0),
                    );
                    ui.add(
                        egui::TextEdit::singleline(&mut server.credential)
                            .hint_text("password")
                            .password(true)
                            .desired_width(90.0),
                    );
                    if ui.small_button("Remove").clicked() {
                        remove = Some(i);
                    }
                    ui.end_row();
                }
            });
        if let Some(i) = remove {
            self.settings.ice_servers.remove(i);
        }
        ui.horizontal(|ui| {
            if ui.button("Add server").clicked() {
                self.settings.ice_servers.push(IceServerSetting::default());
            }
            if ui.button("Reset to default").clicked() {
                self.settings.ice_servers = Settings::default().ice_servers;
            }
        });
        if self.options.loopback_only {
            ui.weak("Loopback mode: these are not used.");
        }
    }
}

/// A video size in the resolution picker, shown as `640x480`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VideoSize(u32, u32);

impl std::fmt::Display for VideoSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.0, self.1)
    }
}

/// A labelled picker over `choices`, storing the chosen value.
fn combo<T: PartialEq + Clone + std::fmt::Display>(
    ui: &mut egui::Ui,
    title: &str,
    choices: &[Choice<T>],
    value: &mut T,
) {
    let label = ui.label(title);
    egui::ComboBox::from_id_salt(title)
        .selected_text(label_for(choices, value))
        .width(280.0)
        .show_ui(ui, |ui| {
            for choice in choices {
                ui.selectable_value(value, choice.value.clone(), &choice.label);
            }
        })
        .response
        .labelled_by(label.id);
}

impl eframe::App for DuetApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        if let Some(view) = &mut self.call {
            view.logic();
            // The test hooks need the window painted even while it is covered (by the
            // screen being shared, for example).
            if self.screenshot.as_ref().is_some_and(|t| !t.is_done()) || self.frame_times.is_some()
            {
                ctx.send_viewport_cmd(egui::ViewportCommand::RequestPaintWhileHidden);
            }
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.last_frame_s = frame.info().cpu_usage;
        DuetApp::ui(self, ui);
    }

    fn on_exit(&mut self, gl: Option<&eframe::glow::Context>) {
        if let (Some(gl), Some(ctx)) = (gl, self.egui_ctx.as_ref()) {
            crate::gpu_video::GlVideo::destroy(&crate::gpu_video::shared(ctx), gl);
        }
        self.shut_down();
    }
}

/// Remembers the camera just picked (`settings.video`) by name and path.
fn remember_camera(settings: &mut Settings, devices: &DeviceLists) {
    if let VideoChoice::Camera(index) = settings.video
        && let Some(entry) = devices.camera(index)
    {
        settings.camera = entry.key();
    }
}
