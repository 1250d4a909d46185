//! The app crate's integration tests: one binary, one module per behaviour.
#![allow(clippy::unwrap_used)]

mod common;
mod echo_call;
mod lab_browser;
mod lab_cone_nat;
mod lab_firefox_ui;
mod lab_link_quality;
mod lab_network_change;
mod lab_signal_restart;
mod lab_symmetric_nat;
mod lab_udp_blocked;
mod peer_killed;
mod screen_share;
mod share_link;
mod ui;
mod window;
