#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ briefly (FUZZ_SECONDS each, default 30), starting
# from the committed corpus in fuzz/corpus/<target>/. New inputs go to a scratch folder,
# so the committed corpus only changes when someone copies findings in on purpose.
# cargo-fuzz needs nightly-only rustc flags; on the pinned stable toolchain
# RUSTC_BOOTSTRAP=1 unlocks them for this build only. See docs/security.md for long runs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"
if ! cargo fuzz --version 2>/dev/null | grep -q "0.13.1"; then
  echo "tools: cargo install cargo-fuzz"
  cargo install --locked --quiet cargo-fuzz --version 0.13.1
fi
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-30}"
targets=(order_body auth_body query_string)
cargo fuzz build
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  echo "fuzz: $t for ${seconds}s"
  mkdir -p "$scratch/$t"
  cargo fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    2>"$scratch/$t.log" || { tail -n 60 "$scratch/$t.log" >&2; exit 1; }
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)" "$scratch/$t.log" || true
done
