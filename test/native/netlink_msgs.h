// Netlink messages as the kernel sends them on a queue socket, built for the native unit tests
// (queued packets, errors for refused verdicts). Test-only: nothing in native/ includes it.
#pragma once
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <cstdint>
#include <vector>

namespace unit {

// A queued-packet message: packet header first, then optional extras, then the payload
// (payload_len bytes of 0x45). bad_mark_first puts a u32 attribute two bytes long first, which the
// attribute parser rejects. Returns its length.
inline size_t PutPacketMsg(char* buf, uint32_t id, size_t payload_len, bool bad_mark_first = false) {
  nlmsghdr* nlh = nfq_nlmsg_put(buf, NFQNL_MSG_PACKET, 0);
  if (bad_mark_first) {
    uint16_t two = 0;
    mnl_attr_put(nlh, NFQA_MARK, sizeof two, &two);
  }
  nfqnl_msg_packet_hdr ph{};
  ph.packet_id = htonl(id);
  ph.hw_protocol = htons(0x0800);
  ph.hook = 1;
  mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof ph, &ph);
  std::vector<uint8_t> payload(payload_len, 0x45);
  mnl_attr_put(nlh, NFQA_PAYLOAD, payload.size(), payload.data());
  return nlh->nlmsg_len;
}

// The error the kernel sends back for a refused verdict: the original message's seq is echoed.
inline size_t PutVerdictError(char* buf, int error, uint32_t seq) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = NLMSG_ERROR;
  nlh->nlmsg_seq = seq;
  auto* err = static_cast<nlmsgerr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nlmsgerr)));
  err->error = error;
  err->msg.nlmsg_seq = seq;
  return nlh->nlmsg_len;
}

}  // namespace unit
