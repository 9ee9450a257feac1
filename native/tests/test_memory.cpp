// Node-local allocation, page queries and migration. Runs on any Linux box; the multi-node case
// only does something where several nodes with memory are online: the QEMU guests of
// test/multinode.vm.test.ts run this binary with HWSQ_EXPECT_NODES set, which makes a missing
// node a failure there.
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "check.h"
#include "support.h"

using hwsq_test::parseIds;
using hwsq_test::rangeCode;
using hwsq_test::readText;
#include "affinity.h"
#include "errors.h"
#include "memory.h"

using hwsq::MemPolicy;

namespace {



constexpr size_t kMiB = size_t(1) << 20;

size_t countEq(const std::vector<int>& v, int x) { return size_t(std::count(v.begin(), v.end(), x)); }



// Online nodes that have memory (N_MEMORY), per sysfs; {0} without sysfs.
std::vector<int> memoryNodes() {
  std::string text = readText("/sys/devices/system/node/has_memory");
  return text.empty() ? std::vector<int>{0} : parseIds(text);
}

// The node of a CPU per sysfs (0 without sysfs).
int nodeOfCpu(int cpu) {
  for (int n : parseIds(readText("/sys/devices/system/node/online"))) {
    auto cpus = parseIds(readText("/sys/devices/system/node/node" + std::to_string(n) + "/cpulist"));
    if (std::find(cpus.begin(), cpus.end(), cpu) != cpus.end()) return n;
  }
  return 0;
}

// Pins the calling thread to the CPU it is on for the scope, so that "local" is one node (on a
// multi-node machine the thread need not be on node 0); `node` is that CPU's node.
struct PinnedHere {
  std::vector<int> saved = hwsq::getThreadAffinity();
  int cpu = hwsq::currentLocation().cpu;
  int node = nodeOfCpu(cpu);
  PinnedHere() { hwsq::setThreadAffinity({cpu}); }
  ~PinnedHere() { hwsq::setThreadAffinity(saved); }
};

size_t mappingCount() {
  std::ifstream maps("/proc/self/maps");
  size_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}

bool allZero(const void* p, size_t len) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < len; ++i)
    if (b[i]) return false;
  return true;
}

// Allocates with policy, checks every page is present on one of `expected`, frees.
void checkPlacement(MemPolicy policy, const std::vector<int>& nodes, const std::vector<int>& expected,
                    size_t bytes) {
  void* p = hwsq::allocOnNodes(bytes, policy, nodes);
  CHECK(p != nullptr);
  CHECK_EQ(reinterpret_cast<uintptr_t>(p) % hwsq::pageSize(), uintptr_t(0));
  auto st = hwsq::queryPageNodes(p, bytes);
  CHECK_EQ(st.size(), (bytes + hwsq::pageSize() - 1) / hwsq::pageSize());
  size_t ok = 0;
  for (int n : expected) ok += countEq(st, n);
  if (ok != st.size())
    std::fprintf(stderr, "  policy %d: %zu of %zu pages on the expected nodes (first status %d)\n", int(policy),
                 ok, st.size(), st.empty() ? 0 : st[0]);
  CHECK_EQ(ok, st.size());
  CHECK(allZero(p, bytes));
  std::memset(p, 0xab, bytes);  // writable over the whole rounded length
  hwsq::freeNodeMemory(p, bytes);
}

}  // namespace

TEST_CASE("pageSize is a power of two") {
  size_t p = hwsq::pageSize();
  CHECK(p >= 4096);
  CHECK_EQ(p & (p - 1), size_t(0));
  CHECK_EQ(p, size_t(sysconf(_SC_PAGESIZE)));
}

TEST_CASE("allocOnNodes bind node 0, 10 MiB: every page on node 0") {
  checkPlacement(MemPolicy::Bind, {0}, {0}, 10 * kMiB);
}

TEST_CASE("allocOnNodes preferred, interleave on node 0; local, default on the thread's node") {
  checkPlacement(MemPolicy::Preferred, {0}, {0}, 4 * kMiB);
  checkPlacement(MemPolicy::Interleave, {0}, {0}, 4 * kMiB);
  PinnedHere here;
  checkPlacement(MemPolicy::Local, {}, {here.node}, 4 * kMiB);
  checkPlacement(MemPolicy::Default, {}, {here.node}, 4 * kMiB);
  checkPlacement(MemPolicy::Default, {99999}, {here.node}, kMiB);  // nodes ignored
}

