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
# The fuzz targets live in their own workspace (fuzz/); CI only checks that they build.
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo build --manifest-path fuzz/Cargo.toml --locked --bins
cargo test --workspace --locked --release
