// Queue ObjectWrap; see queue.h. JS calls here are rare (start, stop, policy, scrape), never per packet.
#include "queue.h"

#include <cmath>
#include <cstring>
#include <string>

#include "limits.h"

namespace dns_shaper {

namespace {

struct FatalEvent {
  int err;
  const char* syscall;
};

Napi::Value Throw(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Error ErrnoError(Napi::Env env, int neg_errno, const char* syscall, uint16_t queue) {
  int e = -neg_errno;
  const char* name = strerrorname_np(e);
  std::string msg = std::string(syscall) + " (queue " + std::to_string(queue) + "): " + strerror(e);
  if (e == EBUSY) msg += ": another process is bound to this queue; pick another --queue or stop it";
  if (e == EPERM) msg += ": binding a queue needs CAP_NET_ADMIN; run as root or grant the capability";
  Napi::Error err = Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  err.Set("errno", Napi::Number::New(env, e));
  err.Set("syscall", Napi::String::New(env, syscall));
  return err;
}

uint32_t OptU32(Napi::Object o, const char* key, uint32_t def, uint32_t lo, uint32_t hi, bool* ok) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return def;
  if (!v.IsNumber()) {
    *ok = false;
    return 0;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || std::floor(d) != d) {
    *ok = false;
    return 0;
  }
  return static_cast<uint32_t>(d);
}

// One bounded integer option (`what` is "options" or "policy"): false, with the JS exception set
// naming the key and its range, when it is not an integer lo..hi.
bool ReadU32(Napi::Env env, Napi::Object o, const char* what, const char* key, uint32_t def, uint32_t lo,
             uint32_t hi, uint32_t* out) {
  bool ok = true;
  *out = OptU32(o, key, def, lo, hi, &ok);
  if (!ok)
    Throw(env, std::string(what) + "." + key + " must be an integer " + std::to_string(lo) + ".." +
                   std::to_string(hi));
  return ok;
}

double ToSeconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

template <size_t N>
Napi::Object HistogramToJs(Napi::Env env, const Histogram<N>& h) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array b = Napi::Array::New(env, N + 1);
  uint64_t count = 0;
  for (size_t i = 0; i <= N; i++) {
    uint64_t n = h.buckets[i].load();
    count += n;
    b.Set(i, Napi::Number::New(env, static_cast<double>(n)));
  }
  o.Set("buckets", b);
  o.Set("sum", Napi::Number::New(env, ToSeconds(h.sum_ns.load())));
  o.Set("count", Napi::Number::New(env, static_cast<double>(count)));  // = the buckets read above
  return o;
}

}  // namespace

std::unique_ptr<Policy> PolicyFromJs(Napi::Env env, Napi::Value v, uint32_t capacity) {
  if (!v.IsObject()) {
    Throw(env, "policy must be an object");
    return nullptr;
  }
  Napi::Object o = v.As<Napi::Object>();
  auto p = std::make_unique<Policy>();
  Napi::Value table = o.Get("table");
  if (!table.IsTypedArray() || table.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      table.As<Napi::Uint8Array>().ElementLength() != 65536) {
    Throw(env, "policy.table must be a Uint8Array of 65536 hold classes (one per QTYPE)");
    return nullptr;
  }
  Napi::Uint8Array t = table.As<Napi::Uint8Array>();
  for (size_t i = 0; i < 65536; i++) {
    if (t[i] > kMaxHoldClasses) {
      Throw(env, "policy.table holds a class above " + std::to_string(kMaxHoldClasses));
      return nullptr;
    }
    p->cls[i] = t[i];
  }
  Napi::Value holds = o.Get("holdMs");
  if (!holds.IsArray()) {
    Throw(env, "policy.holdMs must be an array of milliseconds per class");
    return nullptr;
  }
  Napi::Array ha = holds.As<Napi::Array>();
  if (ha.Length() > kMaxHoldClasses + 1) {
    Throw(env, "policy.holdMs has more than " + std::to_string(kMaxHoldClasses + 1) + " entries");
    return nullptr;
  }
  for (uint32_t i = 0; i < ha.Length(); i++) {
    Napi::Value hv = ha.Get(i);
    double ms = hv.IsNumber() ? hv.As<Napi::Number>().DoubleValue() : -1;
    if (!(ms >= 0 && ms <= kMaxHoldMs)) {
      Throw(env, "policy.holdMs entries must be 0.." + std::to_string(kMaxHoldMs));
      return nullptr;
    }
    p->hold_ns[i] = static_cast<uint64_t>(std::llround(ms * 1e6));
  }
  p->dry_run = o.Get("dryRun").ToBoolean().Value();
  p->pair_mode = o.Get("pair").ToBoolean().Value();
  Napi::Value w = o.Get("pairWindowMs");
  double wms = w.IsNumber() ? w.As<Napi::Number>().DoubleValue() : 0;
  if (!(wms >= 0 && wms <= kMaxPairWindowMs)) {
    Throw(env, "policy.pairWindowMs must be 0.." + std::to_string(kMaxPairWindowMs));
    return nullptr;
  }
  p->pair_window_ns = static_cast<uint64_t>(std::llround(wms * 1e6));
  if (!ReadU32(env, o, "policy", "maxHeld", capacity, 0, capacity, &p->max_held)) return nullptr;
  return p;
}

