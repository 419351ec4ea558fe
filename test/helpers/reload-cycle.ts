// The configs the reload tests (soak, reload memory) cycle through, one per reload: test data only.
/**
 * Delays from 1 to 50 ms, AAAA and HTTPS held alone, together or per type: a change of held types
 * reinstalls the kernel filter rules. The largest hold is 50 ms, so no hold may pass 100 ms: the hold
 * histogram has a bucket there.
 */
export const RELOAD_CYCLE: readonly Record<string, unknown>[] = [
  { delay: 5, qtypes: 'AAAA' },
  { delay: 20, qtypes: 'AAAA,HTTPS' },
  { delay: 2, qtypes: 'HTTPS' },
  { delay: 50, qtypes: 'AAAA' },
  { qtypes: 'AAAA', holds: { AAAA: 10, HTTPS: 50 } },
  { delay: 1, qtypes: 'AAAA,HTTPS' },
]
/** The largest hold of the cycle, in seconds. */
export const LARGEST_HOLD_S = 0.05
