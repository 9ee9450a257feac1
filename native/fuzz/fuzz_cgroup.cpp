// Fuzzes the cgroup lookup (parallelism.h): proc/self/cgroup, proc/self/mountinfo, proc/mounts,
// proc/self/cpuset, and the limit files along the hierarchy they lead to (cpu.max; v1
// cpu.cfs_quota_us / cpu.cfs_period_us; cpuset files), which the harness writes where the lookup
// says the process's cgroups are (the first three levels). Invariants: every hierarchy is a
// chain of canonical directories (no "." or "..": a dump can never make the lookup read outside
// its root) from the leaf up to the mount point, v1 before v2; the parallelism is within
// [1, allowed CPUs] and agrees with the quota and period reported; files opened grow with the
// levels walked, never with the size of the text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "harness.h"
#include "parallelism.h"
#include "topology.h"

namespace {

const std::vector<std::string> kProcFiles = {"proc/self/cgroup", "proc/self/mountinfo", "proc/mounts",
                                             "proc/self/cpuset"};
constexpr size_t kLevels = 3;
// Pieces after the proc files: per level from the leaf up, for each of these file names.
const std::vector<std::string> kCpuV2 = {"cpu.max"};
const std::vector<std::string> kCpuV1 = {"cpu.cfs_quota_us", "cpu.cfs_period_us"};
const std::vector<std::string> kCpusetV2 = {"cpuset.cpus.effective"};
const std::vector<std::string> kCpusetV1 = {"cpuset.effective_cpus"};
constexpr size_t kPieces = 4 + kLevels * 5;  // the proc files, then 5 limit files per level

bool canonical(const std::string& p) {
  if (p.empty() || p[0] != '/') return false;
  for (size_t i = 0; i < p.size();) {
    size_t j = p.find('/', i + 1);
    if (j == std::string::npos) j = p.size();
    const std::string part = p.substr(i + 1, j - i - 1);
    if (part == "." || part == "..") return false;
    if (part.empty() && p.size() > 1) return false;  // "//" or a trailing '/'
    i = j;
  }
  return true;
}

// The hierarchy files of one controller, in piece order: (slot of the first piece, names per level).
struct Slots {
  size_t first;
  const std::vector<std::string>* v1;
  const std::vector<std::string>* v2;
};
const Slots kCpu{4, &kCpuV1, &kCpuV2};               // pieces 4..12: per level quota, period, cpu.max
const Slots kCpuset{4 + kLevels * 3, &kCpusetV1, &kCpusetV2};  // pieces 13..18: per level v1, v2

// Piece index of file `k` (of names) at `level` for a hierarchy of `version`.
size_t slotOf(const Slots& s, int version, size_t level, size_t k) {
  const size_t perLevel = s.v1->size() + s.v2->size();
  return s.first + level * perLevel + (version == 1 ? k : s.v1->size() + k);
}

std::vector<hwsq::detail::CgroupHierarchy> checkedHierarchies(const std::string& root, const char* controller) {
  const auto hs = hwsq::detail::findCgroupHierarchies(root, controller);
  FUZZ_CHECK(hs.size() <= 2);
  if (hs.size() == 2) FUZZ_CHECK(hs[0].version == 1 && hs[1].version == 2);
  for (const auto& h : hs) {
    FUZZ_CHECK(h.version == 1 || h.version == 2);
    FUZZ_CHECK(!h.dirs.empty());
    for (size_t i = 0; i < h.dirs.size(); ++i) {
      FUZZ_CHECK(canonical(h.dirs[i]));
      if (i == 0) continue;
      // Each is the parent of the one before.
      const std::string& child = h.dirs[i - 1];
      const std::string& parent = h.dirs[i];
      FUZZ_CHECK(child.size() > parent.size());
      FUZZ_CHECK(child.compare(0, parent.size(), parent) == 0);
      FUZZ_CHECK(parent == "/" ? child[0] == '/' : child[parent.size()] == '/');
      FUZZ_CHECK(child.find('/', parent == "/" ? 1 : parent.size() + 1) == std::string::npos);
    }
  }
  return hs;
}

// Writes the limit files of `controller` along its hierarchies from `pieces`.
void placeLimits(const hwsq_fuzz::Scratch& root, const std::vector<hwsq::detail::CgroupHierarchy>& hs,
                 const Slots& slots, const std::vector<std::string>& pieces) {
  for (const auto& h : hs) {
    const auto& names = h.version == 1 ? *slots.v1 : *slots.v2;
    for (size_t level = 0; level < kLevels && level < h.dirs.size(); ++level)
      for (size_t k = 0; k < names.size(); ++k) {
        const size_t slot = slotOf(slots, h.version, level, k);
        if (slot < pieces.size() && !pieces[slot].empty()) root.write(h.dirs[level].substr(1) + "/" + names[k], pieces[slot]);
      }
  }
}

// The inverse, for seeds: the fixture's files at the places the lookup finds in it.
void readLimits(const std::string& machine, const char* controller, const Slots& slots, std::vector<std::string>& pieces) {
  for (const auto& h : hwsq::detail::findCgroupHierarchies(machine, controller)) {
    const auto& names = h.version == 1 ? *slots.v1 : *slots.v2;
    for (size_t level = 0; level < kLevels && level < h.dirs.size(); ++level)
      for (size_t k = 0; k < names.size(); ++k)
        pieces[slotOf(slots, h.version, level, k)] = hwsq_fuzz::readFile(machine + h.dirs[level] + "/" + names[k]);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  hwsq_fuzz::makeSeedsIfAsked([](const std::string& fixtures) {
    std::vector<std::string> seeds;
    for (const char* kind : {"cgroup", "sysfs"})
      for (const auto& machine : hwsq_fuzz::subdirs(hwsq_fuzz::fs::path(fixtures) / kind)) {
        std::vector<std::string> pieces = hwsq_fuzz::piecesOf(machine, kProcFiles);
        pieces.resize(kPieces);
        readLimits(machine.string(), "cpu", kCpu, pieces);
        readLimits(machine.string(), "cpuset", kCpuset, pieces);
        seeds.push_back(hwsq_fuzz::joinPieces(pieces));
      }
    return seeds;
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto pieces = hwsq_fuzz::splitPieces(data, size);
  const auto& root = hwsq_fuzz::freshTree(pieces, kProcFiles);

  const auto cpu = checkedHierarchies(root.path(), "cpu");
  const auto cpuset = checkedHierarchies(root.path(), "cpuset");
  placeLimits(root, cpu, kCpu, pieces);
  placeLimits(root, cpuset, kCpuset, pieces);

  size_t levels = 0;
  for (const auto& h : cpu) levels += h.dirs.size();
  auto& work = hwsq::detail::parseWork();
  const uint64_t files = work.files;
  constexpr int kAllowed = 8;
  const hwsq::Parallelism p = hwsq::readParallelism(root.path(), kAllowed);
  // The proc files, then one or two limit files per level.
  FUZZ_CHECK(work.files - files <= 8 + 2 * levels);

  FUZZ_CHECK(p.allowedCpus == kAllowed);
  FUZZ_CHECK(p.value >= 1 && p.value <= kAllowed);
  if (p.source == "cpuset") {
    FUZZ_CHECK(p.quota == -1 && p.period == -1 && p.cgroupPath.empty() && p.value == kAllowed);
  } else {
    FUZZ_CHECK(p.source == "cgroup1" || p.source == "cgroup2");
    FUZZ_CHECK(p.quota > 0 && p.period > 0);
    const int64_t cpus = p.quota / p.period + (p.quota % p.period != 0 ? 1 : 0);
    FUZZ_CHECK(p.value == static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(kAllowed, cpus))));
    const int version = p.source == "cgroup1" ? 1 : 2;
    bool known = false;
    for (const auto& h : cpu)
      if (h.version == version)
        for (const auto& d : h.dirs) known = known || d == p.cgroupPath;
    FUZZ_CHECK(known);  // the limit came from a level of the process's own hierarchy
  }
  return 0;
}
