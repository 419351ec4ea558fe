// Packet parser: bounds-checked walk of IP header, IPv6 extension headers, UDP, DNS header and first
// question. Must stay allocation-free and never trust a length field from the packet.
#include "parse.h"

#include <cstring>

namespace dns_shaper {

const char* const kParseReasonNames[] = {
#define X(id, name) name,
    DNS_SHAPER_PARSE_REASONS(X)
#undef X
};

namespace {

constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kIpv6HopByHop = 0, kIpv6Routing = 43, kIpv6Fragment = 44, kIpv6DestOpts = 60, kIpv6Ah = 51;
constexpr int kMaxExtHeaders = 8;  // more than any real packet; bounds the walk
// Each pointer must point before itself, but it can still land on a label that leads back to it
// ("\x01a" + pointer to that label): this hop limit is what ends such loops.
constexpr int kMaxPointerHops = 16;

inline uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

struct Fnv {
  uint64_t h = 1469598103934665603ULL;
  void Add(const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; i++) {
      h ^= p[i];
      h *= 1099511628211ULL;
    }
  }
  void AddByte(uint8_t b) {
    h ^= b;
    h *= 1099511628211ULL;
  }
};

PacketKind Finish(ParsedPacket* out, PacketKind kind, ParseReason reason) {
  out->kind = kind;
  out->reason = reason;
  return kind;
}

}  // namespace

