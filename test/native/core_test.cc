// Unit tests of the decision core and the pair table, in a plain process: no root, no netns, no
// socket. Built and run by test/native/units.ts (with ASan+UBSan when available).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "../../native/decision_core.h"
#include "../../native/pair_table.h"
#include "unit.h"

using namespace dns_shaper;

namespace {

constexpr uint64_t kMs = 1000000;
constexpr uint16_t kA = 1, kAAAA = 28, kHTTPS = 65;

struct Recorder : VerdictSink {
  std::vector<Verdict> out;
  std::vector<uint64_t> evicted;
  void Emit(const Verdict& v) override { out.push_back(v); }
  void Evicted(uint64_t key) override { evicted.push_back(key); }
  std::vector<uint32_t> Ids() const {
    std::vector<uint32_t> ids;
    for (const Verdict& v : out) ids.push_back(v.id);
    return ids;
  }
};

// holds: {qtype, ms} pairs in class order.
std::unique_ptr<Policy> MakePolicy(std::vector<std::pair<uint16_t, double>> holds, bool pair = false,
                                   double window_ms = 5, uint32_t max_held = 1000) {
  auto p = std::make_unique<Policy>();
  uint8_t cls = 0;
  std::vector<double> seen;
  for (auto [q, ms] : holds) {
    size_t c = 0;
    for (size_t i = 0; i < seen.size(); i++)
      if (seen[i] == ms) c = i + 1;
    if (!c) {
      seen.push_back(ms);
      c = ++cls;
      p->hold_ns[c] = static_cast<uint64_t>(ms * kMs);
    }
    p->cls[q] = static_cast<uint8_t>(c);
  }
  p->pair_mode = pair;
  p->pair_window_ns = static_cast<uint64_t>(window_ms * kMs);
  p->max_held = max_held;
  return p;
}

ParsedPacket Query(uint16_t qtype, uint64_t flow) {
  ParsedPacket pp{};
  pp.kind = PacketKind::kQuery;
  pp.reason = ParseReason::kNone;
  pp.qtype = qtype;
  pp.flow_hash = flow;
  return pp;
}

struct Fixture {
  Stats stats;
  Recorder rec;
  DecisionCore core{&stats, &rec};
  explicit Fixture(std::unique_ptr<Policy> p, uint32_t capacity = 4096, uint32_t pair_slots = 4096) {
    CoreOptions o;
    o.held_capacity = capacity;
    o.pair_slots = pair_slots;
    int r = core.Init(o, std::move(p));
    EXPECT_EQ(r, 0);
  }
  void Pkt(uint32_t id, uint16_t qtype, uint64_t flow, uint64_t t) {
    core.OnPacket(id, Query(qtype, flow), t);
  }
  uint64_t Bypassed() { return stats.packets[kBypassed][kQtypeNone].load(); }
};

}  // namespace

// ---- fixed mode -------------------------------------------------------------------------------

CASE("fixed: a held AAAA leaves at its deadline, not before; A passes at once") {
  Fixture f(MakePolicy({{kAAAA, 5}}));
  f.Pkt(1, kAAAA, 7, 0);
  f.Pkt(2, kA, 7, 1 * kMs);
  EXPECT_EQ(f.rec.out.size(), 1u);
  EXPECT_EQ(f.rec.out[0].id, 2u);
  EXPECT(f.rec.out[0].kind == VerdictKind::kImmediate);
  EXPECT_EQ(f.core.NextDeadline(), 5 * kMs);
  f.core.Advance(5 * kMs - 1);
  EXPECT_EQ(f.rec.out.size(), 1u);
  f.core.Advance(5 * kMs);
  EXPECT_EQ(f.rec.out.size(), 2u);
  EXPECT_EQ(f.rec.out[1].id, 1u);
  EXPECT(f.rec.out[1].kind == VerdictKind::kHeld);
  EXPECT_EQ(f.rec.out[1].recv_ns, 0u);
  EXPECT_EQ(f.stats.deadline_released.load(), 1u);
  EXPECT_EQ(f.core.Held(), 0);
  EXPECT_EQ(f.core.NextDeadline(), 0u);
}

