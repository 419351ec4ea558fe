// Writes deploy/grafana/dashboard-configmap.yaml from deploy/grafana/dns-shaper.json, so the dashboard
// has one source: run `node scripts/dashboard-configmap.mjs` after editing the JSON (test/grafana.ts
// fails until the two agree). Renders text only; no YAML library, so the output is byte-stable.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath, URL } from 'node:url'

export const DASHBOARD_JSON = fileURLToPath(new URL('../deploy/grafana/dns-shaper.json', import.meta.url))
export const DASHBOARD_CONFIGMAP = fileURLToPath(new URL('../deploy/grafana/dashboard-configmap.yaml', import.meta.url))
export const DASHBOARD_KEY = 'dns-shaper.json'

/** The ConfigMap text for a dashboard JSON text (kept verbatim in a literal block). */
export function renderDashboardConfigMap(json) {
  if (!json.endsWith('\n')) json += '\n'
  const body = json
    .split('\n')
    .slice(0, -1)
    .map(l => (l === '' ? '' : `    ${l}`))
    .join('\n')
  return `# Generated from deploy/grafana/dns-shaper.json by scripts/dashboard-configmap.mjs; do not edit.
# The Grafana dashboard as a ConfigMap for Grafana's dashboard sidecar (kube-prometheus-stack,
# grafana/helm-charts), which loads every ConfigMap labelled grafana_dashboard: "1" in the
# namespaces it watches: kubectl apply -n GRAFANA_NAMESPACE -f deploy/grafana/dashboard-configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: dns-shaper-dashboard
  labels:
    grafana_dashboard: "1"
    app.kubernetes.io/name: dns-shaper
data:
  ${DASHBOARD_KEY}: |
${body}
`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(DASHBOARD_CONFIGMAP, renderDashboardConfigMap(readFileSync(DASHBOARD_JSON, 'utf8')))
  process.stdout.write(`wrote ${DASHBOARD_CONFIGMAP}\n`)
}
