#!/usr/bin/env bash
# Gateway cost benchmark: the same bourse build three times over TLS 1.3, measured by
# wrk in the same run (alternating rounds, best of N each):
#   off    — rate limiter off (plus GATEWAY_OFF_ENV, e.g. BOURSE_AUDIT__ENABLED=false);
#   local  — limiter on, in-process (governor), quotas so high it never refuses, so
#            every request pays the full path: token peek, GCRA, headers, in-flight slot;
#   shared — the same through the real Redis on 127.0.0.1:6379 (one Lua call per request).
# Workload: authenticated GET /v1/auth/me (charged per user) and anonymous
# GET /v1/instruments/BTC-PERP (charged per IP). Prints req/s, p50/p99 and the ratios.
# Traffic goes to 127.0.0.1 only. Usage: scripts/bench-gateway.sh [seconds] [rounds]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
secs="${1:-8}"; rounds="${2:-3}"; conns="${CONNS:-32}"
if ! command -v wrk >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq wrk
fi
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release --locked -p bourse --bin bourse
bin="${CARGO_TARGET_DIR:-$root/target}/release/bourse"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
huge=(BOURSE_RATE_LIMIT__ENABLED=true
  BOURSE_RATE_LIMIT__POLICIES__DEFAULT__QUOTA=1000000000
  BOURSE_RATE_LIMIT__POLICIES__ANONYMOUS__QUOTA=1000000000
  BOURSE_RATE_LIMIT__POLICIES__AUTH__QUOTA=1000000000)
start() { # name port extra-env... → starts a server with its own data folder
  local name=$1 port=$2; shift 2
  mkdir -p "$work/$name"
  env BOURSE_LOG__LEVEL=warn "$@" "$bin" serve --data-dir "$work/$name" \
    --public-addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$((port + 1000))" >/dev/null &
}
# shellcheck disable=SC2086
start off 18451 BOURSE_RATE_LIMIT__ENABLED=false ${GATEWAY_OFF_ENV:-}
start local 18452 "${huge[@]}"
start shared 18453 "${huge[@]}" BOURSE_REDIS_URL=redis://127.0.0.1:6379 \
  BOURSE_RATE_LIMIT__REDIS_PREFIX="bourse-bench:$(date +%s%N):"
for port in 18451 18452 18453; do
  for _ in $(seq 300); do
    curl -skf "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
done
token() { # port → an access token of a fresh user
  local api="https://127.0.0.1:$1" pw="bench-$(date +%s%N)-passphrase" email="gw$1@example.com"
  curl -sk -X POST "$api/v1/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$pw\"}" >/dev/null
  curl -sk -X POST "$api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$pw\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
declare -A tok
for port in 18451 18452 18453; do tok[$port]=$(token "$port"); done
curl -sk -D - -o /dev/null -H "Authorization: Bearer ${tok[18452]}" https://127.0.0.1:18452/v1/auth/me \
  | grep -i '^ratelimit' || true

run() { # port path [auth] → "rps p50_ms p99_ms"
  local port=$1 path=$2 out
  if [ "${3:-}" = auth ]; then
    out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency -H "Authorization: Bearer ${tok[$port]}" "https://127.0.0.1:$port$path")
  else
    out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "https://127.0.0.1:$port$path")
  fi
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  echo "$rps $p50 $p99"
}
for workload in "auth /v1/auth/me" "anon /v1/instruments/BTC-PERP"; do
  set -- $workload
  kind=$1 path=$2
  declare -A best=([off]=0 [local]=0 [shared]=0)
  for r in $(seq "$rounds"); do
    line="round $r $kind:"
    for pair in off:18451 local:18452 shared:18453; do
      name=${pair%%:*} port=${pair##*:}
      read -r rps p50 p99 <<<"$(run "$port" "$path" "$([ "$kind" = auth ] && echo auth)")"
      line="$line $name=$rps (p50 $p50, p99 $p99)"
      best[$name]=$(python3 -c "print(max(${best[$name]},$rps))")
    done
    echo "$line"
  done
  echo "gateway $kind off_rps=${best[off]} local_rps=${best[local]} shared_rps=${best[shared]}" \
    "local_ratio=$(python3 -c "print(round(${best[local]}/${best[off]},3))")" \
    "shared_ratio=$(python3 -c "print(round(${best[shared]}/${best[off]},3))")"
done
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%Y-%m-%dT%H:%MZ)"
