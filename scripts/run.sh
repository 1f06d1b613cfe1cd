#!/usr/bin/env bash
# Builds and runs bourse on its embedded default: SQLite in ./data, in-memory rate
# limiter, a self-signed certificate made on first start. Extra arguments go to
# `bourse serve` (e.g. --public-addr 127.0.0.1:8443).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if ! command -v gcc >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq build-essential
fi
command -v cargo >/dev/null || { echo "install Rust 1.95 with rustup first (https://rustup.rs)" >&2; exit 1; }
cargo build --release --locked -p bourse
exec "${CARGO_TARGET_DIR:-$root/target}/release/bourse" serve --data-dir "${BOURSE_DATA_DIR:-data}" "$@"
