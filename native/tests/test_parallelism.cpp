// cgroup quota -> parallelism against test/fixtures/cgroup/* and temp trees.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "support.h"

using hwsq_test::TempDir;
#include "parallelism.h"
#include "topology.h"


namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& name) { return std::string(HWSQ_FIXTURES) + "/cgroup/" + name; }


const char* kV2Mount =
    "26 23 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n";

}  // namespace

TEST_CASE("v2 nested: a parent's limit tighter than the leaf wins") {
  auto p = hwsq::readParallelism(fixture("v2-nested"), 8);
  CHECK_EQ(p.value, 2);
  CHECK_EQ(p.allowedCpus, 8);
  CHECK_EQ(p.quota, 200000);
  CHECK_EQ(p.period, 100000);
  CHECK_STR(p.source, std::string("cgroup2"));
  CHECK_STR(p.cgroupPath, std::string("/sys/fs/cgroup/kubepods.slice/kubepods-pod1.slice"));
  // Fewer CPUs than the quota: the CPUs bound it.
  p = hwsq::readParallelism(fixture("v2-nested"), 1);
  CHECK_EQ(p.value, 1);
  CHECK_EQ(p.quota, 200000);
}

TEST_CASE("v2 max everywhere: no quota") {
  const auto p = hwsq::readParallelism(fixture("v2-max"), 6);
  CHECK_EQ(p.value, 6);
  CHECK_EQ(p.quota, -1);
  CHECK_EQ(p.period, -1);
  CHECK_STR(p.source, std::string("cpuset"));
  CHECK_STR(p.cgroupPath, std::string(""));
}

TEST_CASE("v2 quota below one CPU gives 1") {
  const auto p = hwsq::readParallelism(fixture("v2-below-one"), 16);
  CHECK_EQ(p.value, 1);
  CHECK_EQ(p.quota, 20000);
  CHECK_EQ(p.period, 100000);
  CHECK_STR(p.source, std::string("cgroup2"));
  CHECK_STR(p.cgroupPath, std::string("/sys/fs/cgroup/system.slice/tiny.service"));
}

TEST_CASE("v2 fractional quota rounds up") {
  const auto p = hwsq::readParallelism(fixture("v2-fractional"), 8);
  CHECK_EQ(p.value, 2);
  CHECK_EQ(p.quota, 150000);
  CHECK_EQ(p.period, 100000);
  CHECK_STR(p.cgroupPath, std::string("/sys/fs/cgroup/system.slice/web.service"));
}

TEST_CASE("v1 cpu,cpuacct quota (hybrid host)") {
  const auto p = hwsq::readParallelism(fixture("v1-cpuacct"), 8);
  CHECK_EQ(p.value, 3);
  CHECK_EQ(p.quota, 250000);
  CHECK_EQ(p.period, 100000);
  CHECK_STR(p.source, std::string("cgroup1"));
  CHECK_STR(p.cgroupPath, std::string("/sys/fs/cgroup/cpu,cpuacct/system.slice/db.service"));
}

TEST_CASE("v1 unlimited (-1)") {
  const auto p = hwsq::readParallelism(fixture("v1-unlimited"), 4);
  CHECK_EQ(p.value, 4);
  CHECK_EQ(p.quota, -1);
  CHECK_STR(p.source, std::string("cpuset"));
}

TEST_CASE("v2 container: mount root is the container's cgroup, proc shows /") {
  const auto p = hwsq::readParallelism(fixture("v2-container-root"), 8);
  CHECK_EQ(p.value, 3);
  CHECK_EQ(p.quota, 300000);
  CHECK_STR(p.source, std::string("cgroup2"));
  CHECK_STR(p.cgroupPath, std::string("/sys/fs/cgroup"));
  const auto h = hwsq::detail::findCgroupHierarchies(fixture("v2-container-root"), "cpuset");
  CHECK_EQ(h.size(), 1u);
  if (!h.empty()) {
    CHECK_EQ(h[0].version, 2);
    CHECK_EQ(h[0].dirs.size(), 1u);
  }
}

