// The native tables (counters, label sets, help text, bounds) typed for TS, from the file the build
// emits from native/limits.h and native/stats.h (scripts/native-data.mjs): it never loads the addon,
// so config, plan, help, version and `rules print` run where the addon is not built.
import { nativeTables } from './native-tables.js'

export interface NativeConstants {
  actions: string[]
  qtypeLabels: { qtype: number; name: string }[]
  parseReasons: string[]
  counters: string[]
  /** Help text per counter (the names in `counters`) and per other native series (packets, hold, ...). */
  help: Record<string, string>
  /** Every qtype label value of the stats rows, in order: the listed types, then 'other' and 'none'. */
  packetLabels: string[]
  holdBucketsSeconds: number[]
  latencyBucketsSeconds: number[]
  maxHoldClasses: number
}

/** Bounds defined once in native/limits.h; ./limits.ts re-exports them for the rest of TS. */
export interface NativeLimits {
  maxHoldClasses: number
  maxHoldMs: number
  maxPairWindowMs: number
  maxHeld: number
  defaultMaxHeld: number
  defaultHeldCapacity: number
  minHeldCapacity: number
  heldCapacityFactor: number
  defaultPairSlots: number
  minPairSlots: number
  maxPairSlots: number
  defaultQueueMaxLen: number
  maxQueueMaxLen: number
  maxCopyRange: number
  defaultCopyRange: number
  memoryBudgetBytes: number
  /** Bytes one queue preallocates per held slot, per pair slot, and besides those. */
  bytesPerHeldSlot: number
  bytesPerPairSlot: number
  bytesPerQueue: number
}

/** Counter names, label sets, help text and histogram bounds the metrics are built from. */
export const constants: NativeConstants = nativeTables.constants
/** Bounds shared with the data plane. */
export const limits: NativeLimits = nativeTables.limits
