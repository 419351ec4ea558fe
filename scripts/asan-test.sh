#!/usr/bin/env bash
# Builds the nfqueue addon with ASan + UBSan into a separate directory (the normal build/ is left
# alone) and runs test/native/*.ts against it, with the ASan runtime preloaded into node.
# Usage: scripts/asan-test.sh [tap args...]   Env: ASAN_BUILD_DIR (default /tmp/dns-shaper-asan), CXX.
# Why LD_PRELOAD: node itself is not instrumented, and ASan must be the first library loaded so its
# malloc/free interceptors own every allocation; dlopen()ing an ASan .node into plain node aborts.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${ASAN_BUILD_DIR:-/tmp/dns-shaper-asan}"
export CXX="${CXX:-g++}"
export CC="${CC:-gcc}"

case "$("$CXX" --version | head -n 1)" in
  *clang*) RT="$("$CXX" -print-file-name=libclang_rt.asan-x86_64.so)"; SHARED=(-shared-libasan) ;;
  *)       RT="$("$CXX" -print-file-name=libasan.so)"; SHARED=() ;;
esac
if [ ! -f "$RT" ]; then
  echo "asan-test: ASan runtime not found for $CXX ($RT); Debian: apt-get install libasan8 (gcc 12) or libclang-rt-14-dev (clang)" >&2
  exit 127
fi
RT="$(readlink -f "$RT")"

# A private copy of the sources: node-gyp always builds into <dir>/build.
rm -rf "$OUT/src"
mkdir -p "$OUT/src"
cp "$ROOT/binding.gyp" "$OUT/src/"
cp -r "$ROOT/native" "$OUT/src/"
# Headers: the same nodedir npm gives `npm ci` (e.g. /usr with Debian's nodejs headers), so this
# works offline; without one node-gyp downloads the headers tarball as usual.
NODEDIR="${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}"
GYP_ARGS=()
case "$NODEDIR" in ""|undefined|null) ;; *) GYP_ARGS+=("--nodedir=$NODEDIR") ;; esac
SAN=(-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1 "${SHARED[@]}")
(
  cd "$OUT/src"
  # binding.gyp resolves node-addon-api with require(); point it at the project's node_modules.
  NODE_PATH="$ROOT/node_modules" CXXFLAGS="${SAN[*]}" LDFLAGS="${SAN[*]}" \
    "$ROOT/node_modules/.bin/node-gyp" rebuild "${GYP_ARGS[@]}" >"$OUT/build.log" 2>&1 || { tail -n 40 "$OUT/build.log" >&2; exit 1; }
)
ADDON="$OUT/src/build/Release/nfqueue.node"
echo "asan-test: built $ADDON; preloading $RT"

# detect_leaks=0: node and V8 keep allocations alive at exit by design; LSan would drown real
# findings in their noise. Everything else aborts on the first report.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export DNS_SHAPER_ADDON="$ADDON"
cd "$ROOT"
# tap spawns one node per test file; they (and the netns children) inherit LD_PRELOAD.
LD_PRELOAD="$RT" node_modules/.bin/tap --disable-coverage "$@" test/native/*.ts
