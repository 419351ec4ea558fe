// ctnetlink per-CPU statistics dump; see conntrack_stats.h. One socket per call, closed before
// returning: a scrape every few seconds does not justify a long-lived fd the daemon must manage.
#include "conntrack_stats.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <cstring>
#include <string>

#include "errno_error.h"

namespace dns_shaper {

// The attribute numbers are kernel ABI; the table above spells them out so the names live in one place.
static_assert(CTA_STATS_FOUND == 2 && CTA_STATS_INSERT_FAILED == 9 && CTA_STATS_DROP == 10, "ctnetlink ABI");
static_assert(CTA_STATS_CLASH_RESOLVE == 14 && CTA_STATS_CHAIN_TOOLONG == kCtStatsMaxAttr, "ctnetlink ABI");

namespace {

int AttrCb(const nlattr* attr, void* data) {
  auto* s = static_cast<ConntrackCpuStats*>(data);
  int type = mnl_attr_get_type(attr);
  // Unknown (newer) attributes are skipped, not an error: the kernel may add counters.
  if (type <= 0 || type > kCtStatsMaxAttr) return MNL_CB_OK;
  if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0) return MNL_CB_ERROR;
  s->value[type] = ntohl(mnl_attr_get_u32(attr));
  s->present[type] = true;
  return MNL_CB_OK;
}

int MsgCb(const nlmsghdr* nlh, void* data) {
  auto* out = static_cast<std::vector<ConntrackCpuStats>*>(data);
  ConntrackCpuStats s;
  // The kernel puts the CPU number in nfgenmsg.res_id (network order).
  const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
  s.cpu = ntohs(nfg->res_id);
  if (mnl_attr_parse(nlh, sizeof(nfgenmsg), AttrCb, &s) < 0) return MNL_CB_ERROR;
  out->push_back(s);
  return MNL_CB_OK;
}

struct Socket {
  mnl_socket* nl = nullptr;
  ~Socket() {
    if (nl) mnl_socket_close(nl);
  }
};

}  // namespace

int ReadConntrackCpuStats(std::vector<ConntrackCpuStats>* out, const char** syscall) {
  out->clear();
  Socket s;
  *syscall = "socket";
  s.nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);  // not inherited by a child spawned meanwhile
  if (!s.nl) return -errno;
  *syscall = "bind";
  if (mnl_socket_bind(s.nl, 0, MNL_SOCKET_AUTOPID) < 0) return -errno;
  // The kernel answers a dump from inside sendmsg/recvmsg; the timeout only guards against a
  // kernel bug leaving the scrape (and the JS thread) waiting forever.
  timeval tv{1, 0};
  *syscall = "setsockopt";
  if (setsockopt(mnl_socket_get_fd(s.nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) return -errno;

  char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS_CPU;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  uint32_t seq = static_cast<uint32_t>(time(nullptr));
  nlh->nlmsg_seq = seq;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = AF_UNSPEC;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  *syscall = "sendto";
  if (mnl_socket_sendto(s.nl, nlh, nlh->nlmsg_len) < 0) return -errno;

  uint32_t portid = mnl_socket_get_portid(s.nl);
  *syscall = "recvfrom";
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(s.nl, buf, sizeof(buf));
    if (n < 0) return errno == EAGAIN ? -ETIMEDOUT : -errno;
    int r = mnl_cb_run(buf, static_cast<size_t>(n), seq, portid, MsgCb, out);
    if (r == MNL_CB_STOP) return 0;  // NLMSG_DONE
    if (r < 0) {
      *syscall = "ctnetlink";  // an NLMSG_ERROR from the kernel (errno set by libmnl) or a bad attribute
      return errno ? -errno : -EPROTO;
    }
  }
}

Napi::Value JsConntrackStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<ConntrackCpuStats> cpus;
  const char* syscall = "socket";
  int r = ReadConntrackCpuStats(&cpus, &syscall);
  if (r < 0) {
    int e = -r;
    std::string msg = std::string("conntrack statistics over ctnetlink: ") + syscall + ": " + strerror(e);
    if (e == EPERM) msg += ": needs CAP_NET_ADMIN";
    if (e == ENOENT || e == EOPNOTSUPP) msg += ": nf_conntrack_netlink is not available on this kernel";
    SyscallError(env, e, msg, syscall).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  static const char* const kNames[kCtStatsMaxAttr + 1] = {nullptr,
#define X(num, name) name,
                                                          DNS_SHAPER_CT_STATS(X)
#undef X
  };
  Napi::Array a = Napi::Array::New(env, cpus.size());
  for (size_t i = 0; i < cpus.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("cpu", cpus[i].cpu);
    Napi::Object counters = Napi::Object::New(env);
    for (int k = 1; k <= kCtStatsMaxAttr; k++)
      if (cpus[i].present[k]) counters.Set(kNames[k], cpus[i].value[k]);
    o.Set("counters", counters);
    a.Set(static_cast<uint32_t>(i), o);
  }
  return a;
}

}  // namespace dns_shaper
