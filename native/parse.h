// Pure IPv4/IPv6 + UDP + DNS-question parser for queued packets. No I/O, no allocation, no napi:
// the data-plane thread calls it per packet and the fuzzer calls it on arbitrary bytes.
#pragma once
#include <cstddef>
#include <cstdint>

namespace dns_shaper {

// What a packet is, as far as shaping cares. Only kQuery can ever be held.
enum class PacketKind : uint8_t {
  kQuery = 0,      // DNS query (QR=0, OPCODE=0, QDCOUNT>=1) whose first question parsed
  kNotQuery = 1,   // well-formed DNS, but a response, another opcode or QDCOUNT=0
  kNotDns = 2,     // not UDP, or a fragment: nothing to classify
  kMalformed = 3,  // claims to be IP/UDP/DNS but does not parse
};

// Why a packet was malformed or not classifiable. Listed once; names exported to JS and metrics.
#define DNS_SHAPER_PARSE_REASONS(X)    \
  X(kNone, "none")                     \
  X(kIpHeader, "ip_header")            \
  X(kIpv6ExtHeader, "ipv6_ext_header") \
  X(kNotUdp, "not_udp")                \
  X(kFragment, "fragment")             \
  X(kUdpHeader, "udp_header")          \
  X(kDnsHeader, "dns_header")          \
  X(kLabel, "label")                   \
  X(kNameTooLong, "name_too_long")     \
  X(kPointer, "pointer")               \
  X(kQuestion, "question")

enum class ParseReason : uint8_t {
#define X(id, name) id,
  DNS_SHAPER_PARSE_REASONS(X)
#undef X
      kCount
};

extern const char* const kParseReasonNames[];

constexpr size_t kMaxNameLen = 255;  // RFC 1035 2.3.4, wire form

struct ParsedPacket {
  PacketKind kind;
  ParseReason reason;
  uint8_t ip_version;  // 4 or 6 (0 if unknown)
  uint16_t qtype;      // valid for kQuery / kNotQuery with a question
  uint16_t qclass;
  uint16_t dns_id;
  uint16_t sport, dport;
  uint8_t labels;         // number of labels in the first question name
  bool compressed;        // first question name used a compression pointer
  uint16_t qname_offset;  // offset of the question name inside the IP packet
  uint64_t flow_hash;     // hash of addresses, ports and lower-cased qname (pair mode key)
};

// Parses an IP packet as delivered by NFQUEUE (starts at the IP header).
// Never reads past data+len; returns the kind, also stored in out->kind.
PacketKind ParsePacket(const uint8_t* data, size_t len, ParsedPacket* out);

}  // namespace dns_shaper