CASE("fixed: non-queries and malformed packets pass at once and are counted") {
  Fixture f(MakePolicy({{kAAAA, 5}}));
  ParsedPacket bad{};
  bad.kind = PacketKind::kMalformed;
  bad.reason = ParseReason::kLabel;
  f.core.OnPacket(1, bad, 0);
  ParsedPacket resp{};
  resp.kind = PacketKind::kNotQuery;
  resp.qtype = kAAAA;
  f.core.OnPacket(2, resp, 0);
  EXPECT_EQ(f.rec.out.size(), 2u);
  EXPECT_EQ(f.stats.packets[kMalformed][kQtypeNone].load(), 1u);
  EXPECT_EQ(f.stats.parse_failures[static_cast<size_t>(ParseReason::kLabel)].load(), 1u);
  EXPECT_EQ(f.stats.packets[kAccepted][QtypeLabel(kAAAA)].load(), 1u);
}

CASE("max-held: past the cap a held type passes at once, counted as overflow") {
  Fixture f(MakePolicy({{kAAAA, 5}}, false, 5, 2));
  f.Pkt(1, kAAAA, 1, 0);
  f.Pkt(2, kAAAA, 2, 0);
  f.Pkt(3, kAAAA, 3, 0);
  EXPECT_EQ(f.core.Held(), 2);
  EXPECT_EQ(f.rec.Ids(), (std::vector<uint32_t>{3}));
  EXPECT_EQ(f.stats.held_overflow.load(), 1u);
  EXPECT_EQ(f.stats.held_max.load(), 2);
}

CASE("dry run: a held type is counted, not held") {
  auto p = MakePolicy({{kAAAA, 5}});
  p->dry_run = true;
  Fixture f(std::move(p));
  f.Pkt(1, kAAAA, 1, 0);
  EXPECT_EQ(f.rec.out.size(), 1u);
  EXPECT_EQ(f.stats.dry_run_matches.load(), 1u);
  EXPECT_EQ(f.core.Held(), 0);
}

CASE("stop releases everything held, in deadline order, then accepts all at once") {
  Fixture f(MakePolicy({{kAAAA, 10}, {kHTTPS, 50}}));
  f.Pkt(2, kHTTPS, 2, 0);
  f.Pkt(1, kAAAA, 1, 0);
  f.core.Stop();
  EXPECT_EQ(f.rec.Ids(), (std::vector<uint32_t>{1, 2}));
  for (const Verdict& v : f.rec.out) EXPECT(v.kind == VerdictKind::kShutdown);
  EXPECT_EQ(f.stats.shutdown_released.load(), 2u);
  f.Pkt(3, kAAAA, 1, kMs);
  EXPECT_EQ(f.rec.out.size(), 3u);
  EXPECT(f.rec.out[2].kind == VerdictKind::kImmediate);
  EXPECT_EQ(f.core.Held(), 0);
}

CASE("pair: an AAAA arriving before its A is held, then released right behind the A") {
  Fixture f(MakePolicy({{kAAAA, 1000}}, true, 5));
  f.Pkt(1, kAAAA, 42, 0);
  EXPECT_EQ(f.rec.out.size(), 0u);
  f.Pkt(2, kA, 42, 2 * kMs);
  EXPECT_EQ(f.rec.Ids(), (std::vector<uint32_t>{2, 1}));
  EXPECT(f.rec.out[1].kind == VerdictKind::kHeld);
  EXPECT_EQ(f.stats.pair_released.load(), 1u);
  EXPECT_EQ(f.core.Held(), 0);
  f.core.Advance(2000 * kMs);
  EXPECT_EQ(f.rec.out.size(), 2u);
}