Napi::Function Queue::Init(Napi::Env env) {
  return DefineClass(
      env, "Queue",
      {InstanceMethod<&Queue::JsStart>("start"), InstanceMethod<&Queue::JsSetPolicy>("setPolicy"),
       InstanceMethod<&Queue::JsStop>("stop"), InstanceMethod<&Queue::JsStats>("stats"),
       InstanceAccessor<&Queue::JsRunning>("running"), InstanceAccessor<&Queue::JsOptions>("options")});
}

Queue::Queue(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Queue>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) {
    Throw(env, "new Queue(options): options must be an object");
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  uint32_t queue_num = 0;
  if (!ReadU32(env, o, "options", "queue", 0, 0, 65535, &queue_num) ||
      !ReadU32(env, o, "options", "copyRange", kDefaultCopyRange, 64, 65535, &opts_.copy_range) ||
      !ReadU32(env, o, "options", "maxLen", kDefaultQueueMaxLen, 1, kMaxQueueMaxLen, &opts_.max_len) ||
      !ReadU32(env, o, "options", "rcvbuf", 8u << 20, 65536, 1u << 30, &opts_.rcvbuf) ||
      !ReadU32(env, o, "options", "maxHeld", kDefaultHeldCapacity, 1, kMaxHeld, &opts_.fifo_capacity))
    return;
  opts_.queue_num = static_cast<uint16_t>(queue_num);
  bool ok = true;
  opts_.pair_slots = OptU32(o, "pairSlots", kDefaultPairSlots, kMinPairSlots, kMaxPairSlots, &ok);
  if (!ok || (opts_.pair_slots & (opts_.pair_slots - 1)) != 0) {
    Throw(env, "options.pairSlots must be a power of two " + std::to_string(kMinPairSlots) + ".." +
                   std::to_string(kMaxPairSlots));
    return;
  }
  ClampOptions(&opts_);
  Napi::Value cb = o.Get("onFatal");
  if (cb.IsFunction()) {
    events_ = Napi::ThreadSafeFunction::New(env, cb.As<Napi::Function>(), "dns-shaper-events", 4, 1);
    events_.Unref(env);  // a quiet queue must not keep the process alive
    has_events_ = true;
  }
  napi_add_env_cleanup_hook(env, CleanupHook, this);
}

Queue::~Queue() {
  StopNative();
  if (env_) napi_remove_env_cleanup_hook(env_, CleanupHook, this);
}

void Queue::CleanupHook(void* arg) {
  // Process exit: release held packets and unbind even if JS never called stop().
  auto* q = static_cast<Queue*>(arg);
  q->StopNative();
  q->env_ = nullptr;
}

