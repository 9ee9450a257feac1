// Affinity, getcpu and thread memory policy through raw syscalls. Runs on any Linux box; the
// multi-node cases only do something where /sys/devices/system/node/online lists several nodes.
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "affinity.h"
#include "check.h"
#include "support.h"

using hwsq_test::affinityOf;
using hwsq_test::Parked;
using hwsq_test::parseIds;
using hwsq_test::rangeCode;
using hwsq_test::readText;
#include "errors.h"

using hwsq::MemPolicy;

namespace {

bool samePolicy(const hwsq::MemPolicyState& s, MemPolicy p, const std::vector<int>& nodes) {
  return s.policy == p && s.nodes == nodes;
}

}  // namespace

TEST_CASE("possibleCpuCount and getThreadAffinity agree with sysfs") {
  int possible = hwsq::possibleCpuCount();
  CHECK(possible >= 1);
  std::string text = readText("/sys/devices/system/cpu/possible");
  if (!text.empty()) CHECK_EQ(possible, parseIds(text).back() + 1);
  auto cpus = hwsq::getThreadAffinity();
  CHECK(!cpus.empty());
  for (size_t i = 0; i < cpus.size(); ++i) {
    CHECK(cpus[i] >= 0 && cpus[i] < possible);
    if (i) CHECK(cpus[i - 1] < cpus[i]);
  }
  CHECK(cpus == affinityOf(0));
}

TEST_CASE("setThreadAffinity round trip pins to each allowed CPU") {
  auto orig = hwsq::getThreadAffinity();
  for (int cpu : orig) {
    hwsq::setThreadAffinity({cpu});
    sched_yield();
    CHECK(hwsq::getThreadAffinity() == std::vector<int>{cpu});
    // sched_setaffinity migrates the caller before returning, so getcpu sees the new CPU.
    CHECK_EQ(hwsq::currentLocation().cpu, cpu);
  }
  hwsq::setThreadAffinity(orig);
  CHECK(hwsq::getThreadAffinity() == orig);
}

TEST_CASE("setThreadAffinity errors leave the affinity unchanged") {
  auto orig = hwsq::getThreadAffinity();
  int possible = hwsq::possibleCpuCount();
  CHECK_CODE(hwsq::setThreadAffinity({}), "ERR_HWSQ_EMPTY_CPUS");
  CHECK(hwsq::getThreadAffinity() == orig);
  CHECK_CODE(hwsq::setThreadAffinity({100000}), "ERR_HWSQ_CPU_OUT_OF_RANGE");
  CHECK(hwsq::getThreadAffinity() == orig);
  CHECK_CODE(hwsq::setThreadAffinity({-1}), "ERR_HWSQ_CPU_OUT_OF_RANGE");
  CHECK(hwsq::getThreadAffinity() == orig);
  CHECK_CODE(hwsq::setThreadAffinity({possible}), "ERR_HWSQ_CPU_OUT_OF_RANGE");
  CHECK(hwsq::getThreadAffinity() == orig);
  // A valid CPU next to an invalid one still fails as a whole.
  CHECK_CODE(hwsq::setThreadAffinity({orig.front(), 100000}), "ERR_HWSQ_CPU_OUT_OF_RANGE");
  CHECK(hwsq::getThreadAffinity() == orig);
}

TEST_CASE("setThreadAffinity with only offline CPUs is ERR_HWSQ_CPU_NOT_ALLOWED") {
  // Needs a possible-but-offline CPU; most machines (and this CI box) have none.
  auto offline = parseIds(readText("/sys/devices/system/cpu/offline"));
  if (offline.empty() || offline.front() >= hwsq::possibleCpuCount()) {
    std::printf("  (skipped: no offline CPU)\n");
    return;
  }
  auto orig = hwsq::getThreadAffinity();
  CHECK_CODE(hwsq::setThreadAffinity({offline.front()}), "ERR_HWSQ_CPU_NOT_ALLOWED");
  CHECK(hwsq::getThreadAffinity() == orig);
  CHECK_CODE(hwsq::setProcessAffinity({offline.front()}), "ERR_HWSQ_CPU_NOT_ALLOWED");
  CHECK(hwsq::getThreadAffinity() == orig);
}

TEST_CASE("setProcessAffinity changes every thread; restoreProcessAffinity gives each its own mask") {
  auto orig = hwsq::getThreadAffinity();
  Parked other;
  pid_t tid = other.tid.load();
  CHECK(affinityOf(tid) == orig);
  std::vector<int> target{orig.back()};
  hwsq::ProcessPin pin = hwsq::setProcessAffinity(target);
  CHECK(pin.threads.size() >= 2);  // this thread and `other` (sanitizers may add their own)
  CHECK(affinityOf(tid) == target);
  CHECK(hwsq::getThreadAffinity() == target);
  for (const auto& t : pin.threads) CHECK(t.applied == target);
  // A thread started now inherits the mask.
  Parked later;
  CHECK(affinityOf(later.tid.load()) == target);
  hwsq::restoreProcessAffinity(pin, orig);
  CHECK(affinityOf(tid) == orig);
  CHECK(affinityOf(later.tid.load()) == orig);
  CHECK(hwsq::getThreadAffinity() == orig);
}

