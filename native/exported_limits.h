// The bounds TS reads, as one X-macro list (TS name, value): the addon's `limits` export and the
// build-time emitter (native_data.cc) both expand it, so neither can leave one out. Names only.
#pragma once
#include "dataplane.h"
#include "hold_heap.h"
#include "limits.h"
#include "pair_table.h"

// clang-format off
#define DNS_SHAPER_EXPORTED_LIMITS(X) \
  X(maxHoldClasses, kMaxHoldClasses) \
  X(maxHoldMs, kMaxHoldMs) \
  X(maxPairWindowMs, kMaxPairWindowMs) \
  X(maxHeld, kMaxHeld) \
  X(defaultMaxHeld, kDefaultMaxHeld) \
  X(defaultHeldCapacity, kDefaultHeldCapacity) \
  X(minHeldCapacity, kMinHeldCapacity) \
  X(heldCapacityFactor, kHeldCapacityFactor) \
  X(defaultPairSlots, kDefaultPairSlots) \
  X(minPairSlots, kMinPairSlots) \
  X(maxPairSlots, kMaxPairSlots) \
  X(defaultQueueMaxLen, kDefaultQueueMaxLen) \
  X(maxQueueMaxLen, kMaxQueueMaxLen) \
  X(maxCopyRange, kMaxCopyRange) \
  X(defaultCopyRange, kDefaultCopyRange) \
  X(memoryBudgetBytes, kMemoryBudgetBytes) \
  /* What one queue preallocates at start, per held slot, per pair slot and besides those. */ \
  X(bytesPerHeldSlot, HoldHeap::kBytesPerSlot) \
  X(bytesPerPairSlot, PairTable::kBytesPerSlot) \
  X(bytesPerQueue, kQueueFixedBytes)
// clang-format on
