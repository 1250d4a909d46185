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
mod open_file_limit;
mod origin_check;
mod parser_fuzz;
mod pending_flood;
mod per_ip_cap;
mod ping_flood;
mod rate_limit;
mod refusal_logs;
mod room_capacity;
mod room_names;
mod room_token;
mod rooms_per_connection;
mod security_headers;
mod seed_flow;
mod shutdown;
mod sighup_binary;
mod slow_consumer;
mod slow_readers;
mod tls_deadline;
mod tls_http;
mod tls_relay;
mod tls_reload;
mod upgrade_validation;
mod web_pages;
