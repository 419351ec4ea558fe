#!/usr/bin/env bash
# Builds the libFuzzer targets with ASan + UBSan: parse_fuzzer (native/parse.cc) and core_fuzzer
# (native/decision_core.cc against fuzz/core_model.h). Needs clang and its compiler-rt (Debian:
# clang + libclang-rt-14-dev, which ships libclang_rt.fuzzer-x86_64.a).
# Usage: fuzz/build.sh [parse|core|all] (default all). Output: $FUZZ_OUT/<target>_fuzzer (default
# fuzz/out/); the last line printed is the path of the last target built. Touches nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX="${CXX_FUZZ:-clang++}"
OUT="${FUZZ_OUT:-fuzz/out}"
mkdir -p "$OUT"
if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "fuzz/build.sh: $CXX not found; install clang (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 127
fi
TARGET="${1:-all}"
# -fno-sanitize-recover: a UBSan finding must stop the run like an ASan one, not just print.
FLAGS=(-g -O1 -std=c++17 -Wall -Wextra -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
  -fno-omit-frame-pointer)
case "$TARGET" in
  parse|all) "$CXX" "${FLAGS[@]}" native/parse.cc fuzz/parse_fuzzer.cc -o "$OUT/parse_fuzzer" ;;
  core) ;;
  *) echo "fuzz/build.sh: unknown target $TARGET (parse, core or all)" >&2; exit 2 ;;
esac
case "$TARGET" in
  core|all) "$CXX" "${FLAGS[@]}" native/decision_core.cc native/parse.cc fuzz/core_fuzzer.cc -o "$OUT/core_fuzzer" ;;
esac
case "$TARGET" in
  parse) echo "$OUT/parse_fuzzer" ;;
  *) echo "$OUT/core_fuzzer" ;;
esac
