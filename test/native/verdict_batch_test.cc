// Unit tests of verdict batching (issue 14 item 7): a failed sendto must not lose its batch.
#include "../../native/verdict_batch.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "unit.h"

using namespace dns_shaper;

namespace {

// Fails the first `failures` sends with `err`, then records the ids of every verdict it carries.
struct FakeSender : VerdictSender {
  int failures = 0;
  int err = -ENOBUFS;
  int sends = 0;
  std::vector<uint32_t> sent;
  std::vector<uint32_t> pauses;
  int Send(const char* buf, size_t len) override {
    sends++;
    if (failures > 0) {
      failures--;
      return err;
    }
    int remaining = static_cast<int>(len);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf); mnl_nlmsg_ok(nlh, remaining);
         nlh = mnl_nlmsg_next(nlh, &remaining)) {
      auto* attr = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, 4));  // after nfgenmsg
      auto* vh = static_cast<const nfqnl_msg_verdict_hdr*>(mnl_attr_get_payload(attr));
      sent.push_back(ntohl(vh->id));
    }
    return 0;
  }
  void Pause(uint32_t us) override { pauses.push_back(us); }
  uint64_t Now() override { return 1000; }
};

void Fill(VerdictBatch* b, uint32_t from, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) b->Add(Verdict{from + i, VerdictKind::kImmediate, 0});
}

}  // namespace

CASE("batch: one sendto carries every verdict, in order") {
  Stats stats;
  VerdictBatch b;
  b.Init(3);
  Fill(&b, 10, 5);
  FakeSender s;
  EXPECT_EQ(b.Flush(&s, &stats), 0);
  EXPECT_EQ(s.sends, 1);
  EXPECT_EQ(s.sent, (std::vector<uint32_t>{10, 11, 12, 13, 14}));
  EXPECT(b.Empty());
  EXPECT_EQ(stats.verdict_batches.load(), 1u);
  EXPECT_EQ(stats.latency.buckets[0].load(), 5u);
}

CASE("batch: transient ENOBUFS is retried with backoff; nothing is lost or sent twice") {
  Stats stats;
  VerdictBatch b;
  b.Init(0);
  Fill(&b, 1, VerdictBatch::kMaxVerdicts);
  EXPECT(b.Full());
  FakeSender s;
  s.failures = 3;
  EXPECT_EQ(b.Flush(&s, &stats), 0);
  EXPECT_EQ(s.sends, 4);
  EXPECT_EQ(s.sent.size(), VerdictBatch::kMaxVerdicts);
  if (!s.sent.empty()) EXPECT_EQ(s.sent.front(), 1u);
  if (!s.sent.empty()) EXPECT_EQ(s.sent.back(), static_cast<uint32_t>(VerdictBatch::kMaxVerdicts));
  EXPECT_EQ(s.pauses, (std::vector<uint32_t>{50, 100, 200}));
  EXPECT_EQ(stats.send_errors.load(), 3u);
  EXPECT(b.Empty());
}

CASE("batch: ENOMEM, EAGAIN and EINTR are transient too; the backoff is capped") {
  for (int e : {-ENOMEM, -EAGAIN, -EINTR}) {
    Stats stats;
    VerdictBatch b;
    b.Init(0);
    Fill(&b, 1, 2);
    FakeSender s;
    s.failures = 12;
    s.err = e;
    EXPECT_EQ(b.Flush(&s, &stats), 0);
    EXPECT_EQ(s.sent, (std::vector<uint32_t>{1, 2}));
    if (!s.pauses.empty()) EXPECT_EQ(s.pauses.back(), VerdictBatch::kMaxPauseUs);
  }
}

CASE("batch: a non-transient error returns it and keeps the batch for the next flush") {
  Stats stats;
  VerdictBatch b;
  b.Init(0);
  Fill(&b, 7, 3);
  FakeSender bad;
  bad.failures = 1;
  bad.err = -EBADF;
  EXPECT_EQ(b.Flush(&bad, &stats), -EBADF);
  EXPECT_EQ(bad.sends, 1);
  EXPECT(!b.Empty());
  EXPECT_EQ(b.Size(), 3u);
  FakeSender good;
  EXPECT_EQ(b.Flush(&good, &stats), 0);
  EXPECT_EQ(good.sent, (std::vector<uint32_t>{7, 8, 9}));
}

CASE("batch: transient failures past the retry limit return the error, batch kept") {
  Stats stats;
  VerdictBatch b;
  b.Init(0);
  Fill(&b, 1, 1);
  FakeSender s;
  s.failures = 1 << 20;
  EXPECT_EQ(b.Flush(&s, &stats), -ENOBUFS);
  EXPECT_EQ(s.sends, VerdictBatch::kMaxRetries + 1);
  EXPECT(!b.Empty());
}

int main() { return unit::RunAll(); }
