// Cheap monotonic timestamps for the scheduler's stats. Ticks are only ever subtracted from each
// other and converted to nanoseconds when stats are read (nsPerTick, calibrated once against
// CLOCK_MONOTONIC: steady_clock).
//   x86-64: the TSC (rdtsc, ~25 cycles, no syscall, no vDSO page read) when the CPU reports an
//           invariant TSC (CPUID 0x80000007 EDX bit 8: constant rate, runs in every C-state, the
//           same on every core of a socket); else steady_clock nanoseconds.
//   arm64:  the generic timer's virtual count (CNTVCT_EL0), constant rate, same on every core;
//           coarser than the TSC (CNTFRQ: 1 GHz from Armv8.6, tens of MHz before).
//   other:  steady_clock nanoseconds.
#pragma once
#include <chrono>
#include <cstdint>
#if defined(__x86_64__) || defined(_M_X64)
#include <x86intrin.h>
#define HWSQ_HAVE_RDTSC 1
#endif

namespace hwsq::sched {

inline uint64_t nowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
}

#ifdef HWSQ_HAVE_RDTSC
// Whether nowTicks reads the TSC: decided once, at static initialisation (clock.cpp), before any
// runtime exists; constant afterwards, so the branch below always predicts.
extern const bool kTscTicks;
#endif

inline uint64_t nowTicks() {
#if defined(HWSQ_HAVE_RDTSC)
  if (__builtin_expect(kTscTicks, 1)) return __rdtsc();
  return nowNs();
#elif defined(__aarch64__)
  uint64_t v;
  asm volatile("mrs %0, cntvct_el0" : "=r"(v));
  return v;
#else
  return nowNs();
#endif
}

// Nanoseconds per tick; the first call calibrates (about 2 ms, thread-safe), later calls are a load.
double nsPerTick();
// A double at or past 2^64 (a scaled sum, a span) converted to uint64 is UB: saturate instead.
inline uint64_t saturatingU64(double v) {
  if (!(v > 0)) return 0;
  return v < 0x1p64 ? static_cast<uint64_t>(v) : UINT64_MAX;
}
inline uint64_t ticksToNs(double ticks) { return saturatingU64(ticks * nsPerTick()); }
inline uint64_t nsToTicks(double ns) { return saturatingU64(ns / nsPerTick()); }

}  // namespace hwsq::sched
