//! The signal crate's integration tests: one binary, one module per behaviour.
#![allow(clippy::unwrap_used)]

mod bad_input;
mod client_api;
mod common;
mod http_routes;
mod isolation;
mod keepalive;
mod leave_rejoin;
mod membership;
mod message_size;
mod metrics_counters;
mod origin_check;
mod parser_fuzz;
mod per_ip_cap;
mod rate_limit;
mod room_capacity;
mod room_names;
mod room_token;
mod rooms_per_connection;
mod seed_flow;
mod shutdown;
mod sighup_binary;
mod slow_consumer;
mod tls_http;
mod tls_relay;
mod tls_reload;
mod web_pages;