CASE("pair: a third held packet in one flow is released by the A too, in arrival order") {
  Fixture f(MakePolicy({{kAAAA, 1000}, {kHTTPS, 1000}}, true, 5));
  f.Pkt(1, kAAAA, 42, 0);
  f.Pkt(2, kHTTPS, 42, 1 * kMs);
  f.Pkt(3, kAAAA, 42, 2 * kMs);  // a retransmission on the same socket
  EXPECT_EQ(f.core.Held(), 3);
  f.Pkt(4, kA, 42, 3 * kMs);
  EXPECT_EQ(f.rec.Ids(), (std::vector<uint32_t>{4, 1, 2, 3}));
  EXPECT_EQ(f.stats.pair_released.load(), 3u);
  EXPECT_EQ(f.core.Held(), 0);
}

CASE("pair: a held packet released at its deadline is forgotten by its flow") {
  Fixture f(MakePolicy({{kAAAA, 10}}, true, 5));
  f.Pkt(1, kAAAA, 42, 0);
  f.core.Advance(10 * kMs);
  f.Pkt(2, kAAAA, 42, 11 * kMs);
  f.Pkt(3, kA, 42, 12 * kMs);
  EXPECT_EQ(f.rec.Ids(), (std::vector<uint32_t>{1, 3, 2}));
  EXPECT_EQ(f.stats.deadline_released.load(), 1u);
  EXPECT_EQ(f.stats.pair_released.load(), 1u);
}

CASE("release counters count a held packet before its verdict can leave (a full batch is sent in Emit)") {
  // What a sink sees of the counters at the moment each verdict is handed to it: a client that has
  // its answer must find it counted, even if the thread stops right after the send.
  struct Seen : VerdictSink {
    const Stats* stats = nullptr;
    std::vector<uint64_t> pair, deadline, shutdown;
    void Emit(const Verdict&) override {
      pair.push_back(stats->pair_released.load());
      deadline.push_back(stats->deadline_released.load());
      shutdown.push_back(stats->shutdown_released.load());
    }
  };
  Stats stats;
  Seen seen;
  seen.stats = &stats;
  DecisionCore core{&stats, &seen};
  CoreOptions o;
  EXPECT_EQ(core.Init(o, MakePolicy({{kAAAA, 10}}, true, 5)), 0);
  core.OnPacket(1, Query(kAAAA, 42), 0);
  core.OnPacket(2, Query(kA, 42), kMs);  // emits A (id 2), then the AAAA released by it
  EXPECT_EQ(seen.pair.size(), 2u);
  EXPECT_EQ(seen.pair[1], 1u);
  core.OnPacket(3, Query(kAAAA, 43), 2 * kMs);
  core.Advance(12 * kMs);  // its deadline
  EXPECT_EQ(seen.deadline.back(), 1u);
  core.OnPacket(4, Query(kAAAA, 44), 13 * kMs);
  core.Stop();
  EXPECT_EQ(seen.shutdown.back(), 1u);
}

CASE("pair: an A of another flow releases nothing") {
  Fixture f(MakePolicy({{kAAAA, 1000}}, true, 5));
  f.Pkt(1, kAAAA, 42, 0);
  f.Pkt(2, kA, 43, kMs);
  EXPECT_EQ(f.rec.Ids(), (std::vector<uint32_t>{2}));
  f.core.Advance(1000 * kMs);
  EXPECT_EQ(f.rec.Ids(), (std::vector<uint32_t>{2, 1}));
}

