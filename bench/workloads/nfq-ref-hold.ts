// nfq_ref --mode hold: AAAA held for the delay in a timerfd-driven FIFO, the rest accepted at once.
import { nfqRef } from './nfq-ref.js'
import type { Variant } from './types.js'

export const nfqRefHold: Variant = nfqRef('hold')