TEST_CASE("v1 container: mount root equals the process's cgroup path") {
  const auto p = hwsq::readParallelism(fixture("v1-container-root"), 8);
  CHECK_EQ(p.value, 1);
  CHECK_EQ(p.quota, 50000);
  CHECK_STR(p.source, std::string("cgroup1"));
  CHECK_STR(p.cgroupPath, std::string("/sys/fs/cgroup/cpu,cpuacct"));
  const auto h = hwsq::detail::findCgroupHierarchies(fixture("v1-container-root"), "cpuset");
  CHECK(!h.empty());
  if (!h.empty()) {
    CHECK_EQ(h[0].version, 1);
    CHECK(h[0].dirs == (std::vector<std::string>{"/sys/fs/cgroup/cpuset"}));
  }
}

TEST_CASE("no mountinfo: v2 assumed at sys/fs/cgroup") {
  auto p = hwsq::readParallelism(fixture("v2-no-mountinfo"), 2);
  CHECK_EQ(p.value, 2);  // ceil(3) capped by 2 CPUs
  CHECK_EQ(p.quota, 300000);
  CHECK_STR(p.cgroupPath, std::string("/sys/fs/cgroup/batch.slice"));
  p = hwsq::readParallelism(fixture("v2-no-mountinfo"), 0);  // nonsense count still gives 1
  CHECK_EQ(p.value, 1);
  CHECK_EQ(p.allowedCpus, 1);
}

TEST_CASE("v1 from proc/mounts (hwloc-gather-topology dump, no mountinfo)") {
  const auto p = hwsq::readParallelism(fixture("v1-proc-mounts"), 8);
  CHECK_EQ(p.value, 3);  // job9: 150000/50000 = 3.0 beats batch: 400000/100000 = 4.0
  CHECK_EQ(p.quota, 150000);
  CHECK_EQ(p.period, 50000);
  CHECK_STR(p.source, "cgroup1");
  CHECK_STR(p.cgroupPath, "/sys/fs/cgroup/cpu,cpuacct/batch/job9");
  const auto h = hwsq::detail::findCgroupHierarchies(fixture("v1-proc-mounts"), "cpuset");
  CHECK_EQ(h.size(), 1u);
  if (!h.empty()) {
    CHECK_EQ(h[0].version, 1);
    CHECK(h[0].dirs == (std::vector<std::string>{"/sys/fs/cgroup/cpuset/batch/job9",
                                                 "/sys/fs/cgroup/cpuset/batch", "/sys/fs/cgroup/cpuset"}));
  }
}

TEST_CASE("hierarchy chain from leaf to mount point") {
  const auto h = hwsq::detail::findCgroupHierarchies(fixture("v2-nested"), "cpu");
  CHECK_EQ(h.size(), 1u);
  if (h.empty()) return;
  const std::vector<std::string> want = {
      "/sys/fs/cgroup/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope",
      "/sys/fs/cgroup/kubepods.slice/kubepods-pod1.slice", "/sys/fs/cgroup/kubepods.slice",
      "/sys/fs/cgroup"};
  CHECK(h[0].dirs == want);
  // Hybrid host: v1 cpu hierarchy first, v2 unified second.
  const auto hy = hwsq::detail::findCgroupHierarchies(fixture("v1-cpuacct"), "cpu");
  CHECK_EQ(hy.size(), 2u);
  if (hy.size() == 2) {
    CHECK_EQ(hy[0].version, 1);
    CHECK_EQ(hy[1].version, 2);
    CHECK_STR(hy[1].dirs.front(), std::string("/sys/fs/cgroup/unified/system.slice/db.service"));
  }
}

