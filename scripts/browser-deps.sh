#!/usr/bin/env bash
# What the browser tests need, installed when missing (idempotent): Debian's chromium and
# firefox-esr (driven headless over WebDriver BiDi in the network lab), nodejs +
# npm only when no node is on PATH, iproute2 for `ip`; the npm modules of tests/browser
# (`npm ci`); the `signal` and `duet` binaries; and the test pattern as Y4M files for the
# browser's fake camera (320x240 for 15 s, 640x360 for 5 s), so the native side can read the
# counters in the pictures it receives from a browser.
# Used by scripts/browser-tests.sh and, before `cargo test`, by scripts/test.sh (the network
# lab's browser tests run Chromium in a home). Set DUET_SKIP_APT=1 to skip the package step.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi

if [ "${DUET_SKIP_APT:-0}" != "1" ] && command -v dpkg-query >/dev/null 2>&1; then
  installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
  required=()
  installed chromium || required+=(chromium)
  installed firefox-esr || required+=(firefox-esr)
  command -v ip >/dev/null 2>&1 || required+=(iproute2)
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    required+=(nodejs npm)
  fi
  if [ ${#required[@]} -gt 0 ]; then
    echo "browser-deps: installing ${required[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${required[@]}" >/dev/null
  fi
fi

(cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

# DUET_CARGO_TIMINGS=1 writes cargo's build timings (target/cargo-timings/), as scripts/test.sh does.
cargo build ${DUET_CARGO_TIMINGS:+--timings} -p signal --bin signal -p duet --bin duet -p media --example pattern_y4m
target_dir="${CARGO_TARGET_DIR:-$root/target}"
export SIGNAL_BIN="${SIGNAL_BIN:-$target_dir/debug/signal}"
export DUET_BIN="${DUET_BIN:-$target_dir/debug/duet}"
# The browser's fake camera plays duet's test pattern, so the native side can read its counters.
mkdir -p "$root/target"
pattern="$root/target/duet-pattern-320x240.y4m"
[ -f "$pattern" ] || "$target_dir/debug/examples/pattern_y4m" "$pattern" 320 240 450 30
# Big enough for a browser's encoder to go past 1 Mbit/s (it caps 320x240 at 600 kbit/s).
pattern="$root/target/duet-pattern-640x360.y4m"
[ -f "$pattern" ] || "$target_dir/debug/examples/pattern_y4m" "$pattern" 640 360 150 30