// The mapping's own policy, from the kernel (get_mempolicy with MPOL_F_ADDR): placement alone
// cannot tell bind from preferred while the node has free memory, the mode can. The mode's
// high bits are flags (MPOL_F_STATIC_NODES, ...), not the mode.
int mappingMode(void* addr, std::vector<int>* nodes) {
  constexpr unsigned long kMpolFAddr = 1ul << 1;
  constexpr unsigned long kBits = 1024;  // kMaxNodes
  unsigned long mask[kBits / (8 * sizeof(unsigned long))] = {};
  int mode = -1;
  if (syscall(SYS_get_mempolicy, &mode, mask, kBits, addr, kMpolFAddr) != 0) return -errno;
  nodes->clear();
  for (unsigned long b = 0; b < kBits; ++b)
    if (mask[b / (8 * sizeof(unsigned long))] >> (b % (8 * sizeof(unsigned long))) & 1) nodes->push_back(int(b));
  return mode & 0xff;
}

TEST_CASE("allocOnNodes: the mapping's policy is the one asked for (bind, preferred, interleave)") {
  if (!hwsq::numaSyscallsAvailable()) {
    std::printf("  (skipped: no NUMA syscalls)\n");
    return;
  }
  // linux/mempolicy.h
  constexpr int kPreferred = 1, kBind = 2, kInterleave = 3;
  const size_t bytes = 2 * hwsq::pageSize();
  const std::vector<int> top{memoryNodes().back()};
  struct Want { MemPolicy policy; int mode; std::vector<int> nodes; };
  for (const Want& w : {Want{MemPolicy::Bind, kBind, top}, Want{MemPolicy::Preferred, kPreferred, top},
                        Want{MemPolicy::Interleave, kInterleave, top}}) {
    void* p = hwsq::allocOnNodes(bytes, w.policy, w.nodes);
    std::vector<int> nodes;
    const int mode = mappingMode(p, &nodes);
    if (mode != w.mode) std::fprintf(stderr, "  policy %d: mapping mode %d, expected %d\n", int(w.policy), mode, w.mode);
    CHECK_EQ(mode, w.mode);
    CHECK(nodes == w.nodes);
    hwsq::freeNodeMemory(p, bytes);
  }
}

TEST_CASE("allocOnNodes rounds up to whole pages") {
  size_t page = hwsq::pageSize();
  checkPlacement(MemPolicy::Bind, {0}, {0}, 10);
  checkPlacement(MemPolicy::Bind, {0}, {0}, page + 1);
  void* p = hwsq::allocOnNodes(page + 1, MemPolicy::Bind, {0});
  CHECK_EQ(hwsq::queryPageNodes(p, 2 * page).size(), size_t(2));
  CHECK_EQ(countEq(hwsq::queryPageNodes(p, 2 * page), 0), size_t(2));
  hwsq::freeNodeMemory(p, page + 1);
}

TEST_CASE("allocOnNodes size and node errors map nothing") {
  size_t before = 0;
  // Round 0 warms up the allocator (sanitizer runtimes map memory for the first exceptions).
  for (int round = 0; round < 2; ++round) {
    if (round == 1) before = mappingCount();
    CHECK_CODE(hwsq::allocOnNodes(0, MemPolicy::Bind, {0}), "ERR_HWSQ_BAD_SIZE");
    CHECK_CODE(hwsq::allocOnNodes(size_t(1) << 60, MemPolicy::Bind, {0}), "ERR_HWSQ_BAD_SIZE");
    CHECK_CODE(hwsq::allocOnNodes(SIZE_MAX, MemPolicy::Default, {}), "ERR_HWSQ_BAD_SIZE");
    CHECK_CODE(hwsq::allocOnNodes(SIZE_MAX - 100, MemPolicy::Default, {}), "ERR_HWSQ_BAD_SIZE");
    CHECK_CODE(hwsq::allocOnNodes(kMiB, MemPolicy::Bind, {99999}), "ERR_HWSQ_UNKNOWN_NODE");
    CHECK_CODE(hwsq::allocOnNodes(kMiB, MemPolicy::Preferred, {99999}), "ERR_HWSQ_UNKNOWN_NODE");
    CHECK_CODE(hwsq::allocOnNodes(kMiB, MemPolicy::Interleave, {0, -1}), "ERR_HWSQ_UNKNOWN_NODE");
    CHECK_CODE(hwsq::allocOnNodes(kMiB, MemPolicy::Bind, {}), "ERR_HWSQ_BAD_NODES");
    CHECK_CODE(hwsq::allocOnNodes(kMiB, MemPolicy::Preferred, {0, 0}), "ERR_HWSQ_BAD_NODES");
    CHECK_CODE(hwsq::allocOnNodes(kMiB, static_cast<MemPolicy>(42), {0}), "ERR_HWSQ_BAD_POLICY");
  }
  CHECK_EQ(mappingCount(), before);
}

