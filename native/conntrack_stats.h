// Per-CPU conntrack statistics over ctnetlink (IPCTNL_MSG_CT_GET_STATS_CPU), the way `conntrack -S`
// reads them: works on kernels built without CONFIG_NF_CONNTRACK_PROCFS. Runs on the JS thread at
// scrape time on its own short-lived socket; it never touches the data plane or its queue socket.
#pragma once
#include <napi.h>

#include <cstdint>
#include <vector>

namespace dns_shaper {

// ctattr_stats_cpu attributes, named as `conntrack -S` prints them. Attributes a kernel no longer
// sends (searched, new, ignore, delete, delete_list) are kept so old kernels' values are not lost.
// clang-format off
#define DNS_SHAPER_CT_STATS(X) \
  X(1, "searched") X(2, "found") X(3, "new") X(4, "invalid") X(5, "ignore") X(6, "delete") \
  X(7, "delete_list") X(8, "insert") X(9, "insert_failed") X(10, "drop") X(11, "early_drop") \
  X(12, "error") X(13, "search_restart") X(14, "clash_resolve") X(15, "chaintoolong")
// clang-format on
constexpr int kCtStatsMaxAttr = 15;

struct ConntrackCpuStats {
  uint16_t cpu = 0;
  // Indexed by attribute type; present[i] tells whether this kernel sent it (absent is not zero).
  uint32_t value[kCtStatsMaxAttr + 1] = {};
  bool present[kCtStatsMaxAttr + 1] = {};
};

// Dumps the statistics of the calling thread's network namespace, one entry per possible CPU.
// Returns 0 or -errno; *syscall names the failing step. Needs CAP_NET_ADMIN (nfnetlink asks for it).
int ReadConntrackCpuStats(std::vector<ConntrackCpuStats>* out, const char** syscall);

// conntrackStats(): [{ cpu, counters: { name: value } }]; throws an Error with code, errno, syscall.
Napi::Value JsConntrackStats(const Napi::CallbackInfo& info);

}  // namespace dns_shaper
