#!/usr/bin/env bash
# Idempotently start a private PulseAudio daemon with a null sink `vsink`, for tests on machines
# without a sound card. Prints the environment to use, in `export` form, so callers can do:
#
#     eval "$(scripts/pulse-null-sink.sh)"
#     DUET_REQUIRE_PULSE=1 cargo test -p media --test pulse_loopback
#
# The daemon lives under DUET_PULSE_DIR (default /tmp/duet-pulse): its socket is
# $DUET_PULSE_DIR/runtime/pulse/native, so clients find it through XDG_RUNTIME_DIR or
# PULSE_SERVER=unix:<socket>. `scripts/pulse-null-sink.sh stop` stops it.
set -euo pipefail

DIR="${DUET_PULSE_DIR:-/tmp/duet-pulse}"
RUNTIME="$DIR/runtime"
PHOME="$DIR/home"
SOCKET="$RUNTIME/pulse/native"

log() { echo "pulse-null-sink: $*" >&2; }

env_for_pulse() {
    env HOME="$PHOME" XDG_RUNTIME_DIR="$RUNTIME" PULSE_RUNTIME_PATH="$RUNTIME/pulse" "$@"
}

print_env() {
    echo "export XDG_RUNTIME_DIR='$RUNTIME'"
    echo "export PULSE_SERVER='unix:$SOCKET'"
}

if [[ "${1:-}" == "stop" ]]; then
    if command -v pulseaudio >/dev/null; then
        env_for_pulse pulseaudio --kill 2>/dev/null || true
    fi
    log "stopped"
    exit 0
fi

if ! command -v pulseaudio >/dev/null || ! command -v pactl >/dev/null; then
    log "installing pulseaudio pulseaudio-utils"
    if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        pulseaudio pulseaudio-utils >&2
fi

mkdir -p "$RUNTIME" "$PHOME"
chmod 700 "$RUNTIME"

if env_for_pulse pactl info >/dev/null 2>&1; then
    log "already running ($SOCKET)"
else
    log "starting daemon ($SOCKET)"
    # -n: no default.pa (no hardware probing); system-wide mode is not needed as root with a
    # private HOME and runtime dir.
    env_for_pulse pulseaudio --daemonize=yes --exit-idle-time=-1 -n \
        --load=module-native-protocol-unix \
        --load="module-null-sink sink_name=vsink" \
        --load=module-always-sink \
        --log-target=file:"$DIR/pulseaudio.log" >&2
    for _ in $(seq 1 50); do
        if env_for_pulse pactl info >/dev/null 2>&1; then break; fi
        sleep 0.1
    done
    if ! env_for_pulse pactl info >/dev/null 2>&1; then
        log "daemon did not come up; see $DIR/pulseaudio.log"
        exit 1
    fi
fi

# The null sink is the default sink and its monitor the natural capture source for loopback tests.
env_for_pulse pactl set-default-sink vsink >&2 || true
env_for_pulse pactl set-default-source vsink.monitor >&2 || true
print_env