TEST_CASE("allocOnNodes mmap ENOMEM is std::system_error(ENOMEM) (forked child, RLIMIT_AS)") {
  pid_t pid = fork();
  if (pid == 0) {
    // Cap the address space just above what is mapped now (sanitizer shadow included) so the
    // 256 MiB mmap fails while small allocations for the exception still succeed.
    size_t vm = 0;
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("VmSize:", 0) == 0) vm = std::stoull(line.substr(7)) * 1024;
    rlimit lim{vm + 64 * kMiB, vm + 64 * kMiB};
    if (vm == 0 || setrlimit(RLIMIT_AS, &lim) != 0) _exit(3);
    int code = 1;
    try {
      hwsq::allocOnNodes(256 * kMiB, MemPolicy::Bind, {0});
    } catch (const std::system_error& e) {
      code = e.code().value() == ENOMEM ? 0 : 2;
    } catch (...) {
      code = 4;
    }
    _exit(code);
  }
  CHECK(pid > 0);
  int st = 0;
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  CHECK(WIFEXITED(st));
  CHECK_EQ(WEXITSTATUS(st), 0);
}

TEST_CASE("queryPageNodes: untouched, unmapped, unaligned, large") {
  size_t page = hwsq::pageSize();
  PinnedHere here;  // first touch lands on here.node
  // Mapped but never touched: no page yet.
  void* raw = mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(raw != MAP_FAILED);
  auto st = hwsq::queryPageNodes(raw, 4 * page);
  CHECK_EQ(st.size(), size_t(4));
  for (int s : st) CHECK(s < 0);
  static_cast<char*>(raw)[page] = 1;  // fault in the second page only
  st = hwsq::queryPageNodes(raw, 4 * page);
  CHECK(st[0] < 0);
  CHECK_EQ(st[1], here.node);
  // Unaligned start: [raw + page + 100, + page) overlaps pages 1 and 2.
  st = hwsq::queryPageNodes(static_cast<char*>(raw) + page + 100, page);
  CHECK_EQ(st.size(), size_t(2));
  CHECK_EQ(st[0], here.node);
  CHECK(st[1] < 0);
  CHECK(hwsq::queryPageNodes(raw, 0).empty());
  CHECK_EQ(hwsq::queryPageNodes(static_cast<char*>(raw) + 5, 1).size(), size_t(1));
  // Unmapped: -EFAULT per page.
  munmap(raw, 4 * page);
  st = hwsq::queryPageNodes(raw, 2 * page);
  CHECK_EQ(st.size(), size_t(2));
  for (int s : st) {
    CHECK(s < 0);
    if (s != -EFAULT) std::fprintf(stderr, "  unmapped page status %d\n", s);
  }
  // Absurd ranges are refused instead of building a giant result.
  CHECK_CODE(hwsq::queryPageNodes(raw, size_t(1) << 60), "ERR_HWSQ_BAD_SIZE");
  CHECK_CODE(hwsq::queryPageNodes(reinterpret_cast<void*>(UINTPTR_MAX - 10), 100), "ERR_HWSQ_BAD_SIZE");
}

