#!/usr/bin/env bash
# Runs duet: installs missing build packages, builds in release mode, starts it.
# Extra arguments are passed through, e.g. `scripts/run.sh --listen 127.0.0.1:9000`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
exec cargo run --release -p signal --bin signal -- "$@"
