// Decision core; see decision_core.h. Ordering rule: verdicts are emitted in the order they are
// decided, and the data plane sends them in that order, because the kernel finishes an accepted
// packet's path (conntrack confirmation included) inside the verdict call. An A emitted before its
// AAAA therefore cannot lose the conntrack race to it.
#include "decision_core.h"

#include <cerrno>

namespace dns_shaper {

namespace {
constexpr uint16_t kAQtype = 1;
}  // namespace

int DecisionCore::Init(const CoreOptions& opts, std::unique_ptr<Policy> policy) {
  if (!policy || opts.held_capacity == 0 || opts.pair_slots < static_cast<uint32_t>(PairTable::kProbe) ||
      (opts.pair_slots & (opts.pair_slots - 1)) != 0)
    return -EINVAL;
  opts_ = opts;
  ids_ = IdSequence(opts.last_id);
  policy_ = std::move(policy);
  if (policy_->max_held > opts_.held_capacity) policy_->max_held = opts_.held_capacity;
  pairs_.Init(opts_.pair_slots);
  return 0;
}

void DecisionCore::SetPolicy(std::unique_ptr<Policy> next) {
  if (!next) return;
  if (next->max_held > opts_.held_capacity) next->max_held = opts_.held_capacity;
  policy_ = std::move(next);
  Stats::Inc(stats_->policy_updates);
}

void DecisionCore::NoteId(uint32_t id) {
  // Ids are assigned per queue after the queue-length check; a gap means the socket could not take
  // those packets and FAIL_OPEN passed them unshaped (see id_sequence.h for the wrap at 2^32).
  if (uint32_t gap = ids_.Next(id)) Stats::Inc(stats_->packets[kBypassed][kQtypeNone], gap);
}

void DecisionCore::OnPacket(uint32_t id, const ParsedPacket& pp, uint64_t now_ns) {
  NoteId(id);
  const Policy& pol = *policy_;
  if (pp.kind != PacketKind::kQuery) {
    if (pp.reason != ParseReason::kNone) Stats::Inc(stats_->parse_failures[static_cast<size_t>(pp.reason)]);
    Action a = pp.kind == PacketKind::kMalformed ? kMalformed : kAccepted;
    size_t label = pp.kind == PacketKind::kNotQuery && pp.qtype ? QtypeLabel(pp.qtype) : kQtypeNone;
    Stats::Inc(stats_->packets[a][label]);
    Emit(id, now_ns, VerdictKind::kImmediate);
    return;
  }
  size_t label = QtypeLabel(pp.qtype);
  uint8_t cls = pol.cls[pp.qtype];
  uint64_t key = pp.flow_hash ? pp.flow_hash : 1;
  if (cls == 0 || stopping_) {
    Stats::Inc(stats_->packets[kAccepted][label]);
    Emit(id, now_ns, VerdictKind::kImmediate);
    if (pol.pair_mode && pp.qtype == kAQtype) {
      PairEntry* e = PairCreate(key, now_ns);
      e->a_seen_ns = now_ns;
      // +1: an AAAA exactly pair_window after its A (same instant with --pair-window 0) must still
      // find the entry live; the window check below is inclusive.
      if (e->expires_ns <= now_ns + pol.pair_window_ns) e->expires_ns = now_ns + pol.pair_window_ns + 1;
      // Release this flow's held packets right behind their A.
      for (int j = 0; j < 2; j++) {
        if (!e->held_cls[j]) continue;
        HeldPacket* p = fifos_[e->held_cls[j]].Find(e->held_seq[j]);
        if (p && !p->released) {
          ReleaseHeld(p);
          Stats::Inc(stats_->pair_released);
        }
        e->held_cls[j] = 0;
      }
    }
    return;
  }
  if (pol.dry_run) {
    Stats::Inc(stats_->dry_run_matches);
    Stats::Inc(stats_->packets[kAccepted][label]);
    Emit(id, now_ns, VerdictKind::kImmediate);
    return;
  }
  if (pol.pair_mode) {
    PairEntry* e = pairs_.Find(key, now_ns);
    if (e && e->a_seen_ns && now_ns - e->a_seen_ns <= pol.pair_window_ns) {
      // Its A was verdicted already (earlier in this batch or within the window): nothing to order.
      Stats::Inc(stats_->packets[kHeld][label]);
      Stats::Inc(stats_->pair_released);
      Emit(id, now_ns, VerdictKind::kHeld);
      return;
    }
  }
  HoldFifo& fifo = fifos_[cls];
  if (fifo.Capacity() == 0) fifo.Init(opts_.held_capacity);
  if (held_now_ >= static_cast<int64_t>(pol.max_held) || fifo.Full()) {
    Stats::Inc(stats_->held_overflow);
    Stats::Inc(stats_->packets[kAccepted][label]);
    Emit(id, now_ns, VerdictKind::kImmediate);
    return;
  }
  HeldPacket hp{};
  hp.recv_ns = now_ns;
  hp.deadline_ns = now_ns + pol.hold_ns[cls];
  hp.key = key;
  hp.id = id;
  hp.qlabel = static_cast<uint8_t>(label);
  uint64_t seq = fifo.Push(hp);
  held_now_++;
  if (held_now_ > stats_->held_max.load(std::memory_order_relaxed)) stats_->held_max.store(held_now_);
  stats_->held_now.store(held_now_, std::memory_order_relaxed);
  Stats::Inc(stats_->packets[kHeld][label]);
  if (pol.pair_mode) {
    PairEntry* e = PairCreate(key, now_ns);
    // Keep the newest two held packets of the flow (AAAA and HTTPS, say); an older third one still
    // leaves at its deadline.
    if (e->held_cls[0] && e->held_cls[1]) {
      e->held_cls[0] = e->held_cls[1];
      e->held_seq[0] = e->held_seq[1];
      e->held_cls[1] = 0;
    }
    int slot = !e->held_cls[0] ? 0 : 1;
    e->held_cls[slot] = cls;
    e->held_seq[slot] = seq;
    if (e->expires_ns < hp.deadline_ns) e->expires_ns = hp.deadline_ns;
  }
}

PairEntry* DecisionCore::PairCreate(uint64_t key, uint64_t now_ns) {
  bool evicted = false;
  uint64_t old_key = 0;
  PairEntry* e = pairs_.FindOrCreate(key, now_ns, &evicted, &old_key);
  if (evicted) {
    Stats::Inc(stats_->pair_evictions);
    sink_->Evicted(old_key);
  }
  return e;
}

void DecisionCore::ReleaseHeld(HeldPacket* p) {
  p->released = true;
  held_now_--;
  stats_->held_now.store(held_now_, std::memory_order_relaxed);
  Emit(p->id, p->recv_ns, VerdictKind::kHeld);
}

void DecisionCore::Advance(uint64_t now_ns) {
  for (size_t c = 1; c <= kMaxHoldClasses; c++) {
    HoldFifo& f = fifos_[c];
    while (!f.Empty()) {
      HeldPacket& p = f.Front();
      if (p.released) {
        f.Pop();
        continue;
      }
      if (p.deadline_ns > now_ns) break;
      held_now_--;
      Emit(p.id, p.recv_ns, VerdictKind::kHeld);
      Stats::Inc(stats_->deadline_released);
      f.Pop();
    }
  }
  stats_->held_now.store(held_now_, std::memory_order_relaxed);
}

void DecisionCore::Stop() {
  stopping_ = true;
  for (size_t c = 1; c <= kMaxHoldClasses; c++) {
    HoldFifo& f = fifos_[c];
    while (!f.Empty()) {
      HeldPacket& p = f.Front();
      if (!p.released) {
        held_now_--;
        Emit(p.id, p.recv_ns, VerdictKind::kShutdown);
        Stats::Inc(stats_->shutdown_released);
      }
      f.Pop();
    }
  }
  stats_->held_now.store(held_now_, std::memory_order_relaxed);
}

uint64_t DecisionCore::NextDeadline() {
  uint64_t earliest = 0;
  for (size_t c = 1; c <= kMaxHoldClasses; c++) {
    HoldFifo& f = fifos_[c];
    while (!f.Empty() && f.Front().released) f.Pop();
    if (!f.Empty() && (!earliest || f.Front().deadline_ns < earliest)) earliest = f.Front().deadline_ns;
  }
  return earliest;
}

}  // namespace dns_shaper