TEST_CASE("samplePageNodes: bounded, spread, same answers as the full query") {
  size_t page = hwsq::pageSize();
  PinnedHere here;
  const size_t pages = 1000;
  void* raw = mmap(nullptr, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(raw != MAP_FAILED);
  // Small pages only: with transparent huge pages (always, in the guests' kernel) writing the
  // second half would fault in a huge page that covers untouched pages of the first half too.
  ::madvise(raw, pages * page, MADV_NOHUGEPAGE);
  auto st = hwsq::samplePageNodes(raw, pages * page, 16);
  CHECK_EQ(st.size(), size_t(16));
  for (int s : st) CHECK(s < 0);  // nothing touched yet
  // Second half written: samples 0..7 (middles of the first eight sixteenths) see no page.
  std::memset(static_cast<char*>(raw) + pages / 2 * page, 1, pages / 2 * page);
  st = hwsq::samplePageNodes(raw, pages * page, 16);
  for (size_t k = 0; k < 8; ++k) CHECK(st[k] < 0);
  for (size_t k = 8; k < 16; ++k) CHECK_EQ(st[k], here.node);
  // Fewer pages than asked for: every page, as queryPageNodes answers.
  auto full = hwsq::queryPageNodes(static_cast<char*>(raw) + (pages - 3) * page + 7, 2 * page);
  CHECK(hwsq::samplePageNodes(static_cast<char*>(raw) + (pages - 3) * page + 7, 2 * page, 16) == full);
  CHECK(hwsq::samplePageNodes(raw, 0, 16).empty());
  CHECK(hwsq::samplePageNodes(raw, pages * page, 0).empty());
  munmap(raw, pages * page);
  CHECK_CODE(hwsq::samplePageNodes(raw, size_t(1) << 60, 16), "ERR_HWSQ_BAD_SIZE");
}

TEST_CASE("freeNodeMemory unmaps") {
  void* p = hwsq::allocOnNodes(3 * kMiB, MemPolicy::Bind, {0});
  size_t pages = 3 * kMiB / hwsq::pageSize();
  CHECK_EQ(countEq(hwsq::queryPageNodes(p, 3 * kMiB), 0), pages);
  hwsq::freeNodeMemory(p, 3 * kMiB);
  auto st = hwsq::queryPageNodes(p, 3 * kMiB);
  CHECK_EQ(countEq(st, -EFAULT), pages);
  hwsq::freeNodeMemory(nullptr, 123);  // no-op
}

TEST_CASE("migratePages to node 0 keeps every page there") {
  size_t bytes = 6 * kMiB, pages = bytes / hwsq::pageSize();
  void* p = hwsq::allocOnNodes(bytes, MemPolicy::Interleave, {0});
  CHECK_EQ(hwsq::migratePages(p, bytes, 0), pages);
  CHECK_EQ(countEq(hwsq::queryPageNodes(p, bytes), 0), pages);
  CHECK_EQ(hwsq::migratePages(p, 0, 0), size_t(0));
  CHECK_EQ(hwsq::migratePages(static_cast<char*>(p) + 1, 1, 0), size_t(1));  // unaligned: one page
  CHECK_CODE(hwsq::migratePages(p, bytes, 99999), "ERR_HWSQ_UNKNOWN_NODE");
  CHECK_CODE(hwsq::migratePages(p, bytes, -1), "ERR_HWSQ_UNKNOWN_NODE");
  CHECK_CODE(hwsq::migratePages(p, bytes, hwsq::maxPossibleNode()), "ERR_HWSQ_UNKNOWN_NODE");
  hwsq::freeNodeMemory(p, bytes);
  // Untouched pages are on no node.
  size_t page = hwsq::pageSize();
  void* raw = mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  static_cast<char*>(raw)[0] = 1;
  CHECK_EQ(hwsq::migratePages(raw, 4 * page, 0), size_t(1));
  munmap(raw, 4 * page);
}

TEST_CASE("concurrent alloc/query/migrate/free from several threads") {
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&bad, t] {
      for (int i = 0; i < 20; ++i) {
        size_t bytes = size_t(64 + 16 * t + i) * 1024;
        void* p = hwsq::allocOnNodes(bytes, i % 2 ? MemPolicy::Bind : MemPolicy::Interleave, {0});
        auto st = hwsq::queryPageNodes(p, bytes);
        if (countEq(st, 0) != st.size()) ++bad;
        if (hwsq::migratePages(p, bytes, 0) != st.size()) ++bad;
        hwsq::freeNodeMemory(p, bytes);
      }
    });
  for (auto& th : threads) th.join();
  CHECK_EQ(bad.load(), 0);
}

