// Bounds shared with the data plane, re-exported typed from the build-time tables (defined once in native/limits.h).
// Config validation and policy compilation import them from here; nothing here reads config or state.
import { limits } from './constants.js'

/** Distinct hold durations a policy may use (the data plane keeps one hold class per duration). */
export const MAX_HOLD_CLASSES: number = limits.maxHoldClasses
/** Longest hold per QTYPE, in milliseconds. */
export const MAX_HOLD_MS: number = limits.maxHoldMs
/** Longest pair window, in milliseconds. */
export const MAX_PAIR_WINDOW_MS: number = limits.maxPairWindowMs
/** Upper bound of --max-held (packets one queue holds at once). */
export const MAX_HELD: number = limits.maxHeld
export const DEFAULT_MAX_HELD: number = limits.defaultMaxHeld
/** Pair-table slots per queue: default and bounds (a power of two). */
export const DEFAULT_PAIR_SLOTS: number = limits.defaultPairSlots
export const MIN_PAIR_SLOTS: number = limits.minPairSlots
export const MAX_PAIR_SLOTS: number = limits.maxPairSlots
/** Worst-case preallocation of all queues together that a config may ask for, in bytes. */
export const MEMORY_BUDGET_BYTES: number = limits.memoryBudgetBytes

/** Held-packet slots preallocated per queue for a --max-held: room to raise it by reload, bounded. */
export function heldCapacity(maxHeld: number): number {
  return Math.min(limits.maxHeld, Math.max(limits.minHeldCapacity, maxHeld * limits.heldCapacityFactor))
}

/**
 * Worst-case bytes the data planes preallocate at start for this many queues (held slots, pair
 * slots, receive and send buffers); config load rejects a config above MEMORY_BUDGET_BYTES.
 */
export function preallocatedBytes(queues: number, maxHeld: number, pairSlots: number = DEFAULT_PAIR_SLOTS): number {
  const perQueue =
    heldCapacity(maxHeld) * limits.bytesPerHeldSlot + pairSlots * limits.bytesPerPairSlot + limits.bytesPerQueue
  return queues * perQueue
}
