// The race probe's split-CPU sender (see split_cpu_sender.h). One fresh connected UDP socket per pair,
// so every pair starts a new conntrack flow; thread A (pinned to cpu_a) and thread B (pinned to cpu_b)
// leave a spin barrier together and send the A and the AAAA query; thread A then waits for both
// answers. It never retries: a query the kernel dropped is an answer that never comes.
#include "split_cpu_sender.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include "errno_error.h"

namespace dns_shaper {
namespace {

constexpr uint16_t kQtypeA = 1;
constexpr uint16_t kQtypeAAAA = 28;
// Spins before yielding: long enough to catch the other thread on an idle CPU, short enough not
// to starve it when both threads share a loaded machine.
constexpr uint32_t kSpins = 200000;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#else
  asm volatile("" ::: "memory");
#endif
}

uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

int Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

// A standard query (RD set) for name/qtype; returns its length.
size_t BuildQuery(uint8_t* buf, uint16_t id, const std::string& name, uint16_t qtype) {
  memset(buf, 0, 12);
  buf[0] = static_cast<uint8_t>(id >> 8);
  buf[1] = static_cast<uint8_t>(id);
  buf[2] = 0x01;  // RD
  buf[5] = 1;     // QDCOUNT
  size_t off = 12;
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    size_t len = dot - start;
    buf[off++] = static_cast<uint8_t>(len);
    memcpy(buf + off, name.data() + start, len);
    off += len;
    start = dot + 1;
  }
  buf[off++] = 0;
  buf[off++] = static_cast<uint8_t>(qtype >> 8);
  buf[off++] = static_cast<uint8_t>(qtype);
  buf[off++] = 0;
  buf[off++] = 1;  // IN
  return off;
}

// What the two threads share for one pair; generations tell each side which pair it is at.
struct Shared {
  std::atomic<uint64_t> prep{0}, ready{0}, go{0}, sent{0};
  std::atomic<bool> stop{false};
  std::atomic<int> pin_error{0};
  int fd = -1;
  uint8_t aaaa[300];
  size_t aaaa_len = 0;
  uint64_t t_sent = 0;
  bool ok = false;
};

bool WaitFor(const std::atomic<uint64_t>& v, uint64_t want, const std::atomic<bool>& stop) {
  for (uint32_t i = 0;; i++) {
    if (v.load(std::memory_order_acquire) == want) return true;
    if (stop.load(std::memory_order_acquire)) return false;
    if (i < kSpins)
      CpuRelax();
    else
      sched_yield();
  }
}

void SenderB(Shared* s, int cpu) {
  if (Pin(cpu) != 0) {
    s->pin_error.store(1);
    s->stop.store(true, std::memory_order_release);
    return;
  }
  for (uint64_t g = 1;; g++) {
    if (!WaitFor(s->prep, g, s->stop)) return;
    s->ready.store(g, std::memory_order_release);
    if (!WaitFor(s->go, g, s->stop)) return;
    s->t_sent = MonoNs();
    s->ok = send(s->fd, s->aaaa, s->aaaa_len, 0) == static_cast<ssize_t>(s->aaaa_len);
    s->sent.store(g, std::memory_order_release);
  }
}

// Answers (by DNS id) to the two queries of one pair, until both came or the deadline passed.
uint32_t AwaitAnswers(int fd, const uint16_t ids[2], uint64_t deadline_ns) {
  bool got[2] = {false, false};
  uint32_t n = 0;
  uint8_t buf[1500];
  while (n < 2) {
    uint64_t now = MonoNs();
    if (now >= deadline_ns) break;
    pollfd p{fd, POLLIN, 0};
    int ms = static_cast<int>((deadline_ns - now + 999999) / 1000000);
    int r = poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    ssize_t len = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (len < 12) continue;
    if ((buf[2] & 0x80) == 0) continue;  // not a response
    uint16_t id = static_cast<uint16_t>(buf[0] << 8 | buf[1]);
    for (int k = 0; k < 2; k++) {
      if (!got[k] && id == ids[k]) {
        got[k] = true;
        n++;
      }
    }
  }
  return n;
}

}  // namespace

std::vector<int> AllowedCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