CASE("pair: window boundary is inclusive: AAAA at A + window passes, at A + window + 1 ns is held") {
  Fixture f(MakePolicy({{kAAAA, 1000}}, true, 5));
  f.Pkt(1, kA, 9, 10 * kMs);
  f.Pkt(2, kAAAA, 9, 15 * kMs);
  EXPECT_EQ(f.rec.Ids(), (std::vector<uint32_t>{1, 2}));
  EXPECT(f.rec.out[1].kind == VerdictKind::kHeld);
  f.Pkt(3, kA, 8, 10 * kMs);
  f.Pkt(4, kAAAA, 8, 15 * kMs + 1);
  EXPECT_EQ(f.rec.Ids(), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(f.core.Held(), 1);
}

CASE("pair: window 0 passes an AAAA of the same instant as its A") {
  Fixture f(MakePolicy({{kAAAA, 1000}}, true, 0));
  f.Pkt(1, kA, 9, 10 * kMs);
  f.Pkt(2, kAAAA, 9, 10 * kMs);
  EXPECT_EQ(f.rec.Ids(), (std::vector<uint32_t>{1, 2}));
  f.Pkt(3, kAAAA, 9, 10 * kMs + 1);
  EXPECT_EQ(f.core.Held(), 1);
}

CASE("pair table: eviction takes the entry closest to expiry; its held packet still leaves at its deadline") {
  // 16 slots, probe 8: keys 16, 32, ... 144 all start at slot 0, so the ninth live key must evict.
  Fixture f(MakePolicy({{kAAAA, 100}}, true, 5), 4096, 16);
  for (uint32_t i = 1; i <= 8; i++) f.Pkt(i, kAAAA, 16 * i, i * kMs);  // deadlines 101..108 ms
  EXPECT_EQ(f.stats.pair_evictions.load(), 0u);
  f.Pkt(9, kAAAA, 16 * 9, 9 * kMs);
  EXPECT_EQ(f.stats.pair_evictions.load(), 1u);
  EXPECT_EQ(f.rec.evicted.size(), 1u);
  if (!f.rec.evicted.empty()) EXPECT_EQ(f.rec.evicted[0], 16u);  // the earliest deadline
  f.Pkt(10, kA, 32, 10 * kMs);                                   // a kept flow's A still releases its AAAA
  EXPECT_EQ(f.rec.Ids(), (std::vector<uint32_t>{10, 2}));
  f.Pkt(11, kA, 16, 11 * kMs);  // the evicted flow's A: its AAAA is no longer known
  EXPECT_EQ(f.rec.Ids(), (std::vector<uint32_t>{10, 2, 11}));
  f.core.Advance(101 * kMs);
  EXPECT_EQ(f.rec.Ids(), (std::vector<uint32_t>{10, 2, 11, 1}));
  EXPECT_EQ(f.stats.deadline_released.load(), 1u);
}

CASE("pair table: Find sees only live entries; an expired slot is reused without eviction") {
  PairTable t;
  t.Init(16);
  std::vector<uint64_t> evicted;
  auto ev = [&](PairEntry& e) { evicted.push_back(e.key); };
  PairEntry* e = t.FindOrCreate(5, 0, ev);
  e->expires_ns = 10;
  EXPECT(t.Find(5, 9) == e);
  EXPECT(t.Find(5, 10) == nullptr);
  EXPECT(t.Find(6, 0) == nullptr);
  for (uint64_t k = 1; k <= 8; k++) {
    PairEntry* x = t.FindOrCreate(16 * k + 5, 20, ev);  // the expired entry of key 5, then empty slots
    x->expires_ns = 100 + k;
  }
  EXPECT(evicted.empty());
  PairEntry* y = t.FindOrCreate(16 * 9 + 5, 20, ev);
  EXPECT_EQ(evicted, (std::vector<uint64_t>{16 + 5}));
  y->expires_ns = 200;
  EXPECT(t.Find(16 * 9 + 5, 20) == y);
  EXPECT(t.Find(16 + 5, 20) == nullptr);
}

CASE("pair table: an entry with held packets stays live past its expiry") {
  PairTable t;
  t.Init(16);
  PairEntry* e = t.FindOrCreate(5, 0, [](PairEntry&) {});
  e->expires_ns = 10;
  e->held_head = e->held_tail = 3;
  EXPECT(t.Find(5, 50) == e);
}

CASE("hold heap: pops in (deadline, arrival) order; removal from the middle keeps the order") {
  HoldHeap h;
  h.Init(64);
  std::vector<uint32_t> slots;
  uint64_t deadlines[] = {50, 10, 30, 10, 70, 20, 30, 5};
  for (uint32_t i = 0; i < 8; i++) {
    HeldPacket p{};
    p.deadline_ns = deadlines[i];
    p.order = i;
    p.id = i;
    slots.push_back(h.Push(p));
  }
  h.Remove(slots[2]);  // deadline 30, arrival 2
  h.Remove(slots[4]);  // deadline 70
  std::vector<uint32_t> ids;
  while (!h.Empty()) {
    uint32_t s = h.Top();
    ids.push_back(h.At(s).id);
    h.Remove(s);
  }
  EXPECT_EQ(ids, (std::vector<uint32_t>{7, 1, 3, 5, 6, 0}));
  for (uint32_t i = 0; i < 64; i++) h.Push(HeldPacket{});
  EXPECT(h.Full());
}

// Pages of [p, p + bytes) resident in memory (mincore), of all the pages the range spans.
static std::pair<size_t, size_t> ResidentPages(const void* p, size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  uintptr_t begin = reinterpret_cast<uintptr_t>(p) / page * page;
  uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes + page - 1) / page * page;
  std::vector<unsigned char> vec((end - begin) / page);
  if (mincore(reinterpret_cast<void*>(begin), end - begin, vec.data()) != 0) return {0, 0};
  size_t resident = 0;
  for (unsigned char v : vec) resident += v & 1;
  return {resident, vec.size()};
}

