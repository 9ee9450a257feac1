#include "clock.h"

#include <thread>

namespace hwsq::sched {

namespace {
double calibrate() {
#ifdef HWSQ_HAVE_RDTSC
  // Two samples 2 ms apart, each bracketed tightly; the TSC rate is constant, so this is
  // accurate to ~0.1%, plenty for latency histograms.
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
