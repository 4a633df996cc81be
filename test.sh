#!/usr/bin/env bash
# The one command that runs raftkv's whole test suite (see README).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust (rustup) first" >&2
  exit 1
fi
# System packages the tests need: etcdctl (etcd's own client, for the compatibility tests),
# etcd (the load tool's test drives a real etcd too) and protoc (the `etcd-client` crate's
# build script compiles etcd's protos with it).
missing=()
command -v etcdctl >/dev/null || missing+=(etcd-client)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
command -v nft >/dev/null || missing+=(nftables)  # the nemesis suite cuts links with nft
# The dashboard's browser test drives headless Chromium through chromedriver.
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} (apt-get)"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
cargo fmt --all -- --check
./scripts/check-deps.sh
cargo clippy --workspace --all-targets --locked -- -D warnings
# The fuzz targets live in their own workspace (fuzz/); CI only checks that they build.
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo build --manifest-path fuzz/Cargo.toml --locked --bins
cargo test --workspace --locked --profile checked
