// Verdicts waiting to go to the kernel in one sendto, with what the histograms need. Flush rules:
// the data plane flushes after each receive batch, after each time step, when the batch is full and
// at stop. A failed send keeps the batch and retries transient errors with a short backoff: a decided
// verdict is never dropped while the socket can still take it. The retries are a budget of the
// thread, not of a call: once it is spent the batch gives up (no further attempt), the data plane
// takes its stop path, and StopVerdicts makes one bounded final attempt. Order is the design's core
// rule (a flow's A before its AAAA): once one verdict was dropped, none decided after it is sent.
// The socket side is injected.
#pragma once
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "decision_core.h"
#include "nfq.h"
#include "stats.h"

namespace dns_shaper {

// The socket side of a batch: the data plane sends on its netlink socket; tests fake it.
class VerdictSender {
 public:
  virtual int Send(const char* buf, size_t len) = 0;  // 0 or -errno
  virtual void Pause(uint32_t us) = 0;                // before a retry
  virtual uint64_t Now() = 0;                         // CLOCK_MONOTONIC ns, for the histograms

 protected:
  ~VerdictSender() = default;
};

class VerdictBatch {
 public:
  static constexpr size_t kMaxVerdicts = 1024;  // 32 KiB of messages per sendto
  // Retries of transient failures, backing off from 50 us, doubling, to at most 10 ms: ~2 s in all.
  // One budget per thread, restored whenever a send goes through; once it is spent the batch gives
  // up: it is kept, but nothing is sent again before the stop path's final attempt.
  static constexpr int kMaxRetries = 200;
  // The stop path's one final attempt after a give-up: ~130 ms of retries, shared by every flush
  // the stop path makes.
  static constexpr int kFinalRetries = 20;
  static constexpr uint32_t kFirstPauseUs = 50, kMaxPauseUs = 10000;

  void Init(uint16_t queue) {
    queue_ = queue;
    buf_.assign(kMaxVerdicts * kVerdictMsgSize, 0);
    verdicts_.reserve(kMaxVerdicts);
  }
  bool Empty() const { return verdicts_.empty(); }
  bool Full() const { return verdicts_.size() >= kMaxVerdicts; }
  size_t Size() const { return verdicts_.size(); }
  // Appends one verdict; the caller flushes first when Full().
  void Add(const Verdict& v) {
    len_ += PutAcceptVerdict(buf_.data() + len_, queue_, v.id,
                             v.kind == VerdictKind::kImmediate ? 0 : kHeldVerdictSeq);
    verdicts_.push_back(v);
  }
  // Appends v, flushing first when the batch is full. A verdict that does not fit because the
  // socket refused the batch past the budget is dropped and counted as unsent, and so is every
  // verdict after it: sending a later one (an AAAA behind its dropped A) would break the order.
  void Push(const Verdict& v, VerdictSender* out, Stats* stats) {
    if (!dropped_ && Full()) Flush(out, stats);
    if (dropped_ || Full()) {
      dropped_ = true;
      Stats::Inc(stats->verdicts_unsent);
      return;
    }
    Add(v);
  }
  // The error that made the batch give up (0: none): the data plane ends its thread on it.
  int error() const { return err_; }
  // Sends keep failing: the thread stops draining and takes its stop path.
  bool GaveUp() const { return err_ != 0 && retries_left_ == 0; }

  static bool Transient(int err) {
    return err == -ENOBUFS || err == -ENOMEM || err == -EAGAIN || err == -EINTR;
  }

  // Sends the batch in one datagram. Returns 0 once sent (or when empty), or the -errno of a failure
  // that is not transient or outlasted the thread's retry budget; the batch is then kept, and once
  // given up no later Flush makes an attempt (the stop path's FinalAttempt re-arms a small budget).
  int Flush(VerdictSender* out, Stats* stats) {
    if (verdicts_.empty()) return 0;
    if (GaveUp()) return err_;
    for (;;) {
      int r = out->Send(buf_.data(), len_);
      if (r == 0) break;
      Stats::Inc(stats->send_errors);
      if (!Transient(r) || retries_left_ == 0) {
        retries_left_ = 0;
        if (!final_) Stats::Inc(stats->send_give_ups);
        err_ = r;
        return r;
      }
      retries_left_--;
      out->Pause(pause_us_);
      pause_us_ = pause_us_ * 2 > kMaxPauseUs ? kMaxPauseUs : pause_us_ * 2;
    }
    // A send went through: the budget is whole again (not on the stop path's final attempt, whose
    // budget is for the whole stop).
    pause_us_ = kFirstPauseUs;
    if (!final_) retries_left_ = kMaxRetries;
    Stats::Inc(stats->verdict_batches);
    uint64_t t = out->Now();
    for (const Verdict& v : verdicts_) {
      if (v.kind == VerdictKind::kImmediate)
        stats->latency.Observe(t - v.recv_ns);
      else if (v.kind == VerdictKind::kHeld)
        stats->hold.Observe(t - v.recv_ns);
    }
    verdicts_.clear();
    len_ = 0;
    return 0;
  }

  // After a give-up: one more small budget for the rest of the thread's life (the stop path), then
  // a flush. Returns Flush's result. No effect when the batch has not given up.
  int FinalAttempt(VerdictSender* out, Stats* stats) {
    if (!GaveUp() || final_) return Flush(out, stats);
    final_ = true;
    retries_left_ = kFinalRetries;
    pause_us_ = kFirstPauseUs;
    return Flush(out, stats);
  }

  // Nothing in the batch will ever be sent (the thread gave up, or is ending): count it as unsent;
  // like a dropped verdict, it keeps every later one from being sent.
  void Abandon(Stats* stats) {
    if (verdicts_.empty()) return;
    dropped_ = true;
    Stats::Inc(stats->verdicts_unsent, verdicts_.size());
    verdicts_.clear();
    len_ = 0;
  }

 private:
  uint16_t queue_ = 0;
  std::vector<char> buf_;
  size_t len_ = 0;
  std::vector<Verdict> verdicts_;
  int retries_left_ = kMaxRetries;  // of the thread, restored by a successful send
  uint32_t pause_us_ = kFirstPauseUs;
  int err_ = 0;
  bool final_ = false;    // the stop path's final attempt has begun
  bool dropped_ = false;  // a verdict was dropped: nothing decided after it may be sent
};

// The verdict side of the stop path, shared by the data plane and its tests: everything held is
// accepted, in decision order. After a give-up, the batch first gets its one bounded final attempt,
// so what it still holds (decided earlier) leaves before the held packets; whatever cannot be sent
// is counted as unsent and left to the kernel, which drops it when the queue is unbound.
inline void StopVerdicts(DecisionCore* core, VerdictBatch* batch, VerdictSender* out, Stats* stats) {
  if (batch->GaveUp()) batch->FinalAttempt(out, stats);
  core->Stop();
  batch->Flush(out, stats);
  if (batch->GaveUp()) batch->Abandon(stats);
}

}  // namespace dns_shaper
