// Data-plane thread; see dataplane.h. Ordering rule: verdicts leave in the order the decision core
// emitted them (see decision_core.cc for why).
#include "dataplane.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "intake.h"
#include "nfq.h"
#include "parse.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace dns_shaper {

namespace {

constexpr int kRecvBatch = 64;                // datagrams per recvmmsg
constexpr size_t kRecvSlot = kRecvSlotBytes;  // one queued packet message (copy range + attributes)
constexpr int kMaxRoundsPerWake = 16;         // bound one wake-up so timers are not starved
constexpr uint64_t kStopDrainNs = 250000000;  // at stop, wait this long at most for the kernel queue to empty

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

static_assert(kRecvBatch * kRecvSlot <= 64 * kRecvSlotBytes, "kQueueFixedBytes counts the receive slots");

void ClampOptions(QueueOptions* o) {
  if (o->copy_range > kMaxCopyRange) o->copy_range = kMaxCopyRange;
  uint64_t waiting =
      static_cast<uint64_t>(o->fifo_capacity) + o->rcvbuf / kMinMsgTruesize + VerdictBatch::kMaxVerdicts;
  if (o->max_len <= waiting)
    o->max_len = static_cast<uint32_t>(std::min<uint64_t>(waiting + 1, kMaxQueueMaxLen));
}

DataPlane::~DataPlane() { Stop(); }

int DataPlane::Open(const QueueOptions& opts, std::unique_ptr<Policy> policy, const char** syscall) {
  opts_ = opts;
  // Everything the packet path uses is allocated here, before the queue is bound.
  CoreOptions co;
  co.held_capacity = opts_.fifo_capacity;
  co.pair_slots = opts_.pair_slots;
  if (int r = core_.Init(co, std::move(policy)); r < 0) {
    *syscall = "init decision core";
    return r;
  }
  // CLOEXEC: an iptables child (or any exec) must not inherit the queue socket. A child still
  // running after a crash would keep the queue bound, and --queue-bypass would not apply.
  nl_ = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (!nl_) {
    *syscall = "socket";
    return -errno;
  }
  if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
    *syscall = "bind";
    int e = -errno;
    CloseAll();
    return e;
  }
  portid_ = mnl_socket_get_portid(nl_);
  int fd = mnl_socket_get_fd(nl_);
  int rcv = static_cast<int>(opts_.rcvbuf);
  // FORCE needs CAP_NET_ADMIN (which binding a queue needs anyway); fall back to the capped variant.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  int one = 1;
  // Without this an overrun socket returns ENOBUFS and the kernel drops the message; with it the
  // overflow shows as a gap in packet ids, and FAIL_OPEN has already let those packets through.
  setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);

  // Bind and parameters in one datagram, each with an ACK that we check.
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  size_t len = PutConfigCmd(buf.data(), opts_.queue_num, NFQNL_CFG_CMD_BIND, 1);
  ClampOptions(&opts_);
  len += PutConfigParams(buf.data() + len, opts_.queue_num, opts_.copy_range, opts_.max_len,
                         NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO, 2);
  if (mnl_socket_sendto(nl_, buf.data(), len) < 0) {
    *syscall = "sendto";
    int e = -errno;
    CloseAll();
    return e;
  }
  int acked = 0, result = 0;
  const char* failed_step = nullptr;
  std::vector<char> rbuf(kRecvSlot * 4);
  uint64_t give_up = NowNs() + 2000000000ULL;
  while (acked < 2 && NowNs() < give_up) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    ssize_t n = recv(fd, rbuf.data(), rbuf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      *syscall = "recv";
      int e = -errno;
      CloseAll();
      return e;
    }
    int remaining = static_cast<int>(n);
    for (nlmsghdr* nlh = reinterpret_cast<nlmsghdr*>(rbuf.data()); mnl_nlmsg_ok(nlh, remaining);
         nlh = mnl_nlmsg_next(nlh, &remaining)) {
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        auto* err = static_cast<nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (nlh->nlmsg_seq == 1 || nlh->nlmsg_seq == 2) {
          acked++;
          if (err->error != 0 && result == 0) {
            result = err->error;
            failed_step = nlh->nlmsg_seq == 1 ? "bind queue" : "set queue parameters";
          }
        }
      } else if (IsPacketMsg(nlh)) {
        // A packet can arrive between bind and the parameters reply: accept it so it is not stranded.
        nlattr* attr[NFQA_MAX + 1] = {};
        if (nfq_nlmsg_parse(nlh, attr) >= 0 && attr[NFQA_PACKET_HDR]) {
          auto* ph = static_cast<nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
          char vbuf[kVerdictMsgSize * 2];
          size_t vl = PutAcceptVerdict(vbuf, opts_.queue_num, ntohl(ph->packet_id));
          mnl_socket_sendto(nl_, vbuf, vl);
          core_.NoteId(ntohl(ph->packet_id));
          Stats::Inc(stats_->packets[kAccepted][kQtypeNone]);
        }
      }
    }
  }
  if (acked < 2 && result == 0) {
    result = -ETIMEDOUT;
    failed_step = "wait for queue config reply";
  }
  // The kernel answers EPERM both for a missing CAP_NET_ADMIN and for a queue bound by another
  // socket; only the latter leaves the queue listed in /proc, so tell the two apart there.
  if (result == -EPERM && QueueBoundElsewhere()) result = -EBUSY;
  if (result != 0) {
    *syscall = failed_step;
    CloseAll();
    return result;
  }

  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || timer_fd_ < 0 || event_fd_ < 0) {
    *syscall = "epoll/timerfd/eventfd";
    int e = -errno;
    CloseAll();
    return e;
  }
  for (int f : {fd, timer_fd_, event_fd_}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = f;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, f, &ev) < 0) {
      *syscall = "epoll_ctl";
      int e = -errno;
      CloseAll();
      return e;
    }
  }
  batch_.Init(opts_.queue_num);
  recv_buf_.assign(kRecvSlot * kRecvBatch, 0);
  return 0;
}

