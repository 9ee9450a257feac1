// Command-line counts of the native benchmarks: decimal digits only, within [lo, hi]. strtoull
// alone takes "-1" for 2^64 - 1 (a warm-up that never ends) and "x" for 0.
#pragma once
#include <cstdint>

inline bool parseCount(const char* s, uint64_t lo, uint64_t hi, uint64_t* out) {
  if (*s == '\0') return false;
  uint64_t v = 0;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9') return false;
    const uint64_t d = static_cast<uint64_t>(*s - '0');
    if (v > (hi - d) / 10) return false;  // v * 10 + d would pass hi (or overflow)
    v = v * 10 + d;
  }
  if (v < lo) return false;
  *out = v;
  return true;
}
