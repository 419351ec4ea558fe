#!/usr/bin/env bash
# Long soak, off CI: the daemon under steady A+AAAA+HTTPS load in a throwaway lab for 10 minutes (default),
# reloaded with SIGHUP every RELOAD_MS (changing delays and held types; 0: never), then its figures
# (queries sent/lost, holds, reloads, RSS after warm-up and at peak, fds, held gauge).
#   sudo scripts/soak.sh [SECONDS] [QPS] [RELOAD_MS]        e.g. scripts/soak.sh 600 1000 1000
# Needs root, dnsperf, unbound, and a built tree (npm run build). Writes the JSON summary to
# ${SOAK_REPORT:-soak-report.json}.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
qps="${2:-1000}"
reload_ms="${3:-1000}"
report="${SOAK_REPORT:-soak-report.json}"
case "$seconds$qps$reload_ms" in *[!0-9]*) echo "usage: $0 [SECONDS] [QPS] [RELOAD_MS]" >&2; exit 2 ;; esac
if [ "$(id -u)" != 0 ]; then echo "soak: needs root (network namespaces, iptables, NFQUEUE)" >&2; exit 2; fi
for cmd in dnsperf unbound; do
  command -v "$cmd" >/dev/null || { echo "soak: $cmd not installed (scripts/system-deps.sh)" >&2; exit 2; }
done
[ -f dist/cli.js ] && [ -f build/Release/nfqueue.node ] || { echo "soak: build first (npm run build)" >&2; exit 2; }

echo "soak: ${seconds} s at ${qps} qps, a reload every ${reload_ms} ms; report -> ${report}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
rm -f "$report"
set +e
DNS_SHAPER_SOAK_SECONDS="$seconds" DNS_SHAPER_SOAK_QPS="$qps" DNS_SHAPER_SOAK_RELOAD_MS="$reload_ms" DNS_SHAPER_SOAK_REPORT="$report" \
  npx tap test/integration/soak.ts --disable-coverage --timeout $((seconds + 300)) -R tap >"$log" 2>&1
status=$?
set -e
grep -E '^\s*(not ok|ok|#) ' "$log" | grep -v '# time=' || true
[ -f "$report" ] || { echo "soak: no report written (see the failures above)" >&2; exit 1; }
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))
const mb = kb => (kb / 1024).toFixed(1) + " MB"
console.log(`soak figures: ${r.seconds} s at ${r.qps} qps: ${r.sent} queries sent, ${r.lost} lost, ${r.holds} held (${r.aaaaHeld} AAAA), ${r.reloads} reloads`)
console.log(`  RSS: ${mb(r.rssWarmKb)} after warm-up, ${mb(r.rssPeakKb)} peak, ${mb(r.rssEndKb)} at the end (+${mb(r.rssPeakKb - r.rssWarmKb)})`)
console.log(`  fds: ${r.fdsMin}..${r.fdsMax}; held gauge: max ${r.heldMax}, at the end ${r.heldEnd}`)
' "$report"
exit "$status"
