// Pair mode's flow table: flow key (addresses, ports, name) -> when its A was last accepted, and which
// held packets wait for it. Open addressing over a fixed, power-of-two slot array allocated once at
// start; a full probe window evicts the entry closest to expiry. Pure: no clock, no I/O, no stats.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace dns_shaper {

struct PairEntry {
  uint64_t key = 0;         // 0: never used
  uint64_t a_seen_ns = 0;   // last A of this flow accepted at (0: none)
  uint64_t expires_ns = 0;  // entry may be reused after this
  uint64_t held_seq[2] = {0, 0};
  uint8_t held_cls[2] = {0, 0};  // 0: slot empty
};

class PairTable {
 public:
  static constexpr int kProbe = 8;  // slots tried per key

  // slots: a power of two, at least kProbe. Allocates; call at start only.
  void Init(size_t slots) { slots_.assign(slots, PairEntry{}); }
  size_t Slots() const { return slots_.size(); }

  // The live entry for key, or nullptr.
  PairEntry* Find(uint64_t key, uint64_t now_ns) { return Lookup(key, now_ns, false, nullptr, nullptr); }
  // The live entry for key, or a fresh one; *evicted tells whether a live entry of another key
  // (*evicted_key) had to make room.
  PairEntry* FindOrCreate(uint64_t key, uint64_t now_ns, bool* evicted, uint64_t* evicted_key) {
    return Lookup(key, now_ns, true, evicted, evicted_key);
  }

 private:
  PairEntry* Lookup(uint64_t key, uint64_t now_ns, bool create, bool* evicted,
                    uint64_t* evicted_key = nullptr) {
    if (evicted) *evicted = false;
    size_t mask = slots_.size() - 1;
    PairEntry* free_slot = nullptr;
    PairEntry* oldest = nullptr;
    for (int i = 0; i < kProbe; i++) {
      PairEntry& e = slots_[(key + i) & mask];
      bool live = e.key != 0 && e.expires_ns > now_ns;
      if (e.key == key) {
        if (live) return &e;
        if (!create) return nullptr;
        e = PairEntry{};
        e.key = key;
        return &e;
      }
      if (!live && !free_slot) free_slot = &e;
      if (!oldest || e.expires_ns < oldest->expires_ns) oldest = &e;
    }
    if (!create) return nullptr;
    PairEntry* e = free_slot;
    if (!e) {
      // Every probed entry is still fresh: evict the one closest to expiry. Its held packets still
      // leave at their deadline; only the early release is lost.
      if (evicted) *evicted = true;
      if (evicted_key) *evicted_key = oldest->key;
      e = oldest;
    }
    *e = PairEntry{};
    e->key = key;
    return e;
  }

  std::vector<PairEntry> slots_;
};

}  // namespace dns_shaper
