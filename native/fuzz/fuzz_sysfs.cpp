// Fuzzes readTopology() over a sysfs/procfs tree: each piece of the input (harness.h) is one of
// the files below, so every parser of topology.cpp -- cpu/node lists and masks, per-CPU topology
// and cache files, node meminfo and distance rows, proc/self/status, proc/meminfo, proc/cpuinfo,
// the cgroup cpuset lookup -- sees fuzzed text in context. Invariants: the documented shape of a
// Topology (sorted unique ids within the kernel's bounds, each online CPU in at most one node,
// square distance matrix, allowed CPUs online and never empty) and a cost bound: files opened
// grow with the CPUs and nodes found, never with the size of the text.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "harness.h"
#include "parallelism.h"
#include "topology.h"

namespace {

const std::vector<std::string> kPaths = {
    "sys/devices/system/cpu/online",
    "sys/devices/system/cpu/present",
    "sys/devices/system/cpu/possible",
    "sys/devices/system/node/online",
    "sys/devices/system/node/possible",
    "sys/devices/system/node/has_memory",
    "sys/devices/system/node/node0/cpulist",
    "sys/devices/system/node/node0/cpumap",
    "sys/devices/system/node/node0/distance",
    "sys/devices/system/node/node0/meminfo",
    "sys/devices/system/node/node1/cpulist",
    "sys/devices/system/node/node1/distance",
    "sys/devices/system/node/node1/meminfo",
    "sys/devices/system/cpu/cpu0/online",
    "sys/devices/system/cpu/cpu1/online",
    "sys/devices/system/cpu/cpu0/topology/core_id",
    "sys/devices/system/cpu/cpu0/topology/physical_package_id",
    "sys/devices/system/cpu/cpu0/topology/die_id",
    "sys/devices/system/cpu/cpu0/topology/thread_siblings_list",
    "sys/devices/system/cpu/cpu1/topology/thread_siblings",
    "sys/devices/system/cpu/cpu1/topology/core_cpus_list",
    "sys/devices/system/cpu/cpu0/cache/index3/level",
    "sys/devices/system/cpu/cpu0/cache/index3/type",
    "sys/devices/system/cpu/cpu0/cache/index3/shared_cpu_list",
    "sys/devices/system/cpu/cpu1/cache/index2/shared_cpu_map",
    "proc/self/status",
    "proc/meminfo",
    "proc/cpuinfo",
    "proc/self/cgroup",
    "proc/self/mountinfo",
    "sys/fs/cgroup/cpuset.cpus.effective",
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  hwsq_fuzz::makeSeedsIfAsked([](const std::string& fixtures) {
    std::vector<std::string> seeds;
    for (const auto& machine : hwsq_fuzz::subdirs(hwsq_fuzz::fs::path(fixtures) / "sysfs"))
      seeds.push_back(hwsq_fuzz::joinPieces(hwsq_fuzz::piecesOf(machine, kPaths)));
    return seeds;
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& root = hwsq_fuzz::freshTree(hwsq_fuzz::splitPieces(data, size), kPaths);

  size_t cgroupDirs = 0;  // the cpuset lookup reads up to 4 files per level of each hierarchy
  for (const auto& h : hwsq::detail::findCgroupHierarchies(root.path(), "cpuset")) cgroupDirs += h.dirs.size();
  auto& work = hwsq::detail::parseWork();
  const uint64_t files = work.files;
  const hwsq::Topology t = hwsq::readTopology(root.path());
  const uint64_t opened = work.files - files;

  FUZZ_CHECK(!t.nodes.empty() && !t.cpus.empty() && !t.allowedCpus.empty());
  for (size_t i = 0; i < t.cpus.size(); ++i) {
    const auto& c = t.cpus[i];
    FUZZ_CHECK(c.id >= 0 && c.id < hwsq::kMaxCpus);
    if (i) FUZZ_CHECK(t.cpus[i - 1].id < c.id);
    FUZZ_CHECK(c.siblings.size() <= static_cast<size_t>(hwsq::kMaxSiblings));
    FUZZ_CHECK(std::is_sorted(c.siblings.begin(), c.siblings.end()));
  }
  std::vector<int> online;
  for (const auto& c : t.cpus)
    if (c.online) online.push_back(c.id);
  FUZZ_CHECK(!online.empty());
  std::set<int> placed;
  for (size_t i = 0; i < t.nodes.size(); ++i) {
    const auto& n = t.nodes[i];
    FUZZ_CHECK(n.id >= 0 && n.id < hwsq::kMaxNodes);
    if (i) FUZZ_CHECK(t.nodes[i - 1].id < n.id);
    FUZZ_CHECK(n.distances.size() == t.nodes.size());
    for (int d : n.distances) FUZZ_CHECK(d > 0 && d <= 0xffff);
    for (int c : n.cpus) {
      FUZZ_CHECK(placed.insert(c).second);  // in one node only
      FUZZ_CHECK(std::binary_search(online.begin(), online.end(), c));
    }
  }
  FUZZ_CHECK(std::is_sorted(t.allowedCpus.begin(), t.allowedCpus.end()));
  for (int c : t.allowedCpus) FUZZ_CHECK(std::binary_search(online.begin(), online.end(), c));
  // Cost: a fixed number of files, plus a bounded number per CPU (its topology and cache files),
  // per node (its lists, meminfo, distance row, links) and per cgroup level.
  FUZZ_CHECK(opened <= 64 + 24 * t.cpus.size() + 8 * t.nodes.size() + 4 * cgroupDirs);
  return 0;
}
