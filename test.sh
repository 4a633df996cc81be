#!/usr/bin/env bash
# The one command that runs raftkv's whole test suite (see README).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust (rustup) first" >&2
  exit 1
fi
cargo fmt --all -- --check
./scripts/check-deps.sh
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --release
