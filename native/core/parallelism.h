// cgroup-aware parallelism, like automaxprocs and Go 1.25's GOMAXPROCS:
// min(allowed CPUs, ceil(cgroup CPU quota)), never below 1.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hwsq {

struct Parallelism {
  int value = 1;
  int allowedCpus = 1;        // count of CPUs this process may run on
  int64_t quota = -1;         // microseconds per period of the tightest limit, -1 when unlimited
  int64_t period = -1;        // microseconds, -1 when unlimited
  std::string source;         // "cgroup2", "cgroup1" or "cpuset" (no quota applied)
  std::string cgroupPath;     // the cgroup directory whose limit won, as a path on the inspected
                              // system without the fsroot prefix (e.g. "/sys/fs/cgroup/app.slice"),
                              // "" when none
};

// fsroot as for readTopology ("" or "/" = live system). allowedCpus below 1 counts as 1.
Parallelism readParallelism(const std::string& fsroot, int allowedCpus);

namespace detail {
// The cgroup directories of this process in one hierarchy that holds a controller.
struct CgroupHierarchy {
  int version = 0;                // 1 or 2
  std::vector<std::string> dirs;  // the process's cgroup first, then each parent up to the
                                  // mount point; paths on the inspected system (no fsroot prefix)
};
// Hierarchies holding `controller` ("cpu", "cpuset") for this process, from
// <fsroot>/proc/self/cgroup (for cpuset also proc/self/cpuset) and proc/self/mountinfo (else
// proc/mounts, else the conventional mount points): a v1 hierarchy with that controller first
// (it takes precedence, as in Go's runtime), then the v2 unified one. Mount points are taken
// relative to fsroot.
std::vector<CgroupHierarchy> findCgroupHierarchies(const std::string& fsroot,
                                                   const std::string& controller);
}  // namespace detail

}  // namespace hwsq
