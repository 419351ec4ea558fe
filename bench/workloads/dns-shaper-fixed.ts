// dns-shaper --mode fixed: every AAAA held for the delay.
import { dnsShaper } from './dns-shaper.js'
import type { Variant } from './types.js'

export const dnsShaperFixed: Variant = dnsShaper('fixed')

/** Fixed mode behind the cBPF kernel filter: only AAAA leaves the kernel. */
export const dnsShaperFixedKfilter: Variant = dnsShaper('fixed', true)
