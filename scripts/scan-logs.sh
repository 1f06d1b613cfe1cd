#!/usr/bin/env bash
# After a full test run: no planted canary (passwords, tokens, TOTP secrets, recovery
# codes the tests used) may appear in any log line the run wrote.
set -euo pipefail
dir="${1:-target/test-logs}"
shopt -s nullglob
logs=("$dir"/*.jsonl)
canaries=("$dir"/canaries-*.txt)
if [ ${#logs[@]} -eq 0 ] || [ ${#canaries[@]} -eq 0 ]; then
  echo "scan-logs: no logs or canaries in $dir (did the tests run?)" >&2
  exit 1
fi
lines=$(cat "${logs[@]}" | wc -l)
sort -u "${canaries[@]}" | grep -v '^$' > "$dir/all-canaries.txt"
count=$(wc -l < "$dir/all-canaries.txt")
if grep -F -f "$dir/all-canaries.txt" "${logs[@]}" > "$dir/leaks.txt"; then
  echo "scan-logs: planted secrets found in logs:" >&2
  cut -c1-300 "$dir/leaks.txt" | head -20 >&2
  exit 1
fi
echo "scan-logs: $count canaries, $lines log lines, no leak"
