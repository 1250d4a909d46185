//! The app's UI logic, driven with egui_kittest (no GPU, no window): Join is enabled only for
//! a valid room name; an unreachable server shows a banner and the app stays usable; hanging
//! up returns to the start screen; settings survive a restart; the device lists follow devices
//! that come and go during a call.

use crate::common;

use call::CallState;
use common::{harness, step_until, synthetic_settings, test_app, test_app_with};
use duet::settings::{ServerMode, Settings};
use egui::{Key, Modifiers};
use egui_kittest::kittest::{NodeT as _, Queryable as _};

/// Replaces the text of the text field labelled `label`.
fn replace_text(h: &mut egui_kittest::Harness<'static, duet::DuetApp>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.run_steps(1);
    h.key_press_modifiers(Modifiers::COMMAND, Key::A);
    h.key_press(Key::Backspace);
    h.run_steps(1);
    if !text.is_empty() {
        h.get_by_label(label).type_text(text);
    }
    h.run_steps(2);
}

fn join_enabled(h: &egui_kittest::Harness<'static, duet::DuetApp>) -> bool {
    !h.get_by_label("Join").accesskit_node().is_disabled()
}

#[test]
fn join_is_enabled_only_for_a_valid_room_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut h = harness(test_app(dir.path()));
    h.run_steps(3);
    // A fresh start suggests a room name, so Join is ready at once.
    let suggested = h.state().settings().room.clone();
    assert!(
        duet::room::validate_room(&suggested).is_ok(),
        "{suggested:?}"
    );
    assert!(join_enabled(&h));

    replace_text(&mut h, "Room name", "");
    assert_eq!(h.state().settings().room, "");
    assert!(
        !join_enabled(&h),
        "Join must be disabled without a room name"
    );
    assert!(h.query_by_label("type a room name").is_some());

    replace_text(&mut h, "Room name", "   ");
    assert!(!join_enabled(&h), "only spaces is not a room name");

    replace_text(&mut h, "Room name", &"x".repeat(129));
    assert!(!join_enabled(&h), "129 bytes is too long");

    replace_text(&mut h, "Room name", &"x".repeat(128));
    assert!(join_enabled(&h), "128 bytes is fine");

    replace_text(&mut h, "Room name", "team sync");
    assert!(join_enabled(&h));

    // "New name" suggests another valid name.
    h.get_by_label("New name").click();
    h.run_steps(2);
    assert_ne!(h.state().settings().room, "team sync");
    assert!(join_enabled(&h));
    assert!(!h.state().in_call());
}

#[test]
fn unreachable_server_shows_a_banner_and_the_app_stays_usable() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_settings("unreachable-room")
        .save(dir.path())
        .expect("save settings");
    let mut h = harness(test_app(dir.path()));
    h.run_steps(2);

    h.get_by_label("Connect to server").click();
    h.run_steps(2);
    // Port 1 on loopback: nothing listens there.
    replace_text(
        &mut h,
        "Server address (ws:// or wss://, or a share link)",
        "ws://127.0.0.1:1/",
    );
    assert!(join_enabled(&h));
    h.get_by_label("Join").click();
    h.run_steps(1);
    step_until(&mut h, "the failure banner", |h| {
        h.state().banner().is_some() && !h.state().in_call()
    });
    let banner = h.state().banner().unwrap_or_default().to_owned();
    assert!(
        banner.contains("Could not join unreachable-room"),
        "banner: {banner}"
    );
    h.run_steps(2);
    assert!(
        h.query_by_label_contains("Could not join unreachable-room")
            .is_some(),
        "the banner is on screen"
    );

    // Still usable: point it at a server that works and join again.
    let server = common::hosted_signal();
    replace_text(
        &mut h,
        "Server address (ws:// or wss://, or a share link)",
        &server.local_url(),
    );
    assert!(join_enabled(&h));
    h.get_by_label("Join").click();
    h.run_steps(1);
    step_until(&mut h, "waiting in the room", |h| {
        h.state().call_state() == Some(&CallState::WaitingForPeer)
    });
    h.run_steps(2);
    assert!(
        h.query_by_label_contains("Waiting for someone to join unreachable-room")
            .is_some()
    );
    assert_eq!(h.state().banner(), None, "joining clears the old banner");
    h.get_by_label("Hang up").click();
    h.run_steps(2);
    assert!(!h.state().in_call());
}

#[test]
fn hang_up_returns_to_the_start_screen() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Default mode: host a signal server in the app (on 127.0.0.1 in tests).
    synthetic_settings("hang-up-room")
        .save(dir.path())
        .expect("save settings");
    let mut h = harness(test_app(dir.path()));
    h.run_steps(2);
    // The share links name the hosted server.
    assert!(
        h.query_by_label_contains("http://127.0.0.1:").is_some(),
        "the browser share link is shown"
    );
    h.get_by_label("Join").click();
    h.run_steps(1);
    assert!(h.state().in_call());
    step_until(&mut h, "waiting in the room", |h| {
        h.state().call_state() == Some(&CallState::WaitingForPeer)
    });
    h.run_steps(2);
    assert!(
        h.query_by_label_contains("Waiting for someone to join hang-up-room")
            .is_some()
    );
    // The waiting screen shows the share links too.
    assert!(h.query_by_label_contains("?room=hang-up-room").is_some());

    h.get_by_label("Hang up").click();
    h.run_steps(2);
    assert!(!h.state().in_call());
    assert!(
        h.query_by_label("Join").is_some(),
        "back on the start screen"
    );
    assert_eq!(h.state().settings().room, "hang-up-room");
    assert!(join_enabled(&h));
}

