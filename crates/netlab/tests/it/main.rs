//! The lab's integration tests: real namespaces, real UDP sockets. One binary, one module per
//! behaviour. Without root or the tools the tests print a skip notice and pass, unless
//! `DUET_REQUIRE_NETNS=1` makes them fail.

mod common;
mod exec;
mod impair;
mod lifecycle;
mod nat;
