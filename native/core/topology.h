// Machine topology read from sysfs/procfs (Linux) the way libnuma and hwloc do,
// with a movable filesystem root so dumps of other machines can be parsed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hwsq {

struct CpuInfo {
  int id = -1;
  int node = -1;         // NUMA node holding the CPU, -1 when unknown
  int core = -1;         // sysfs topology/core_id (unique only within a package)
  int package = -1;      // sysfs topology/physical_package_id (socket)
  int die = -1;          // sysfs topology/die_id, -1 when absent
  int l3 = -1;           // last-level-cache group: lowest CPU id sharing the LLC, -1 unknown
  bool online = false;
  std::vector<int> siblings;  // SMT siblings including itself (thread_siblings_list)
};

struct NodeInfo {
  int id = -1;
  std::vector<int> cpus;           // online CPUs of the node (empty for memory-only nodes)
  uint64_t memoryBytes = 0;        // MemTotal of the node
  uint64_t freeBytes = 0;          // MemFree of the node
  std::vector<int> distances;      // SLIT row; distances[i] is the distance to nodes[i]
  bool hasMemory = true;
};

struct Topology {
  std::vector<NodeInfo> nodes;     // online nodes sorted by id; one synthetic node 0 when sysfs has none
  std::vector<CpuInfo> cpus;       // every possible/present CPU sorted by id
  std::vector<int> allowedCpus;    // online ∩ affinity mask ∩ cgroup cpuset, sorted
  bool synthetic = false;          // true when no NUMA info was found (non-NUMA kernel, non-Linux)
  const NodeInfo* findNode(int id) const;
  int nodeIndex(int id) const;     // index into nodes, -1 when absent
};

// Reads the topology below fsroot ("" or "/" means the live system). When fsroot is the live
// system the affinity mask comes from sched_getaffinity; otherwise from proc/self/status.
Topology readTopology(const std::string& fsroot);

// Bounds on ids read from sysfs/procfs text (the live system or a dump). CPU ids stay below the
// largest NR_CPUS any Linux configuration allows (8192: x86-64 with MAXSMP, powerpc; arm64 stops
// at 4096) and node ids below MAX_NUMNODES (1 << NODES_SHIFT, at most 1024). A larger id can only
// come from a garbled or hostile file: the list holding it is unparsable, which readTopology
// treats as unknown, so no input can cost more than these bounds allow.
constexpr int kMaxCpus = 8192;
constexpr int kMaxNodes = 1024;
// More SMT siblings than any core has: the siblings list is garbled (unknown).
constexpr int kMaxSiblings = 256;

// Parses a Linux cpulist ("0-3,8,10-11", the kernel's "a-b:used/group" syntax, empty or "\n"
// allowed) into sorted, unique ids below kMaxCpus. Linear in the text (a group stride costs at
// most kMaxCpus / 2 steps). Throws std::invalid_argument.
std::vector<int> parseCpuList(const std::string& text);
// The same format for node ids (below kMaxNodes): node/online, node/possible, node/has_memory.
std::vector<int> parseNodeList(const std::string& text);
// Parses a hex cpumask ("ff,00000001": 32-bit words, most significant first), as in
// /proc/self/status Cpus_allowed, into sorted ids below kMaxCpus. Linear; throws std::invalid_argument.
std::vector<int> parseCpuMask(const std::string& text);
// "0-3,8": the inverse of parseCpuList (negative ids ignored, duplicates merged).
std::string formatCpuList(const std::vector<int>& cpus);

// Environment override: HWSQ_FSROOT, or "" for the live system.
std::string defaultFsRoot();

// Small filesystem helpers shared by topology.cpp and parallelism.cpp (not part of the API).
namespace detail {
// fsroot without trailing slashes; "" for the live system ("" and "/" both mean live).
std::string normalizeRoot(const std::string& fsroot);
// Read limits: a sysfs/cgroup attribute or a small procfs file (a cpulist of 8192 CPUs is ~20 KB;
// the kernel's own are a page or two), and the big tables (mountinfo on a busy host, cpuinfo).
constexpr size_t kAttrFileBytes = 64u << 10;
constexpr size_t kTableFileBytes = 16u << 20;
// Whole file into out; false when missing, a directory, unreadable or longer than maxBytes
// (never throws).
bool readTextFile(const std::string& path, std::string& out, size_t maxBytes = kAttrFileBytes);
// Entry names of a directory (not followed); empty when missing (never throws).
std::vector<std::string> listDir(const std::string& path);
bool isDirectory(const std::string& path);
std::string trim(const std::string& s);
// Lines of text without their '\n' (a last line without one included).
std::vector<std::string> splitLines(const std::string& text);
// "0, 1, 4": ids for error messages.
std::string joinInts(const std::vector<int>& v);
// What the parsers of this thread did so far: text characters and bitmap words they touched
// (steps) and files and directories they opened (files). Tests bound the cost of hostile input
// with these, not with clocks.
struct ParseWork {
  uint64_t steps = 0;
  uint64_t files = 0;
};
ParseWork& parseWork();
// Strict decimal integer (surrounding whitespace allowed); false on anything else.
bool parseInt64(const std::string& s, long long& out);
}  // namespace detail

}  // namespace hwsq