TEST_CASE("setProcessAffinity errors change no thread") {
  auto orig = hwsq::getThreadAffinity();
  Parked other;
  CHECK_CODE(hwsq::setProcessAffinity({}), "ERR_HWSQ_EMPTY_CPUS");
  CHECK_CODE(hwsq::setProcessAffinity({100000}), "ERR_HWSQ_CPU_OUT_OF_RANGE");
  CHECK_CODE(hwsq::setProcessAffinity({-1}), "ERR_HWSQ_CPU_OUT_OF_RANGE");
  CHECK(hwsq::getThreadAffinity() == orig);
  CHECK(affinityOf(other.tid.load()) == orig);
}

TEST_CASE("currentLocation matches the affinity and the sysfs node of the CPU") {
  auto loc = hwsq::currentLocation();
  auto cpus = hwsq::getThreadAffinity();
  CHECK(std::find(cpus.begin(), cpus.end(), loc.cpu) != cpus.end());
  auto nodes = hwsq::onlineNodes();
  CHECK(std::find(nodes.begin(), nodes.end(), loc.node) != nodes.end());
  // Pin so the CPU cannot change between getcpu and the sysfs lookup.
  hwsq::setThreadAffinity({loc.cpu});
  loc = hwsq::currentLocation();
  std::string list = readText("/sys/devices/system/node/node" + std::to_string(loc.node) + "/cpulist");
  if (!list.empty()) {
    auto nodeCpus = parseIds(list);
    CHECK(std::find(nodeCpus.begin(), nodeCpus.end(), loc.cpu) != nodeCpus.end());
  }
  hwsq::setThreadAffinity(cpus);
}

TEST_CASE("maxPossibleNode and onlineNodes") {
  int bits = hwsq::maxPossibleNode();
  CHECK(bits >= 1);
  auto nodes = hwsq::onlineNodes();
  CHECK(!nodes.empty());
  CHECK(nodes.back() < bits);
  std::string online = readText("/sys/devices/system/node/online");
  if (!online.empty()) CHECK(nodes == parseIds(online));
  // Mask buffers are whole 64-bit words holding every possible node.
  auto mask = hwsq::detail::nodeMask({nodes.back()});
  CHECK(mask.size() * sizeof(unsigned long) * 8 >= size_t(bits));
  CHECK_EQ(mask.size() * sizeof(unsigned long) % 8, size_t(0));
  CHECK_EQ(hwsq::detail::nodeMaskMaxnode(), static_cast<unsigned long>(bits) + 1);
}

TEST_CASE("thread memory policy round trip") {
  if (!hwsq::numaSyscallsAvailable()) {
    CHECK_THROWS(hwsq::getThreadMemPolicy());
    std::printf("  (NUMA syscalls unavailable: only checked that they throw)\n");
    return;
  }
  CHECK(samePolicy(hwsq::getThreadMemPolicy(), MemPolicy::Default, {}));
  hwsq::setThreadMemPolicy(MemPolicy::Preferred, {0});
  CHECK(samePolicy(hwsq::getThreadMemPolicy(), MemPolicy::Preferred, {0}));
  hwsq::setThreadMemPolicy(MemPolicy::Bind, {0});
  CHECK(samePolicy(hwsq::getThreadMemPolicy(), MemPolicy::Bind, {0}));
  hwsq::setThreadMemPolicy(MemPolicy::Interleave, {0});
  CHECK(samePolicy(hwsq::getThreadMemPolicy(), MemPolicy::Interleave, {0}));
  hwsq::setThreadMemPolicy(MemPolicy::Local, {});
  CHECK(samePolicy(hwsq::getThreadMemPolicy(), MemPolicy::Local, {}));
  hwsq::setThreadMemPolicy(MemPolicy::Default, {99999});  // nodes ignored
  CHECK(samePolicy(hwsq::getThreadMemPolicy(), MemPolicy::Default, {}));
}

