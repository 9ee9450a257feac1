#include "clock.h"

#include <thread>
#ifdef HWSQ_HAVE_RDTSC
#include <cpuid.h>
#endif

namespace hwsq::sched {

#ifdef HWSQ_HAVE_RDTSC
namespace {
// CPUID leaf 0x80000007, EDX bit 8: invariant TSC. Hypervisors that cannot keep the TSC steady
// across migrations clear it, and then the ticks are steady_clock's.
bool invariantTsc() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_max(0x80000000u, nullptr) < 0x80000007u) return false;
  __cpuid(0x80000007u, a, b, c, d);
  return (d & (1u << 8)) != 0;
}
}  // namespace
const bool kTscTicks = invariantTsc();
#endif

namespace {
// Ticks that are not nanoseconds (TSC, CNTVCT): two samples 2 ms apart, each bracketed tightly;
// the rate is constant, so this is accurate to ~0.1%, plenty for latency histograms.
double calibrate() {
#if defined(HWSQ_HAVE_RDTSC) || defined(__aarch64__)
#ifdef HWSQ_HAVE_RDTSC
  if (!kTscTicks) return 1.0;
#endif
  auto sample = [](uint64_t& ticks, uint64_t& ns) {
    uint64_t t0 = nowTicks();
    ns = nowNs();
    uint64_t t1 = nowTicks();
    ticks = t0 + (t1 - t0) / 2;
  };
  uint64_t t0, n0, t1, n1;
  sample(t0, n0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  sample(t1, n1);
  if (t1 <= t0 || n1 <= n0) return 1.0;
  return static_cast<double>(n1 - n0) / static_cast<double>(t1 - t0);
#else
  return 1.0;
#endif
}
}  // namespace

double nsPerTick() {
  static const double value = calibrate();  // magic static: thread-safe one-time init
  return value;
}

}  // namespace hwsq::sched
