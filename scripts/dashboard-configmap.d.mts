// Types of scripts/dashboard-configmap.mjs, for test/grafana.ts.
export declare const DASHBOARD_JSON: string
export declare const DASHBOARD_CONFIGMAP: string
export declare const DASHBOARD_KEY: string
export declare function renderDashboardConfigMap(json: string): string
