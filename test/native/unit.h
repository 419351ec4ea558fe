// A minimal test harness for the native units (no framework dependency): each CASE prints one TAP
// line, "ok N - name" or "not ok N - name" with the failed checks; test/native/units.ts runs the
// binary and turns every line into an assertion. Test-only: nothing in native/ includes it.
#pragma once
#include <cstdio>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

namespace unit {

struct Case {
  const char* name;
  void (*fn)();
};
inline std::vector<Case>& Cases() {
  static std::vector<Case> cases;
  return cases;
}
inline std::vector<std::string>& Failures() {
  static std::vector<std::string> f;
  return f;
}
template <typename T>
std::string Show(const T& v) {
  if constexpr (std::is_enum_v<T>)
    return std::to_string(static_cast<long long>(v));
  else
    return std::to_string(v);
}
template <typename T>
std::string Show(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + Show(v[i]);
  return s + "]";
}

struct Register {
  Register(const char* name, void (*fn)()) { Cases().push_back({name, fn}); }
};

inline int RunAll() {
  int n = 0, failed = 0;
  std::printf("TAP version 13\n1..%zu\n", Cases().size());
  for (const Case& c : Cases()) {
    Failures().clear();
    c.fn();
    n++;
    if (Failures().empty()) {
      std::printf("ok %d - %s\n", n, c.name);
    } else {
      failed++;
      std::printf("not ok %d - %s\n", n, c.name);
      for (const std::string& f : Failures()) std::printf("  # %s\n", f.c_str());
    }
  }
  std::fflush(stdout);
  return failed ? 1 : 0;
}

}  // namespace unit

#define UNIT_CAT2(a, b) a##b
#define UNIT_CAT(a, b) UNIT_CAT2(a, b)
#define CASE(name)                                                                 \
  static void UNIT_CAT(case_, __LINE__)();                                         \
  static unit::Register UNIT_CAT(reg_, __LINE__)(name, UNIT_CAT(case_, __LINE__)); \
  static void UNIT_CAT(case_, __LINE__)()
#define EXPECT(cond)                                                                                 \
  do {                                                                                               \
    if (!(cond))                                                                                     \
      unit::Failures().push_back(std::string(__FILE__ ":") + std::to_string(__LINE__) + ": " #cond); \
  } while (0)
#define EXPECT_EQ(a, b)                                                                                      \
  do {                                                                                                       \
    auto va_ = (a);                                                                                          \
    auto vb_ = (b);                                                                                          \
    if (!(va_ == vb_))                                                                                       \
      unit::Failures().push_back(std::string(__FILE__ ":") + std::to_string(__LINE__) +                      \
                                 ": " #a " == " #b " (" + unit::Show(va_) + " vs " + unit::Show(vb_) + ")"); \
  } while (0)
