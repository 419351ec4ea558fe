// Build-time emitter: prints the counter tables (stats.h, parse.h) and the bounds (limits.h) as JSON, so
// TS reads them without loading the addon (scripts/native-data.mjs runs it). No I/O but stdout; never
// part of the addon. It expands the same X-macro lists as addon.cc, so a new entry needs no edit here.
#include <cstdio>
#include <string>

#include "exported_limits.h"
#include "parse.h"
#include "stats.h"

namespace dns_shaper {
namespace {

std::string Quote(const char* s) {
  std::string out = "\"";
  for (const char* p = s; *p; p++) {
    if (*p == '"' || *p == '\\') out += '\\';
    out += *p;
  }
  return out + "\"";
}

// Comma-separated list being built: Add() puts the separator before every item but the first.
struct List {
  std::string body;
  void Add(const std::string& item) { body += (body.empty() ? "" : ",") + item; }
};

std::string Seconds(const uint64_t* ns, size_t n) {
  List l;
  for (size_t i = 0; i < n; i++) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.17g", static_cast<double>(ns[i]) / 1e9);
    l.Add(buf);
  }
  return "[" + l.body + "]";
}

std::string Constants() {
  List actions, labels, reasons, counters, help, packet_labels;
#define X(id, name) actions.Add(Quote(name));
  DNS_SHAPER_ACTIONS(X)
#undef X
#define X(num, name) labels.Add("{\"qtype\":" + std::to_string(num) + ",\"name\":" + Quote(name) + "}");
  DNS_SHAPER_QTYPE_LABELS(X)
#undef X
  // Reason 0 ("none") is no failure; the addon leaves it out too.
  bool first = true;
#define X(id, name)                     \
  if (!first) reasons.Add(Quote(name)); \
  first = false;
  DNS_SHAPER_PARSE_REASONS(X)
#undef X
#define X(name, text)         \
  counters.Add(Quote(#name)); \
  help.Add(Quote(#name) + ":" + Quote(text));
  DNS_SHAPER_COUNTERS(X)
#undef X
#define X(name, text) help.Add(Quote(#name) + ":" + Quote(text));
  DNS_SHAPER_SERIES_HELP(X)
#undef X
  for (size_t l = 0; l < kQtypeLabelCount; l++) packet_labels.Add(Quote(PacketLabelNames()[l]));
  return "{\"actions\":[" + actions.body + "],\"qtypeLabels\":[" + labels.body + "],\"parseReasons\":[" +
         reasons.body + "],\"counters\":[" + counters.body + "],\"help\":{" + help.body +
         "},\"packetLabels\":[" + packet_labels.body +
         "],\"holdBucketsSeconds\":" + Seconds(kHoldBucketsNs, kHoldBucketCount) +
         ",\"latencyBucketsSeconds\":" + Seconds(kLatencyBucketsNs, kLatencyBucketCount) +
         ",\"maxHoldClasses\":" + std::to_string(kMaxHoldClasses) + "}";
}

std::string Limits() {
  List l;
#define X(name, value) l.Add(Quote(#name) + ":" + std::to_string(value));
  DNS_SHAPER_EXPORTED_LIMITS(X)
#undef X
  return "{" + l.body + "}";
}

}  // namespace
}  // namespace dns_shaper

int main() {
  std::printf("{\"constants\":%s,\"limits\":%s}\n", dns_shaper::Constants().c_str(),
              dns_shaper::Limits().c_str());
  return 0;
}
