#!/usr/bin/env bash
# HTTP benchmark: `GET /v1/instruments` on bourse vs a minimal rustls hello server,
# both over TLS 1.3 with keep-alive, measured by wrk in the same run (alternating, best
# of N each), so that the ratio is meaningful on a shared, noisy machine.
# Traffic goes to 127.0.0.1 only. Usage: scripts/bench-http.sh [seconds] [rounds]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
secs="${1:-10}"; rounds="${2:-3}"; conns="${CONNS:-32}"
if ! command -v wrk >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq wrk
fi
cargo build --release --locked -p bourse --bin bourse --example tls_hello
bin="${CARGO_TARGET_DIR:-$root/target}/release"
data="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$data"' EXIT
# The limiter would cap one IP / two users at their policies: this measures the rest.
BOURSE_RATE_LIMIT__ENABLED=false BOURSE_LOG__LEVEL=warn "$bin/bourse" serve --data-dir "$data" \
  --public-addr 127.0.0.1:18443 --admin-addr 127.0.0.1:19443 >/dev/null &
"$bin/examples/tls_hello" 127.0.0.1:18444 "$data" >/dev/null &
for _ in $(seq 100); do
  curl -skf https://127.0.0.1:18443/healthz >/dev/null 2>&1 && curl -sk https://127.0.0.1:18444/ >/dev/null 2>&1 && break
  sleep 0.1
done
# TLS 1.3 is the only version either server speaks; show it once.
curl -skv https://127.0.0.1:18443/v1/instruments -o /dev/null 2>&1 | grep -m1 "SSL connection using" || true

rps() { wrk -t1 -c"$conns" -d"${secs}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
best_hello=0; best_api=0
for r in $(seq "$rounds"); do
  h=$(rps https://127.0.0.1:18444/)
  a=$(rps https://127.0.0.1:18443/v1/instruments)
  echo "round $r: hello=$h instruments=$a"
  best_hello=$(python3 -c "print(max($best_hello,$h))")
  best_api=$(python3 -c "print(max($best_api,$a))")
done
ratio=$(python3 -c "print(round($best_api/$best_hello,3))")
echo "http hello_rps=$best_hello instruments_rps=$best_api ratio=$ratio conns=$conns secs=$secs rounds=$rounds"

# Authenticated vs public: GET /v1/auth/me (bearer JWT verified through the cache and
# the revoked-session check; small JSON from the claims) vs the public
# GET /v1/instruments/BTC-PERP (pre-encoded JSON), same run.
api=https://127.0.0.1:18443
pw="bench-$(date +%s%N)-passphrase"
curl -sk -X POST "$api/v1/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"loadtest@example.com\",\"password\":\"$pw\"}" >/dev/null
token=$(curl -sk -X POST "$api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"loadtest@example.com\",\"password\":\"$pw\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
rps_auth() { wrk -t1 -c"$conns" -d"${secs}s" -H "Authorization: Bearer $token" "$1" | awk '/Requests\/sec/ {print $2}'; }
best_pub=0; best_auth=0
for r in $(seq "$rounds"); do
  p=$(rps "$api/v1/instruments/BTC-PERP")
  a=$(rps_auth "$api/v1/auth/me")
  echo "round $r: public=$p authenticated=$a"
  best_pub=$(python3 -c "print(max($best_pub,$p))")
  best_auth=$(python3 -c "print(max($best_auth,$a))")
done
aratio=$(python3 -c "print(round($best_auth/$best_pub,3))")
echo "http public_rps=$best_pub authenticated_rps=$best_auth ratio=$aratio"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%Y-%m-%dT%H:%MZ)"
