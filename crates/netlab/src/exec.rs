//! Running the system tools (`ip`, `nft`, `tc`, `conntrack`, `sysctl`) and checking their exit
//! status.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::LabError;

/// The command line of `cmd`, for error messages.
fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `cmd` to completion; returns its stdout, or an error carrying its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<String, LabError> {
    run_with_input(cmd, None)
}

/// Runs `cmd` with `input` on its stdin (for `nft -f -` and `tc -batch -`).
pub(crate) fn run_with_input(cmd: &mut Command, input: Option<&str>) -> Result<String, LabError> {
    let command = describe(cmd);
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| LabError::Spawn {
        command: command.clone(),
        source,
    })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|source| LabError::Io {
                context: format!("writing the input of `{command}`"),
                source,
            })?;
    }
    let output = child.wait_with_output().map_err(|source| LabError::Io {
        context: format!("waiting for `{command}`"),
        source,
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        Err(LabError::Command {
            command: if let Some(text) = input {
                format!("{command} <<< {}", text.trim())
            } else {
                command
            },
            status: output.status.to_string(),
            stderr,
        })
    }
}

/// `ip ARGS...` in the root namespace (only ever `netns` management and `-n NS` calls).
pub(crate) fn ip(args: &[&str]) -> Result<String, LabError> {
    run(Command::new("ip").args(args))
}

/// `ip -n NS ARGS...`.
pub(crate) fn ip_in(netns: &str, args: &[&str]) -> Result<String, LabError> {
    run(Command::new("ip").arg("-n").arg(netns).args(args))
}

/// `ip netns exec NS PROGRAM ARGS...`.
pub(crate) fn exec_in(netns: &str, program: &str, args: &[&str]) -> Result<String, LabError> {
    run(Command::new("ip")
        .args(["netns", "exec", netns, program])
        .args(args))
}

/// Loads an nftables script into a namespace atomically (`nft -f -`).
pub(crate) fn nft_in(netns: &str, script: &str) -> Result<String, LabError> {
    run_with_input(
        Command::new("ip").args(["netns", "exec", netns, "nft", "-f", "-"]),
        Some(script),
    )
}

/// Runs a batch of `tc` commands in a namespace (`tc -n NS -batch -`).
pub(crate) fn tc_batch_in(netns: &str, script: &str) -> Result<String, LabError> {
    run_with_input(
        Command::new("tc").args(["-n", netns, "-batch", "-"]),
        Some(script),
    )
}

/// Sets sysctls (`key=value`) inside a namespace.
pub(crate) fn sysctl_in(netns: &str, settings: &[&str]) -> Result<String, LabError> {
    let mut args = vec!["-q", "-w"];
    args.extend_from_slice(settings);
    exec_in(netns, "sysctl", &args)
}
