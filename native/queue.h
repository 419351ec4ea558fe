// Queue: the JS-facing ObjectWrap around one DataPlane. Checks arguments, converts the policy table,
// reports errors as JS Errors with code/errno/syscall. Owns nothing of the packet path itself.
#pragma once
#include <napi.h>

#include <memory>

#include "dataplane.h"
#include "stats.h"

namespace dns_shaper {

class Queue : public Napi::ObjectWrap<Queue> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Queue(const Napi::CallbackInfo& info);
  ~Queue() override;

 private:
  Napi::Value JsStart(const Napi::CallbackInfo& info);
  Napi::Value JsSetPolicy(const Napi::CallbackInfo& info);
  Napi::Value JsStop(const Napi::CallbackInfo& info);
  Napi::Value JsStats(const Napi::CallbackInfo& info);
  Napi::Value JsRunning(const Napi::CallbackInfo& info);
  Napi::Value JsOptions(const Napi::CallbackInfo& info);
  void StopNative();
  static void CleanupHook(void* arg);

  QueueOptions opts_;
  Stats stats_;
  std::unique_ptr<DataPlane> dp_;
  Napi::ThreadSafeFunction events_;
  bool has_events_ = false;
  napi_env env_ = nullptr;
};

// Builds a Policy from its JS form; on a bad argument throws and returns nullptr.
std::unique_ptr<Policy> PolicyFromJs(Napi::Env env, Napi::Value v, uint32_t capacity);

}  // namespace dns_shaper
