// Topology parser against fixture dumps (test/fixtures/sysfs/*), the live system, and garbage.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "support.h"

using hwsq_test::TempDir;
#include "parallelism.h"
#include "topology.h"


using hwsq::CpuInfo;
using hwsq::NodeInfo;
using hwsq::Topology;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& name) { return std::string(HWSQ_FIXTURES) + "/sysfs/" + name; }

std::string list(const std::vector<int>& v) { return hwsq::formatCpuList(v); }

const CpuInfo& cpu(const Topology& t, int id) {
  for (const auto& c : t.cpus)
    if (c.id == id) return c;
  throw std::runtime_error("no cpu " + std::to_string(id));
}

const NodeInfo& node(const Topology& t, int id) {
  const NodeInfo* n = t.findNode(id);
  if (!n) throw std::runtime_error("no node " + std::to_string(id));
  return *n;
}

std::vector<int> nodeIds(const Topology& t) {
  std::vector<int> ids;
  for (const auto& n : t.nodes) ids.push_back(n.id);
  return ids;
}

std::vector<int> onlineCpus(const Topology& t) {
  std::vector<int> v;
  for (const auto& c : t.cpus)
    if (c.online) v.push_back(c.id);
  return v;
}

constexpr uint64_t kB = 1024;

// Structural invariants that must hold for any input, garbage included.
void checkInvariants(const Topology& t) {
  CHECK(!t.nodes.empty());
  CHECK(!t.cpus.empty());
  CHECK(!t.allowedCpus.empty());
  CHECK(std::is_sorted(t.allowedCpus.begin(), t.allowedCpus.end()));
  const auto online = onlineCpus(t);
  CHECK(!online.empty());
  for (int c : t.allowedCpus) CHECK(std::binary_search(online.begin(), online.end(), c));
  for (size_t i = 1; i < t.nodes.size(); ++i) CHECK(t.nodes[i - 1].id < t.nodes[i].id);
  for (size_t i = 1; i < t.cpus.size(); ++i) CHECK(t.cpus[i - 1].id < t.cpus[i].id);
  std::set<int> seen;
  for (const auto& n : t.nodes) {
    CHECK_EQ(n.distances.size(), t.nodes.size());
    for (int c : n.cpus) {
      CHECK(seen.insert(c).second);  // in one node only
      CHECK(std::binary_search(online.begin(), online.end(), c));
      CHECK_EQ(cpu(t, c).node, n.id);
    }
  }
}


}  // namespace

// ---------------------------------------------------------------- list/mask parsing

TEST_CASE("parseCpuList: ranges, singles, whitespace, empty") {
  CHECK_STR(list(hwsq::parseCpuList("0-3,8,10-11")), std::string("0-3,8,10-11"));
  CHECK_EQ(hwsq::parseCpuList("0-3,8,10-11").size(), 7u);
  CHECK(hwsq::parseCpuList("").empty());
  CHECK(hwsq::parseCpuList("\n").empty());
  CHECK(hwsq::parseCpuList("  \t\n").empty());
  CHECK_STR(list(hwsq::parseCpuList("5\n")), std::string("5"));
  CHECK_STR(list(hwsq::parseCpuList(" 0-1 , 4 \n")), std::string("0-1,4"));
  CHECK_STR(list(hwsq::parseCpuList("8,0-3,2")), std::string("0-3,8"));  // unsorted, overlapping
  CHECK_STR(list(hwsq::parseCpuList("7-7")), std::string("7"));
  CHECK_STR(list(hwsq::parseCpuList("0,8,252")), std::string("0,8,252"));
}

TEST_CASE("parseCpuList: strides and kernel group syntax") {
  CHECK_STR(list(hwsq::parseCpuList("0-15:2")), std::string("0,2,4,6,8,10,12,14"));
  CHECK_STR(list(hwsq::parseCpuList("0-7:2/4")), std::string("0-1,4-5"));  // 2 of every 4
  CHECK_STR(list(hwsq::parseCpuList("1-9:1/4")), std::string("1,5,9"));
  CHECK_STR(list(hwsq::parseCpuList("0-2:4")), std::string("0"));
}

