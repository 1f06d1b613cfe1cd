#!/usr/bin/env bash
# Runs the scripted Postman flow (docs/postman/bourse-flow.postman_collection.json) with
# newman (npm, pinned, into .tools) against a real bourse server started here on
# loopback with a fresh data folder. newman trusts exactly the server's generated
# certificate.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools="$root/.tools"
mkdir -p "$tools"
if [ ! -x "$tools/node_modules/.bin/newman" ]; then
  timeout 600 npm install --no-audit --no-fund --prefix "$tools" "newman@6.2.2" \
    </dev/null >"$tools/npm-newman.log" 2>&1 || { cat "$tools/npm-newman.log" >&2; exit 1; }
fi
cargo build --quiet --locked -p bourse --bin bourse
bin="${CARGO_TARGET_DIR:-$root/target}/debug/bourse"
data="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
aport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The flow drives the market through the admin API with a key made here, and withdraws
# to an address it has just whitelisted (cool-down 0 for this server only).
adminkey=$("$bin" admin keys create --name newman-flow --data-dir "$data" \
  --scopes instruments:write,instruments:read,deposits:write 2>/dev/null \
  | tail -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
BOURSE_WALLET__ADDRESS_COOLDOWN_SECS=0 "$bin" serve --data-dir "$data" \
  --public-addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$aport" >"$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 200); do
  [ -f "$data/tls/cert.pem" ] && curl -sf --cacert "$data/tls/cert.pem" "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
"$tools/node_modules/.bin/newman" run docs/postman/bourse-flow.postman_collection.json \
  -e docs/postman/local.postman_environment.json \
  --env-var "publicUrl=https://127.0.0.1:$port" --env-var "adminUrl=https://127.0.0.1:$aport" \
  --env-var "adminKey=$adminkey" \
  --ssl-extra-ca-certs "$data/tls/cert.pem" --bail --color off
