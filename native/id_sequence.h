// Packet-id gap accounting. The kernel numbers a queue's packets ++id_sequence (u32) as it hands them
// to the socket, under the queue lock, so ids reach us in order; one that could not be delivered
// (socket full) still takes its number and FAIL_OPEN passes it, which shows here as a gap. The first
// id of a fresh queue is 1; after 0xFFFFFFFF comes 0, a valid id like any other. Pure, no I/O.
#pragma once
#include <cstdint>

namespace dns_shaper {

class IdSequence {
 public:
  // last: the id before the first one expected (0 for a freshly bound queue).
  explicit IdSequence(uint32_t last = 0) : last_(last) {}
  // Returns how many ids were skipped right before this one. Serial-number arithmetic (RFC 1982,
  // 32 bits): an id up to 2^31 - 1 ahead is newer, anything else is a duplicate or a stale one,
  // counted as no gap and not taken as the new last.
  uint32_t Next(uint32_t id) {
    uint32_t delta = id - last_;
    if (delta == 0 || delta >= 0x80000000u) return 0;
    last_ = id;
    return delta - 1;
  }
  uint32_t last() const { return last_; }

 private:
  uint32_t last_;
};

}  // namespace dns_shaper