TEST_CASE("parseCpuList: garbage throws invalid_argument") {
  const char* bad[] = {"x", "0-", "-1", "3-1", "0,,1", ",", "0-3,", "1.5", "0x3", "0-3:0",
                       "0-7:3/2", "0 1", "99999999999", "0-4294967295", "\xff"};
  for (const char* b : bad) {
    bool threw = false;
    try {
      hwsq::parseCpuList(b);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    if (!threw) std::fprintf(stderr, "  no throw for \"%s\"\n", b);
    CHECK(threw);
  }
}

TEST_CASE("parseCpuMask: 32-bit words, most significant first") {
  CHECK_STR(list(hwsq::parseCpuMask("00000000,0000000f")), std::string("0-3"));
  CHECK_STR(list(hwsq::parseCpuMask("3\n")), std::string("0-1"));
  CHECK_STR(list(hwsq::parseCpuMask("ff,00000001")), std::string("0,32-39"));
  CHECK_STR(list(hwsq::parseCpuMask("80000000,00000000,00000000")), std::string("95"));
  CHECK_STR(list(hwsq::parseCpuMask("0000ff00")), std::string("8-15"));
  CHECK_STR(list(hwsq::parseCpuMask("FFFF")), std::string("0-15"));
  CHECK(hwsq::parseCpuMask("").empty());
  CHECK(hwsq::parseCpuMask("00000000,00000000\n").empty());
  CHECK_THROWS(hwsq::parseCpuMask("zz"));
  CHECK_THROWS(hwsq::parseCpuMask("f,,f"));
  CHECK_THROWS(hwsq::parseCpuMask("1ffffffff,0"));
}

TEST_CASE("id bounds: CPUs below kMaxCpus (8192), nodes below kMaxNodes (1024)") {
  CHECK_EQ(hwsq::kMaxCpus, 8192);
  CHECK_EQ(hwsq::kMaxNodes, 1024);
  CHECK_EQ(hwsq::parseCpuList("0-8191").size(), 8192u);
  CHECK_STR(list(hwsq::parseCpuList("8191")), std::string("8191"));
  CHECK_THROWS(hwsq::parseCpuList("8192"));
  CHECK_THROWS(hwsq::parseCpuList("0-8192"));
  CHECK_THROWS(hwsq::parseCpuList("0-1048575"));  // accepted (a million ids) before the bound
  CHECK_STR(list(hwsq::parseNodeList("0-1023")), std::string("0-1023"));
  CHECK_STR(list(hwsq::parseNodeList("0,8,252\n")), std::string("0,8,252"));
  CHECK_THROWS(hwsq::parseNodeList("1024"));
  CHECK_THROWS(hwsq::parseNodeList("0-20000"));
  std::string top = "80000000";  // bit 8191 of a 256-word mask
  for (int i = 1; i < 256; ++i) top += ",00000000";
  CHECK_STR(list(hwsq::parseCpuMask(top)), std::string("8191"));
  CHECK_THROWS(hwsq::parseCpuMask("1," + top));  // bit 8192
}

TEST_CASE("lists and masks: hostile input costs work linear in its length") {
  auto& work = hwsq::detail::parseWork();
  // 10 KB of the widest ranges (56 s and gigabytes before the bound): every id once.
  std::string wide;
  while (wide.size() < 10000) wide += "0-8191,";
  wide += "1";
  uint64_t before = work.steps;
  CHECK_EQ(hwsq::parseCpuList(wide).size(), 8192u);
  const uint64_t wideSteps = work.steps - before;
  CHECK(wideSteps <= 200 * wide.size());  // text once, 129 bitmap words per range at most
  // Strides: "a-b:1/2" costs at most kMaxCpus / 2 steps per element.
  std::string strides;
  while (strides.size() < 10000) strides += "0-8191:1/2,";
  strides += "1";
  before = work.steps;
  CHECK_EQ(hwsq::parseCpuList(strides).size(), 4097u);
  CHECK(work.steps - before <= 500 * strides.size());
  // A mask: never more words than kMaxCpus ids need, each character looked at once.
  std::string words = "1";
  for (int i = 0; i < 300; ++i) words += ",00000000";
  CHECK_THROWS(hwsq::parseCpuMask(words));  // 301 words: more than 8192 bits
  std::string lone = "1" + std::string(100000, '0');
  CHECK_THROWS(hwsq::parseCpuMask(lone));  // bit 400000
  before = work.steps;
  CHECK_STR(list(hwsq::parseCpuMask(std::string(100000, '0') + "1")), std::string("0"));
  CHECK(work.steps - before <= 2 * 100001u);
  std::string full = "ffffffff";
  for (int i = 1; i < 256; ++i) full += ",ffffffff";
  CHECK_EQ(hwsq::parseCpuMask(full).size(), 8192u);
}

TEST_CASE("formatCpuList") {
  CHECK_STR(hwsq::formatCpuList({0, 1, 2, 3, 8}), std::string("0-3,8"));
  CHECK_STR(hwsq::formatCpuList({}), std::string(""));
  CHECK_STR(hwsq::formatCpuList({5}), std::string("5"));
  CHECK_STR(hwsq::formatCpuList({0, 1}), std::string("0-1"));
  CHECK_STR(hwsq::formatCpuList({9, 3, 4, 3, 0}), std::string("0,3-4,9"));
  CHECK_STR(hwsq::formatCpuList(hwsq::parseCpuList("0-3,8,10-11")), std::string("0-3,8,10-11"));
}

TEST_CASE("defaultFsRoot reads HWSQ_FSROOT") {
  const char* old = std::getenv("HWSQ_FSROOT");
  std::string saved = old ? old : "";
  setenv("HWSQ_FSROOT", "/tmp/dump", 1);
  CHECK_STR(hwsq::defaultFsRoot(), std::string("/tmp/dump"));
  unsetenv("HWSQ_FSROOT");
  CHECK_STR(hwsq::defaultFsRoot(), std::string(""));
  if (old) setenv("HWSQ_FSROOT", saved.c_str(), 1);
}

// ---------------------------------------------------------------- fixtures

TEST_CASE("intel-2s-ht: 2 sockets x 4 cores x 2 threads") {
  const Topology t = hwsq::readTopology(fixture("intel-2s-ht"));
  checkInvariants(t);
  CHECK(!t.synthetic);
  CHECK_STR(list(nodeIds(t)), std::string("0-1"));
  CHECK_STR(list(node(t, 0).cpus), std::string("0-3,8-11"));
  CHECK_STR(list(node(t, 1).cpus), std::string("4-7,12-15"));
  CHECK(node(t, 0).distances == (std::vector<int>{10, 21}));
  CHECK(node(t, 1).distances == (std::vector<int>{21, 10}));
  CHECK_EQ(node(t, 0).memoryBytes, 16314364 * kB);
  CHECK_EQ(node(t, 0).freeBytes, 15023112 * kB);
  CHECK_EQ(node(t, 1).memoryBytes, 16510388 * kB);
  CHECK(node(t, 0).hasMemory && node(t, 1).hasMemory);
  CHECK_EQ(t.cpus.size(), 16u);
  for (const auto& c : t.cpus) {
    const int socket = (c.id % 8) / 4;
    CHECK(c.online);
    CHECK_EQ(c.package, socket);
    CHECK_EQ(c.node, socket);
    CHECK_EQ(c.die, 0);
    CHECK_EQ(c.core, c.id % 4);
    CHECK_STR(list(c.siblings), list({c.id % 8, c.id % 8 + 8}));
    CHECK_EQ(c.l3, socket * 4);
  }
  CHECK_EQ(t.nodeIndex(1), 1);
  CHECK_EQ(t.nodeIndex(2), -1);
  CHECK(t.findNode(7) == nullptr);
  CHECK_STR(list(t.allowedCpus), std::string("0-15"));
  // Same result with a trailing slash on the root.
  const Topology t2 = hwsq::readTopology(fixture("intel-2s-ht") + "/");
  CHECK_STR(list(t2.allowedCpus), std::string("0-15"));
  CHECK_EQ(t2.nodes.size(), 2u);
}

TEST_CASE("amd-epyc-nps2: 2 nodes per socket, L3 per CCX, v1 cpuset from slurm") {
  const Topology t = hwsq::readTopology(fixture("amd-epyc-nps2"));
  checkInvariants(t);
  CHECK_STR(list(nodeIds(t)), std::string("0-3"));
  CHECK_STR(list(node(t, 0).cpus), std::string("0-3,16-19"));
  CHECK_STR(list(node(t, 1).cpus), std::string("4-7,20-23"));
  CHECK_STR(list(node(t, 2).cpus), std::string("8-11,24-27"));
  CHECK_STR(list(node(t, 3).cpus), std::string("12-15,28-31"));
  CHECK(node(t, 0).distances == (std::vector<int>{10, 12, 32, 32}));
  CHECK(node(t, 1).distances == (std::vector<int>{12, 10, 32, 32}));
  CHECK(node(t, 2).distances == (std::vector<int>{32, 32, 10, 12}));
  CHECK(node(t, 3).distances == (std::vector<int>{32, 32, 12, 10}));
  CHECK_EQ(node(t, 3).memoryBytes, 33026828 * kB);
  CHECK_EQ(t.cpus.size(), 32u);
  CHECK_EQ(cpu(t, 0).l3, 0);
  CHECK_EQ(cpu(t, 17).l3, 0);
  CHECK_EQ(cpu(t, 2).l3, 2);
  CHECK_EQ(cpu(t, 19).l3, 2);
  CHECK_EQ(cpu(t, 31).l3, 14);
  CHECK_EQ(cpu(t, 9).package, 1);
  CHECK_EQ(cpu(t, 9).core, 1);
  CHECK_EQ(cpu(t, 13).core, 9);
  CHECK_EQ(cpu(t, 29).core, 9);
  CHECK_STR(list(cpu(t, 29).siblings), std::string("13,29"));
  // L3 groups are strictly smaller than nodes: 2 per node.
  std::set<int> groups;
  for (int c : node(t, 1).cpus) groups.insert(cpu(t, c).l3);
  CHECK_EQ(groups.size(), 2u);
  // proc/self/status allows everything; the v1 cpuset of the slurm step restricts to node 0.
  CHECK_STR(list(t.allowedCpus), std::string("0-3,16-19"));
}

TEST_CASE("power-sparse: sparse node ids, CPU-less node, SMT4, offline CPUs") {
  const Topology t = hwsq::readTopology(fixture("power-sparse"));
  checkInvariants(t);
  CHECK_STR(list(nodeIds(t)), std::string("0,8,252"));
  CHECK_STR(list(node(t, 0).cpus), std::string("0-6"));
  CHECK_STR(list(node(t, 8).cpus), std::string("8-11"));
  CHECK(node(t, 252).cpus.empty());
  // The distance rows list one entry per online node: index by position, not by node id.
  CHECK(node(t, 0).distances == (std::vector<int>{10, 40, 80}));
  CHECK(node(t, 8).distances == (std::vector<int>{40, 10, 80}));
  CHECK(node(t, 252).distances == (std::vector<int>{80, 80, 10}));
  CHECK_EQ(node(t, 252).memoryBytes, 16777216 * kB);
  CHECK_EQ(node(t, 252).freeBytes, 16515072 * kB);
  CHECK(node(t, 252).hasMemory);
  CHECK_EQ(t.nodeIndex(252), 2);
  CHECK_EQ(t.cpus.size(), 16u);  // present 0-15, online 0-6,8-11
  CHECK_STR(list(onlineCpus(t)), std::string("0-6,8-11"));
  for (int off : {7, 12, 13, 14, 15}) {
    const CpuInfo& c = cpu(t, off);
    CHECK(!c.online);
    CHECK_EQ(c.core, -1);
    CHECK_EQ(c.package, -1);
    CHECK_EQ(c.l3, -1);
    CHECK(c.siblings.empty());
  }
  // Offline CPUs are only found through the cpuN/nodeM links.
  CHECK_EQ(cpu(t, 7).node, 0);
  CHECK_EQ(cpu(t, 12).node, 8);
  CHECK_EQ(cpu(t, 15).node, 8);
  CHECK_EQ(cpu(t, 9).package, 8);
  CHECK_EQ(cpu(t, 9).core, 2048);
  CHECK_EQ(cpu(t, 5).core, 4);
  CHECK_EQ(cpu(t, 5).die, -1);
  CHECK_STR(list(cpu(t, 5).siblings), std::string("4-6"));
  CHECK_STR(list(cpu(t, 1).siblings), std::string("0-3"));
  CHECK_EQ(cpu(t, 6).l3, 0);
  CHECK_EQ(cpu(t, 11).l3, 8);
  // No proc/self/status and no cgroup info: online CPUs.
  CHECK_STR(list(t.allowedCpus), std::string("0-6,8-11"));
}

TEST_CASE("arm-cpuless: package -1, no die, core_cpus_list, CPU-less memory node") {
  const Topology t = hwsq::readTopology(fixture("arm-cpuless"));
  checkInvariants(t);
  CHECK_STR(list(nodeIds(t)), std::string("0-2"));
  CHECK_STR(list(node(t, 0).cpus), std::string("0-3"));
  CHECK_STR(list(node(t, 1).cpus), std::string("4-7"));
  CHECK(node(t, 2).cpus.empty());
  CHECK(node(t, 2).hasMemory);
  CHECK_EQ(node(t, 2).memoryBytes, 100663296 * kB);
  CHECK(node(t, 1).distances == (std::vector<int>{20, 10, 30}));
  CHECK(node(t, 2).distances == (std::vector<int>{30, 30, 10}));
  for (const auto& c : t.cpus) {
    CHECK(c.online);
    CHECK_EQ(c.package, -1);  // raw value kept
    CHECK_EQ(c.die, -1);
    CHECK_EQ(c.core, c.id);
    CHECK_STR(list(c.siblings), list({c.id}));  // from core_cpus_list
    CHECK_EQ(c.l3, c.id < 4 ? 0 : 4);
  }
  CHECK_STR(list(t.allowedCpus), std::string("0-7"));
}

TEST_CASE("nonuma: no node directory gives one synthetic node") {
  const Topology t = hwsq::readTopology(fixture("nonuma"));
  checkInvariants(t);
  CHECK(t.synthetic);
  CHECK_EQ(t.nodes.size(), 1u);
  CHECK_EQ(t.nodes[0].id, 0);
  CHECK_STR(list(t.nodes[0].cpus), std::string("0-3"));
  CHECK(t.nodes[0].distances == (std::vector<int>{10}));
  CHECK_EQ(t.nodes[0].memoryBytes, 8046892 * kB);
  CHECK_EQ(t.nodes[0].freeBytes, 5123456 * kB);
  CHECK(t.nodes[0].hasMemory);
  for (const auto& c : t.cpus) {
    CHECK_EQ(c.node, 0);
    CHECK_EQ(c.l3, 0);
    CHECK_STR(list(c.siblings), list({c.id % 2, c.id % 2 + 2}));
  }
  CHECK_STR(list(t.allowedCpus), std::string("0-3"));
}

TEST_CASE("cgroup-restricted: affinity mask and v2 cpuset both restrict") {
  const Topology t = hwsq::readTopology(fixture("cgroup-restricted"));
  checkInvariants(t);
  CHECK_STR(list(node(t, 0).cpus), std::string("0-3"));
  CHECK_STR(list(node(t, 1).cpus), std::string("4-7"));
  // online 0-7 ∩ Cpus_allowed_list 3-7 ∩ system.slice cpuset.cpus.effective 4-6 (the leaf has
  // no cpuset files, so the lookup walks up).
  CHECK_STR(list(t.allowedCpus), std::string("4-6"));
  const auto p = hwsq::readParallelism(fixture("cgroup-restricted"), static_cast<int>(t.allowedCpus.size()));
  CHECK_EQ(p.value, 2);  // ceil(150000/100000)
  CHECK_EQ(p.allowedCpus, 3);
  CHECK_EQ(p.quota, 150000);
  CHECK_EQ(p.period, 100000);
  CHECK_STR(p.source, std::string("cgroup2"));
  CHECK_STR(p.cgroupPath, std::string("/sys/fs/cgroup/system.slice/app.service"));
}

TEST_CASE("ia64-memless: possible-only CPUs, memory-less node, offline CPU in cpulist, legacy cpuset fs") {
  const Topology t = hwsq::readTopology(fixture("ia64-memless"));
  checkInvariants(t);
  CHECK_EQ(t.cpus.size(), 6u);  // from cpu/possible (no cpu/present)
  CHECK_STR(list(onlineCpus(t)), std::string("0-4"));
  CHECK_STR(list(nodeIds(t)), std::string("0-2"));
  CHECK_STR(list(node(t, 1).cpus), std::string("2-3"));
  CHECK(!node(t, 1).hasMemory);  // no has_memory file: MemTotal 0
  CHECK_EQ(node(t, 1).memoryBytes, 0u);
  CHECK(node(t, 0).hasMemory);
  CHECK_STR(list(node(t, 2).cpus), std::string("4"));  // cpulist says 4-5, 5 is offline
  CHECK_EQ(cpu(t, 5).node, 2);
  CHECK(!cpu(t, 5).online);
  CHECK_EQ(cpu(t, 5).core, -1);
  CHECK(node(t, 0).distances == (std::vector<int>{10, 21, 29}));
  for (int i = 0; i < 5; ++i) {
    CHECK_EQ(cpu(t, i).package, i);
    CHECK_EQ(cpu(t, i).core, 0);
    CHECK_EQ(cpu(t, i).l3, i);  // per-CPU L3 from shared_cpu_map
    CHECK_STR(list(cpu(t, i).siblings), list({i}));
  }
  // online 0-4 ∩ Cpus_allowed mask 2-5 ∩ /dev/cpuset/batch/job42/cpus 2-5 (legacy cpuset fs
  // from proc/mounts, cpuset name from proc/self/cpuset).
  CHECK_STR(list(t.allowedCpus), std::string("2-4"));
}

TEST_CASE("parallelism on sysfs fixtures") {
  auto p = hwsq::readParallelism(fixture("intel-2s-ht"), 16);
  CHECK_EQ(p.value, 16);
  CHECK_STR(p.source, std::string("cpuset"));
  CHECK_EQ(p.quota, -1);
  CHECK_EQ(p.period, -1);
  CHECK_STR(p.cgroupPath, std::string(""));
  // slurm job: cpu,cpuacct quota 600000/100000 on the job, -1 on the step.
  p = hwsq::readParallelism(fixture("amd-epyc-nps2"), 8);
  CHECK_EQ(p.value, 6);
  CHECK_STR(p.source, std::string("cgroup1"));
  CHECK_EQ(p.quota, 600000);
  CHECK_STR(p.cgroupPath, std::string("/sys/fs/cgroup/cpu,cpuacct/slurm/uid_1000/job_7"));
  p = hwsq::readParallelism(fixture("power-sparse"), 11);
  CHECK_EQ(p.value, 11);
  CHECK_STR(p.source, std::string("cpuset"));
}

// ---------------------------------------------------------------- garbage

TEST_CASE("garbled fixture: no crash, unknowns stay unknown") {
  const Topology t = hwsq::readTopology(fixture("garbled"));
  CHECK_STR(list(nodeIds(t)), std::string("0-1"));
  CHECK_EQ(t.cpus.size(), 4u);  // present is garbage, possible says 0-3
  // cpu/online is garbage: per-CPU files decide ("yes"/"0x1" are unknown -> online).
  CHECK_STR(list(onlineCpus(t)), std::string("0-3"));
  for (const auto& n : t.nodes) {
    CHECK(n.cpus.empty());  // both cpulists are unparsable and there are no links
    CHECK_EQ(n.distances.size(), 2u);
    CHECK_EQ(n.memoryBytes, 0u);
  }
  CHECK(node(t, 0).distances == (std::vector<int>{10, 20}));
  CHECK_EQ(cpu(t, 0).core, -1);
  CHECK_EQ(cpu(t, 0).package, -1);
  CHECK_EQ(cpu(t, 0).die, -1);
  CHECK(cpu(t, 0).siblings.empty());
  CHECK_EQ(cpu(t, 0).l3, -1);
  CHECK_EQ(cpu(t, 1).core, 7);
  CHECK_EQ(cpu(t, 1).l3, 0);
  CHECK_STR(list(t.allowedCpus), std::string("0-3"));
  const auto p = hwsq::readParallelism(fixture("garbled"), 4);
  CHECK_EQ(p.value, 4);
  CHECK_STR(p.source, std::string("cpuset"));
}

TEST_CASE("missing root and empty dump") {
  const Topology t = hwsq::readTopology("/nonexistent/hwsq/root");
  checkInvariants(t);
  CHECK(t.synthetic);
  CHECK_EQ(t.cpus.size(), 1u);
  TempDir d;
  d.write("sys/devices/system/node/online", "\n");
  const Topology t2 = hwsq::readTopology(d.path);
  checkInvariants(t2);
  CHECK(t2.synthetic);
}

TEST_CASE("dump without sysfs: CPUs from proc/cpuinfo") {
  TempDir d;
  d.write("proc/cpuinfo",
          "processor\t: 0\nvendor_id\t: GenuineIntel\n\nprocessor\t: 1\n\nprocessor\t: 2\n\n"
          "processor\t: 3\nmodel name\t: processor 99\n");
  d.write("proc/meminfo", "MemTotal:       2048 kB\nMemFree:        1024 kB\n");
  const Topology t = hwsq::readTopology(d.path);
  checkInvariants(t);
  CHECK(t.synthetic);
  CHECK_STR(list(t.nodes[0].cpus), "0-3");
  CHECK_EQ(t.nodes[0].memoryBytes, 2048 * kB);
  TempDir s390;
  s390.write("proc/cpuinfo", "vendor_id       : IBM/S390\n# processors    : 2\n"
                             "processor 0: version = FF,  identification = 0117C9,  machine = 2064\n"
                             "processor 1: version = FF,  identification = 0117C9,  machine = 2064\n");
  CHECK_STR(list(hwsq::readTopology(s390.path).allowedCpus), "0-1");
}

TEST_CASE("affinity and cpuset that exclude every online CPU fall back to online") {
  TempDir d;
  d.write("sys/devices/system/cpu/present", "0-3\n");
  d.write("sys/devices/system/cpu/online", "0-3\n");
  d.write("sys/devices/system/node/online", "0\n");
  d.write("sys/devices/system/node/node0/cpulist", "0-3\n");
  d.write("proc/self/status", "Cpus_allowed_list:\t8-9\n");
  const Topology t = hwsq::readTopology(d.path);
  checkInvariants(t);
  CHECK_STR(list(t.allowedCpus), std::string("0-3"));
}

TEST_CASE("v1 cpuset mounted noprefix, found through mountinfo") {
  TempDir d;
  d.write("sys/devices/system/cpu/online", "0-3\n");
  d.write("proc/self/cgroup", "2:cpuset:/jobs/a\n1:name=systemd:/\n");
  d.write("proc/self/mountinfo",
          "40 28 0:40 / /dev/cpuset rw,relatime shared:20 - cgroup none rw,cpuset,noprefix\n");
  d.write("dev/cpuset/cpus", "0-3\n");
  d.write("dev/cpuset/jobs/cpus", "1-3\n");
  d.write("dev/cpuset/jobs/a/cpus", "\n");  // empty: not configured here, inherit the parent's
  const Topology t = hwsq::readTopology(d.path);
  checkInvariants(t);
  CHECK(t.synthetic);
  CHECK_STR(list(t.allowedCpus), "1-3");
}

TEST_CASE("v2 cpuset from proc/self/cpuset when proc/self/cgroup is missing") {
  TempDir d;
  d.write("sys/devices/system/cpu/online", "0-7\n");
  d.write("proc/self/cpuset", "/slice/job\n");
  d.write("sys/fs/cgroup/cpuset.cpus.effective", "0-7\n");
  d.write("sys/fs/cgroup/slice/job/cpuset.cpus.effective", "6-7\n");
  const Topology t = hwsq::readTopology(d.path);
  checkInvariants(t);
  CHECK_STR(list(t.allowedCpus), "6-7");
}

TEST_CASE("distance rows indexed by the possible list or by dense ids") {
  TempDir d;
  d.write("sys/devices/system/cpu/online", "0-1\n");
  d.write("sys/devices/system/node/online", "0,2\n");
  d.write("sys/devices/system/node/possible", "0-2\n");
  d.write("sys/devices/system/node/node0/cpulist", "0\n");
  d.write("sys/devices/system/node/node2/cpulist", "1\n");
  d.write("sys/devices/system/node/node0/distance", "10 15 30\n");  // over possible 0-2
  d.write("sys/devices/system/node/node2/distance", "30 15 10\n");
  const Topology t = hwsq::readTopology(d.path);
  checkInvariants(t);
  CHECK(node(t, 0).distances == (std::vector<int>{10, 30}));
  CHECK(node(t, 2).distances == (std::vector<int>{30, 10}));
  CHECK_EQ(cpu(t, 1).node, 2);
}

TEST_CASE("node list from nodeN directories when node/online is missing") {
  TempDir d;
  d.write("sys/devices/system/cpu/online", "0-3\n");
  d.write("sys/devices/system/node/node0/cpulist", "0-1\n");
  d.write("sys/devices/system/node/node4/cpulist", "2-3\n");
  d.write("sys/devices/system/node/node4/distance", "20 10\n");
  d.write("sys/devices/system/node/node4/meminfo", "Node 4 MemTotal:       1024 kB\nNode 4 MemFree:  512 kB\n");
  const Topology t = hwsq::readTopology(d.path);
  checkInvariants(t);
  CHECK_STR(list(nodeIds(t)), std::string("0,4"));
  CHECK_STR(list(node(t, 4).cpus), std::string("2-3"));
  CHECK(node(t, 4).distances == (std::vector<int>{20, 10}));
  CHECK(node(t, 0).distances == (std::vector<int>{10, 20}));  // row missing: kernel defaults
  CHECK_EQ(node(t, 4).memoryBytes, 1024 * kB);
  CHECK_EQ(node(t, 4).freeBytes, 512 * kB);
  CHECK(node(t, 0).hasMemory);  // unknown: assumed
}

TEST_CASE("a 7-byte node/online of 0-20000: node ids past MAX_NUMNODES make the list unknown") {
  TempDir d;
  d.write("sys/devices/system/cpu/online", "0-1\n");
  d.write("sys/devices/system/node/online", "0-20000");
  d.write("sys/devices/system/node/node0/cpulist", "0-1\n");
  auto& work = hwsq::detail::parseWork();
  const uint64_t files = work.files;
  const Topology t = hwsq::readTopology(d.path);
  checkInvariants(t);
  CHECK_STR(list(nodeIds(t)), std::string("0"));  // from the nodeN directories instead
  CHECK_STR(list(node(t, 0).cpus), std::string("0-1"));
  CHECK(work.files - files < 200);  // not one lookup per listed node
  // At the bound: 1024 nodes are read, each costs a few lookups.
  d.write("sys/devices/system/node/online", "0-1023");
  const uint64_t files2 = work.files;
  const Topology t2 = hwsq::readTopology(d.path);
  checkInvariants(t2);
  CHECK_EQ(t2.nodes.size(), 1024u);
  CHECK(work.files - files2 < 1024u * 10u);
}

TEST_CASE("oversized sysfs text is unknown, never expensive") {
  TempDir d;
  d.write("sys/devices/system/cpu/online", "0-3\n");
  d.write("sys/devices/system/cpu/present", "0-3\n");
  d.write("sys/devices/system/node/node0/cpulist", "0-3\n");
  std::string huge = "0";
  while (huge.size() <= hwsq::detail::kAttrFileBytes) huge += ",0";
  d.write("sys/devices/system/node/online", huge);  // past the attribute read limit
  // Every CPU claims every CPU as its SMT sibling: more than any core has.
  for (int c = 0; c < 4; ++c)
    d.write("sys/devices/system/cpu/cpu" + std::to_string(c) + "/topology/thread_siblings_list", "0-8191\n");
  d.write("sys/devices/system/cpu/cpu0/topology/core_id", "0\n");
  // A distance row longer than there can be nodes.
  std::string row;
  for (int i = 0; i < 2000; ++i) row += "10 ";
  d.write("sys/devices/system/node/node0/distance", row + "\n");
  const Topology t = hwsq::readTopology(d.path);
  checkInvariants(t);
  CHECK_STR(list(nodeIds(t)), std::string("0"));  // online unreadable: the node directories
  for (const auto& c : t.cpus) CHECK(c.siblings.empty());
  CHECK(node(t, 0).distances == std::vector<int>{10});
  // A node cpulist listing every CPU in every node: each CPU is kept once (the lowest node).
  TempDir e;
  e.write("sys/devices/system/cpu/online", "0-7\n");
  e.write("sys/devices/system/node/online", "0-1\n");
  e.write("sys/devices/system/node/node0/cpulist", "0-8191\n");
  e.write("sys/devices/system/node/node1/cpulist", "0-8191\n");
  const Topology u = hwsq::readTopology(e.path);
  checkInvariants(u);
  CHECK_STR(list(node(u, 0).cpus), std::string("0-7"));
  CHECK(node(u, 1).cpus.empty());
}

// Every fixture with each file replaced by random bytes or near-valid text: never crash, and
// the invariants hold. Runs under ASan/UBSan in CI.
TEST_CASE("fuzzed copies of every fixture") {
  std::mt19937 rng(12345);
  const char* pieces[] = {"0", "1", "-", ",", "\n", " ", "9", "max", "kB", ":", "Node", "-1",
                          "4294967295", "0-3", "\xff", "\t", "/", "::", "cgroup2", "a"};
  auto randomText = [&]() {
    std::string s;
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      if (rng() % 4 == 0) s += static_cast<char>(rng() % 256);
      else s += pieces[rng() % (sizeof pieces / sizeof pieces[0])];
    }
    return s;
  };
  for (const auto& entry : fs::directory_iterator(std::string(HWSQ_FIXTURES) + "/sysfs")) {
    for (int round = 0; round < 3; ++round) {
      TempDir d;
      fs::copy(entry.path(), d.path, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
      for (auto it = fs::recursive_directory_iterator(d.path); it != fs::recursive_directory_iterator(); ++it) {
        if (!it->is_regular_file() || it->is_symlink()) continue;
        if (rng() % 3 == 0) continue;  // keep some files intact so deeper paths run
        std::ofstream(it->path(), std::ios::binary | std::ios::trunc) << randomText();
      }
      const Topology t = hwsq::readTopology(d.path);
      checkInvariants(t);
      const auto p = hwsq::readParallelism(d.path, static_cast<int>(t.allowedCpus.size()));
      CHECK(p.value >= 1);
      CHECK(p.value <= static_cast<int>(t.allowedCpus.size()));
    }
  }
}

// ---------------------------------------------------------------- live system

TEST_CASE("live system") {
  for (const char* root : {"", "/"}) {
    const Topology t = hwsq::readTopology(root);
    checkInvariants(t);
    CHECK(t.nodes.size() >= 1);
    // Every online CPU in exactly one node.
    std::vector<int> inNodes;
    for (const auto& n : t.nodes) inNodes.insert(inNodes.end(), n.cpus.begin(), n.cpus.end());
    std::sort(inNodes.begin(), inNodes.end());
    CHECK_STR(list(inNodes), list(onlineCpus(t)));
    CHECK_EQ(inNodes.size(), onlineCpus(t).size());
#ifdef __linux__
    // allowedCpus never exceeds what the scheduler lets this thread use.
    const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK(static_cast<long>(t.allowedCpus.size()) <= std::max(1L, ncpu));
#endif
    const auto p = hwsq::readParallelism(root, static_cast<int>(t.allowedCpus.size()));
    CHECK(p.value >= 1);
    CHECK(p.value <= static_cast<int>(t.allowedCpus.size()));
    std::printf("  live (%s): %zu nodes, cpus %s, allowed %s, parallelism %d (%s %lld/%lld %s)\n",
                root, t.nodes.size(), list(onlineCpus(t)).c_str(), list(t.allowedCpus).c_str(), p.value,
                p.source.c_str(), static_cast<long long>(p.quota), static_cast<long long>(p.period),
                p.cgroupPath.c_str());
  }
}

TEST_MAIN()