int DataPlane::Start(FatalCallback on_fatal) {
  on_fatal_ = std::move(on_fatal);
  stats_->running.store(true);
  started_ = true;
  thread_ = std::thread([this] { Run(); });
  return 0;
}

void DataPlane::SetPolicy(std::unique_ptr<Policy> policy) {
  {
    std::lock_guard<std::mutex> lock(policy_mu_);
    pending_policy_ = std::move(policy);
  }
  uint64_t one = 1;
  if (event_fd_ >= 0) (void)!write(event_fd_, &one, sizeof one);
}

void DataPlane::TakePolicy() {
  std::unique_ptr<Policy> next;
  {
    std::lock_guard<std::mutex> lock(policy_mu_);
    next = std::move(pending_policy_);
  }
  if (!next) return;
  core_.SetPolicy(std::move(next));
}

void DataPlane::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (started_) {
    stop_requested_.store(true);
    uint64_t one = 1;
    (void)!write(event_fd_, &one, sizeof one);
    if (thread_.joinable()) thread_.join();
  }
  CloseAll();
}

void DataPlane::CloseAll() {
  if (nl_) {
    mnl_socket_close(nl_);
    nl_ = nullptr;
  }
  for (int* f : {&epoll_fd_, &timer_fd_, &event_fd_})
    if (*f >= 0) {
      close(*f);
      *f = -1;
    }
  stats_->running.store(false);
}

void DataPlane::Run() {
  prctl(PR_SET_NAME, "dns-shaper-dp", 0, 0, 0);
  // Default timer slack is 50 us; holds are specified to well under a millisecond.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  int fatal_err = 0;
  const char* fatal_call = nullptr;
  epoll_event evs[4];
  while (!stop_requested_.load(std::memory_order_relaxed)) {
    int n = epoll_wait(epoll_fd_, evs, 4, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      fatal_err = -errno;
      fatal_call = "epoll_wait";
      break;
    }
    for (int i = 0; i < n; i++) {
      uint64_t v;
      if (evs[i].data.fd == event_fd_) {
        (void)!read(event_fd_, &v, sizeof v);
        TakePolicy();
      } else if (evs[i].data.fd == timer_fd_) {
        (void)!read(timer_fd_, &v, sizeof v);
      }
    }
    uint64_t now = NowNs();
    int r = Drain(&now);
    if (r < 0) {
      fatal_err = r;
      fatal_call = "recvmmsg";
      break;
    }
    core_.Advance(NowNs());
    Flush();
    if (batch_.GaveUp()) {
      fatal_err = batch_.error();
      fatal_call = "sendto";
      break;
    }
    ArmTimer();
  }
  if (fatal_err && on_fatal_) on_fatal_(fatal_err, fatal_call);

  // Stop path: nothing may be lost. Accept everything held, then keep draining until the kernel's
  // queue for us is empty (the daemon removes its rules first, so it empties), bounded in time. After
  // a fatal error (sends that kept failing included) there is no draining: StopVerdicts makes the
  // one bounded final attempt, and what it cannot send is counted and left to the unbind.
  StopVerdicts(&core_, &batch_, this, stats_);
  uint64_t until = NowNs() + kStopDrainNs;
  for (;;) {
    uint64_t now = NowNs();
    if (fatal_err || batch_.GaveUp()) break;
    int got = Drain(&now);
    Flush();
    if (got < 0 || batch_.GaveUp() || (got == 0 && QueueWaiting() <= 0)) break;
    if (NowNs() > until) break;
    if (got == 0) usleep(1000);
  }
  batch_.Abandon(stats_);
  // Unbinding flushes whatever the kernel still queued for us with NF_DROP; by now that is nothing
  // unless rules are unmanaged and traffic keeps coming.
  char buf[64];
  size_t len = PutConfigCmd(buf, opts_.queue_num, NFQNL_CFG_CMD_UNBIND, 3);
  if (nl_) mnl_socket_sendto(nl_, buf, len);
  stats_->held_now.store(0);
  stats_->running.store(false);
}

