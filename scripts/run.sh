#!/usr/bin/env bash
# Runs the duet desktop app: installs missing build packages, builds in release mode, starts it.
# The app hosts the signal server itself; type a room name and send the share link it shows.
# Extra arguments are passed through, e.g. `scripts/run.sh --join kitchen`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
exec cargo run --release -p duet --bin duet -- "$@"
