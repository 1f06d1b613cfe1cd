#!/usr/bin/env bash
# Regenerates the committed OpenAPI documents from the code.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo run --quiet --locked -p bourse -- openapi > docs/openapi.json
cargo run --quiet --locked -p bourse -- openapi --admin > docs/openapi-admin.json
echo "docs/openapi.json and docs/openapi-admin.json updated"
