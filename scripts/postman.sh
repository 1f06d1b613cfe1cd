#!/usr/bin/env bash
# Generates the Postman collections from the committed OpenAPI documents
# (openapi-to-postmanv2 from npm, pinned, into .tools). The scripted end-to-end flow,
# docs/postman/bourse-flow.postman_collection.json, is written by hand and run by
# scripts/newman-flow.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools="$root/.tools"
mkdir -p "$tools"
if [ ! -x "$tools/node_modules/.bin/openapi2postmanv2" ]; then
  timeout 600 npm install --no-audit --no-fund --prefix "$tools" "openapi-to-postmanv2@6.3.3" \
    </dev/null >"$tools/npm-postman.log" 2>&1 || { cat "$tools/npm-postman.log" >&2; exit 1; }
fi
gen() { # spec output
  "$tools/node_modules/.bin/openapi2postmanv2" -s "$1" -o "$2" -p \
    -O folderStrategy=Tags >/dev/null
  # The converter's own baseUrl ("/") is replaced by the environment's.
  python3 - "$2" "$3" <<'PY'
import json, sys
path, var = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["variable"] = [{"key": "baseUrl", "value": "{{" + var + "}}"}]
# The converter makes random UUIDs for ids on every run; drop them so that the
# committed file only changes when the spec does (Postman makes its own on import).
def strip(o):
    if isinstance(o, dict):
        for k in ("id", "_postman_id"):
            o.pop(k, None)
        for v in o.values():
            strip(v)
    elif isinstance(o, list):
        for v in o:
            strip(v)
strip(c)
json.dump(c, open(path, "w"), indent=2, sort_keys=True)
open(path, "a").write("\n")
PY
}
gen docs/openapi.json docs/postman/bourse.postman_collection.json publicUrl
gen docs/openapi-admin.json docs/postman/bourse-admin.postman_collection.json adminUrl
echo "docs/postman/*.postman_collection.json regenerated"
