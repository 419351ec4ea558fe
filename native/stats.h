// Data-plane counters: relaxed atomics written by the data-plane thread only, read by JS on scrape.
// Every counter and label value is listed here once; the names are exported so TS never re-spells them.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "parse.h"

namespace dns_shaper {

// Actions a packet can meet. "bypassed" is counted from gaps in packet ids (the kernel let them pass).
#define DNS_SHAPER_ACTIONS(X) \
  X(kAccepted, "accepted") X(kHeld, "held") X(kBypassed, "bypassed") X(kMalformed, "malformed")
enum Action : uint8_t {
#define X(id, name) id,
  DNS_SHAPER_ACTIONS(X)
#undef X
      kActionCount
};

// QTYPE label values: a fixed set keeps the metric's cardinality bounded.
// clang-format off
#define DNS_SHAPER_QTYPE_LABELS(X) \
  X(1, "A") X(2, "NS") X(5, "CNAME") X(6, "SOA") X(12, "PTR") X(15, "MX") X(16, "TXT") X(28, "AAAA") \
  X(33, "SRV") X(64, "SVCB") X(65, "HTTPS") X(255, "ANY")
// clang-format on
constexpr size_t kQtypeKnown = 12;
constexpr size_t kQtypeOther = kQtypeKnown;     // a query of a type not listed
constexpr size_t kQtypeNone = kQtypeKnown + 1;  // no question: responses, QDCOUNT=0, non-DNS
constexpr size_t kQtypeLabelCount = kQtypeKnown + 2;

inline size_t QtypeLabel(uint16_t qtype) {
  switch (qtype) {
    case 1:
      return 0;
    case 2:
      return 1;
    case 5:
      return 2;
    case 6:
      return 3;
    case 12:
      return 4;
    case 15:
      return 5;
    case 16:
      return 6;
    case 28:
      return 7;
    case 33:
      return 8;
    case 64:
      return 9;
    case 65:
      return 10;
    case 255:
      return 11;
    default:
      return kQtypeOther;
  }
}

// Plain counters, exported under these names (snake_case, no unit suffix: TS adds the metric names)
// with their help text, so the metric's help is written once, here.
// clang-format off
#define DNS_SHAPER_COUNTERS(X) \
  X(held_overflow, "Packets of a held type accepted at once because --max-held packets were already held.") \
  X(dry_run_matches, "Packets of a held type seen in dry-run mode (accepted, not held).") \
  X(pair_released, "Held packets released right behind the A query of their flow (pair mode).") \
  X(deadline_released, "Held packets released when their hold time ended.") \
  X(shutdown_released, "Held packets accepted early because the queue was stopping.") \
  X(pair_evictions, "Pair-table entries evicted while still fresh (table too small for the load).") \
  X(verdict_errors, "Verdicts the kernel refused, held packets it had dropped excepted (those are held_flushed).") \
  X(held_flushed, "Held packets the kernel dropped before their verdict (the verdict came back ENOENT): it drops every queued packet when any netfilter hook in the namespace is unregistered (a base chain deleted, rules removed on nft), and those of an interface that goes down.") \
  X(send_errors, "Failed sends of a verdict batch to the kernel (each attempt counted; the batch is kept and resent within the thread's retry budget).") \
  X(send_give_ups, "Times a data-plane thread gave up on its socket because sends kept failing past its retry budget (~2 s); it then stops its queue after one bounded final attempt.") \
  X(verdicts_unsent, "Decided verdicts never sent because the socket kept failing, and every verdict decided after one of them (order: a flow's A before its AAAA). The kernel drops those packets when the queue is unbound.") \
  X(recv_errors, "Failed receives from the queue socket.") \
  X(msg_truncated, "Queued-packet messages cut short by the receive slot (accepted at once, unshaped, counted as packets accepted with qtype none).") \
  X(msg_unparsable, "Queued-packet messages whose netlink attributes did not parse (accepted at once, unshaped, counted as packets accepted with qtype none).") \
  X(msg_no_id, "Queued-packet messages without a readable packet id (no verdict possible: the kernel keeps the packet until unbind; not counted in packets).") \
  X(enobufs, "Receive-buffer overruns reported by the socket.") \
  X(drains, "Receive batches that carried at least one packet.") \
  X(verdict_batches, "Verdict batches sent (one syscall each).") \
  X(policy_updates, "Policy tables taken by the data plane (start excluded).")

// Help text of the other series the native stats feed (name -> help), exported as `help`.
#define DNS_SHAPER_SERIES_HELP(X) \
  X(packets, "Packets seen on the queue, by what was done with them and by QTYPE (none: no question; other: an unlisted type).") \
  X(parse_failures, "Packets that were not a parseable DNS query over UDP, by reason (accepted at once).") \
  X(hold, "Actual hold of held packets, from receipt to verdict.") \
  X(latency, "Receipt-to-verdict time of packets accepted at once.") \
  X(held_now, "Packets held right now.") \
  X(held_max, "Most packets held at once since start (per-queue peaks summed: an upper bound with several queues).") \
  X(running, "Data-plane threads running with their queue bound, by queue.")
// clang-format on

// Every qtype label value in order, "other" and "none" included (the stats rows, the metric labels).
inline const char* const* PacketLabelNames() {
  static const char* const kNames[] = {
#define X(num, name) name,
      DNS_SHAPER_QTYPE_LABELS(X)
#undef X
          "other",
      "none"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == kQtypeLabelCount,
                "label table and kQtypeLabelCount agree");
  return kNames;
}

inline const char* const* ActionNames() {
  static const char* const kNames[] = {
#define X(id, name) name,
      DNS_SHAPER_ACTIONS(X)
#undef X
  };
  return kNames;
}

// Histogram bucket upper bounds in nanoseconds (+Inf implied).
constexpr uint64_t kHoldBucketsNs[] = {500000,   1000000,  2000000,  3000000,   4000000,   5000000,
                                       5250000,  5500000,  6000000,  7000000,   8000000,   10000000,
                                       15000000, 20000000, 50000000, 100000000, 250000000, 1000000000};
constexpr uint64_t kLatencyBucketsNs[] = {5000,   10000,   25000,   50000,   100000,  250000,
                                          500000, 1000000, 2500000, 5000000, 10000000};
constexpr size_t kHoldBucketCount = sizeof(kHoldBucketsNs) / sizeof(kHoldBucketsNs[0]);
constexpr size_t kLatencyBucketCount = sizeof(kLatencyBucketsNs) / sizeof(kLatencyBucketsNs[0]);

// No count of its own: the count is the sum of the buckets, read with them, so a scrape's _count can
// never differ from its +Inf bucket.
template <size_t N>
struct Histogram {
  const uint64_t* bounds;
  std::atomic<uint64_t> buckets[N + 1];  // non-cumulative; last is +Inf
  std::atomic<uint64_t> sum_ns;
  explicit Histogram(const uint64_t* b) : bounds(b), sum_ns(0) {
    for (auto& x : buckets) x.store(0, std::memory_order_relaxed);
  }
  void Observe(uint64_t ns) {
    size_t i = 0;
    while (i < N && ns > bounds[i]) i++;
    buckets[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns.fetch_add(ns, std::memory_order_relaxed);
  }
};

struct Stats {
  std::atomic<uint64_t> packets[kActionCount][kQtypeLabelCount];
  std::atomic<uint64_t> parse_failures[static_cast<size_t>(ParseReason::kCount)];
#define X(name, help) std::atomic<uint64_t> name{0};
  DNS_SHAPER_COUNTERS(X)
#undef X
  std::atomic<int64_t> held_now{0};
  std::atomic<int64_t> held_max{0};
  std::atomic<bool> running{false};
  Histogram<kHoldBucketCount> hold{kHoldBucketsNs};
  Histogram<kLatencyBucketCount> latency{kLatencyBucketsNs};

  Stats() {
    for (auto& row : packets)
      for (auto& c : row) c.store(0, std::memory_order_relaxed);
    for (auto& c : parse_failures) c.store(0, std::memory_order_relaxed);
  }
  static void Inc(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
};

}  // namespace dns_shaper
