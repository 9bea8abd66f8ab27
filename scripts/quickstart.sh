#!/usr/bin/env bash
# The embedded default from a fresh machine: builds `sawmill` (release) and runs it on the
# committed NASA sample, or on the files given as arguments.
# Usage: scripts/quickstart.sh [FILE...] [-- extra `sawmill run` flags]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if (($# == 0)); then set -- data/sample/nasa_aug95_head.log; fi
cargo run --release --locked -q -p sawmill-cli -- run "$@"
