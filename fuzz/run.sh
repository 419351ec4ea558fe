#!/usr/bin/env bash
# Runs one fuzzer for a bounded time: fuzz/run.sh [SECONDS] [parse|core] (default 60 s, parse).
# parse: seeds from the test vectors (fuzz/seed-corpus.ts). core: the decision core against its
# reference model, seeded with the known bugs (fuzz/core-seed-corpus.ts). New coverage accumulates
# in $FUZZ_OUT/corpus (core: corpus-core), crashes land in $FUZZ_OUT/crashes/. Exit status is the
# fuzzer's: 0 clean, non-zero on a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-${SECS:-60}}"
TARGET="${2:-parse}"
OUT="${FUZZ_OUT:-fuzz/out}"
export FUZZ_OUT="$OUT"
bin="$(fuzz/build.sh "$TARGET" | tail -n 1)"
case "$TARGET" in
  parse) seeds="$OUT/seeds" corpus="$OUT/corpus" gen=fuzz/seed-corpus.ts max_len=1500 ;;
  core) seeds="$OUT/seeds-core" corpus="$OUT/corpus-core" gen=fuzz/core-seed-corpus.ts max_len=512 ;;
esac
rm -rf "$seeds"
mkdir -p "$seeds" "$corpus" "$OUT/crashes"
node --import=@tapjs/typescript/import "$gen" "$seeds"
# halt_on_error/abort_on_error: any sanitizer report is a failure with a reproducer in crashes/.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
exec "$bin" -max_total_time="$SECS" -max_len="$max_len" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
  -artifact_prefix="$OUT/crashes/" "$corpus" "$seeds"
