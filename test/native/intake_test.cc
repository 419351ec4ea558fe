// Unit tests of what the data plane does with each received netlink message (issue 25): a message
// that cannot be read is counted as what happened to it (accepted unread, or no id), never as a
// malformed packet, a parse failure or a bypass; a held packet's verdict refused with ENOENT is a
// packet the kernel dropped (held_flushed), not a verdict error.
#include "../../native/intake.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "netlink_msgs.h"
#include "unit.h"

using namespace dns_shaper;
using unit::PutPacketMsg;
using unit::PutVerdictError;

namespace {

struct Recorder : VerdictSink {
  std::vector<uint32_t> ids;
  void Emit(const Verdict& v) override { ids.push_back(v.id); }
};

struct Fixture {
  Stats stats;
  Recorder rec;
  DecisionCore core{&stats, &rec};
  Fixture() {
    auto p = std::make_unique<Policy>();
    p->cls[28] = 1;
    p->hold_ns[1] = 5000000;
    p->max_held = 100;
    EXPECT_EQ(core.Init(CoreOptions{}, std::move(p)), 0);
  }
  uint64_t Packets(Action a) {
    uint64_t n = 0;
    for (auto& c : stats.packets[a]) n += c.load();
    return n;
  }
  uint64_t ParseFailures() {
    uint64_t n = 0;
    for (auto& c : stats.parse_failures) n += c.load();
    return n;
  }
};

bool Take(Fixture* f, char* buf, size_t avail) {
  return TakeMsg(reinterpret_cast<nlmsghdr*>(buf), avail, 1000, &f->core, &f->stats);
}

}  // namespace

CASE("intake: a truncated or unparsable message is accepted unread: not malformed, no parse failure") {
  for (bool truncated : {true, false}) {
    Fixture f;
    alignas(8) char buf[4096];
    size_t len = truncated ? PutPacketMsg(buf, 1, 1000) - 300 : PutPacketMsg(buf, 1, 40, true);
    EXPECT(Take(&f, buf, len));
    EXPECT_EQ(f.rec.ids, (std::vector<uint32_t>{1}));
    EXPECT_EQ((truncated ? f.stats.msg_truncated : f.stats.msg_unparsable).load(), 1u);
    EXPECT_EQ(f.stats.packets[kAccepted][kQtypeNone].load(), 1u);
    EXPECT_EQ(f.Packets(kMalformed), 0u);
    EXPECT_EQ(f.ParseFailures(), 0u);
  }
}

CASE("intake: a readable message whose payload is not IP is malformed (the contrast)") {
  Fixture f;
  alignas(8) char buf[4096];
  size_t len = PutPacketMsg(buf, 1, 3);
  EXPECT(Take(&f, buf, len));
  EXPECT_EQ(f.Packets(kMalformed), 1u);
  EXPECT_EQ(f.stats.parse_failures[static_cast<size_t>(ParseReason::kIpHeader)].load(), 1u);
  EXPECT_EQ(f.stats.msg_truncated.load() + f.stats.msg_unparsable.load(), 0u);
}

CASE("intake: a message without a readable id is counted as such, and its id gap is not a bypass") {
  Fixture f;
  alignas(8) char buf[4096];
  size_t len = PutPacketMsg(buf, 1, 40);
  EXPECT(Take(&f, buf, len));
  PutPacketMsg(buf, 2, 40);
  EXPECT(!Take(&f, buf, 12));  // only a header stub arrived: id 2 unreadable
  EXPECT_EQ(f.stats.msg_no_id.load(), 1u);
  len = PutPacketMsg(buf, 3, 40);
  EXPECT(Take(&f, buf, len));
  EXPECT_EQ(f.stats.packets[kBypassed][kQtypeNone].load(), 0u);
  len = PutPacketMsg(buf, 5, 40);  // a real gap (id 4) is still a bypass
  EXPECT(Take(&f, buf, len));
  EXPECT_EQ(f.stats.packets[kBypassed][kQtypeNone].load(), 1u);
  EXPECT_EQ(f.rec.ids, (std::vector<uint32_t>{1, 3, 5}));
}

CASE("intake: ENOENT for a held packet's verdict is held_flushed, not a verdict error") {
  Fixture f;
  alignas(8) char buf[256];
  size_t len = PutVerdictError(buf, -ENOENT, kHeldVerdictSeq);
  EXPECT(!Take(&f, buf, len));
  EXPECT_EQ(f.stats.held_flushed.load(), 1u);
  EXPECT_EQ(f.stats.verdict_errors.load(), 0u);
  len = PutVerdictError(buf, -ENOENT, 0);  // a packet accepted at once
  Take(&f, buf, len);
  len = PutVerdictError(buf, -EINVAL, kHeldVerdictSeq);
  Take(&f, buf, len);
  EXPECT_EQ(f.stats.held_flushed.load(), 1u);
  EXPECT_EQ(f.stats.verdict_errors.load(), 2u);
  len = PutVerdictError(buf, 0, kHeldVerdictSeq);  // an ACK is no error
  Take(&f, buf, len);
  Take(&f, buf, 8);  // too short to read
  EXPECT_EQ(f.stats.held_flushed.load() + f.stats.verdict_errors.load(), 3u);
}

int main() { return unit::RunAll(); }