int RunSplitCpuPairs(const SplitCpuOptions& o, SplitCpuResult* r, const char** what) {
  sockaddr_storage srv{};
  socklen_t srvlen = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&srv);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&srv);
  *what = "server address";
  if (inet_pton(AF_INET, o.server.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(o.port);
    srvlen = sizeof(*v4);
  } else if (inet_pton(AF_INET6, o.server.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(o.port);
    srvlen = sizeof(*v6);
  } else {
    return -EINVAL;
  }
  r->cpu_a = o.cpu_a;
  r->cpu_b = o.cpu_b;
  if (r->cpu_a < 0 || r->cpu_b < 0) {
    std::vector<int> cpus = AllowedCpus();
    *what = "sched_getaffinity: fewer than two CPUs";
    if (cpus.size() < 2) return -ENXIO;
    r->cpu_a = cpus[0];
    r->cpu_b = cpus[1];
  }
  *what = "cpus must differ";
  if (r->cpu_a == r->cpu_b) return -EINVAL;

  Shared s;
  std::thread b(SenderB, &s, r->cpu_b);
  int err = 0;
  uint64_t t0 = MonoNs();
  {
    // The calling thread is thread A; its affinity is restored before returning.
    cpu_set_t saved;
    CPU_ZERO(&saved);
    pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
    if (Pin(r->cpu_a) != 0) {
      err = -EINVAL;
      *what = "pthread_setaffinity_np";
    }
    std::mt19937 rng(static_cast<uint32_t>(t0 ^ static_cast<uint64_t>(getpid())));
    uint64_t end = t0 + static_cast<uint64_t>(o.max_seconds) * 1000000000ull;
    uint8_t qa[300];
    for (uint32_t i = 0; err == 0 && i < o.pairs && MonoNs() < end; i++) {
      if (s.stop.load()) {
        err = -EINVAL;
        *what = "pthread_setaffinity_np";
        break;
      }
      uint16_t ids[2];
      ids[0] = static_cast<uint16_t>(rng());
      do ids[1] = static_cast<uint16_t>(rng());
      while (ids[1] == ids[0]);
      std::string name = "p" + std::to_string(i) + ".probe.dns-shaper.invalid";
      size_t qa_len = BuildQuery(qa, ids[0], name, kQtypeA);
      s.aaaa_len = BuildQuery(s.aaaa, ids[1], name, kQtypeAAAA);
      int fd = socket(srv.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&srv), srvlen) != 0) {
        err = -errno;
        *what = fd < 0 ? "socket" : "connect";
        if (fd >= 0) close(fd);
        break;
      }
      s.fd = fd;
      uint64_t g = i + 1;
      s.prep.store(g, std::memory_order_release);
      if (!WaitFor(s.ready, g, s.stop)) {
        close(fd);
        continue;  // the pin error is reported at the top of the loop
      }
      s.go.store(g, std::memory_order_release);
      uint64_t ta = MonoNs();
      bool a_ok = send(fd, qa, qa_len, 0) == static_cast<ssize_t>(qa_len);
      WaitFor(s.sent, g, s.stop);
      if (a_ok && s.ok) {
        r->pairs++;
        r->skew_ns.push_back(s.t_sent > ta ? s.t_sent - ta : ta - s.t_sent);
        r->answered += AwaitAnswers(fd, ids, MonoNs() + static_cast<uint64_t>(o.timeout_ms) * 1000000ull);
      } else {
        r->send_errors++;
      }
      close(fd);
    }
    pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
  }
  s.stop.store(true, std::memory_order_release);
  b.join();
  if (err == 0 && s.pin_error.load()) {
    err = -EINVAL;
    *what = "pthread_setaffinity_np";
  }
  r->elapsed_s = static_cast<double>(MonoNs() - t0) / 1e9;
  return err;
}

namespace {

uint32_t OptU32(const Napi::Object& o, const char* key, uint32_t dflt) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : dflt;
}

}  // namespace

Napi::Value JsAllowedCpus(const Napi::CallbackInfo& info) {
  std::vector<int> cpus = AllowedCpus();
  Napi::Array a = Napi::Array::New(info.Env(), cpus.size());
  for (size_t i = 0; i < cpus.size(); i++) a.Set(static_cast<uint32_t>(i), cpus[i]);
  return a;
}

Napi::Value JsSplitCpuPairs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().Get("server").IsString()) {
    Napi::TypeError::New(
        env, "splitCpuPairs({server, port, pairs, cpus, timeoutMs, maxSeconds}): server is required")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object in = info[0].As<Napi::Object>();
  SplitCpuOptions o;
  o.server = in.Get("server").As<Napi::String>().Utf8Value();
  o.port = static_cast<uint16_t>(OptU32(in, "port", 53));
  o.pairs = std::min<uint32_t>(OptU32(in, "pairs", 100), 100000);
  o.timeout_ms = std::min<uint32_t>(OptU32(in, "timeoutMs", 1000), 60000);
  o.max_seconds = std::min<uint32_t>(OptU32(in, "maxSeconds", 60), 3600);
  Napi::Value cpus = in.Get("cpus");
  if (cpus.IsArray() && cpus.As<Napi::Array>().Length() == 2) {
    o.cpu_a = cpus.As<Napi::Array>().Get(0u).As<Napi::Number>().Int32Value();
    o.cpu_b = cpus.As<Napi::Array>().Get(1u).As<Napi::Number>().Int32Value();
  }
  SplitCpuResult r;
  const char* what = "";
  int e = RunSplitCpuPairs(o, &r, &what);
  if (e < 0) {
    SyscallError(env, -e, std::string("split-CPU sender: ") + what + ": " + strerror(-e), what)
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pairs", r.pairs);
  out.Set("queries", r.pairs * 2);
  out.Set("answered", r.answered);
  out.Set("sendErrors", r.send_errors);
  Napi::Array c = Napi::Array::New(env, 2);
  c.Set(0u, r.cpu_a);
  c.Set(1u, r.cpu_b);
  out.Set("cpus", c);
  Napi::Array skew = Napi::Array::New(env, r.skew_ns.size());
  for (size_t i = 0; i < r.skew_ns.size(); i++)
    skew.Set(static_cast<uint32_t>(i), static_cast<double>(r.skew_ns[i]));
  out.Set("skewNs", skew);
  out.Set("elapsedSeconds", r.elapsed_s);
  return out;
}

}  // namespace dns_shaper
