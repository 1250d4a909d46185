#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages duet needs, only those missing. Idempotent.
#   scripts/deps.sh build   — what building needs (C toolchain bits for openh264, opus, nokhwa, cpal; libvpx for VP8;
#                             xcb, PipeWire, Wayland, GBM and EGL for screen sharing through xcap)
#   scripts/deps.sh test    — build + what the test suite runs (PulseAudio null sink, Xvfb, Chromium, Node)
# Uses sudo when not root. Set DUET_SKIP_APT=1 to skip (e.g. on a non-Debian system).
set -euo pipefail

profile="${1:-build}"
build_pkgs=(pkg-config cmake nasm clang libclang-dev libasound2-dev libvpx-dev
  libxcb1-dev libxcb-randr0-dev libpipewire-0.3-dev libwayland-dev libgbm-dev libegl-dev)
# xvfb/xauth + Mesa (GL/EGL) + xkbcommon-x11: the desktop app's real-window test
# (crates/app/tests/it/window.rs) opens a window on a virtual X display; xdotool types into it
# (the screen-sharing test presses S).
# iproute2/nftables/conntrack + coturn: the network lab (crates/netlab, docs/lab.md) builds
# homes behind NAT routers in namespaces, with coturn as the public net's STUN server.
test_pkgs=(pulseaudio pulseaudio-utils procps xvfb xauth libgl1-mesa-dri libegl1 libxkbcommon-x11-0 xdotool
  iproute2 nftables conntrack coturn)

want=("${build_pkgs[@]}")
if [ "$profile" = "test" ]; then
  want+=("${test_pkgs[@]}")
fi

if [ "${DUET_SKIP_APT:-0}" = "1" ]; then
  exit 0
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps: not a Debian/Ubuntu system; install these yourself: ${want[*]}" >&2
  exit 0
fi

missing=()
for p in "${want[@]}"; do
  # Node may come from elsewhere (nvm, NodeSource): accept any node+npm on PATH.
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
