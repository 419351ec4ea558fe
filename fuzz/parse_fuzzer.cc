// libFuzzer target for the packet parser: arbitrary bytes in, invariants checked, no allocation.
// Must only call the pure parser; build with fuzz/build.sh, run with fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "../native/parse.h"

using dns_shaper::PacketKind;
using dns_shaper::ParsedPacket;
using dns_shaper::ParseReason;

// abort() rather than assert(): the check must survive -DNDEBUG builds.
#define CHECK(cond)     \
  do {                  \
    if (!(cond)) {      \
      __builtin_trap(); \
    }                   \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ParsedPacket p;
  PacketKind k = dns_shaper::ParsePacket(data, size, &p);
  CHECK(k == p.kind);
  CHECK(static_cast<uint8_t>(p.kind) <= static_cast<uint8_t>(PacketKind::kMalformed));
  CHECK(p.reason < ParseReason::kCount);
  CHECK(dns_shaper::kParseReasonNames[static_cast<size_t>(p.reason)] != nullptr);
  switch (p.kind) {
    case PacketKind::kQuery:
      CHECK(p.reason == ParseReason::kNone);
      CHECK(p.ip_version == 4 || p.ip_version == 6);
      // Smallest query: IPv4 header + UDP + DNS header + root name + QTYPE/QCLASS.
      CHECK(size >= 20 + 8 + 12 + 1 + 4);
      CHECK(p.qname_offset >= 20 + 8 + 12 && p.qname_offset < size);
      break;
    case PacketKind::kNotQuery:
      CHECK(p.reason == ParseReason::kNone);
      break;
    case PacketKind::kNotDns:
      CHECK(p.reason == ParseReason::kFragment || p.reason == ParseReason::kNotUdp);
      break;
    case PacketKind::kMalformed:
      CHECK(p.reason != ParseReason::kNone && p.reason != ParseReason::kFragment &&
            p.reason != ParseReason::kNotUdp);
      break;
  }
  // Pure: a second parse of the same bytes gives the same answer, byte for byte.
  ParsedPacket q;
  dns_shaper::ParsePacket(data, size, &q);
  CHECK(std::memcmp(&p, &q, sizeof(p)) == 0);
  // A query stays a query (with the same key) when bytes are appended beyond the IP packet:
  // only length fields decide where the packet ends. Checked on small inputs to keep exec/s high.
  if (p.kind == PacketKind::kQuery && size <= 1024) {
    uint8_t buf[1024 + 16];
    std::memcpy(buf, data, size);
    std::memset(buf + size, 0xc0, 16);
    ParsedPacket r;
    // Only holds when the IP length field already bounds the packet (else the tail is "captured").
    size_t ip_len = p.ip_version == 4 ? (data[2] << 8 | data[3]) : 40 + (data[4] << 8 | data[5]);
    if (ip_len <= size) {
      dns_shaper::ParsePacket(buf, size + 16, &r);
      CHECK(r.kind == PacketKind::kQuery && r.qtype == p.qtype && r.flow_hash == p.flow_hash);
    }
  }
  return 0;
}
