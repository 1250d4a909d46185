#!/usr/bin/env bash
# Runs the web client's tests in real browsers (tests/browser, `node --test`):
#   1. scripts/browser-deps.sh installs what is missing (chromium, firefox-esr, node, npm
#      modules) and builds the `signal` and `duet` binaries and the test-pattern files the tests
#      use (SIGNAL_BIN, DUET_BIN override the binaries). Firefox gathers no ICE candidate on
#      loopback, so its tests run in the network lab (crates/app/tests/it/lab_browser.rs).
#   2. runs the tests inside a private network namespace whose only interface is loopback (when
#      the system allows one), so no browser can gather or use another address.
# Exits non-zero when a test fails. Set DUET_SKIP_APT=1 to skip the package step.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

scripts/browser-deps.sh
target_dir="${CARGO_TARGET_DIR:-$root/target}"
export SIGNAL_BIN="${SIGNAL_BIN:-$target_dir/debug/signal}"
export DUET_BIN="${DUET_BIN:-$target_dir/debug/duet}"

cd tests/browser
# Two test files at a time (DUET_BROWSER_TESTS_AT_ONCE): 72 % of a 2-core machine busy, 64 s;
# three keep it 94 % busy for 50 s, too much beside scripts/test.sh's other tests.
run=(node --test --test-concurrency="${DUET_BROWSER_TESTS_AT_ONCE:-2}")
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
