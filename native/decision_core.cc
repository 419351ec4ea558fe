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
  heap_.Init(opts_.held_capacity);
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
  uint32_t gap = ids_.Next(id);
  uint64_t unread = gap < unread_ids_ ? gap : unread_ids_;  // ids of messages we got but could not read
  unread_ids_ -= unread;
  if (gap > unread) Stats::Inc(stats_->packets[kBypassed][kQtypeNone], gap - unread);
}

void DecisionCore::OnUnread(uint32_t id, uint64_t now_ns) {
  NoteId(id);
  Stats::Inc(stats_->packets[kAccepted][kQtypeNone]);
  Emit(id, now_ns, VerdictKind::kImmediate);
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
      // Release every held packet of this flow right behind its A, oldest first. Each is counted
      // before its verdict can leave (a full batch is sent from inside Release): a client that has
      // its answer finds it counted, even if this thread is descheduled right after the send.
      while (e->held_head != kNoSlot) {
        Stats::Inc(stats_->pair_released);
        Release(e->held_head, VerdictKind::kHeld);
      }
      PublishHeld();
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
  if (heap_.Size() >= pol.max_held || heap_.Full()) {
    Stats::Inc(stats_->held_overflow);
    Stats::Inc(stats_->packets[kAccepted][label]);
    Emit(id, now_ns, VerdictKind::kImmediate);
    return;
  }
  HeldPacket hp{};
  hp.recv_ns = now_ns;
  hp.deadline_ns = now_ns + pol.hold_ns[cls];
  hp.order = arrivals_++;
  hp.id = id;
  hp.qlabel = static_cast<uint8_t>(label);
  hp.pair = hp.flow_prev = hp.flow_next = kNoSlot;
  uint32_t slot = heap_.Push(hp);
  Stats::Inc(stats_->packets[kHeld][label]);
  if (pol.pair_mode) {
    PairEntry* e = PairCreate(key, now_ns);
    // Append to the flow's list: its A releases all of them, in arrival order.
    HeldPacket& p = heap_.At(slot);
    p.pair = pairs_.IndexOf(e);
    p.flow_prev = e->held_tail;
    if (e->held_tail != kNoSlot)
      heap_.At(e->held_tail).flow_next = slot;
    else
      e->held_head = slot;
    e->held_tail = slot;
    if (e->expires_ns < hp.deadline_ns) e->expires_ns = hp.deadline_ns;
  }
  PublishHeld();
}

PairEntry* DecisionCore::PairCreate(uint64_t key, uint64_t now_ns) {
  return pairs_.FindOrCreate(key, now_ns, [this](PairEntry& victim) {
    // Its held packets stay in the heap and leave at their deadline; they only lose the early release.
    for (uint32_t s = victim.held_head; s != kNoSlot;) {
      HeldPacket& p = heap_.At(s);
      s = p.flow_next;
      p.pair = p.flow_prev = p.flow_next = kNoSlot;
    }
    Stats::Inc(stats_->pair_evictions);
    sink_->Evicted(victim.key);
  });
}

void DecisionCore::Unlink(uint32_t slot) {
  HeldPacket& p = heap_.At(slot);
  if (p.pair == kNoSlot) return;
  PairEntry& e = pairs_.At(p.pair);
  if (p.flow_prev != kNoSlot)
    heap_.At(p.flow_prev).flow_next = p.flow_next;
  else
    e.held_head = p.flow_next;
  if (p.flow_next != kNoSlot)
    heap_.At(p.flow_next).flow_prev = p.flow_prev;
  else
    e.held_tail = p.flow_prev;
  p.pair = p.flow_prev = p.flow_next = kNoSlot;
}

void DecisionCore::Release(uint32_t slot, VerdictKind kind) {
  Unlink(slot);
  const HeldPacket& p = heap_.At(slot);
  uint32_t id = p.id;
  uint64_t recv_ns = p.recv_ns;
  heap_.Remove(slot);
  Emit(id, recv_ns, kind);
}

void DecisionCore::PublishHeld() {
  int64_t held = heap_.Size();
  stats_->held_now.store(held, std::memory_order_relaxed);
  if (held > stats_->held_max.load(std::memory_order_relaxed))
    stats_->held_max.store(held, std::memory_order_relaxed);
}

void DecisionCore::Advance(uint64_t now_ns) {
  // Earliest (deadline, arrival) first, whatever hold class or policy each packet came under.
  for (uint32_t s = heap_.Top(); s != kNoSlot && heap_.At(s).deadline_ns <= now_ns; s = heap_.Top()) {
    Stats::Inc(stats_->deadline_released);  // before the verdict can leave, as pair_released
    Release(s, VerdictKind::kHeld);
  }
  PublishHeld();
}

void DecisionCore::Stop() {
  stopping_ = true;
  for (uint32_t s = heap_.Top(); s != kNoSlot; s = heap_.Top()) {
    Stats::Inc(stats_->shutdown_released);
    Release(s, VerdictKind::kShutdown);
  }
  PublishHeld();
}

uint64_t DecisionCore::NextDeadline() const {
  uint32_t s = heap_.Top();
  return s == kNoSlot ? 0 : heap_.At(s).deadline_ns;
}

}  // namespace dns_shaper
