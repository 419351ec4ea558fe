// Netlink message builders and readers; see nfq.h. Kept apart from the socket so they can be tested alone.
#include "nfq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>

namespace dns_shaper {

size_t PutConfigCmd(char* buf, uint16_t queue, uint8_t cmd, uint32_t seq) {
  nlmsghdr* nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue);
  nlh->nlmsg_flags |= NLM_F_ACK;
  nlh->nlmsg_seq = seq;
  // The pf is ignored by kernels >= 3.8; AF_UNSPEC keeps IPv4 and IPv6 on the same queue.
  nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, cmd);
  return nlh->nlmsg_len;
}

size_t PutConfigParams(char* buf, uint16_t queue, uint32_t copy_range, uint32_t max_len, uint32_t flags,
                       uint32_t seq) {
  nlmsghdr* nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue);
  nlh->nlmsg_flags |= NLM_F_ACK;
  nlh->nlmsg_seq = seq;
  nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, static_cast<int>(copy_range));
  nfq_nlmsg_cfg_put_qmaxlen(nlh, max_len);
  mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
  mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(flags));
  return nlh->nlmsg_len;
}

size_t PutAcceptVerdict(char* buf, uint16_t queue, uint32_t id, uint32_t seq) {
  nlmsghdr* nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, queue);
  nlh->nlmsg_seq = seq;
  nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), NF_ACCEPT);
  return nlh->nlmsg_len;
}

VerdictError ReadVerdictError(const nlmsghdr* nlh, size_t avail) {
  if (avail < NLMSG_HDRLEN + sizeof(nlmsgerr)) return VerdictError::kNone;
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  if (err->error == 0) return VerdictError::kNone;
  // Unbinding the queue, a hook's unregistration (any base chain deleted in the namespace) and an
  // interface going down make the kernel drop the queued packets: their verdicts come back ENOENT.
  if (err->error == -ENOENT && nlh->nlmsg_seq == kHeldVerdictSeq) return VerdictError::kHeldGone;
  return VerdictError::kOther;
}

PacketMsgStatus ReadPacketMsg(nlmsghdr* nlh, size_t avail, PacketMsg* out) {
  *out = PacketMsg{};
  if (avail < NLMSG_HDRLEN + sizeof(nfgenmsg)) return PacketMsgStatus::kNoId;
  bool truncated = nlh->nlmsg_len > avail;
  if (truncated) nlh->nlmsg_len = static_cast<uint32_t>(avail);  // attributes are read up to what arrived
  nlattr* attr[NFQA_MAX + 1] = {};
  bool parsed = nfq_nlmsg_parse(nlh, attr) >= 0;
  const nlattr* hdr = parsed ? attr[NFQA_PACKET_HDR] : nullptr;
  if (!hdr) {
    // The parser stops at the first attribute it rejects: find the packet header ourselves, so a
    // packet whose id can be read still gets its verdict.
    const char* end = reinterpret_cast<const char*>(nlh) + nlh->nlmsg_len;
    for (auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
         mnl_attr_ok(a, static_cast<int>(end - reinterpret_cast<const char*>(a))); a = mnl_attr_next(a)) {
      if (mnl_attr_get_type(a) == NFQA_PACKET_HDR &&
          mnl_attr_get_payload_len(a) >= sizeof(nfqnl_msg_packet_hdr)) {
        hdr = a;
        break;
      }
    }
  }
  if (!hdr) return PacketMsgStatus::kNoId;
  auto* ph = static_cast<const nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(hdr));
  out->id = ntohl(ph->packet_id);
  if (!parsed) return PacketMsgStatus::kUnparsable;
  if (truncated) return PacketMsgStatus::kTruncated;
  if (attr[NFQA_PAYLOAD]) {
    out->payload = static_cast<const uint8_t*>(mnl_attr_get_payload(attr[NFQA_PAYLOAD]));
    out->payload_len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
  }
  return PacketMsgStatus::kOk;
}

}  // namespace dns_shaper
