#!/usr/bin/env bash
# Benchmarks duet's `signal` and the seed's Node server (shared/reference/server.js) in one run,
# with the same load generator, on loopback. Prints one RESULT line per measurement and a
# markdown table at the end (paste it into docs/benchmarks.md).
#
#   scripts/bench-signal.sh [SEED_DIR]
#
# SEED_DIR defaults to ../shared/reference (the seed server and its package.json); it is copied
# to target/seed-server and `npm install`ed there.
set -euo pipefail
cd "$(dirname "$0")/.."
seed_src="${1:-../shared/reference}"
scripts/deps.sh build
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nodejs npm >/dev/null
fi
cargo build --release -p signal -p signal-load
mkdir -p target/seed-server
cp "$seed_src/server.js" "$seed_src/package.json" target/seed-server/
(cd target/seed-server && npm install --no-audit --no-fund --silent >/dev/null)
ulimit -n "$(ulimit -Hn)"

load=target/release/signal-load
out=$(mktemp)
SIGNAL_PORT=18080
SEED_PORT=18081

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server on port $1 did not start" >&2; return 1
}

start_server() { # label
  if [ "$1" = signal ]; then
    # Rate and per-address limits off so the runs compare relaying, not policy (all the
    # load comes from 127.0.0.1).
    RUST_LOG=warn target/release/signal --listen "127.0.0.1:$SIGNAL_PORT" --rate 1e9 --burst 1e9 \
      --max-connections-per-ip 0 &
    pid=$!; port=$SIGNAL_PORT
  else
    PORT=$SEED_PORT node target/seed-server/server.js &
    pid=$!; port=$SEED_PORT
  fi
  wait_port "$port"
}

stop_server() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }

for label in signal seed; do
  for run in "paced --rooms 1000 --rate 10000 --duration 10" "pingpong --rooms 100 --duration 10" "hold --connections 10000"; do
    start_server "$label"
    # shellcheck disable=SC2086
    "$load" --url "ws://127.0.0.1:$port/" --server-pid "$pid" --label "$label" --mode $run | tee -a "$out"
    stop_server
  done
done

echo
echo "| server | mode | relayed msg/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/msg | server CPU % | RSS KiB/conn at 10k |"
echo "|---|---|---|---|---|---|---|---|---|"
for label in signal seed; do
  grep "label=$label " "$out" | while read -r line; do
    get() { echo "$line" | tr ' ' '\n' | grep "^$1=" | cut -d= -f2; }
    mode=$(get mode)
    if [ "$mode" = hold ]; then
      echo "| $label | hold $(get connections) sockets | | | | | | | $(get rss_kib_per_conn) |"
    else
      echo "| $label | $mode $(get rooms) rooms @ $(get target_rate) | $(get relayed_per_s) | $(get p50_ms) | $(get p99_ms) | $(get p999_ms) | $(get server_cpu_us_per_msg) | $(get server_cpu_pct) | |"
    fi
  done
done
rm -f "$out"
