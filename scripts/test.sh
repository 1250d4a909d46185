#!/usr/bin/env bash
# Runs the whole test suite: installs missing packages, starts the services the tests need
# (a PulseAudio null sink), then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
# DUET_LINT=1 (CI sets it) also lints the workspace's own crates while building them: cargo
# compiles them with clippy's driver (RUSTC_WORKSPACE_WRAPPER, as `cargo clippy` does for its
# check build; CLIPPY_ARGS is how `cargo clippy -- -D warnings` passes its arguments to the
# driver), and any warning, rustc's or clippy's, fails the build. That is
# `cargo clippy --workspace --all-targets -- -D warnings` without checking all ~700
# dependencies a second time (77-89 s on a 2-core machine). The driver turns off rustc's MIR
# optimisations in the crates it compiles; the dependencies are compiled as always. Set
# before the first build (browser-deps.sh builds the binaries), so that both builds compile
# the workspace's crates the same way, once.
if [ "${DUET_LINT:-0}" = 1 ]; then
  if ! command -v clippy-driver >/dev/null 2>&1; then
    rustup component add clippy
  fi
  RUSTC_WORKSPACE_WRAPPER="$(command -v clippy-driver)"
  export RUSTC_WORKSPACE_WRAPPER
  export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
fi
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
# Every test binary is built once, for the whole workspace, and listed ("manifest executable"
# per line). The runs below start the binaries themselves, as `cargo test` would (from the
# package's directory): asking cargo for some packages only would resolve their dependencies'
# features differently and rebuild those dependencies.
# DUET_CARGO_TIMINGS=1 also writes cargo's build timings (target/cargo-timings/).
mkdir -p target
binaries=target/test-binaries.txt
cargo test --workspace --all-targets --no-run --message-format=json-render-diagnostics \
  ${DUET_CARGO_TIMINGS:+--timings} |
  sed -n '/"profile":{[^}]*"test":true/s/.*"manifest_path":"\([^"]*\)".*"executable":"\([^"]*\)".*/\1 \2/p' \
    >"$binaries"
# A binary missing from the list would be tests silently not run: every crate's `tests/it`
# must be there.
for suite in crates/*/tests/it/main.rs; do
  crate_dir="$PWD/${suite%/tests/it/main.rs}"
  if ! grep -qE "^$crate_dir/Cargo.toml .*/it-[0-9a-f]+$" "$binaries"; then
    echo "test.sh: cargo's list of test binaries ($binaries) lacks $suite" >&2
    exit 1
  fi
done

# Runs the test binaries listed on stdin, each with the arguments given to this script (test
# name filters, say); all of them even when one fails; fails if any failed.
run_binaries() {
  local manifest executable dir failed=()
  while read -r manifest executable; do
    dir="$(dirname "$manifest")"
    echo "     Running $(basename "$executable") (${dir#"$PWD"/})"
    if ! (cd "$dir" && CARGO_MANIFEST_DIR="$dir" "$executable" "$@" </dev/null); then
      failed+=("$(basename "$executable")")
    fi
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo "test.sh: failed: ${failed[*]}" >&2
    return 1
  fi
}

# 1. The tests that run real calls or measure in real time run alone: nothing else should run
#    on the machine meanwhile (.ci/run builds nothing beside the tests).
#    - The app's: its network-lab calls measure frame rates. At most three duet calls at
#      once, a call with a browser counting one and a half (DUET_TEST_CALLS,
#      tests/it/common/slots.rs); four test threads, so that a test waiting for a call slot
#      does not hold back the quick UI tests.
#    - call's, four at a time: two engines per test on loopback, mostly waiting (a third of
#      the machine busy); beside the browser tests their encoders stepped the picture down.
#    - media's, two at a time (libtest's default here): its speaker pacing and echo tests play
#      and record through the sound server, and its codec tests keep the machine busy.
#    RUST_TEST_THREADS, when set, applies to every binary.
alone='/crates/(app|call|media)/Cargo.toml '
alone_status=0
for crate in app call media; do
  threads=4
  [ "$crate" = media ] && threads=2
  grep -E "/crates/$crate/Cargo.toml " "$binaries" |
    RUST_TEST_THREADS="${RUST_TEST_THREADS:-$threads}" run_binaries "$@" || alone_status=$?
done

# 2. Everything else, with the browser tests side by side (they check behaviour and limits,
#    not frame rates or sound timing; together they keep both cores busy). The browser tests
#    (the web client in real Chromium on loopback, two files at a time; Firefox is in the lab
#    tests) write to a log, shown when they end, so that the two outputs do not interleave.
browser_log=target/browser-tests.log
scripts/browser-tests.sh >"$browser_log" 2>&1 &
browser=$!
trap 'kill "$browser" 2>/dev/null || true' EXIT
rest_status=0
# These mostly wait on real time (timeouts, sockets): four tests at a time.
grep -v -E "$alone" "$binaries" |
  RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}" run_binaries "$@" || rest_status=$?
browser_status=0
wait "$browser" || browser_status=$?
trap - EXIT
echo "--- browser tests (scripts/browser-tests.sh; log in $browser_log) ---"
cat "$browser_log"
if [ "$alone_status" -ne 0 ] || [ "$rest_status" -ne 0 ] || [ "$browser_status" -ne 0 ]; then
  echo "test.sh: FAILED: the app's, call's and media's tests exit $alone_status, the other crates' $rest_status, the browser tests $browser_status" >&2
  exit 1
fi
echo "test.sh: all tests passed"
