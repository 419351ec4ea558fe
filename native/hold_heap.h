// Held packets ordered by deadline: a fixed pool of slots and an indexed binary min-heap over them,
// keyed (deadline, arrival). One heap for every hold class, so a packet leaves at its own deadline
// whatever the policy was when the others were held (a FIFO per class cannot stay ordered across a
// reload that shortens or reorders the holds). Any entry can be removed (pair mode releases early).
// Allocates only in Init; pure: no clock, no I/O.
#pragma once
#include <cstdint>
#include <memory>

namespace dns_shaper {

constexpr uint32_t kNoSlot = 0xFFFFFFFFu;

struct HeldPacket {
  uint64_t recv_ns;      // CLOCK_MONOTONIC when the data plane received it
  uint64_t deadline_ns;  // release no earlier than this
  uint64_t order;        // arrival number: equal deadlines leave in arrival order
  uint32_t id;           // NFQUEUE packet id
  uint32_t heap_pos;     // index in the heap array
  uint32_t pair;         // pair-table slot listing this packet, kNoSlot if none
  uint32_t flow_prev;    // neighbours in that slot's list of held packets
  uint32_t flow_next;
  uint8_t qlabel;  // metrics label index
};

class HoldHeap {
 public:
  // Bytes one slot of capacity preallocates (for the memory budget).
  static constexpr size_t kBytesPerSlot = sizeof(HeldPacket) + 2 * sizeof(uint32_t);

  // The pool is allocated with new[] and no initialiser, and handed out in index order (freed slots
  // first, then never-used ones): a large pool comes from mmap as untouched pages, so a slot takes
  // resident memory only once a packet has been held in it. (Filling it at Init kept 2.2 MiB resident
  // in an idle daemon at the default --max-held.)
  void Init(uint32_t capacity) {
    slots_.reset(new HeldPacket[capacity]);
    heap_.reset(new uint32_t[capacity]);
    free_.reset(new uint32_t[capacity]);
    capacity_ = capacity;
    fresh_ = 0;
    free_top_ = 0;
    size_ = 0;
  }
  uint32_t Capacity() const { return capacity_; }
  uint32_t Size() const { return size_; }
  bool Empty() const { return size_ == 0; }
  bool Full() const { return size_ == capacity_; }
  HeldPacket& At(uint32_t slot) { return slots_[slot]; }
  const HeldPacket& At(uint32_t slot) const { return slots_[slot]; }
  // The slot with the earliest (deadline, arrival), or kNoSlot.
  uint32_t Top() const { return size_ ? heap_[0] : kNoSlot; }

  // Adds p (not when Full()); returns its slot.
  uint32_t Push(const HeldPacket& p) {
    uint32_t s = free_top_ ? free_[--free_top_] : fresh_++;
    slots_[s] = p;
    heap_[size_] = s;
    slots_[s].heap_pos = size_;
    size_++;
    SiftUp(size_ - 1);
    return s;
  }
  // Removes the packet in this slot and frees the slot.
  void Remove(uint32_t slot) {
    uint32_t pos = slots_[slot].heap_pos;
    size_--;
    if (pos != size_) {
      Place(pos, heap_[size_]);
      SiftDown(pos);
      SiftUp(pos);
    }
    free_[free_top_++] = slot;
  }

 private:
  bool Before(uint32_t a, uint32_t b) const {
    const HeldPacket& x = slots_[a];
    const HeldPacket& y = slots_[b];
    return x.deadline_ns != y.deadline_ns ? x.deadline_ns < y.deadline_ns : x.order < y.order;
  }
  void Place(uint32_t pos, uint32_t slot) {
    heap_[pos] = slot;
    slots_[slot].heap_pos = pos;
  }
  void SiftUp(uint32_t pos) {
    uint32_t s = heap_[pos];
    while (pos > 0) {
      uint32_t parent = (pos - 1) / 2;
      if (!Before(s, heap_[parent])) break;
      Place(pos, heap_[parent]);
      pos = parent;
    }
    Place(pos, s);
  }
  void SiftDown(uint32_t pos) {
    uint32_t s = heap_[pos];
    for (;;) {
      uint32_t child = 2 * pos + 1;
      if (child >= size_) break;
      if (child + 1 < size_ && Before(heap_[child + 1], heap_[child])) child++;
      if (!Before(heap_[child], s)) break;
      Place(pos, heap_[child]);
      pos = child;
    }
    Place(pos, s);
  }

  std::unique_ptr<HeldPacket[]> slots_;
  std::unique_ptr<uint32_t[]> heap_;  // slot indices, a binary min-heap by (deadline, order)
  std::unique_ptr<uint32_t[]> free_;  // freed slots: free_[0, free_top_)
  uint32_t capacity_ = 0;
  uint32_t fresh_ = 0;  // slots [fresh_, capacity_) have never been used
  uint32_t free_top_ = 0;
  uint32_t size_ = 0;
};

}  // namespace dns_shaper
