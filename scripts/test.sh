#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up, formatting, lints, every test.
# Usage: scripts/test.sh            (CARGO_TARGET_DIR is honoured; defaults to ./target)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked
