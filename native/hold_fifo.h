// Fixed-capacity FIFO of held packet ids with their deadlines. One FIFO per hold duration keeps each
// FIFO ordered by deadline, so the earliest deadline is always at a head. Never allocates after Init.
#pragma once
#include <cstdint>
#include <vector>

namespace dns_shaper {

struct HeldPacket {
  uint64_t seq;          // position in this FIFO since start; lets the pair table refer to entries safely
  uint64_t recv_ns;      // CLOCK_MONOTONIC when the data plane received it
  uint64_t deadline_ns;  // release no earlier than this
  uint64_t key;          // pair-mode flow key
  uint32_t id;           // NFQUEUE packet id
  uint8_t qlabel;        // metrics label index
  bool released;         // released early (pair mode); skipped when it reaches the head
};

class HoldFifo {
 public:
  void Init(size_t capacity) {
    size_t c = 1;
    while (c < capacity) c <<= 1;
    ring_.assign(c, HeldPacket{});
    mask_ = c - 1;
  }
  size_t Capacity() const { return ring_.size(); }
  bool Full() const { return !ring_.empty() && tail_ - head_ > mask_; }
  bool Empty() const { return head_ == tail_; }
  // Returns the entry's sequence number.
  uint64_t Push(const HeldPacket& p) {
    HeldPacket& slot = ring_[tail_ & mask_];
    slot = p;
    slot.seq = tail_;
    slot.released = false;
    return tail_++;
  }
  HeldPacket& Front() { return ring_[head_ & mask_]; }
  void Pop() { head_++; }
  // The live entry with this sequence number, or nullptr if it already left the FIFO.
  HeldPacket* Find(uint64_t seq) {
    if (seq < head_ || seq >= tail_) return nullptr;
    HeldPacket& p = ring_[seq & mask_];
    return p.seq == seq ? &p : nullptr;
  }

 private:
  std::vector<HeldPacket> ring_;
  size_t mask_ = 0;
  uint64_t head_ = 0, tail_ = 0;
};

}  // namespace dns_shaper