#[test]
fn settings_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = {
        let mut h = harness(test_app(dir.path()));
        h.run_steps(2);
        replace_text(&mut h, "Room name", "persisted room");
        h.get_by_label("Connect to server").click();
        h.run_steps(2);
        replace_text(
            &mut h,
            "Server address (ws:// or wss://, or a share link)",
            "wss://call.example.invalid/",
        );
        // Pick a resolution in its picker.
        assert_eq!(
            h.get_by_label("Resolution").value().as_deref(),
            Some("640×480")
        );
        h.get_by_label("Resolution").click();
        h.run_steps(2);
        h.get_by_label("1280×720").click();
        h.run_steps(2);
        let mut app = h.into_state();
        // What eframe calls when the window closes.
        app.shut_down();
        app.settings().clone()
    };
    assert_eq!(before.room, "persisted room");
    assert_eq!(before.server_mode, ServerMode::Connect);
    assert_eq!(before.server_url, "wss://call.example.invalid/");
    assert_eq!((before.width, before.height), (1280, 720));
    assert!(dir.path().join(duet::settings::FILE_NAME).exists());

    let (on_disk, warning) = Settings::load(dir.path());
    assert_eq!(warning, None);
    assert_eq!(on_disk, before);

    let mut h = harness(test_app(dir.path()));
    h.run_steps(2);
    assert_eq!(h.state().settings(), &before);
    assert_eq!(
        h.get_by_label("Room name").value().as_deref(),
        Some("persisted room")
    );
    assert_eq!(
        h.get_by_label("Resolution").value().as_deref(),
        Some("1280×720"),
        "the resolution picker shows the saved size"
    );
}

#[test]
fn keyboard_shortcuts_mute_and_hang_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_settings("keys-room")
        .save(dir.path())
        .expect("save settings");
    let mut h = harness(test_app(dir.path()));
    h.run_steps(2);
    h.get_by_label("Join").click();
    h.run_steps(1);
    step_until(&mut h, "waiting in the room", |h| {
        h.state().call_state() == Some(&CallState::WaitingForPeer)
    });
    h.run_steps(2);
    assert!(h.query_by_label("Mute").is_some());
    // M toggles the microphone: the button now offers to unmute.
    h.key_press(egui::Key::M);
    h.run_steps(2);
    assert!(h.query_by_label("Unmute").is_some(), "M did not mute");
    h.key_press(egui::Key::M);
    h.run_steps(2);
    assert!(h.query_by_label("Mute").is_some(), "M did not unmute");
    // H hangs up.
    h.key_press(egui::Key::H);
    h.run_steps(2);
    assert!(!h.state().in_call(), "H did not hang up");
    assert!(
        h.query_by_label("Join").is_some(),
        "back on the start screen"
    );
}

/// A device plugged in during a call shows up in the Devices menu's lists without leaving the
/// call, and goes again when it is unplugged: the lists refresh themselves every
/// `DEVICE_RESCAN_IN_CALL`. Here the device is a PulseAudio null sink loaded mid-call (a new
/// speaker, and its monitor a new microphone).
#[test]
fn the_device_lists_follow_devices_that_come_and_go_during_a_call() {
    if !common::pulse_available() {
        return;
    }
    // Not while an echo test listens through the same sound server.
    let _slot = common::slots::call_slot();
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_settings("devices-room")
        .save(dir.path())
        .expect("save settings");
    let mut h = harness(test_app_with(dir.path(), true));
    h.run_steps(2);
    h.get_by_label("Join").click();
    h.run_steps(1);
    step_until(&mut h, "waiting in the room", |h| {
        h.state().call_state() == Some(&CallState::WaitingForPeer)
    });
    let name = format!("duet_plugged_{}", std::process::id());
    let listed = |h: &egui_kittest::Harness<'static, duet::DuetApp>| {
        h.state()
            .device_lists()
            .speakers
            .iter()
            .any(|s| s.contains(&name))
    };
    assert!(!listed(&h), "{name} is not there before it is plugged in");
    let module = common::pactl(&[
        "load-module",
        "module-null-sink",
        &format!("sink_name={name}"),
        &format!("sink_properties=device.description={name}"),
    ]);
    step_until(&mut h, "the new speaker in the list", |h| listed(h));
    assert!(h.state().in_call(), "still in the call");
    common::pactl(&["unload-module", &module]);
    step_until(&mut h, "the speaker gone from the list", |h| !listed(h));
    h.get_by_label("Hang up").click();
    h.run_steps(2);
    assert!(!h.state().in_call());
}
