// Pair mode's flow table: flow key (addresses, ports, name) -> when its A was last accepted, and the
// list of held packets waiting for it. Open addressing over a fixed, power-of-two slot array
// allocated once at start; a full probe window evicts the entry closest to expiry. Pure: no clock,
// no I/O, no stats. The held packets themselves live in the HoldHeap; the caller links them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "hold_heap.h"

namespace dns_shaper {

struct PairEntry {
  uint64_t key = 0;              // 0: never used
  uint64_t a_seen_ns = 0;        // last A of this flow accepted at (0: none)
  uint64_t expires_ns = 0;       // without held packets, the entry may be reused after this
  uint32_t held_head = kNoSlot;  // held packets of this flow, in arrival order (HoldHeap slots)
  uint32_t held_tail = kNoSlot;
  bool Live(uint64_t now_ns) const { return key != 0 && (expires_ns > now_ns || held_head != kNoSlot); }
};

class PairTable {
 public:
  static constexpr int kProbe = 8;  // slots tried per key
  static constexpr size_t kBytesPerSlot = sizeof(PairEntry);

  // slots: a power of two, at least kProbe. Allocates; call at start only.
  void Init(size_t slots) { slots_.assign(slots, PairEntry{}); }
  size_t Slots() const { return slots_.size(); }
  PairEntry& At(uint32_t index) { return slots_[index]; }
  uint32_t IndexOf(const PairEntry* e) const { return static_cast<uint32_t>(e - slots_.data()); }

  // The live entry for key, or nullptr.
  PairEntry* Find(uint64_t key, uint64_t now_ns) {
    size_t mask = slots_.size() - 1;
    for (int i = 0; i < kProbe; i++) {
      PairEntry& e = slots_[(key + i) & mask];
      if (e.key == key) return e.Live(now_ns) ? &e : nullptr;
    }
    return nullptr;
  }

  // The live entry for key, or a fresh one. When a live entry of another key has to make room,
  // evict(entry) runs first so the caller can detach its held packets; the entry is then reset.
  template <typename Evict>
  PairEntry* FindOrCreate(uint64_t key, uint64_t now_ns, Evict&& evict) {
    size_t mask = slots_.size() - 1;
    PairEntry* free_slot = nullptr;
    PairEntry* oldest = nullptr;
    for (int i = 0; i < kProbe; i++) {
      PairEntry& e = slots_[(key + i) & mask];
      bool live = e.Live(now_ns);
      if (e.key == key) {
        if (live) return &e;
        e = PairEntry{};  // expired and holding nothing: start over
        e.key = key;
        return &e;
      }
      if (!live && !free_slot) free_slot = &e;
      if (!oldest || e.expires_ns < oldest->expires_ns) oldest = &e;
    }
    PairEntry* e = free_slot;
    if (!e) {
      // Every probed entry is still fresh: evict the one closest to expiry. Its held packets still
      // leave at their deadline; only the early release is lost.
      evict(*oldest);
      e = oldest;
    }
    *e = PairEntry{};
    e->key = key;
    return e;
  }

 private:
  std::vector<PairEntry> slots_;
};

}  // namespace dns_shaper
