// Baseline: no rule, no queue, no process: the lab's own latency and capacity.
import type { Variant } from './types.js'

export const baseline: Variant = {
  id: 'baseline',
  label: 'baseline (no queue)',
  queue: false,
  holdsAAAA: false,
  start: () => Promise.resolve({ stop: () => Promise.resolve(undefined) }),
}
