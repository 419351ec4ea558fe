// Reference model of the decision core: the contract in plain lists, no cleverness, no performance.
// Used only by fuzz/core_fuzzer.cc, which runs it beside native/decision_core and fails on any
// difference. The contract:
//  - every packet gets exactly one verdict; verdicts go out in decision order;
//  - a held packet leaves at the first time step that reaches its own deadline (whatever policy
//    was in force when the others were held), earliest (deadline, arrival) first;
//  - pair mode: an A releases every packet of its flow held in pair mode, oldest first, right behind
//    itself; a held type within the window after its flow's A passes at once; a flow the core's
//    table evicted is forgotten (its packets then leave at their deadline);
//  - bypassed equals the sum of the id gaps, less one per message whose id could not be read (its
//    id is one of the gap's, and that packet was not passed unshaped);
//  - a message that could not be read but whose id could is accepted at once;
//  - nothing is held while max-held packets are held (the cap is clamped to the capacity);
//  - stop releases everything, earliest deadline first, and later packets pass at once.
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

namespace model {

enum class Kind { kImmediate, kHeld, kShutdown };

struct Verdict {
  uint32_t id;
  Kind kind;
  uint64_t recv_ns;
};

struct Policy {
  std::map<uint16_t, uint64_t> hold_ns;  // held QTYPEs only
  bool pair = false;
  bool dry_run = false;
  uint64_t window_ns = 0;
  uint32_t max_held = 0;
};

struct Held {
  uint32_t id;
  uint64_t recv_ns, deadline_ns, order;
  uint64_t flow;  // 0: not waiting for an A
};

struct Counts {
  uint64_t bypassed = 0, pair_released = 0, deadline_released = 0, shutdown_released = 0, overflow = 0,
           dry_run = 0;
};

class Model {
 public:
  Model(Policy p, uint32_t capacity) : capacity_(capacity) { SetPolicy(p); }

  void SetPolicy(Policy p) {
    policy_ = p;
    policy_.max_held = std::min(policy_.max_held, capacity_);
  }

  // query: a DNS query with this qtype; otherwise passed at once. gap: ids skipped before this one.
  void Packet(uint32_t id, uint32_t gap, bool query, uint16_t qtype, uint64_t flow, uint64_t now) {
    Gap(gap);
    if (!query) return Out(id, Kind::kImmediate, now);
    auto h = policy_.hold_ns.find(qtype);
    bool held_type = h != policy_.hold_ns.end();
    if (!held_type || stopped_) {
      Out(id, Kind::kImmediate, now);
      if (policy_.pair && qtype == 1) {
        a_seen_[flow] = now;
        for (size_t i = 0; i < held_.size();) {
          if (held_[i].flow == flow) {
            Out(held_[i].id, Kind::kHeld, held_[i].recv_ns);
            counts.pair_released++;
            held_.erase(held_.begin() + i);
          } else {
            i++;
          }
        }
      }
      return;
    }
    if (policy_.dry_run) {
      counts.dry_run++;
      return Out(id, Kind::kImmediate, now);
    }
    if (policy_.pair && a_seen_.count(flow) && now - a_seen_[flow] <= policy_.window_ns) {
      counts.pair_released++;
      return Out(id, Kind::kHeld, now);
    }
    if (held_.size() >= policy_.max_held || held_.size() >= capacity_) {
      counts.overflow++;
      return Out(id, Kind::kImmediate, now);
    }
    held_.push_back(Held{id, now, now + h->second, order_++, policy_.pair ? flow : 0});
  }

  // A message that could not be read, with a readable id. gap as for Packet.
  void Unread(uint32_t id, uint32_t gap, uint64_t now) {
    Gap(gap);
    Out(id, Kind::kImmediate, now);
  }

  // A message without a readable id: it took an id, which a later gap will show.
  void NoId() { no_id_++; }

  // The core's pair table dropped this flow.
  void Forget(uint64_t flow) {
    a_seen_.erase(flow);
    for (Held& h : held_)
      if (h.flow == flow) h.flow = 0;
  }

  void Advance(uint64_t now) {
    std::vector<Held> due;
    for (const Held& h : held_)
      if (h.deadline_ns <= now) due.push_back(h);
    Sort(&due);
    for (const Held& h : due) {
      Out(h.id, Kind::kHeld, h.recv_ns);
      counts.deadline_released++;
      Erase(h.id);
    }
  }

  void Stop() {
    stopped_ = true;
    std::vector<Held> all = held_;
    Sort(&all);
    for (const Held& h : all) {
      Out(h.id, Kind::kShutdown, h.recv_ns);
      counts.shutdown_released++;
    }
    held_.clear();
  }

  size_t HeldCount() const { return held_.size(); }
  uint64_t NextDeadline() const {
    uint64_t d = 0;
    for (const Held& h : held_)
      if (!d || h.deadline_ns < d) d = h.deadline_ns;
    return d;
  }

  std::vector<Verdict> out;
  Counts counts;

 private:
  void Out(uint32_t id, Kind k, uint64_t recv) { out.push_back(Verdict{id, k, recv}); }
  void Gap(uint32_t gap) {
    uint64_t unread = std::min<uint64_t>(gap, no_id_);
    no_id_ -= unread;
    counts.bypassed += gap - unread;
  }
  static void Sort(std::vector<Held>* v) {
    std::sort(v->begin(), v->end(), [](const Held& a, const Held& b) {
      return a.deadline_ns != b.deadline_ns ? a.deadline_ns < b.deadline_ns : a.order < b.order;
    });
  }
  void Erase(uint32_t id) {
    for (size_t i = 0; i < held_.size(); i++)
      if (held_[i].id == id) {
        held_.erase(held_.begin() + i);
        return;
      }
  }

  Policy policy_;
  uint32_t capacity_;
  std::vector<Held> held_;
  std::map<uint64_t, uint64_t> a_seen_;
  uint64_t order_ = 0;
  uint64_t no_id_ = 0;  // messages without a readable id whose id no gap has shown yet
  bool stopped_ = false;
};

}  // namespace model
