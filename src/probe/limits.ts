// Bounds of the race probe, shared by its flags, its help text and the probe itself. Constants only.
export const DEFAULT_PROBE_PAIRS = 300
export const MAX_PROBE_PAIRS = 20_000
