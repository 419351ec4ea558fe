// Verdicts waiting to go to the kernel in one sendto, with what the histograms need. Flush rules:
// the data plane flushes after each receive batch, after each time step, when the batch is full and
// at stop. A failed send keeps the batch and retries transient errors with a short backoff: a decided
// verdict is never dropped while the socket can still take it. The socket side is injected.
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
  // Retries of a transient failure, backing off from 50 us, doubling, to at most 10 ms: ~2 s in all,
  // after which the error is returned (the batch is still kept).
  static constexpr int kMaxRetries = 200;
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
    len_ += PutAcceptVerdict(buf_.data() + len_, queue_, v.id);
    verdicts_.push_back(v);
  }

  static bool Transient(int err) {
    return err == -ENOBUFS || err == -ENOMEM || err == -EAGAIN || err == -EINTR;
  }

  // Sends the batch in one datagram. Returns 0 once sent (or when empty), or the -errno of a failure
  // that is not transient or outlasted the retries; the batch is then kept for the next Flush.
  int Flush(VerdictSender* out, Stats* stats) {
    if (verdicts_.empty()) return 0;
    uint32_t pause = kFirstPauseUs;
    for (int attempt = 0;; attempt++) {
      int r = out->Send(buf_.data(), len_);
      if (r == 0) break;
      Stats::Inc(stats->send_errors);
      if (!Transient(r) || attempt >= kMaxRetries) return r;
      out->Pause(pause);
      pause = pause * 2 > kMaxPauseUs ? kMaxPauseUs : pause * 2;
    }
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

 private:
  uint16_t queue_ = 0;
  std::vector<char> buf_;
  size_t len_ = 0;
  std::vector<Verdict> verdicts_;
};

}  // namespace dns_shaper
