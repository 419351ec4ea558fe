// Addon entry: exports the Queue class, the pure packet parser (for tests and the kernel-filter
// differential check), the constant lists the TS side builds metrics from, the shared limits, the
// conntrack statistics reader and the race probe's split-CPU sender.
#include <napi.h>

#include "conntrack_stats.h"
#include "dataplane.h"
#include "exported_limits.h"
#include "limits.h"
#include "parse.h"
#include "queue.h"
#include "split_cpu_sender.h"
#include "stats.h"

namespace dns_shaper {
namespace {

const char* KindName(PacketKind k) {
  switch (k) {
    case PacketKind::kQuery:
      return "query";
    case PacketKind::kNotQuery:
      return "not_query";
    case PacketKind::kNotDns:
      return "not_dns";
    default:
      return "malformed";
  }
}

Napi::Value JsParsePacket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) {
    Napi::TypeError::New(env, "parsePacket(buffer): expected a Buffer holding an IP packet")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> b = info[0].As<Napi::Buffer<uint8_t>>();
  ParsedPacket p;
  ParsePacket(b.Data(), b.Length(), &p);
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", KindName(p.kind));
  o.Set("reason", kParseReasonNames[static_cast<size_t>(p.reason)]);
  o.Set("ipVersion", p.ip_version);
  o.Set("qtype", p.qtype);
  o.Set("qclass", p.qclass);
  o.Set("dnsId", p.dns_id);
  o.Set("sport", p.sport);
  o.Set("dport", p.dport);
  o.Set("labels", p.labels);
  o.Set("compressed", p.compressed);
  o.Set("flowHash", Napi::BigInt::New(env, p.flow_hash));
  return o;
}

Napi::Array Bounds(Napi::Env env, const uint64_t* ns, size_t n) {
  Napi::Array a = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; i++) a.Set(i, Napi::Number::New(env, static_cast<double>(ns[i]) / 1e9));
  return a;
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  Napi::Array actions = Napi::Array::New(env);
  uint32_t i = 0;
#define X(id, name) actions.Set(i++, name);
  DNS_SHAPER_ACTIONS(X)
#undef X
  c.Set("actions", actions);
  Napi::Array labels = Napi::Array::New(env);
  i = 0;
#define X(num, name)                         \
  {                                          \
    Napi::Object l = Napi::Object::New(env); \
    l.Set("qtype", num);                     \
    l.Set("name", name);                     \
    labels.Set(i++, l);                      \
  }
  DNS_SHAPER_QTYPE_LABELS(X)
#undef X
  c.Set("qtypeLabels", labels);
  Napi::Array reasons = Napi::Array::New(env);
  for (size_t r = 1; r < static_cast<size_t>(ParseReason::kCount); r++)
    reasons.Set(static_cast<uint32_t>(r - 1), kParseReasonNames[r]);
  c.Set("parseReasons", reasons);
  Napi::Array counters = Napi::Array::New(env);
  i = 0;
  Napi::Object help = Napi::Object::New(env);
#define X(name, text)       \
  counters.Set(i++, #name); \
  help.Set(#name, text);
  DNS_SHAPER_COUNTERS(X)
#undef X
#define X(name, text) help.Set(#name, text);
  DNS_SHAPER_SERIES_HELP(X)
#undef X
  c.Set("counters", counters);
  c.Set("help", help);
  Napi::Array packet_labels = Napi::Array::New(env, kQtypeLabelCount);
  for (size_t l = 0; l < kQtypeLabelCount; l++)
    packet_labels.Set(static_cast<uint32_t>(l), PacketLabelNames()[l]);
  c.Set("packetLabels", packet_labels);
  c.Set("holdBucketsSeconds", Bounds(env, kHoldBucketsNs, kHoldBucketCount));
  c.Set("latencyBucketsSeconds", Bounds(env, kLatencyBucketsNs, kLatencyBucketCount));
  c.Set("maxHoldClasses", static_cast<uint32_t>(kMaxHoldClasses));
  return c;
}

Napi::Object Limits(Napi::Env env) {
  Napi::Object l = Napi::Object::New(env);
#define X(name, value) l.Set(#name, Napi::Number::New(env, static_cast<double>(value)));
  DNS_SHAPER_EXPORTED_LIMITS(X)
#undef X
  return l;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Queue", Queue::Init(env));
  exports.Set("parsePacket", Napi::Function::New(env, JsParsePacket, "parsePacket"));
  exports.Set("constants", Constants(env));
  exports.Set("limits", Limits(env));
  exports.Set("conntrackStats", Napi::Function::New(env, JsConntrackStats, "conntrackStats"));
  // The race probe's sender (blocks its caller: only the probe agent process calls it).
  exports.Set("splitCpuPairs", Napi::Function::New(env, JsSplitCpuPairs, "splitCpuPairs"));
  exports.Set("allowedCpus", Napi::Function::New(env, JsAllowedCpus, "allowedCpus"));
  return exports;
}

}  // namespace
}  // namespace dns_shaper

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return dns_shaper::Init(env, exports); }
NODE_API_MODULE(nfqueue, InitAddon)
