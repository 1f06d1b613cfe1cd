#!/usr/bin/env bash
# Installs the tools the test command uses, idempotently, from the package registries
# only (apt, PyPI, npm, crates.io). Sourced by scripts/test.sh; safe to run on its own.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"

need_apt=()
command -v gcc >/dev/null || need_apt+=(build-essential)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip python3-venv)
command -v npm >/dev/null || need_apt+=(nodejs npm)
command -v psql >/dev/null || need_apt+=(postgresql-client)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "tools: apt-get install ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "tools: cargo is missing; install Rust 1.95 with rustup (https://rustup.rs) first" >&2
  exit 1
fi

# Python linters in a private virtualenv (pinned).
if [ ! -x "$tools/venv/bin/openapi-spec-validator" ]; then
  echo "tools: pip install openapi-spec-validator"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q "openapi-spec-validator==0.7.2"
fi

# Redocly CLI from npm into .tools (pinned).
if [ ! -x "$tools/node_modules/.bin/redocly" ]; then
  echo "tools: npm install @redocly/cli"
  # stdin closed and a time bound: npm must never wait for an answer in CI.
  if ! timeout 600 npm install --no-audit --no-fund --prefix "$tools" "@redocly/cli@1.34.5" \
      </dev/null >"$tools/npm.log" 2>&1; then
    cat "$tools/npm.log" >&2
    exit 1
  fi
fi

# The local OpenID Connect provider of the sign-in tests (oidc-provider from npm, pinned
# by scripts/oidc-provider/package-lock.json).
oidc_dir="$root/scripts/oidc-provider"
if [ ! -f "$oidc_dir/node_modules/oidc-provider/package.json" ] \
    || [ "$oidc_dir/package-lock.json" -nt "$oidc_dir/node_modules/.package-lock.json" ]; then
  echo "tools: npm ci in scripts/oidc-provider"
  if ! (cd "$oidc_dir" && timeout 600 npm ci --no-audit --no-fund </dev/null >"$tools/npm-oidc.log" 2>&1); then
    cat "$tools/npm-oidc.log" >&2
    exit 1
  fi
fi

# cargo-audit from crates.io.
if ! cargo audit --version >/dev/null 2>&1; then
  echo "tools: cargo install cargo-audit"
  cargo install --locked --quiet cargo-audit
fi

# Debian's Chromium and its chromedriver for the browser tests (never a downloaded
# browser).
need_browser=()
command -v chromium >/dev/null || need_browser+=(chromium)
command -v chromedriver >/dev/null || need_browser+=(chromium-driver)
if [ ${#need_browser[@]} -gt 0 ]; then
  echo "tools: apt-get install ${need_browser[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_browser[@]}"
fi
