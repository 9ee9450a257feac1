// HWSQ_ASSERT(cond, msg): an invariant check of the core. Compiled in where HWSQ_ENABLE_ASSERTS
// is defined -- the sanitizer and Debug builds of native/CMakeLists.txt and node-gyp's Debug
// build (binding.gyp) -- where a violation prints the message and aborts (so the ASAN and TSAN
// test stages fail loudly). In release builds it compiles to nothing and cond is not evaluated,
// so checks may read atomics or walk lists freely.
#pragma once

#if defined(HWSQ_ENABLE_ASSERTS)
#include <cstdio>
#include <cstdlib>

namespace hwsq::detail {
[[noreturn]] inline void invariantFailed(const char* cond, const char* msg, const char* file, int line) {
  std::fprintf(stderr, "hwsq: invariant violated at %s:%d: %s [%s]\n", file, line, msg, cond);
  std::fflush(stderr);
  std::abort();
}
}  // namespace hwsq::detail

#define HWSQ_ASSERTS_ENABLED 1
#define HWSQ_ASSERT(cond, msg) \
  ((cond) ? static_cast<void>(0) : ::hwsq::detail::invariantFailed(#cond, msg, __FILE__, __LINE__))
#else
#define HWSQ_ASSERTS_ENABLED 0
// sizeof: the expression is type-checked (no bit rot) but never evaluated.
#define HWSQ_ASSERT(cond, msg) static_cast<void>(sizeof((cond) ? 1 : 0))
#endif
