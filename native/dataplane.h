// The data-plane thread: owns the NFQUEUE netlink socket, receives, classifies, accepts or holds, and
// sends verdicts. It never calls napi; JS reaches it through Stats atomics and a small command mailbox.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "hold_fifo.h"
#include "limits.h"
#include "stats.h"

struct mnl_socket;

namespace dns_shaper {

// A compiled policy, built in TS (src/policy) and copied in by the addon.
struct Policy {
  std::array<uint8_t, 65536> cls{};                     // QTYPE -> hold class (0 = accept)
  std::array<uint64_t, kMaxHoldClasses + 1> hold_ns{};  // class -> hold duration
  bool dry_run = false;
  bool pair_mode = false;
  uint64_t pair_window_ns = 0;
  uint32_t max_held = 0;
};

struct QueueOptions {
  uint16_t queue_num = 0;
  uint32_t copy_range = kDefaultCopyRange;
  // Far above what the 8 MiB socket buffer holds: at the queue limit FAIL_OPEN passes packets with
  // no id gap and no counter, so the socket, whose overflow shows as id gaps (bypassed), must fill first.
  uint32_t max_len = kDefaultQueueMaxLen;
  uint32_t rcvbuf = 8 << 20;
  uint32_t fifo_capacity = kDefaultHeldCapacity;  // upper bound for max_held over the queue's life
};

// Called from the data-plane thread on a fatal error, just before the thread ends.
using FatalCallback = std::function<void(int err, const char* syscall)>;

class DataPlane {
 public:
  explicit DataPlane(Stats* stats) : stats_(stats) {}
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
  struct Verdict {
    uint64_t recv_ns;
    uint8_t kind;
  };  // kind: 0 immediate, 1 held, 2 shutdown
  struct PairEntry {
    uint64_t key = 0;
    uint64_t a_seen_ns = 0;   // last A of this flow+name accepted at (0: none)
    uint64_t expires_ns = 0;  // entry may be reused after this
    uint64_t held_seq[2] = {0, 0};
    uint8_t held_cls[2] = {0, 0};  // 0: slot empty
  };

  void Run();
  int Drain(uint64_t* now_ns);
  void Process(uint32_t id, const uint8_t* payload, size_t len, uint64_t now_ns);
  void AddVerdict(uint32_t id, uint64_t recv_ns, uint8_t kind);
  void Flush();
  void ReleaseExpired(uint64_t now_ns);
  void ReleaseAll();
  void ArmTimer();
  void TakePolicy();
  PairEntry* PairLookup(uint64_t key, uint64_t now_ns, bool create);
  void ReleaseHeld(HeldPacket* p);
  int QueueWaiting() const;
  bool QueueBoundElsewhere() const;
  void CloseAll();

  Stats* stats_;
  QueueOptions opts_;
  mnl_socket* nl_ = nullptr;
  int epoll_fd_ = -1, timer_fd_ = -1, event_fd_ = -1;
  uint32_t portid_ = 0;
  uint32_t last_id_ = 0;
  uint64_t armed_ns_ = 0;  // deadline the timerfd is armed for (0: disarmed)
  std::thread thread_;
  std::atomic<bool> stop_requested_{false};
  bool started_ = false;
  bool stopped_ = false;
  bool stopping_ = false;  // data-plane thread only: accept everything from now on
  FatalCallback on_fatal_;

  std::mutex policy_mu_;
  std::unique_ptr<Policy> pending_policy_;  // guarded by policy_mu_
  std::unique_ptr<Policy> policy_;          // data-plane thread only (after Start)

  std::array<HoldFifo, kMaxHoldClasses + 1> fifos_;
  int64_t held_now_ = 0;
  std::vector<PairEntry> pairs_;

  std::vector<char> send_buf_;
  size_t send_len_ = 0;
  std::vector<Verdict> batch_;
  std::vector<char> recv_buf_;
};

}  // namespace dns_shaper
