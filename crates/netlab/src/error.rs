//! The lab's one error type.

use std::io;

/// Everything that can go wrong while building or changing a lab.
///
/// Failing commands carry the command line and its stderr, so a test failure says which `ip`,
/// `nft` or `tc` call broke and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// The machine cannot host a lab (not root, no `ip netns`, no `nft`, ...). Callers skip or
    /// fail on this.
    #[error("network lab unavailable: {0}")]
    Unavailable(String),
    /// A command ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, space-joined.
        command: String,
        /// The exit status as the OS reported it.
        status: String,
        /// The command's stderr, trimmed.
        stderr: String,
    },
    /// A command could not be started at all.
    #[error("could not start `{command}`: {source}")]
    Spawn {
        /// The command line, space-joined.
        command: String,
        /// Why the OS refused.
        source: io::Error,
    },
    /// Another I/O step failed (opening a namespace file, binding a socket, spawning a thread).
    #[error("{context}: {source}")]
    Io {
        /// What the lab was doing.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A thread could not enter a namespace.
    #[error("entering network namespace {netns}: {source}")]
    Setns {
        /// The namespace's name.
        netns: String,
        /// The error from `setns(2)`.
        source: nix::Error,
    },
    /// The caller asked for something the lab cannot build (bad name, address in use, ...).
    #[error("invalid lab request: {0}")]
    Config(String),
}
