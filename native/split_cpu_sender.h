// The race probe's sender: A and AAAA queries of one UDP socket sent at the same moment by two threads
// pinned to two CPUs, so both packets pass conntrack concurrently (the clash `check --probe` provokes).
// Plain sockets and threads, no netfilter; it blocks its caller, so only the probe agent (a process
// of its own inside the probe's client namespace) calls it, never the daemon.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dns_shaper {

struct SplitCpuOptions {
  std::string server;  // IPv4 or IPv6 literal
  uint16_t port = 53;
  uint32_t pairs = 100;
  int cpu_a = -1;  // -1: the first two CPUs this thread may run on
  int cpu_b = -1;
  uint32_t timeout_ms = 1000;  // per pair, for both answers; no retry
  uint32_t max_seconds = 60;   // no new pair after this
};

struct SplitCpuResult {
  uint32_t pairs = 0;  // pairs whose two queries were both sent
  uint32_t send_errors = 0;
  uint32_t answered = 0;  // answers received (matching id), of 2 * pairs queries
  int cpu_a = -1, cpu_b = -1;
  std::vector<uint64_t> skew_ns;  // per pair: |time A sent - time AAAA sent|
  double elapsed_s = 0;
};

// CPUs the calling thread may run on (sched_getaffinity), ascending.
std::vector<int> AllowedCpus();

// Runs the pairs; 0 or -errno (*what names the failing step).
int RunSplitCpuPairs(const SplitCpuOptions& o, SplitCpuResult* r, const char** what);

// splitCpuPairs({server, port, pairs, cpus, timeoutMs, maxSeconds}) and allowedCpus().
Napi::Value JsSplitCpuPairs(const Napi::CallbackInfo& info);
Napi::Value JsAllowedCpus(const Napi::CallbackInfo& info);

}  // namespace dns_shaper