CASE("hold heap: the slot pool takes memory as packets are held, not at Init") {
  // At the largest capacity a queue may have: filled at Init, this was 56 MiB resident at rest.
  constexpr uint32_t kCapacity = 1u << 20;
  HoldHeap h;
  h.Init(kCapacity);
  auto [idle, pages] = ResidentPages(&h.At(0), kCapacity * sizeof(HeldPacket));
  EXPECT(pages > 1000);
  EXPECT(idle * 100 < pages);  // under 1 % resident right after Init
  for (uint32_t i = 0; i < 10000; i++) {
    HeldPacket p{};
    p.deadline_ns = i;
    EXPECT_EQ(h.Push(p), i);  // never-used slots in index order
  }
  auto [held, total] = ResidentPages(&h.At(0), kCapacity * sizeof(HeldPacket));
  EXPECT(held * 100 < total * 2);  // 10,000 held: their ~1 % of the pool, not all of it
  EXPECT(held >= 10000 * sizeof(HeldPacket) / static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  h.Remove(5);
  h.Remove(7);
  EXPECT_EQ(h.Push(HeldPacket{}), 7u);  // freed slots first, last freed first
  EXPECT_EQ(h.Push(HeldPacket{}), 5u);
  EXPECT_EQ(h.Push(HeldPacket{}), 10000u);
}

CASE("core: bypassed counts id gaps in serial arithmetic across 2^32") {
  auto run = [](uint32_t last, std::vector<uint32_t> ids) {
    Stats stats;
    Recorder rec;
    DecisionCore core(&stats, &rec);
    CoreOptions o;
    o.last_id = last;
    core.Init(o, MakePolicy({{kAAAA, 5}}));
    for (uint32_t id : ids) core.OnPacket(id, Query(kA, 1), 0);
    EXPECT_EQ(rec.out.size(), ids.size());
    return stats.packets[kBypassed][kQtypeNone].load();
  };
  EXPECT_EQ(run(0xFFFFFFFC, {0xFFFFFFFD, 0xFFFFFFFE, 0xFFFFFFFF, 0, 1, 2}), 0u);
  EXPECT_EQ(run(0xFFFFFFFD, {0xFFFFFFFE, 0, 1, 100}), 99u);
  EXPECT_EQ(run(0, {1, 2, 5}), 2u);
}

int main() { return unit::RunAll(); }