TEST_CASE("without NUMA syscalls node 0 still works (mmap + mincore)") {
  hwsq::detail::setNumaDisabledForTesting(true);
  size_t bytes = 2 * kMiB, pages = bytes / hwsq::pageSize();
  for (MemPolicy pol : {MemPolicy::Bind, MemPolicy::Preferred, MemPolicy::Interleave}) {
    void* p = hwsq::allocOnNodes(bytes, pol, {0});
    CHECK_EQ(countEq(hwsq::queryPageNodes(p, bytes), 0), pages);
    CHECK_EQ(hwsq::migratePages(p, bytes, 0), pages);
    hwsq::freeNodeMemory(p, bytes);
    CHECK_EQ(countEq(hwsq::queryPageNodes(p, bytes), -EFAULT), pages);
  }
  void* p = hwsq::allocOnNodes(bytes, MemPolicy::Default, {});
  // Partly unmapped range: per-page answers.
  size_t page = hwsq::pageSize();
  munmap(static_cast<char*>(p) + page, page);
  auto st = hwsq::queryPageNodes(p, 3 * page);
  CHECK(st.size() == 3 && st[0] == 0 && st[1] == -EFAULT && st[2] == 0);
  munmap(p, bytes);
  void* raw = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK_EQ(hwsq::queryPageNodes(raw, page)[0], -ENOENT);
  munmap(raw, page);
  CHECK_CODE(hwsq::allocOnNodes(bytes, MemPolicy::Bind, {99999}), "ERR_HWSQ_UNKNOWN_NODE");
  hwsq::detail::setNumaDisabledForTesting(false);
}

TEST_CASE("multi-node: bind, preferred, interleave and migrate across nodes") {
  auto nodes = memoryNodes();
  const int expected = hwsq_test::expectedNodes();  // the guests give every node memory
  if (expected) CHECK_EQ(static_cast<int>(nodes.size()), expected);
  if (nodes.size() < 2 || !hwsq::numaSyscallsAvailable()) {
    CHECK(expected < 2);  // a multi-node guest must run this case
    std::printf("  (skipped: %zu node(s) with memory)\n", nodes.size());
    return;
  }
  size_t bytes = 4 * kMiB, pages = bytes / hwsq::pageSize();
  for (size_t i = 0; i < nodes.size(); ++i) {
    int n = nodes[i], next = nodes[(i + 1) % nodes.size()];
    checkPlacement(MemPolicy::Bind, {n}, {n}, bytes);
    checkPlacement(MemPolicy::Preferred, {n}, {n}, bytes);
    void* p = hwsq::allocOnNodes(bytes, MemPolicy::Bind, {n});
    CHECK_EQ(countEq(hwsq::queryPageNodes(p, bytes), n), pages);
    // The bind policy of the VMA does not stop move_pages.
    CHECK_EQ(hwsq::migratePages(p, bytes, next), pages);
    CHECK_EQ(countEq(hwsq::queryPageNodes(p, bytes), next), pages);
    hwsq::freeNodeMemory(p, bytes);
    // The thread policy governs plain allocations (mask passed with maxnode + 1).
    hwsq::setThreadMemPolicy(MemPolicy::Bind, {n});
    void* q = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    std::memset(q, 1, bytes);
    CHECK_EQ(countEq(hwsq::queryPageNodes(q, bytes), n), pages);
    munmap(q, bytes);
    hwsq::setThreadMemPolicy(MemPolicy::Default, {});
  }
  // Interleave spreads pages round-robin over all the nodes. With THP the unit is a 2 MiB huge
  // page, so give every node at least one whole huge page whatever the alignment.
  size_t ibytes = 4 * kMiB * nodes.size(), ipages = ibytes / hwsq::pageSize();
  void* p = hwsq::allocOnNodes(ibytes, MemPolicy::Interleave, nodes);
  auto st = hwsq::queryPageNodes(p, ibytes);
  size_t total = 0;
  for (int n : nodes) {
    CHECK(countEq(st, n) > 0);
    total += countEq(st, n);
  }
  CHECK_EQ(total, ipages);
  hwsq::freeNodeMemory(p, ibytes);
  // Bind over the two highest nodes only touches those.
  std::vector<int> top{nodes[nodes.size() - 2], nodes.back()};
  checkPlacement(MemPolicy::Bind, top, top, bytes);
}

TEST_MAIN()
