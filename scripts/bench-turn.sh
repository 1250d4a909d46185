#!/usr/bin/env bash
# Benchmarks signal's built-in TURN relay against coturn (Debian's `turnserver`) in one run,
# with the same load (`signal-load --mode turn`: 100 allocations on loopback, video-like
# 1000-byte packets to one peer), each server on one core: signal with --threads 1, coturn with
# --relay-threads 1. Prints one RESULT line per run and a markdown table.
#
#   scripts/bench-turn.sh [PPS_PER_ALLOCATION ...]     (default: 100 150 100 150 100 150)
#   DURATION=S (default 15) sets each run's measured seconds.
#
# The server runs on core 1 and the load on core 0 (taskset), and each server's CPU is its
# threads' time on a CPU (schedstat, ns); runs of the same server still differ by up to ~30 %
# on this VM, so compare the medians printed at the end over several alternating rounds.
#
# Keep the offered rate where the generator delivers ≥ 95 %: it is one thread on a 2-core
# machine, and above ~12 000 packets/s it, not the server, is the limit.
#
# CPU_QUOTA_PCT=P (5, 2.5, ...; Linux cgroup v1 `cpu` controller, as root) holds each server
# to P % of a core (1 ms of CPU every 100/P ms), so that it saturates at a rate this generator
# can offer; the highest rate each server delivers is printed, and that rate × 100/P
# estimates its ceiling on one whole core (the quota's throttling makes single runs noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
if ! command -v turnserver >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq coturn >/dev/null
fi
cargo build --release -p signal -p signal-load
rates=("$@"); [ ${#rates[@]} -eq 0 ] && rates=(100 150 100 150 100 150)
secret="bench-turn-secret"
out=$(mktemp)
log=$(mktemp -d)
pid=""
cgroup=/sys/fs/cgroup/cpu/duet-bench-turn
if [ -n "${CPU_QUOTA_PCT:-}" ] && [ ! -d /sys/fs/cgroup/cpu ]; then
  echo "CPU_QUOTA_PCT needs the cgroup v1 cpu controller at /sys/fs/cgroup/cpu" >&2
  exit 1
fi
stop_server() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=""
}
trap 'stop_server; rm -rf "$log"; rmdir "$cgroup" 2>/dev/null || true' EXIT

start_server() { # label port
  if [ "$1" = signal ]; then
    RUST_LOG=warn taskset -c 1 target/release/signal --listen 127.0.0.1:18190 --threads 1 --turn-port "$2" \
      --turn-secret "$secret" --turn-allow-peer 127.0.0.0/8 --turn-max-kbps 0 \
      --turn-max-allocations-per-user 1 --no-turn-tcp >"$log/signal.log" 2>&1 &
  else
    taskset -c 1 turnserver -n --listening-ip=127.0.0.1 --listening-port="$2" --relay-ip=127.0.0.1 \
      --min-port=40000 --max-port=45000 --use-auth-secret --static-auth-secret="$secret" \
      --realm=duet --allow-loopback-peers --no-cli --no-tls --no-dtls --no-tcp-relay \
      --relay-threads=1 --no-multicast-peers --log-file=stdout --simple-log >"$log/coturn.log" 2>&1 &
  fi
  pid=$!
  sleep 1
  if [ -n "${CPU_QUOTA_PCT:-}" ]; then
    mkdir -p "$cgroup"
    awk -v p="$CPU_QUOTA_PCT" 'BEGIN { printf "%d\n", 100000 / p }' >"$cgroup/cpu.cfs_period_us"
    echo 1000 >"$cgroup/cpu.cfs_quota_us"
    echo "$pid" >"$cgroup/cgroup.procs"
  fi
}

for pps in "${rates[@]}"; do
  for label in signal coturn; do
    port=$([ "$label" = signal ] && echo 3478 || echo 3479)
    start_server "$label" "$port"
    taskset -c 0 target/release/signal-load --mode turn --label "$label" --turn "127.0.0.1:$port" \
      --turn-secret "$secret" --allocations 100 --pps "$pps" --size 1000 --duration "${DURATION:-15}" \
      --server-pid "$pid" | tee -a "$out"
    stop_server
  done
done

echo
echo "| server | offered pps | delivered pps | delivered % | server CPU % | CPU µs per packet |"
echo "|---|---|---|---|---|---|"
while read -r line; do
  get() { echo "$line" | tr ' ' '\n' | grep "^$1=" | cut -d= -f2; }
  echo "| $(get label) | $(get offered_pps) | $(get delivered_pps) | $(get delivered_pct) | $(get server_cpu_pct) | $(get server_cpu_us_per_pkt) |"
done < <(grep "^RESULT mode=turn" "$out")
echo
echo "Median CPU µs per relayed packet over all runs of each server:"
for label in signal coturn; do
  grep "^RESULT mode=turn label=$label " "$out" | tr ' ' '\n' | grep '^server_cpu_us_per_pkt=' |
    cut -d= -f2 | sort -n | awk -v l="$label" '{v[NR]=$1} END {m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "  %s: %.2f (%d runs, %.2f-%.2f)\n", l, m, NR, v[1], v[NR]}'
done
if [ -n "${CPU_QUOTA_PCT:-}" ]; then
  echo
  echo "Held to ${CPU_QUOTA_PCT} % of a core: the highest rate delivered (offer more than that to saturate"
  echo "the server), and × 100/${CPU_QUOTA_PCT}, an estimate of its ceiling on one whole core:"
  for label in signal coturn; do
    grep "^RESULT mode=turn label=$label " "$out" | tr ' ' '\n' |
      awk -F= -v l="$label" -v p="$CPU_QUOTA_PCT" '
        $1 == "delivered_pps" && $2 > best { best = $2 }
        END { printf "  %s: %d packets/s (one core: about %d)\n", l, best, best * 100 / p }'
  done
fi
rm -f "$out"