PacketKind ParsePacket(const uint8_t* data, size_t len, ParsedPacket* out) {
  std::memset(out, 0, sizeof(*out));
  if (len < 1) return Finish(out, PacketKind::kMalformed, ParseReason::kIpHeader);
  Fnv fnv;
  size_t l4 = 0;     // offset of the UDP header
  size_t end = len;  // end of the IP datagram inside the buffer
  uint8_t version = data[0] >> 4;
  out->ip_version = version;
  if (version == 4) {
    if (len < 20) return Finish(out, PacketKind::kMalformed, ParseReason::kIpHeader);
    size_t ihl = static_cast<size_t>(data[0] & 0x0f) * 4;
    size_t total = Be16(data + 2);
    if (ihl < 20 || ihl > len || total < ihl)
      return Finish(out, PacketKind::kMalformed, ParseReason::kIpHeader);
    if (total < end) end = total;  // total > len: copy range cut the tail, parse what we have
    uint16_t frag = Be16(data + 6);
    if ((frag & 0x2000) || (frag & 0x1fff)) return Finish(out, PacketKind::kNotDns, ParseReason::kFragment);
    if (data[9] != kProtoUdp) return Finish(out, PacketKind::kNotDns, ParseReason::kNotUdp);
    fnv.Add(data + 12, 8);
    l4 = ihl;
  } else if (version == 6) {
    if (len < 40) return Finish(out, PacketKind::kMalformed, ParseReason::kIpHeader);
    size_t total = 40 + static_cast<size_t>(Be16(data + 4));
    if (total < end) end = total;
    uint8_t next = data[6];
    size_t off = 40;
    int hops = 0;
    for (;;) {
      if (next == kProtoUdp) break;
      if (++hops > kMaxExtHeaders) return Finish(out, PacketKind::kMalformed, ParseReason::kIpv6ExtHeader);
      if (next == kIpv6HopByHop || next == kIpv6Routing || next == kIpv6DestOpts) {
        if (off + 8 > end) return Finish(out, PacketKind::kMalformed, ParseReason::kIpv6ExtHeader);
        next = data[off];
        off += (static_cast<size_t>(data[off + 1]) + 1) * 8;
      } else if (next == kIpv6Fragment) {
        if (off + 8 > end) return Finish(out, PacketKind::kMalformed, ParseReason::kIpv6ExtHeader);
        uint16_t fo = Be16(data + off + 2);
        // An atomic fragment (offset 0, no more fragments, RFC 6946) carries the whole datagram.
        if ((fo & 0xfff8) || (fo & 1)) return Finish(out, PacketKind::kNotDns, ParseReason::kFragment);
        next = data[off];
        off += 8;
      } else if (next == kIpv6Ah) {
        if (off + 8 > end) return Finish(out, PacketKind::kMalformed, ParseReason::kIpv6ExtHeader);
        next = data[off];
        off += (static_cast<size_t>(data[off + 1]) + 2) * 4;
      } else {
        return Finish(out, PacketKind::kNotDns, ParseReason::kNotUdp);  // ESP, TCP, ICMPv6, no-next...
      }
      // A header whose length runs past the data is the extension chain's fault, not UDP's.
      if (off > end) return Finish(out, PacketKind::kMalformed, ParseReason::kIpv6ExtHeader);
    }
    fnv.Add(data + 8, 32);
    l4 = off;
  } else {
    return Finish(out, PacketKind::kMalformed, ParseReason::kIpHeader);
  }

  if (l4 + 8 > end) return Finish(out, PacketKind::kMalformed, ParseReason::kUdpHeader);
  const uint8_t* udp = data + l4;
  out->sport = Be16(udp);
  out->dport = Be16(udp + 2);
  size_t udp_len = Be16(udp + 4);
  if (udp_len < 8) return Finish(out, PacketKind::kMalformed, ParseReason::kUdpHeader);
  if (l4 + udp_len < end) end = l4 + udp_len;  // ignore trailing bytes beyond the UDP length
  fnv.Add(udp, 4);

  const size_t dns = l4 + 8;
  if (dns + 12 > end) return Finish(out, PacketKind::kMalformed, ParseReason::kDnsHeader);
  const uint8_t* h = data + dns;
  out->dns_id = Be16(h);
  uint16_t flags = Be16(h + 2);
  uint16_t qdcount = Be16(h + 4);
  bool is_query = !(flags & 0x8000) && ((flags >> 11) & 0x0f) == 0;
  if (qdcount == 0) return Finish(out, PacketKind::kNotQuery, ParseReason::kNone);

  // Walk the first question's name. Offsets in pointers are relative to the DNS header.
  size_t pos = dns + 12;
  size_t after_name = 0;  // where the question continues once the name ends (set at the first pointer)
  size_t name_len = 0;
  int pointer_hops = 0;
  out->qname_offset = static_cast<uint16_t>(pos);
  for (;;) {
    if (pos >= end) return Finish(out, PacketKind::kMalformed, ParseReason::kLabel);
    uint8_t b = data[pos];
    if (b == 0) {
      name_len += 1;
      if (!after_name) after_name = pos + 1;
      break;
    }
    if ((b & 0xc0) == 0xc0) {
      if (pos + 2 > end) return Finish(out, PacketKind::kMalformed, ParseReason::kPointer);
      size_t target = dns + (static_cast<size_t>(b & 0x3f) << 8 | data[pos + 1]);
      if (target >= pos || target < dns + 12 || ++pointer_hops > kMaxPointerHops)
        return Finish(out, PacketKind::kMalformed, ParseReason::kPointer);
      if (!after_name) after_name = pos + 2;
      out->compressed = true;
      pos = target;
      continue;
    }
    if (b & 0xc0) return Finish(out, PacketKind::kMalformed, ParseReason::kLabel);  // 0x40/0x80: obsolete
    if (pos + 1 + b > end) return Finish(out, PacketKind::kMalformed, ParseReason::kLabel);
    name_len += 1 + b;
    if (name_len > kMaxNameLen) return Finish(out, PacketKind::kMalformed, ParseReason::kNameTooLong);
    fnv.AddByte(b);
    for (size_t i = 0; i < b; i++) {
      uint8_t c = data[pos + 1 + i];
      fnv.AddByte(c >= 'A' && c <= 'Z' ? static_cast<uint8_t>(c + 32) : c);  // 0x20 mixed case
    }
    if (out->labels < 255) out->labels++;
    pos += 1 + b;
  }
  if (name_len > kMaxNameLen) return Finish(out, PacketKind::kMalformed, ParseReason::kNameTooLong);
  if (after_name + 4 > end) return Finish(out, PacketKind::kMalformed, ParseReason::kQuestion);
  out->qtype = Be16(data + after_name);
  out->qclass = Be16(data + after_name + 2);
  out->flow_hash = fnv.h;
  return Finish(out, is_query ? PacketKind::kQuery : PacketKind::kNotQuery, ParseReason::kNone);
}

}  // namespace dns_shaper