TEST_CASE("memory policy errors leave the policy unchanged") {
  if (!hwsq::numaSyscallsAvailable()) return;
  hwsq::setThreadMemPolicy(MemPolicy::Bind, {0});
  CHECK_CODE(hwsq::setThreadMemPolicy(MemPolicy::Preferred, {99999}), "ERR_HWSQ_UNKNOWN_NODE");
  CHECK_CODE(hwsq::setThreadMemPolicy(MemPolicy::Bind, {99999}), "ERR_HWSQ_UNKNOWN_NODE");
  CHECK_CODE(hwsq::setThreadMemPolicy(MemPolicy::Interleave, {0, 99999}), "ERR_HWSQ_UNKNOWN_NODE");
  CHECK_CODE(hwsq::setThreadMemPolicy(MemPolicy::Bind, {-1}), "ERR_HWSQ_UNKNOWN_NODE");
  CHECK_CODE(hwsq::setThreadMemPolicy(MemPolicy::Bind, {hwsq::maxPossibleNode()}), "ERR_HWSQ_UNKNOWN_NODE");
  auto online = hwsq::onlineNodes();
  if (online.back() + 1 < hwsq::maxPossibleNode())  // possible id, but not online
    CHECK_CODE(hwsq::setThreadMemPolicy(MemPolicy::Bind, {online.back() + 1}), "ERR_HWSQ_UNKNOWN_NODE");
  CHECK_CODE(hwsq::setThreadMemPolicy(MemPolicy::Bind, {}), "ERR_HWSQ_BAD_NODES");
  CHECK_CODE(hwsq::setThreadMemPolicy(MemPolicy::Interleave, {}), "ERR_HWSQ_BAD_NODES");
  CHECK_CODE(hwsq::setThreadMemPolicy(MemPolicy::Preferred, {}), "ERR_HWSQ_BAD_NODES");
  CHECK_CODE(hwsq::setThreadMemPolicy(MemPolicy::Preferred, {0, 0}), "ERR_HWSQ_BAD_NODES");
  CHECK_CODE(hwsq::setThreadMemPolicy(static_cast<MemPolicy>(42), {0}), "ERR_HWSQ_BAD_POLICY");
  CHECK(samePolicy(hwsq::getThreadMemPolicy(), MemPolicy::Bind, {0}));
  hwsq::setThreadMemPolicy(MemPolicy::Default, {});
}

TEST_CASE("memory policy is per thread") {
  if (!hwsq::numaSyscallsAvailable()) return;
  hwsq::MemPolicyState seen{MemPolicy::Default, {}};
  std::thread t([&] {
    hwsq::setThreadMemPolicy(MemPolicy::Bind, {0});
    seen = hwsq::getThreadMemPolicy();
  });
  t.join();
  CHECK(samePolicy(seen, MemPolicy::Bind, {0}));
  CHECK(samePolicy(hwsq::getThreadMemPolicy(), MemPolicy::Default, {}));
}

TEST_CASE("multi-node: policy on every node (runs where several nodes are online)") {
  auto nodes = hwsq::onlineNodes();
  const int expected = hwsq_test::expectedNodes();
  if (expected) CHECK_EQ(static_cast<int>(nodes.size()), expected);
  if (nodes.size() < 2 || !hwsq::numaSyscallsAvailable()) {
    CHECK(expected < 2);  // a multi-node guest must run this case
    std::printf("  (skipped: %zu node(s) online)\n", nodes.size());
    return;
  }
  // Memory-less nodes are online but the kernel refuses them for every policy.
  std::vector<int> withMemory = parseIds(readText("/sys/devices/system/node/has_memory"));
  for (int n : nodes) {
    bool hasMemory = std::find(withMemory.begin(), withMemory.end(), n) != withMemory.end();
    for (MemPolicy p : {MemPolicy::Preferred, MemPolicy::Bind, MemPolicy::Interleave}) {
      std::string code = rangeCode([&] { hwsq::setThreadMemPolicy(p, {n}); });
      if (hasMemory) {
        CHECK(code == "none");
        CHECK(samePolicy(hwsq::getThreadMemPolicy(), p, {n}));
      } else {
        CHECK(code == "ERR_HWSQ_NODE_NOT_ALLOWED");
      }
    }
  }
  // The highest online node must survive the mask round trip (maxnode + 1).
  hwsq::setThreadMemPolicy(MemPolicy::Interleave, nodes);
  auto st = hwsq::getThreadMemPolicy();
  CHECK(st.policy == MemPolicy::Interleave);
  CHECK(!st.nodes.empty() && st.nodes.back() <= nodes.back());
  hwsq::setThreadMemPolicy(MemPolicy::Default, {});
  // getcpu's node agrees with sysfs for every allowed CPU.
  auto orig = hwsq::getThreadAffinity();
  for (int cpu : orig) {
    hwsq::setThreadAffinity({cpu});
    auto loc = hwsq::currentLocation();
    CHECK_EQ(loc.cpu, cpu);
    auto nodeCpus = parseIds(readText("/sys/devices/system/node/node" + std::to_string(loc.node) + "/cpulist"));
    CHECK(std::find(nodeCpus.begin(), nodeCpus.end(), cpu) != nodeCpus.end());
  }
  hwsq::setThreadAffinity(orig);
}

TEST_CASE("without NUMA syscalls the policy functions throw UnsupportedError") {
  hwsq::detail::setNumaDisabledForTesting(true);
  CHECK(!hwsq::numaSyscallsAvailable());
  bool unsupported = false;
  try {
    hwsq::setThreadMemPolicy(MemPolicy::Bind, {0});
  } catch (const hwsq::UnsupportedError&) {
    unsupported = true;
  }
  CHECK(unsupported);
  unsupported = false;
  try {
    (void)hwsq::getThreadMemPolicy();
  } catch (const hwsq::UnsupportedError&) {
    unsupported = true;
  }
  CHECK(unsupported);
  // Caller errors are still reported as such.
  CHECK_CODE(hwsq::setThreadMemPolicy(MemPolicy::Bind, {99999}), "ERR_HWSQ_UNKNOWN_NODE");
  hwsq::detail::setNumaDisabledForTesting(false);
}

TEST_MAIN()
