// What the data plane does with each netlink message its queue socket receives, apart from the
// socket: a refused verdict is counted by what it means, a queued packet is read (nfq.h), parsed
// (parse.h) and handed to the decision core, and a message that cannot be read is counted as what
// happened to it (never as a malformed packet or a bypass). No I/O, no clock: tests feed it bytes.
#pragma once
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>

#include "decision_core.h"
#include "nfq.h"
#include "parse.h"
#include "stats.h"

namespace dns_shaper {

inline bool IsPacketMsg(const nlmsghdr* nlh) {
  return nlh->nlmsg_type == ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET);
}

// Takes one message of which avail bytes arrived (see ForEachMsg). Returns true when it was a queued
// packet with a readable id, which then got its verdict or was held.
inline bool TakeMsg(nlmsghdr* nlh, size_t avail, uint64_t now_ns, DecisionCore* core, Stats* stats) {
  if (nlh->nlmsg_type == NLMSG_ERROR) {
    // Verdicts carry no ACK flag, so only failures come back.
    switch (ReadVerdictError(nlh, avail)) {
      case VerdictError::kNone:
        break;
      case VerdictError::kHeldGone:
        Stats::Inc(stats->held_flushed);
        break;
      case VerdictError::kOther:
        Stats::Inc(stats->verdict_errors);
        break;
    }
    return false;
  }
  if (!IsPacketMsg(nlh)) return false;
  PacketMsg m;
  switch (ReadPacketMsg(nlh, avail, &m)) {
    case PacketMsgStatus::kOk: {
      ParsedPacket pp;
      static const uint8_t kEmpty = 0;
      ParsePacket(m.payload ? m.payload : &kEmpty, m.payload ? m.payload_len : 0, &pp);
      core->OnPacket(m.id, pp, now_ns);
      return true;
    }
    case PacketMsgStatus::kTruncated:
      // The payload may be cut: accept the packet unshaped rather than guess its question.
      Stats::Inc(stats->msg_truncated);
      core->OnUnread(m.id, now_ns);
      return true;
    case PacketMsgStatus::kUnparsable:
      Stats::Inc(stats->msg_unparsable);
      core->OnUnread(m.id, now_ns);
      return true;
    case PacketMsgStatus::kNoId:
      // Cannot be verdicted: the kernel keeps it until unbind (counted so it is not silent).
      Stats::Inc(stats->msg_no_id);
      core->OnNoId();
      return false;
  }
  return false;
}

}  // namespace dns_shaper
