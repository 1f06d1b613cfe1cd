#!/usr/bin/env bash
# The one command that runs every check: format, lints, all tests (SQLite and
# PostgreSQL), the OpenAPI linters, and the advisory audit. Installs what it needs.
# With CI=true, a missing PostgreSQL/Redis/NATS is a failure, not a skip.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/tools.sh

# Incremental caches only help an edit-compile loop; in CI they double target/ on disk.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi

step() { printf '\n==> %s\n' "$*"; }

step "services"
scripts/check-services.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
logs="${CARGO_TARGET_DIR:-$root/target}/test-logs"
rm -rf "$logs"
cargo test --workspace --locked

step "cargo fuzz: each target briefly from the committed corpus (docs/security.md for long runs)"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" scripts/fuzz.sh

step "log scan for planted secrets"
scripts/scan-logs.sh "$logs"

step "Postman: collections match the OpenAPI documents, scripted flow against a real server"
python3 scripts/postman/check.py
scripts/newman-flow.sh

step "schemathesis: generated requests against a real server, checked against the OpenAPI documents"
scripts/schemathesis.sh

step "OpenAPI lint"
for spec in docs/openapi.json docs/openapi-admin.json; do
  "$root/.tools/venv/bin/openapi-spec-validator" "$spec"
  "$root/.tools/node_modules/.bin/redocly" lint --config redocly.yaml "$spec"
done

step "cargo audit"
db="${BOURSE_ADVISORY_DB:-}"
for candidate in "$db" "$root/../shared/advisory-db" "/work/shared/advisory-db"; do
  if [ -n "$candidate" ] && [ -d "$candidate" ]; then db="$candidate"; break; fi
done
if [ -z "$db" ] || [ ! -d "$db" ]; then
  echo "advisory database not found (set BOURSE_ADVISORY_DB)" >&2
  exit 1
fi
cargo audit --no-fetch --db "$db"

step "all checks passed"
