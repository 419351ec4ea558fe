// Netlink message builders; see nfq.h. Kept apart from the socket so they can be reasoned about alone.
#include "nfq.h"

#include <arpa/inet.h>
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

size_t PutAcceptVerdict(char* buf, uint16_t queue, uint32_t id) {
  nlmsghdr* nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, queue);
  nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), NF_ACCEPT);
  return nlh->nlmsg_len;
}

}  // namespace dns_shaper
