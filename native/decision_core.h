// The data plane's decision core: given packets, policy swaps, the passing of time and stop, decides
// which verdict each packet gets and when, and emits the verdicts in decision order. No socket, no
// clock, no thread, no napi: the data plane feeds it events and sends what it emits, in that order;
// tests and the fuzzer (fuzz/core_fuzzer.cc) drive it in a plain process. Allocates only in Init.
#pragma once
#include <array>
#include <cstdint>
#include <memory>

#include "hold_heap.h"
#include "id_sequence.h"
#include "limits.h"
#include "pair_table.h"
#include "parse.h"
#include "stats.h"

namespace dns_shaper {

// A compiled policy, built in TS (src/dataplane/policy.ts) and copied in by the addon.
struct Policy {
  std::array<uint8_t, 65536> cls{};                     // QTYPE -> hold class (0 = accept)
  std::array<uint64_t, kMaxHoldClasses + 1> hold_ns{};  // class -> hold duration
  bool dry_run = false;
  bool pair_mode = false;
  uint64_t pair_window_ns = 0;
  uint32_t max_held = 0;
};

// What a verdict was, for the histograms: accepted on arrival (latency), released after a hold
// (hold), or released because the queue stopped (neither).
enum class VerdictKind : uint8_t { kImmediate, kHeld, kShutdown };

struct Verdict {
  uint32_t id;
  VerdictKind kind;
  uint64_t recv_ns;  // when the packet arrived
};

// Receives the verdicts in decision order. The data plane turns them into netlink messages.
class VerdictSink {
 public:
  virtual void Emit(const Verdict& v) = 0;
  // A fresh pair-table entry of another flow took this one's place (tests and the model use it).
  virtual void Evicted(uint64_t /*key*/) {}

 protected:
  ~VerdictSink() = default;
};

struct CoreOptions {
  uint32_t held_capacity = kDefaultHeldCapacity;  // upper bound for max_held over the core's life
  uint32_t pair_slots = kDefaultPairSlots;        // power of two
  uint32_t last_id = 0;  // the id before the first one expected: 0 for a freshly bound queue
};

class DecisionCore {
 public:
  DecisionCore(Stats* stats, VerdictSink* sink) : stats_(stats), sink_(sink) {}
  DecisionCore(const DecisionCore&) = delete;
  DecisionCore& operator=(const DecisionCore&) = delete;

  // Allocates everything the core will use. Returns 0 or -errno (-EINVAL for bad options).
  int Init(const CoreOptions& opts, std::unique_ptr<Policy> policy);
  // One queued packet, parsed, received at now_ns. Emits its verdict now, or holds it.
  void OnPacket(uint32_t id, const ParsedPacket& pp, uint64_t now_ns);
  // Counts the id (gap accounting) of a packet verdicted outside the core.
  void NoteId(uint32_t id);
  // A queued packet whose message could not be read (truncated, or attributes that did not parse)
  // but whose id could: accepted at once with no question, never counted as a malformed packet.
  void OnUnread(uint32_t id, uint64_t now_ns);
  // A queued-packet message without a readable id still took one id: the gap it leaves is not a
  // packet the kernel passed unshaped, so the next gap is not counted as bypassed for it.
  void OnNoId() { unread_ids_++; }
  // Takes a new policy; packets already held keep the deadline they were given.
  void SetPolicy(std::unique_ptr<Policy> policy);
  // Time has reached now_ns: releases every held packet whose deadline has passed.
  void Advance(uint64_t now_ns);
  // Releases everything held; from now on every packet is accepted at once.
  void Stop();
  // Earliest deadline of a held packet, 0 when nothing is held.
  uint64_t NextDeadline() const;
  int64_t Held() const { return heap_.Size(); }
  const Policy& policy() const { return *policy_; }

 private:
  void Emit(uint32_t id, uint64_t recv_ns, VerdictKind kind) { sink_->Emit(Verdict{id, kind, recv_ns}); }
  // Takes the held packet out of its flow's list and the heap, and emits its verdict.
  void Release(uint32_t slot, VerdictKind kind);
  void Unlink(uint32_t slot);
  PairEntry* PairCreate(uint64_t key, uint64_t now_ns);
  void PublishHeld();

  Stats* stats_;
  VerdictSink* sink_;
  CoreOptions opts_;
  std::unique_ptr<Policy> policy_;
  HoldHeap heap_;
  PairTable pairs_;
  uint64_t arrivals_ = 0;  // arrival number of the next held packet
  IdSequence ids_;
  uint64_t unread_ids_ = 0;  // messages without a readable id whose id gap is still to come
  bool stopping_ = false;
};

}  // namespace dns_shaper
