// The data-plane thread: owns the NFQUEUE netlink socket, receives and parses packets, feeds them to
// the decision core and sends the verdicts it emits, in order. It decides nothing itself and never
// calls napi; JS reaches it through Stats atomics and a small command mailbox.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "decision_core.h"
#include "limits.h"
#include "stats.h"
#include "verdict_batch.h"

struct mnl_socket;

namespace dns_shaper {

struct QueueOptions {
  uint16_t queue_num = 0;
  uint32_t copy_range = kDefaultCopyRange;
  // Far above what the 8 MiB socket buffer holds: at the queue limit FAIL_OPEN passes packets with
  // no id gap and no counter, so the socket, whose overflow shows as id gaps (bypassed), must fill first.
  uint32_t max_len = kDefaultQueueMaxLen;
  uint32_t rcvbuf = 8 << 20;
  uint32_t fifo_capacity = kDefaultHeldCapacity;  // upper bound for max_held over the queue's life
  uint32_t pair_slots = kDefaultPairSlots;
};

// Brings options to what the data plane can honour, before anything is allocated or bound:
//  - copy_range at most kMaxCopyRange, so a packet message fits one receive slot;
//  - max_len above the most packets that can wait for a verdict at once: every held slot, what the
//    socket can buffer (rcvbuf / kMinMsgTruesize) and one verdict batch. Held packets count toward
//    the kernel's queue length, and past it FAIL_OPEN passes packets with no id gap and no counter.
void ClampOptions(QueueOptions* o);

// Bytes one queue preallocates besides its held and pair slots (receive slots, verdict batch, two
// policy tables), for the memory budget (src/dataplane/limits.ts).
constexpr size_t kQueueFixedBytes = 64 * kRecvSlotBytes +
                                    VerdictBatch::kMaxVerdicts * (kVerdictMsgSize + sizeof(Verdict)) +
                                    2 * sizeof(Policy);

// Called from the data-plane thread on a fatal error, just before the thread ends.
using FatalCallback = std::function<void(int err, const char* syscall)>;

class DataPlane : private VerdictSink, private VerdictSender {
 public:
  explicit DataPlane(Stats* stats) : stats_(stats), core_(stats, this) {}
  ~DataPlane();
  DataPlane(const DataPlane&) = delete;
  DataPlane& operator=(const DataPlane&) = delete;

  // Opens the socket, binds the queue and checks every config reply. Runs on the caller's thread so
  // EBUSY/EPERM reach JS synchronously. Returns 0 or -errno; *syscall names the failing step.
  int Open(const QueueOptions& opts, std::unique_ptr<Policy> policy, const char** syscall);
  // Starts the thread. Open must have succeeded.
  int Start(FatalCallback on_fatal);
  // Hands a new policy to the thread; it takes it at its next wake-up.
  void SetPolicy(std::unique_ptr<Policy> policy);
  // Accepts everything held, drains what the kernel still has queued, unbinds, joins. Idempotent.
  void Stop();
  bool Running() const { return stats_->running.load(); }

 private:
  void Run();
  int Drain(uint64_t* now_ns);
  void Emit(const Verdict& v) override;
  void Flush();
  int Send(const char* buf, size_t len) override;
  void Pause(uint32_t us) override;
  uint64_t Now() override;
  void ArmTimer();
  void TakePolicy();
  int QueueWaiting() const;
  bool QueueBoundElsewhere() const;
  void CloseAll();

  Stats* stats_;
  QueueOptions opts_;
  mnl_socket* nl_ = nullptr;
  int epoll_fd_ = -1, timer_fd_ = -1, event_fd_ = -1;
  uint32_t portid_ = 0;
  uint64_t armed_ns_ = 0;  // deadline the timerfd is armed for (0: disarmed)
  std::thread thread_;
  std::atomic<bool> stop_requested_{false};
  bool started_ = false;
  bool stopped_ = false;
  FatalCallback on_fatal_;

  std::mutex policy_mu_;
  std::unique_ptr<Policy> pending_policy_;  // guarded by policy_mu_

  DecisionCore core_;  // data-plane thread only (after Start)

  VerdictBatch batch_;
  std::vector<char> recv_buf_;
};

}  // namespace dns_shaper
