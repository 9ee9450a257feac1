// Following the cgroup: a monitor thread per runtime that re-reads the CPU limit about once a
// second and moves the runtime's parallelism limit (limit.cpp) with it, like Go 1.25's
// GOMAXPROCS updates (sysmon's updateMaxProcsG). Kubernetes resizes a pod's CPU in place by
// rewriting cpu.max; a runtime with `workers: 'auto'` then parks or wakes Ps, never starting or
// stopping a thread.
//
// One reading (readCgroupLimit): the CPUs the runtime may use now -- its Ps' CPUs (or, unpinned,
// its unpinnedCpus) that the process may still run on (processCpus(): start affinity ∩ online ∩
// the cgroup cpuset, re-read each time) -- and readParallelism over them (cgroup v2 cpu.max or
// v1 cfs quota, walking up to the mount point: ceil(quota/period), at least 1), capped at the
// runtime's Ps. A runtime tied to no CPU (virtual topology) counts its Ps as its CPUs.
// Cost: a few small procfs/cgroupfs files opened and parsed (tens of microseconds), once per
// period, on this thread only; never on the submit path.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "scheduler.h"

namespace hwsq::sched {

struct CgroupReading {
  int limit = 1;
  ParallelismSource source = ParallelismSource::Cpuset;
  std::vector<int> allowed;  // the runtime's CPUs the process may still use (empty: tied to none)
};
// fsroot: where cgroup files are read ("" the live system). runtimeCpus: empty when the runtime
// is tied to no CPU. workers: its Ps (the cap).
CgroupReading readCgroupLimit(const std::string& fsroot, const std::vector<int>& runtimeCpus, int workers);

// Re-pinning after a cpuset change (the kernel moves a thread whose CPUs left the cpuset, and
// before Linux 6.2 resets every thread of the cgroup to the whole new cpuset, losing each P's
// pin). The CPUs each P is pinned to under `allowed` (sorted), from each P's own CPUs `base`
// (its pin, or the runtime's CPUs when unpinned), its node and whether it is active:
//  - own CPUs still allowed: those (a cpuset that grows back restores every original pin);
//  - an active P whose own CPUs all left: a CPU of its node still allowed that no active P
//    keeps (one per P in index order, round robin when there are fewer), or the whole of them
//    for a P pinned to more than one CPU; so the active Ps stay spread over the node's CPUs;
//  - a limited P (parked, runs nothing but its inbox): its node's allowed CPUs;
//  - nothing of its node allowed: every allowed CPU. An empty `allowed` keeps `base`.
std::vector<std::vector<int>> planPins(const std::vector<std::vector<int>>& base, const std::vector<int>& nodeOf,
                                       const std::vector<bool>& active, const std::vector<int>& allowed);

// The thread: calls poll every periodMs until stop().
class CgroupWatch {
 public:
  CgroupWatch(uint32_t periodMs, std::function<void()> poll);  // starts the thread
  ~CgroupWatch();                                              // stop()
  CgroupWatch(const CgroupWatch&) = delete;
  CgroupWatch& operator=(const CgroupWatch&) = delete;
  void stop();  // idempotent; joins (from any thread but its own)

 private:
  void run();
  const uint32_t periodMs_;
  std::function<void()> poll_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace hwsq::sched
