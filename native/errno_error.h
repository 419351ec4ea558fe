// The JS error for a failed system call: message as given, with `code` (ENOENT...), `errno` and
// `syscall` set the way Node sets them on its own system errors. No I/O.
#pragma once
#include <napi.h>

#include <cstring>
#include <string>

namespace dns_shaper {

// e: a positive errno value.
inline Napi::Error SyscallError(Napi::Env env, int e, const std::string& msg, const char* syscall) {
  const char* name = strerrorname_np(e);
  Napi::Error err = Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  err.Set("errno", Napi::Number::New(env, e));
  err.Set("syscall", Napi::String::New(env, syscall));
  return err;
}

}  // namespace dns_shaper
