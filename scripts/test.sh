#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up, real services, formatting, lints, every test.
# Usage: scripts/test.sh
#   CARGO_TARGET_DIR is honoured (default ./target). The services (Kafka, HDFS, etcd on
#   loopback) are left running for the next run; stop them with `deploy/local/services down`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test

echo "== services"
deploy/local/services up
# The same three with their security on (TLS, SASL, Kerberos), on their own ports, for
# tests/tests/secure_services.rs (which reads their addresses from services-secure env).
deploy/local/services-secure up
eval "$(deploy/local/services env)"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked \
  --features sawmill-tests/services,sawmill-tests/failpoints -- -D warnings

echo "== cargo audit"
# Known vulnerabilities and unmaintained or yanked crates in Cargo.lock, from the RustSec
# advisory database copy beside the repository (no network here); warnings fail too.
ADVISORY_DB=${SAWMILL_ADVISORY_DB:-../shared/advisory-db}
[[ -d $ADVISORY_DB/crates ]] || {
  echo "no RustSec advisory database at $ADVISORY_DB: set SAWMILL_ADVISORY_DB" >&2
  exit 1
}
cargo audit --db "$ADVISORY_DB" --no-fetch --stale --deny warnings

echo "== cargo doc"
# Broken intra-doc links are bugs in the module maps: fail on them.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

echo "== cargo test"
# Binaries first: the cross-crate tests start `sawmill`, `worker` and `coordinator` processes.
cargo build --workspace --bins --locked
# The fleet test runs these binaries in containers: (re)build the images from them (a base made
# with debootstrap and the service images the first time, a few minutes; then only the Sawmill
# layer changes).
SAWMILL_BINARIES_DIR="${CARGO_TARGET_DIR:-target}/debug" deploy/container/build-images.sh all
# The `services` feature runs the tests that need Kafka, HDFS and etcd (without it they show
# as ignored); a missing service then fails them. `failpoints` compiles the commit protocol's
# fail points into sawmill-common and sawmill-worker for tests/tests/chaos_failpoints.rs; by
# feature unification the binaries this step rebuilds carry them too (disarmed: nothing arms
# them outside that test), while those built above without it, used for the images, carry none.
cargo test --workspace --locked --no-fail-fast \
  --features sawmill-tests/services,sawmill-tests/failpoints \
  -- --test-threads "${SAWMILL_TEST_THREADS:-2}"
