#!/usr/bin/env bash
# Long soak, off CI: the daemon under steady A+AAAA load in a throwaway lab for 10 minutes (default),
# then its figures (queries sent/lost, RSS after warm-up and at peak, fds, held gauge).
#   sudo scripts/soak.sh [SECONDS] [QPS]        e.g. scripts/soak.sh 600 500
# Needs root, dnsperf, unbound, and a built tree (npm run build). Writes the JSON summary to
# ${SOAK_REPORT:-soak-report.json}.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
qps="${2:-500}"
report="${SOAK_REPORT:-soak-report.json}"
case "$seconds$qps" in *[!0-9]*) echo "usage: $0 [SECONDS] [QPS]" >&2; exit 2 ;; esac
if [ "$(id -u)" != 0 ]; then echo "soak: needs root (network namespaces, iptables, NFQUEUE)" >&2; exit 2; fi
for cmd in dnsperf unbound; do
  command -v "$cmd" >/dev/null || { echo "soak: $cmd not installed (scripts/system-deps.sh)" >&2; exit 2; }
done
[ -f dist/cli.js ] && [ -f build/Release/nfqueue.node ] || { echo "soak: build first (npm run build)" >&2; exit 2; }

echo "soak: ${seconds} s at ${qps} qps; report -> ${report}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
rm -f "$report"
set +e
DNS_SHAPER_SOAK_SECONDS="$seconds" DNS_SHAPER_SOAK_QPS="$qps" DNS_SHAPER_SOAK_REPORT="$report" \
  npx tap test/integration/soak.ts --disable-coverage --timeout $((seconds + 300)) -R tap >"$log" 2>&1
status=$?
set -e
grep -E '^\s*(not ok|ok|#) ' "$log" | grep -v '# time=' || true
[ -f "$report" ] || { echo "soak: no report written (see the failures above)" >&2; exit 1; }
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))
const mb = kb => (kb / 1024).toFixed(1) + " MB"
console.log(`soak figures: ${r.seconds} s at ${r.qps} qps: ${r.sent} queries sent, ${r.lost} lost, ${r.aaaaHeld} AAAA held`)
console.log(`  RSS: ${mb(r.rssWarmKb)} after warm-up, ${mb(r.rssPeakKb)} peak, ${mb(r.rssEndKb)} at the end (+${mb(r.rssPeakKb - r.rssWarmKb)})`)
console.log(`  fds: ${r.fdsMin}..${r.fdsMax}; held gauge: max ${r.heldMax}, at the end ${r.heldEnd}`)
' "$report"
exit "$status"