void Queue::StopNative() {
  if (dp_) dp_->Stop();  // joins the thread: no more events after this
  if (has_events_) {
    events_.Release();
    has_events_ = false;
  }
}

Napi::Value Queue::JsStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (dp_) return Throw(env, "queue already started; create a new Queue to bind again");
  std::unique_ptr<Policy> policy = PolicyFromJs(env, info[0], opts_.fifo_capacity);
  if (!policy) return env.Undefined();
  dp_ = std::make_unique<DataPlane>(&stats_);
  const char* syscall = "open";
  int r = dp_->Open(opts_, std::move(policy), &syscall);
  if (r < 0) {
    dp_.reset();
    ErrnoError(env, r, syscall, opts_.queue_num).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  FatalCallback on_fatal;
  if (has_events_) {
    Napi::ThreadSafeFunction tsfn = events_;
    uint16_t queue = opts_.queue_num;
    on_fatal = [tsfn, queue](int err, const char* syscall) mutable {
      auto* ev = new FatalEvent{err, syscall};
      napi_status s = tsfn.NonBlockingCall(ev, [queue](Napi::Env env, Napi::Function fn, FatalEvent* e) {
        Napi::Error err = ErrnoError(env, e->err, e->syscall, queue);
        delete e;
        fn.Call({err.Value()});
      });
      if (s != napi_ok) delete ev;
    };
  }
  dp_->Start(std::move(on_fatal));
  return env.Undefined();
}

Napi::Value Queue::JsSetPolicy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::unique_ptr<Policy> policy = PolicyFromJs(env, info[0], opts_.fifo_capacity);
  if (!policy) return env.Undefined();
  if (!dp_ || !dp_->Running()) return Throw(env, "queue is not running; start() it first");
  dp_->SetPolicy(std::move(policy));
  return env.Undefined();
}

Napi::Value Queue::JsStop(const Napi::CallbackInfo& info) {
  StopNative();
  return info.Env().Undefined();
}

Napi::Value Queue::JsRunning(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), dp_ && dp_->Running());
}

Napi::Value Queue::JsOptions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("queue", opts_.queue_num);
  o.Set("copyRange", opts_.copy_range);
  o.Set("maxLen", opts_.max_len);
  o.Set("rcvbuf", opts_.rcvbuf);
  o.Set("maxHeld", opts_.fifo_capacity);
  o.Set("pairSlots", opts_.pair_slots);
  return o;
}

Napi::Value Queue::JsStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("running", Napi::Boolean::New(env, dp_ && dp_->Running()));
  o.Set("heldNow", Napi::Number::New(env, static_cast<double>(stats_.held_now.load())));
  o.Set("heldMax", Napi::Number::New(env, static_cast<double>(stats_.held_max.load())));
  Napi::Object packets = Napi::Object::New(env);
  for (size_t a = 0; a < kActionCount; a++) {
    Napi::Object row = Napi::Object::New(env);
    for (size_t l = 0; l < kQtypeLabelCount; l++)
      row.Set(PacketLabelNames()[l],
              Napi::Number::New(env, static_cast<double>(stats_.packets[a][l].load())));
    packets.Set(ActionNames()[a], row);
  }
  o.Set("packets", packets);
  Napi::Object pf = Napi::Object::New(env);
  for (size_t r = 1; r < static_cast<size_t>(ParseReason::kCount); r++)
    pf.Set(kParseReasonNames[r],
           Napi::Number::New(env, static_cast<double>(stats_.parse_failures[r].load())));
  o.Set("parseFailures", pf);
  Napi::Object counters = Napi::Object::New(env);
#define X(name, help) counters.Set(#name, Napi::Number::New(env, static_cast<double>(stats_.name.load())));
  DNS_SHAPER_COUNTERS(X)
#undef X
  o.Set("counters", counters);
  o.Set("hold", HistogramToJs(env, stats_.hold));
  o.Set("latency", HistogramToJs(env, stats_.latency));
  return o;
}

}  // namespace dns_shaper
