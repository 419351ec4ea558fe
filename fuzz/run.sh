#!/usr/bin/env bash
# Runs the parser fuzzer for a bounded time: fuzz/run.sh [SECONDS] (default 60).
# Seeds come from the test vectors (fuzz/seed-corpus.ts); new coverage accumulates in $FUZZ_OUT/corpus,
# crashes land in $FUZZ_OUT/crashes/. Exit status is the fuzzer's: 0 clean, non-zero on a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-${SECS:-60}}"
OUT="${FUZZ_OUT:-fuzz/out}"
export FUZZ_OUT="$OUT"
bin="$(fuzz/build.sh | tail -n 1)"
rm -rf "$OUT/seeds"
mkdir -p "$OUT/seeds" "$OUT/corpus" "$OUT/crashes"
node --import=@tapjs/typescript/import fuzz/seed-corpus.ts "$OUT/seeds"
# halt_on_error/abort_on_error: any sanitizer report is a failure with a reproducer in crashes/.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
exec "$bin" -max_total_time="$SECS" -max_len=1500 -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
  -artifact_prefix="$OUT/crashes/" "$OUT/corpus" "$OUT/seeds"
