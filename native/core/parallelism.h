// cgroup-aware parallelism, like automaxprocs and Go 1.25's GOMAXPROCS:
// min(allowed CPUs, ceil(cgroup CPU quota)), never below 1.
#pragma once
#include <cstdint>
#include <string>

namespace hwsq {

struct Parallelism {
  int value = 1;
  int allowedCpus = 1;        // count of CPUs this process may run on
  int64_t quota = -1;         // microseconds per period of the tightest limit, -1 when unlimited
  int64_t period = -1;        // microseconds, -1 when unlimited
  std::string source;         // "cgroup2", "cgroup1" or "cpuset" (no quota applied)
  std::string cgroupPath;     // the cgroup directory whose limit won, "" when none
};

Parallelism readParallelism(const std::string& fsroot, int allowedCpus);

}  // namespace hwsq