TEST_CASE("escaped mount point and a mount root that prefixes the cgroup path") {
  TempDir d;
  d.write("proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
  d.write("proc/self/mountinfo",
          "30 1 0:26 /kubepods /mnt/cg\\040root rw,relatime - cgroup2 cgroup2 rw\n");
  d.write("mnt/cg root/pod1/cpu.max", "250000 50000\n");  // 5 CPUs
  d.write("mnt/cg root/pod1/ctr/cpu.max", "max 50000\n");
  const auto p = hwsq::readParallelism(d.path, 64);
  CHECK_EQ(p.value, 5);
  CHECK_EQ(p.period, 50000);
  CHECK_STR(p.cgroupPath, std::string("/mnt/cg root/pod1"));
}

TEST_CASE("equal ratios keep the deepest cgroup; different periods compared exactly") {
  TempDir d;
  d.write("proc/self/cgroup", "0::/a/b\n");
  d.write("proc/self/mountinfo", kV2Mount);
  d.write("sys/fs/cgroup/a/cpu.max", "400000 200000\n");   // 2.0
  d.write("sys/fs/cgroup/a/b/cpu.max", "200000 100000\n"); // 2.0
  auto p = hwsq::readParallelism(d.path, 8);
  CHECK_EQ(p.value, 2);
  CHECK_STR(p.cgroupPath, std::string("/sys/fs/cgroup/a/b"));
  d.write("sys/fs/cgroup/a/cpu.max", "399999 200000\n");   // 1.999995: tighter
  p = hwsq::readParallelism(d.path, 8);
  CHECK_EQ(p.value, 2);
  CHECK_EQ(p.quota, 399999);
  CHECK_STR(p.cgroupPath, std::string("/sys/fs/cgroup/a"));
}

TEST_CASE("garbled cgroup files are ignored") {
  TempDir d;
  d.write("proc/self/cgroup", "0::/a/b\n");
  d.write("proc/self/mountinfo", kV2Mount);
  d.write("sys/fs/cgroup/a/b/cpu.max", "lots 100000\n");
  d.write("sys/fs/cgroup/a/cpu.max", "-5 100000\n");
  d.write("sys/fs/cgroup/cpu.max", "100000 0\n");
  auto p = hwsq::readParallelism(d.path, 3);
  CHECK_EQ(p.value, 3);
  CHECK_STR(p.source, std::string("cpuset"));
  // A path that tries to climb out of the mount stays inside it.
  d.write("proc/self/cgroup", "0::/../../etc\n");
  const auto h = hwsq::detail::findCgroupHierarchies(d.path, "cpu");
  CHECK_EQ(h.size(), 1u);
  if (!h.empty()) CHECK(h[0].dirs == (std::vector<std::string>{"/sys/fs/cgroup/etc", "/sys/fs/cgroup"}));
  // Nothing at all.
  p = hwsq::readParallelism("/nonexistent/hwsq/root", 5);
  CHECK_EQ(p.value, 5);
  CHECK_STR(p.source, std::string("cpuset"));
}

TEST_CASE("a cgroup path of 20k components is garbled (PATH_MAX); one of 2000 is walked, linearly") {
  TempDir d;
  std::string deep;
  for (int i = 0; i < 20000; ++i) deep += "/a";
  d.write("proc/self/cgroup", "0::" + deep + "\n");
  d.write("proc/self/mountinfo", kV2Mount);
  d.write("sys/fs/cgroup/cpu.max", "200000 100000\n");
  auto& work = hwsq::detail::parseWork();
  uint64_t files = work.files;
  CHECK(hwsq::detail::findCgroupHierarchies(d.path, "cpu").empty());  // no usable line
  auto p = hwsq::readParallelism(d.path, 8);
  CHECK_EQ(p.value, 8);
  CHECK_STR(p.source, std::string("cpuset"));
  CHECK(work.files - files < 50);
  // Just below PATH_MAX: 2000 levels, one cpu.max lookup each.
  std::string ok;
  for (int i = 0; i < 2000; ++i) ok += "/a";
  d.write("proc/self/cgroup", "0::" + ok + "\n");
  files = work.files;
  const auto h = hwsq::detail::findCgroupHierarchies(d.path, "cpu");
  CHECK_EQ(h.size(), 1u);
  if (h.size() == 1) {
    CHECK_EQ(h[0].dirs.size(), 2001u);
    CHECK_STR(h[0].dirs.front(), "/sys/fs/cgroup" + ok);
    CHECK_STR(h[0].dirs.back(), std::string("/sys/fs/cgroup"));
  }
  p = hwsq::readParallelism(d.path, 8);
  CHECK_EQ(p.value, 2);  // the root's 2 CPUs
  CHECK_STR(p.cgroupPath, std::string("/sys/fs/cgroup"));
  CHECK(work.files - files < 2 * 2001 + 50);
}

TEST_CASE("oversized cgroup files and mount lines are ignored") {
  TempDir d;
  d.write("proc/self/cgroup", "0::/a\n");
  std::string longMount = "/" + std::string(5000, 'm');
  d.write("proc/self/mountinfo", "26 23 0:24 / " + longMount + " rw - cgroup2 cgroup2 rw\n" + kV2Mount);
  d.write("sys/fs/cgroup/a/cpu.max", "100000 100000 " + std::string(hwsq::detail::kAttrFileBytes, ' ') + "\n");
  d.write("sys/fs/cgroup/cpu.max", "300000 100000\n");
  const auto p = hwsq::readParallelism(d.path, 8);
  CHECK_EQ(p.value, 3);  // the leaf's file is too big to be a cpu.max: unknown
  CHECK_STR(p.cgroupPath, std::string("/sys/fs/cgroup"));
}

TEST_CASE("a dump's mount points and controller names cannot lead the lookup out of the dump") {
  TempDir d;
  d.write("outside/cpu.max", "100000 100000\n");  // 1 CPU, next to the dump, not in it
  d.write("outside/q/cpu.cfs_quota_us", "100000\n");
  d.write("outside/q/cpu.cfs_period_us", "100000\n");
  const std::string dump = d.path + "/dump";
  d.write("dump/proc/self/cgroup", "0::/\n");
  d.write("dump/proc/self/mountinfo", "26 23 0:24 / /../outside rw - cgroup2 cgroup2 rw\n");
  auto p = hwsq::readParallelism(dump, 8);
  CHECK_EQ(p.value, 8);
  CHECK_STR(p.source, std::string("cpuset"));
  CHECK(hwsq::detail::findCgroupHierarchies(dump, "cpu").empty());
  // No mount table: the conventional v1 mount point built from the controller names.
  fs::remove(dump + "/proc/self/mountinfo");
  // "/sys/fs/cgroup/cpu,../../../../../../outside/q" climbs from dump/sys/fs/cgroup/"cpu,.." to d.
  d.write("dump/proc/self/cgroup", "3:cpu,../../../../../../outside/q:/\n");
  d.write("dump/sys/fs/cgroup/cpu,../keep", "");
  p = hwsq::readParallelism(dump, 8);
  CHECK_EQ(p.value, 8);
  for (const auto& h : hwsq::detail::findCgroupHierarchies(dump, "cpu"))
    for (const auto& dir : h.dirs) CHECK(dir.find("..") == std::string::npos);
  // Mount points with empty or "." components are not canonical either.
  d.write("dump/proc/self/cgroup", "0::/a\n");
  d.write("dump/proc/self/mountinfo", "26 23 0:24 / /sys//fs/./cgroup rw - cgroup2 cgroup2 rw\n");
  CHECK(hwsq::detail::findCgroupHierarchies(dump, "cpu").empty());
}

TEST_CASE("live system parallelism") {
  const auto t = hwsq::readTopology("");
  const int n = static_cast<int>(t.allowedCpus.size());
  const auto p = hwsq::readParallelism("", n);
  CHECK(p.value >= 1);
  CHECK(p.value <= n);
  CHECK_EQ(p.allowedCpus, n);
  CHECK(p.source == "cpuset" || p.source == "cgroup1" || p.source == "cgroup2");
  if (p.source != "cpuset") {
    CHECK(p.quota > 0);
    CHECK(p.period > 0);
    CHECK(!p.cgroupPath.empty());
  }
}

TEST_MAIN()
