#!/usr/bin/env bash
# Order placement benchmark: authenticated `POST /v1/orders` over TLS 1.3 with durable
# group commit (every 201 is journaled and fsynced first), next to the HTTPS hello
# ceiling, in the same run:
#   1. hello ceiling: wrk on the minimal rustls hello server (closed loop, best of N);
#   2. order ceiling: wrk with scripts/bench/orders.lua (two accounts crossing, so every
#      pair trades), closed loop, best of N; the ratio to 1. is the headline figure;
#   3. latency at a fixed offered load: crates/bourse/examples/load_orders.rs (open loop,
#      latency from each request's due time) at RATE orders/s.
# Traffic goes to 127.0.0.1 only. Usage: scripts/bench-orders.sh [seconds] [rounds] [rate]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
secs="${1:-8}"; rounds="${2:-3}"; rate="${3:-5000}"; conns="${CONNS:-32}"
if ! command -v wrk >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq wrk
fi
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release --locked -p bourse --bin bourse --example tls_hello --example load_orders
bin="${CARGO_TARGET_DIR:-$root/target}/release"
data="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$data"' EXIT
key=$("$bin/bourse" admin keys create --name bench --data-dir "$data" \
  --scopes instruments:write,deposits:write 2>/dev/null | tail -n1 \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
# The limiter would cap one IP / two users at their policies: this measures the rest.
BOURSE_RATE_LIMIT__ENABLED=false BOURSE_LOG__LEVEL=warn "$bin/bourse" serve --data-dir "$data" \
  --public-addr 127.0.0.1:18443 --admin-addr 127.0.0.1:19443 >/dev/null &
# The hello server reuses the certificate bourse makes on its first start: wait for it.
for _ in $(seq 300); do
  curl -skf https://127.0.0.1:18443/healthz >/dev/null 2>&1 && break
  sleep 0.1
done
"$bin/examples/tls_hello" 127.0.0.1:18444 "$data" >/dev/null &
for _ in $(seq 100); do
  curl -sk https://127.0.0.1:18444/ >/dev/null 2>&1 && break
  sleep 0.1
done
api=https://127.0.0.1:18443; adm=https://127.0.0.1:19443
curl -skf -X POST "$adm/admin/v1/instruments/BTC-PERP/prices" -H "authorization: Bearer $key" \
  -H 'content-type: application/json' -d '{"mark":"50000","index":"50000"}' >/dev/null
user() { # email → access token, with 100 M USDC deposited
  local pw="bench-$(date +%s%N)-passphrase"
  curl -sk -X POST "$api/v1/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$pw\"}" >/dev/null
  local token; token=$(curl -sk -X POST "$api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$pw\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  local uid; uid=$(curl -sk "$api/v1/auth/me" -H "authorization: Bearer $token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["user_id"])')
  curl -skf -X POST "$adm/admin/v1/deposits" -H "authorization: Bearer $key" -H 'content-type: application/json' \
    -d "{\"user_id\":\"$uid\",\"asset\":\"USDC\",\"amount\":\"100000000\",\"tx_ref\":\"bench-$1\"}" >/dev/null
  echo "$token"
}
export TOKEN_A; TOKEN_A=$(user maker@example.com)
export TOKEN_B; TOKEN_B=$(user taker@example.com)
curl -skv https://127.0.0.1:18443/healthz -o /dev/null 2>&1 | grep -m1 "SSL connection using" || true

rps() { wrk -t1 -c"$conns" -d"${secs}s" "$@" | tee /dev/stderr | awk '/Requests\/sec/ {print $2}'; }
best_hello=0; best_orders=0
for r in $(seq "$rounds"); do
  h=$(rps https://127.0.0.1:18444/ 2>/dev/null)
  o=$(rps -s scripts/bench/orders.lua "$api/v1/orders" 2>"$data/wrk-orders.txt")
  non2xx=$(awk '/Non-2xx/ {print $5}' "$data/wrk-orders.txt"); non2xx=${non2xx:-0}
  echo "round $r: hello=$h orders=$o non2xx=$non2xx"
  best_hello=$(python3 -c "print(max($best_hello,$h))")
  best_orders=$(python3 -c "print(max($best_orders,$o))")
done
ratio=$(python3 -c "print(round($best_orders/$best_hello,3))")
echo "orders hello_rps=$best_hello orders_rps=$best_orders ratio=$ratio conns=$conns secs=$secs rounds=$rounds"
"$bin/examples/load_orders" "$api" "$data/tls/cert.pem" "$TOKEN_A" "$TOKEN_B" "$rate" "$secs"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%Y-%m-%dT%H:%MZ)"
