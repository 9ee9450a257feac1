// What a pin costs, ns/op, with getThreadAffinity (one syscall) as the baseline of the same run:
// processCpus() (re-read on every pin so that a changed cgroup cpuset shows at once: the online
// list, the start affinity, the cpuset file found through /proc/self/cgroup and mountinfo),
// readTopology("") (what pinToNumaNode reads for the node's CPUs), and pushPin+popPin.
//   bench_pin [--ops=N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "affinity.h"
#include "pinning.h"
#include "topology.h"

using Clock = std::chrono::steady_clock;

template <class F>
double nsPerOp(int ops, F f) {
  double best = 1e300;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = Clock::now();
    for (int i = 0; i < ops; ++i) f();
    best = std::min(best, std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / ops);
  }
  return best;
}

int main(int argc, char** argv) {
  int ops = 2000;
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--ops=", 6) == 0) ops = std::atoi(argv[i] + 6);
  const int cpu = hwsq::processCpus().front();
  hwsq::PinRequest pin;
  pin.cpus = {cpu};
  const double base = nsPerOp(ops, [] { (void)hwsq::getThreadAffinity(); });
  const double allowed = nsPerOp(ops, [] { (void)hwsq::processCpus(); });
  const double topo = nsPerOp(ops / 10 + 1, [] { (void)hwsq::readTopology(""); });
  const double pinPop = nsPerOp(ops, [&] {
    (void)hwsq::pushPin(pin);
    hwsq::popPin();
  });
  std::printf("%-26s %12s %8s\n", "operation", "ns/op", "ratio");
  std::printf("%-26s %12.0f %8.1f\n", "getThreadAffinity", base, 1.0);
  std::printf("%-26s %12.0f %8.1f\n", "processCpus", allowed, allowed / base);
  std::printf("%-26s %12.0f %8.1f\n", "readTopology(\"\")", topo, topo / base);
  std::printf("%-26s %12.0f %8.1f\n", "pushPin + popPin", pinPop, pinPop / base);
  return 0;
}
