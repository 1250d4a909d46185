#!/usr/bin/env bash
# Runs the web client's tests in real browsers (tests/browser, `node --test`):
#   1. installs what is missing: Debian's chromium, nodejs + npm only when no node is on PATH,
#      iproute2 for `ip`; then `npm ci`. (Firefox is not installed here: its test cannot gather
#      ICE candidates on loopback and skips; install firefox-esr by hand to try it.)
#   2. builds the `signal` binary (the tests start it; SIGNAL_BIN overrides);
#   3. runs the tests inside a private network namespace whose only interface is loopback (when
#      the system allows one), so no browser can gather or use another address.
# Exits non-zero when a test fails. Set DUET_SKIP_APT=1 to skip the package step.
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
  command -v ip >/dev/null 2>&1 || required+=(iproute2)
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    required+=(nodejs npm)
  fi
  if [ ${#required[@]} -gt 0 ]; then
    echo "browser-tests: installing ${required[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${required[@]}" >/dev/null
  fi
fi

(cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

cargo build -p signal --bin signal -p duet --bin duet -p media --example pattern_y4m
target_dir="${CARGO_TARGET_DIR:-$root/target}"
export SIGNAL_BIN="${SIGNAL_BIN:-$target_dir/debug/signal}"
export DUET_BIN="${DUET_BIN:-$target_dir/debug/duet}"
# The browser's fake camera plays duet's test pattern, so the native side can read its counters.
mkdir -p "$root/target"
pattern="$root/target/duet-pattern-320x240.y4m"
[ -f "$pattern" ] || "$target_dir/debug/examples/pattern_y4m" "$pattern" 320 240 450 30

cd tests/browser
run=(node --test --test-concurrency=1)
if unshare --net true 2>/dev/null; then
  netns=(unshare --net)
elif unshare --map-root-user --net true 2>/dev/null; then
  netns=(unshare --map-root-user --net)
else
  netns=()
fi
if [ ${#netns[@]} -gt 0 ]; then
  echo "browser-tests: running in a network namespace with only loopback" >&2
  exec "${netns[@]}" sh -c 'ip link set lo up && exec "$@"' sh "${run[@]}"
fi
echo "browser-tests: WARNING: no network namespace available; the page's loopback filter is the only guard" >&2
exec "${run[@]}"
