// Cheap monotonic timestamps for the scheduler's stats: the TSC on x86-64 (invariant TSC is
// assumed: constant_tsc/nonstop_tsc on every server CPU of the last decade; calibrated once
// against steady_clock), steady_clock nanoseconds elsewhere. Ticks are only ever subtracted
// from each other and converted to nanoseconds when stats are read.
#pragma once
#include <chrono>
#include <cstdint>
#if defined(__x86_64__) || defined(_M_X64)
#include <x86intrin.h>
#define HWSQ_HAVE_RDTSC 1
#endif

namespace hwsq::sched {

inline uint64_t nowTicks() {
#ifdef HWSQ_HAVE_RDTSC
  return __rdtsc();
#else
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
#endif
}

inline uint64_t nowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
}

// Nanoseconds per tick; the first call calibrates (about 2 ms, thread-safe), later calls are a load.
double nsPerTick();
inline uint64_t ticksToNs(uint64_t ticks) { return static_cast<uint64_t>(ticks * nsPerTick()); }
inline uint64_t nsToTicks(uint64_t ns) { return static_cast<uint64_t>(ns / nsPerTick()); }

}  // namespace hwsq::sched
