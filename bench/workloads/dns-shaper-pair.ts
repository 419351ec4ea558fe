// dns-shaper --mode pair: an AAAA leaves right behind the A of its flow and name, at the latest after the delay.
import { dnsShaper } from './dns-shaper.js'
import type { Variant } from './types.js'

export const dnsShaperPair: Variant = dnsShaper('pair')
