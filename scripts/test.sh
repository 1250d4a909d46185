#!/usr/bin/env bash
# Runs the whole test suite: installs missing packages, starts the services the tests need
# (a PulseAudio null sink), then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
# Chromium, node and the test-pattern files: the browser tests below need them, and so do
# the network lab's browser tests inside `cargo test`, which may not skip once they are here.
scripts/browser-deps.sh
export DUET_REQUIRE_BROWSER=1
if [ -x scripts/pulse-null-sink.sh ]; then
  # Prints `export ...` lines for the tests to find the sound server.
  eval "$(scripts/pulse-null-sink.sh)"
  export DUET_REQUIRE_PULSE=1
fi
# The network lab needs root (namespaces, nftables); as root a lab that cannot be built is a
# failure, not a skip.
if [ "$(id -u)" -eq 0 ]; then
  export DUET_REQUIRE_NETNS=1
fi
# DUET_CARGO_TIMINGS=1 also writes cargo's build timings (target/cargo-timings/).
cargo test --workspace --all-targets ${DUET_CARGO_TIMINGS:+--timings} "$@"

# --- browser tests (web client in real Chromium on loopback; Firefox is in the lab tests) ---
# Installs chromium/firefox-esr/node when missing, builds `signal`, runs tests/browser.
scripts/browser-tests.sh
# --- end browser tests ---
