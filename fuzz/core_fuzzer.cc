// libFuzzer target for the decision core: decodes the input into a configuration and a sequence of
// events (packets, policy swaps, time steps, stop), drives native/decision_core and the reference
// model (fuzz/core_model.h) with them, and traps on the first difference. Plain process, no root.
// Build with fuzz/build.sh, run with fuzz/run.sh core. Input layout: see Decode below and
// fuzz/core-seed-corpus.ts, which writes the known-bug seeds in the same layout.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "../native/decision_core.h"
#include "core_model.h"

using namespace dns_shaper;

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::fprintf(stderr, "core_fuzzer: check failed: %s\n", #cond); \
      __builtin_trap();                                               \
    }                                                                 \
  } while (0)

namespace {

constexpr uint64_t kMs = 1000000;
constexpr uint32_t kCapacity = 24;
constexpr uint16_t kQtypes[] = {1, 28, 65, 15};  // A, AAAA, HTTPS, MX
constexpr uint64_t kHoldsMs[] = {0, 1, 2, 5, 10, 20, 50, 200};

struct Reader {
  const uint8_t* p;
  size_t n;
  bool More() const { return n > 0; }
  uint8_t Byte() {
    if (!n) return 0;
    n--;
    return *p++;
  }
};

struct Sink : VerdictSink {
  std::vector<Verdict> out;
  std::vector<uint64_t> evicted;
  void Emit(const Verdict& v) override { out.push_back(v); }
  void Evicted(uint64_t key) override { evicted.push_back(key); }
};

// A policy from 3 bytes: flags (pair, dry run), window, max held; then one hold byte per qtype.
// The pair window is the first policy's for the whole run (a reload's window byte is ignored): the
// core applies a changed window to A queries seen after the change, the model to every A, and that
// difference lasts one window at most; it is stated, not fuzzed.
void DecodePolicy(Reader* r, Policy* core, model::Policy* ref, int fixed_window = -1) {
  uint8_t flags = r->Byte();
  uint8_t window = r->Byte() % 16;
  if (fixed_window >= 0) window = static_cast<uint8_t>(fixed_window);
  uint32_t max_held = 1 + r->Byte() % 32;  // above kCapacity sometimes: the cap is clamped
  *core = Policy{};
  *ref = model::Policy{};
  core->pair_mode = ref->pair = flags & 1;
  core->dry_run = ref->dry_run = (flags & 0x06) == 0x06;  // rare
  core->pair_window_ns = ref->window_ns = window * kMs;
  core->max_held = ref->max_held = max_held;
  uint8_t classes = 0;
  uint64_t class_ns[kMaxHoldClasses + 1] = {};
  for (uint16_t q : kQtypes) {
    uint8_t h = r->Byte();
    if (!(h & 0x80)) continue;  // not held
    uint64_t ns = kHoldsMs[h % 8] * kMs + (h & 0x40 ? 500000 : 0);
    uint8_t cls = 0;
    for (uint8_t c = 1; c <= classes; c++)
      if (class_ns[c] == ns) cls = c;
    if (!cls) {
      cls = ++classes;
      class_ns[cls] = ns;
      core->hold_ns[cls] = ns;
    }
    core->cls[q] = cls;
    ref->hold_ns[q] = ns;
  }
}

// CORE_FUZZ_TRACE=1 prints the events and both verdict lists: how to read a crash artifact.
bool Trace() {
  static const bool on = std::getenv("CORE_FUZZ_TRACE") != nullptr;
  return on;
}

void Dump(const std::vector<Verdict>& a, const std::vector<model::Verdict>& b) {
  if (!Trace()) return;
  std::fprintf(stderr, "  core :");
  for (const Verdict& v : a) std::fprintf(stderr, " %u/%d", v.id, static_cast<int>(v.kind));
  std::fprintf(stderr, "\n  model:");
  for (const model::Verdict& v : b) std::fprintf(stderr, " %u/%d", v.id, static_cast<int>(v.kind));
  std::fprintf(stderr, "\n");
}

bool Same(const std::vector<Verdict>& a, const std::vector<model::Verdict>& b) {
  if (a.size() != b.size()) return Dump(a, b), false;
  for (size_t i = 0; i < a.size(); i++) {
    if (a[i].id != b[i].id || a[i].recv_ns != b[i].recv_ns) return Dump(a, b), false;
    if (static_cast<int>(a[i].kind) != static_cast<int>(b[i].kind)) return Dump(a, b), false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r{data, size};
  // Header: start id (near the 2^32 wrap or not), pair-table size, then the first policy.
  uint8_t hdr = r.Byte();
  uint64_t next_id = (hdr & 1) ? 0xFFFFFFF0ull + (hdr >> 4) : 0;  // the id before the first packet
  uint32_t pair_slots = (hdr & 2) ? 16 : 4096;
  Policy p0;
  model::Policy m0;
  DecodePolicy(&r, &p0, &m0);

  Stats stats;
  Sink sink;
  DecisionCore core(&stats, &sink);
  CoreOptions opts;
  opts.held_capacity = kCapacity;
  opts.pair_slots = pair_slots;
  opts.last_id = static_cast<uint32_t>(next_id);
  CHECK(core.Init(opts, std::make_unique<Policy>(p0)) == 0);
  model::Model ref(m0, kCapacity);

  uint64_t now = 1 * kMs;
  size_t packets = 0;
  uint32_t pending_gap = 0;  // ids taken by messages without a readable id, not yet seen as a gap
  bool stopped = false;
  while (r.More()) {
    uint8_t op = r.Byte();
    size_t before = sink.out.size();
    switch (op % 8) {
      case 0:
      case 1:
      case 2:
      case 3: {  // packet: b = qtype (2 bits), kind (1 bit), flow (3 bits), gap (2 bits)
        uint8_t b = r.Byte();
        uint32_t gap = (b >> 6) == 3 ? 1 + ((op >> 3) & 1) : 0;
        next_id += gap + 1;
        uint32_t id = static_cast<uint32_t>(next_id);
        // Op bits 5-6: 2 = a message that could not be read (id readable), 3 = one without an id.
        uint8_t msg = (op >> 5) & 3;
        if (msg == 3) {
          if (Trace())
            std::fprintf(stderr, "t=%.1fms message without an id (id %u) gap=%u\n", now / 1e6, id, gap);
          pending_gap += gap + 1;  // the core sees these ids as a gap before the next readable one
          core.OnNoId();
          ref.NoId();
          break;
        }
        gap += pending_gap;
        pending_gap = 0;
        if (msg == 2) {
          if (Trace()) std::fprintf(stderr, "t=%.1fms unread message id=%u gap=%u\n", now / 1e6, id, gap);
          core.OnUnread(id, now);
          ref.Unread(id, gap, now);
          packets++;
          break;
        }
        uint16_t qtype = kQtypes[b & 3];
        bool query = !(b & 4) || (op & 0x80);  // mostly queries
        uint64_t flow = 1 + ((b >> 3) & 7) * (pair_slots == 16 ? 16 : 1) + ((op >> 4) & 1);
        ParsedPacket pp{};
        pp.kind = query ? PacketKind::kQuery : PacketKind::kNotQuery;
        pp.qtype = qtype;
        pp.flow_hash = flow;
        if (Trace())
          std::fprintf(stderr, "t=%.1fms pkt id=%u gap=%u q=%u query=%d flow=%llu\n", now / 1e6, id, gap,
                       qtype, query, static_cast<unsigned long long>(flow));
        core.OnPacket(id, pp, now);
        // Evictions the core's table made during this packet, before the model sees the packet.
        for (uint64_t k : sink.evicted) {
          if (Trace()) std::fprintf(stderr, "  evicted flow %llu\n", static_cast<unsigned long long>(k));
          ref.Forget(k);
        }
        sink.evicted.clear();
        ref.Packet(id, gap, query, qtype, flow, now);
        packets++;
        break;
      }
      case 4:  // small time step, 0..25.5 ms in 100 us
        now += static_cast<uint64_t>(r.Byte()) * 100000;
        if (Trace()) std::fprintf(stderr, "advance to %.1fms\n", now / 1e6);
        core.Advance(now);
        ref.Advance(now);
        break;
      case 5: {  // policy swap (SIGHUP)
        Policy p;
        model::Policy m;
        DecodePolicy(&r, &p, &m, static_cast<int>(p0.pair_window_ns / kMs));
        if (Trace()) {
          std::fprintf(stderr, "t=%.1fms policy pair=%d dry=%d window=%.0fms max=%u holds:", now / 1e6,
                       m.pair, m.dry_run, m.window_ns / 1e6, m.max_held);
          for (auto [q, ns] : m.hold_ns) std::fprintf(stderr, " %u=%.1fms", q, ns / 1e6);
          std::fprintf(stderr, "\n");
        }
        core.SetPolicy(std::make_unique<Policy>(p));
        ref.SetPolicy(m);
        break;
      }
      case 6:  // large time step, 0..255 ms
        now += static_cast<uint64_t>(r.Byte()) * kMs;
        if (Trace()) std::fprintf(stderr, "advance to %.1fms\n", now / 1e6);
        core.Advance(now);
        ref.Advance(now);
        break;
      case 7:
        if (Trace()) std::fprintf(stderr, "stop\n");
        if (!stopped) {
          core.Stop();
          ref.Stop();
          stopped = true;
        }
        break;
    }
    // Same verdicts, in the same order, with the same arrival times; same held set and timer.
    CHECK(Same(sink.out, ref.out));
    CHECK(static_cast<size_t>(core.Held()) == ref.HeldCount());
    CHECK(core.NextDeadline() == ref.NextDeadline());
    CHECK(static_cast<uint64_t>(core.Held()) <= kCapacity);
    CHECK(stats.held_now.load() == core.Held());
    // Time never runs behind a due deadline after a time step.
    if (op % 8 == 4 || op % 8 == 6) CHECK(core.NextDeadline() == 0 || core.NextDeadline() > now);
    (void)before;
  }
  core.Stop();
  ref.Stop();
  CHECK(Same(sink.out, ref.out));
  // Every packet exactly one verdict: as many verdicts as packets, each id once.
  CHECK(sink.out.size() == packets);
  std::vector<uint32_t> ids;
  for (const Verdict& v : sink.out) ids.push_back(v.id);
  std::sort(ids.begin(), ids.end());
  CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
  CHECK(core.Held() == 0 && stats.held_now.load() == 0);
  const model::Counts& c = ref.counts;
  CHECK(stats.packets[kBypassed][kQtypeNone].load() == c.bypassed);
  CHECK(stats.pair_released.load() == c.pair_released);
  CHECK(stats.deadline_released.load() == c.deadline_released);
  CHECK(stats.shutdown_released.load() == c.shutdown_released);
  CHECK(stats.held_overflow.load() == c.overflow);
  CHECK(stats.dry_run_matches.load() == c.dry_run);
  return 0;
}