int DataPlane::Drain(uint64_t* now_ns) {
  int fd = mnl_socket_get_fd(nl_);
  mmsghdr msgs[kRecvBatch];
  iovec iovs[kRecvBatch];
  int total = 0;
  for (int round = 0; round < kMaxRoundsPerWake; round++) {
    for (int i = 0; i < kRecvBatch; i++) {
      iovs[i].iov_base = recv_buf_.data() + i * kRecvSlot;
      iovs[i].iov_len = kRecvSlot;
      std::memset(&msgs[i].msg_hdr, 0, sizeof(msghdr));
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, msgs, kRecvBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        Stats::Inc(stats_->enobufs);
        continue;
      }
      Stats::Inc(stats_->recv_errors);
      return -errno;
    }
    if (n == 0) break;
    *now_ns = NowNs();
    Stats::Inc(stats_->drains);
    for (int i = 0; i < n; i++) {
      ForEachMsg(static_cast<char*>(iovs[i].iov_base), msgs[i].msg_len, [&](nlmsghdr* nlh, size_t avail) {
        if (TakeMsg(nlh, avail, *now_ns, &core_, stats_)) total++;
      });
    }
    Flush();  // all verdicts of this receive batch in one sendto
    // Sends keep failing: stop draining (each round would only drop more) and let Run stop.
    if (batch_.GaveUp() || n < kRecvBatch) break;
  }
  return total;
}

void DataPlane::ArmTimer() {
  uint64_t earliest = core_.NextDeadline();
  // Re-arming costs a syscall per wake-up; skip it while the earliest deadline is unchanged.
  if (earliest == armed_ns_) return;
  armed_ns_ = earliest;
  itimerspec its{};
  if (earliest) {
    its.it_value.tv_sec = static_cast<time_t>(earliest / 1000000000ULL);
    its.it_value.tv_nsec = static_cast<long>(earliest % 1000000000ULL);
  }
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &its, nullptr);  // zero disarms
}

void DataPlane::Emit(const Verdict& v) { batch_.Push(v, this, stats_); }

void DataPlane::Flush() { batch_.Flush(this, stats_); }

int DataPlane::Send(const char* buf, size_t len) { return mnl_socket_sendto(nl_, buf, len) < 0 ? -errno : 0; }

void DataPlane::Pause(uint32_t us) { usleep(us); }

uint64_t DataPlane::Now() { return NowNs(); }

bool DataPlane::QueueBoundElsewhere() const {
  FILE* f = fopen("/proc/net/netfilter/nfnetlink_queue", "re");
  if (!f) return false;
  unsigned q, portid;
  bool found = false;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "%u %u", &q, &portid) == 2 && q == opts_.queue_num && portid != portid_) {
      found = true;
      break;
    }
  }
  fclose(f);
  return found;
}

int DataPlane::QueueWaiting() const {
  // Only read on the stop path. Columns: queue portid waiting copy_mode copy_range dropped ...
  FILE* f = fopen("/proc/net/netfilter/nfnetlink_queue", "re");
  if (!f) return -1;
  unsigned q, portid, waiting;
  int result = 0;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "%u %u %u", &q, &portid, &waiting) == 3 && q == opts_.queue_num && portid == portid_) {
      result = static_cast<int>(waiting);
      break;
    }
  }
  fclose(f);
  return result;
}

}  // namespace dns_shaper
