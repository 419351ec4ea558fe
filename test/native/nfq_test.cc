// Unit tests of reading queued-packet messages (issue 14 item 9): a truncated or unparsable message
// still yields its packet id, so the packet gets a verdict; a datagram's truncated tail is seen.
#include "../../native/nfq.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <cstring>
#include <vector>

#include "netlink_msgs.h"
#include "unit.h"

using namespace dns_shaper;

using unit::PutPacketMsg;

CASE("packet message: id and payload read from a whole message") {
  alignas(8) char buf[4096];
  size_t len = PutPacketMsg(buf, 77, 100);
  PacketMsg m;
  EXPECT(ReadPacketMsg(reinterpret_cast<nlmsghdr*>(buf), len, &m) == PacketMsgStatus::kOk);
  EXPECT_EQ(m.id, 77u);
  EXPECT_EQ(m.payload_len, 100u);
  EXPECT(m.payload != nullptr && m.payload[0] == 0x45);
}

CASE("packet message: truncated inside the payload still yields the id") {
  alignas(8) char buf[4096];
  size_t len = PutPacketMsg(buf, 0xFFFFFFFF, 1000);
  PacketMsg m;
  EXPECT(ReadPacketMsg(reinterpret_cast<nlmsghdr*>(buf), len - 300, &m) == PacketMsgStatus::kTruncated);
  EXPECT_EQ(m.id, 0xFFFFFFFFu);
  EXPECT(m.payload == nullptr);
  EXPECT(reinterpret_cast<nlmsghdr*>(buf)->nlmsg_len <= len - 300);  // nothing past what arrived
}

CASE("packet message: an attribute the parser rejects still yields the id") {
  alignas(8) char buf[4096];
  size_t len = PutPacketMsg(buf, 9, 40, true);
  PacketMsg m;
  EXPECT(ReadPacketMsg(reinterpret_cast<nlmsghdr*>(buf), len, &m) == PacketMsgStatus::kUnparsable);
  EXPECT_EQ(m.id, 9u);
}

CASE("packet message: too short for a packet header: no id") {
  alignas(8) char buf[4096];
  PutPacketMsg(buf, 5, 40);
  PacketMsg m;
  EXPECT(ReadPacketMsg(reinterpret_cast<nlmsghdr*>(buf), 12, &m) == PacketMsgStatus::kNoId);
  EXPECT(ReadPacketMsg(reinterpret_cast<nlmsghdr*>(buf), NLMSG_HDRLEN + 4 + 4, &m) == PacketMsgStatus::kNoId);
}

CASE("datagram: every message is visited, the truncated last one too") {
  alignas(8) char buf[8192];
  size_t a = PutPacketMsg(buf, 1, 100);
  size_t b = PutPacketMsg(buf + NLMSG_ALIGN(a), 2, 2000);
  size_t received = NLMSG_ALIGN(a) + b - 500;  // the slot ended inside the second message's payload
  std::vector<uint32_t> ids;
  std::vector<PacketMsgStatus> st;
  ForEachMsg(buf, received, [&](nlmsghdr* nlh, size_t avail) {
    PacketMsg m;
    st.push_back(ReadPacketMsg(nlh, avail, &m));
    ids.push_back(m.id);
  });
  EXPECT_EQ(ids, (std::vector<uint32_t>{1, 2}));
  EXPECT(st.size() == 2 && st[0] == PacketMsgStatus::kOk && st[1] == PacketMsgStatus::kTruncated);
  ids.clear();
  ForEachMsg(buf, NLMSG_ALIGN(a) + 8, [&](nlmsghdr* nlh, size_t avail) {  // only a header stub left
    PacketMsg m;
    ReadPacketMsg(nlh, avail, &m);
    ids.push_back(m.id);
  });
  EXPECT_EQ(ids, (std::vector<uint32_t>{1}));
}

int main() { return unit::RunAll(); }
