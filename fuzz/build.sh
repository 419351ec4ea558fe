#!/usr/bin/env bash
# Builds the libFuzzer target for native/parse.cc with ASan + UBSan. Needs clang and its
# compiler-rt (Debian: clang + libclang-rt-14-dev, which ships libclang_rt.fuzzer-x86_64.a).
# Output: $FUZZ_OUT/parse_fuzzer (default fuzz/out/). Touches nothing outside that directory.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX="${CXX_FUZZ:-clang++}"
OUT="${FUZZ_OUT:-fuzz/out}"
mkdir -p "$OUT"
if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "fuzz/build.sh: $CXX not found; install clang (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 127
fi
# -fno-sanitize-recover: a UBSan finding must stop the run like an ASan one, not just print.
"$CXX" -g -O1 -std=c++17 -Wall -Wextra \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
  native/parse.cc fuzz/parse_fuzzer.cc -o "$OUT/parse_fuzzer"
echo "$OUT/parse_fuzzer"
