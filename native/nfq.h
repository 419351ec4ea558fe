// Netlink message builders for one NFQUEUE (config commands, verdicts) on top of libnetfilter_queue's
// nfq_nlmsg_* API, and the reader of queued-packet messages. No I/O here: the data plane owns the
// socket and decides when bytes are sent.
#pragma once
#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>

namespace dns_shaper {

// Bytes one verdict message takes; the data plane sizes its batch buffer in these.
constexpr size_t kVerdictMsgSize = 32;

// Appends a config message (bind/unbind) that asks for an ACK. Returns bytes written.
size_t PutConfigCmd(char* buf, uint16_t queue, uint8_t cmd, uint32_t seq);
// Appends copy mode/range, queue max length and flags (FAIL_OPEN, GSO) in one message with an ACK.
size_t PutConfigParams(char* buf, uint16_t queue, uint32_t copy_range, uint32_t max_len, uint32_t flags,
                       uint32_t seq);
// Sequence number of the verdict of a packet that was held (seq 0: accepted at once). The kernel
// echoes it in the error it sends back, which tells a held packet the kernel dropped meanwhile from
// any other refused verdict. Apart from the config messages' 1..3.
constexpr uint32_t kHeldVerdictSeq = 0x48454c44;  // "HELD"

// Appends an NF_ACCEPT verdict for one packet id, without an ACK (errors still come back).
size_t PutAcceptVerdict(char* buf, uint16_t queue, uint32_t id, uint32_t seq = 0);

// What an NLMSG_ERROR on the queue socket says about a verdict we sent.
enum class VerdictError : uint8_t {
  kNone,      // no error (an ACK), or too short to read
  kHeldGone,  // ENOENT for a held packet: the kernel dropped it from the queue before its verdict
              // (a netfilter hook was unregistered in the namespace, or its interface went down)
  kOther,     // any other refused verdict (ENOENT for a packet accepted at once included)
};
VerdictError ReadVerdictError(const nlmsghdr* nlh, size_t avail);

// What could be read from one queued-packet message.
enum class PacketMsgStatus : uint8_t {
  kOk,          // id and payload (if any) read
  kTruncated,   // cut short by the receive slot: id read, payload not trusted
  kUnparsable,  // the attribute parser rejected it: id read by walking the attributes
  kNoId,        // no readable packet id: nothing can be verdicted
};

struct PacketMsg {
  uint32_t id = 0;
  const uint8_t* payload = nullptr;
  size_t payload_len = 0;
};

// Reads a packet message of which avail bytes arrived (fewer than nlmsg_len when truncated). May
// shorten nlh->nlmsg_len to avail so nothing past the received bytes is read.
PacketMsgStatus ReadPacketMsg(nlmsghdr* nlh, size_t avail, PacketMsg* out);

// Calls fn(nlh, avail) for each netlink message in one received datagram of len bytes, the last one
// included when it was cut short (avail < nlmsg_len); stops at a header that cannot be a message.
template <typename Fn>
void ForEachMsg(char* buf, size_t len, Fn&& fn) {
  size_t off = 0;
  while (len - off >= sizeof(nlmsghdr)) {
    auto* nlh = reinterpret_cast<nlmsghdr*>(buf + off);
    if (nlh->nlmsg_len < sizeof(nlmsghdr)) return;
    size_t avail = len - off < nlh->nlmsg_len ? len - off : nlh->nlmsg_len;
    fn(nlh, avail);
    if (avail < nlh->nlmsg_len) return;
    off += NLMSG_ALIGN(nlh->nlmsg_len);
    if (off > len) return;
  }
}

}  // namespace dns_shaper
