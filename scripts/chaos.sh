#!/usr/bin/env bash
# The chaos (fault-injection) tests: each starts a PRIVATE services instance (its own state
# directory under /var/tmp and ports moved by SAWMILL_CHAOS_PORT_OFFSET, default per test), so
# the shared services are never disturbed, injects its faults, and checks the result with
# `sawmill verify`. Prints each test's figures (recovery time, largest worker RSS); see
# RELIABILITY.md. Replay a schedule with SAWMILL_CHAOS_SEED=<seed printed by the test>.
# Usage: scripts/chaos.sh [extra cargo test filter, default: chaos_]
#        scripts/chaos.sh --soak   the long soak of random faults (SAWMILL_SOAK_SECS, default
#                                  1800; chaos_soak.rs, ignored in the normal suite)
#   CARGO_TARGET_DIR is honoured. Keep the processes' logs with SAWMILL_KEEP_LOGS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
filter=${1:-chaos_}
soak=0
[[ $filter == --soak ]] && soak=1
# Binaries first: the tests start `sawmill`, `worker` and `coordinator` processes.
cargo build --locked -p sawmill-cli -p sawmill-worker -p sawmill-coordinator --bins
# One test at a time: each runs a cluster and its own services on two cores. `failpoints`
# compiles the commit protocol's fail points into the worker library the tests link
# (chaos_failpoints.rs arms them in-process); the binaries built above carry none.
if (( soak )); then
  exec cargo test --locked -p sawmill-tests --features services,failpoints --test chaos_soak -- \
    --ignored --nocapture
fi
for t in tests/tests/chaos_*.rs; do
  name=$(basename "$t" .rs)
  cargo test --locked -p sawmill-tests --features services,failpoints --test "$name" -- \
    --test-threads 1 --nocapture "$filter"
done
