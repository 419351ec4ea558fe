// Netlink message builders for one NFQUEUE (config commands, verdicts) on top of libnetfilter_queue's
// nfq_nlmsg_* API. No I/O here: the data plane owns the socket and decides when bytes are sent.
#pragma once
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
// Appends an NF_ACCEPT verdict for one packet id, without an ACK (errors still come back).
size_t PutAcceptVerdict(char* buf, uint16_t queue, uint32_t id);

}  // namespace dns_shaper
