// nfq_ref --mode accept: the floor cost of a user-space verdict.
import { nfqRef } from './nfq-ref.js'
import type { Variant } from './types.js'

export const nfqRefAccept: Variant = nfqRef('accept')
