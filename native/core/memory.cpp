// Node-local memory with raw syscalls: mmap + mbind + first touch, move_pages for queries and
// migration. Masks and node validation come from affinity.cpp (hwsq::detail).
#include "memory.h"

#include "errors.h"

#ifdef __linux__

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace hwsq {
namespace {

// linux/mempolicy.h values (stable kernel ABI); <numaif.h> is not a dependency.
constexpr int kMpolPreferred = 1;
constexpr int kMpolLocal = 4;
// mbind / move_pages flags.
constexpr unsigned kMpolMfStrict = 1u << 0;   // mbind: fail (EIO) if existing pages violate the policy
constexpr unsigned kMpolMfMove = 1u << 1;     // move pages mapped only by this process
[[maybe_unused]] constexpr unsigned kMpolMfMoveAll = 1u << 2;  // also shared pages; needs CAP_SYS_NICE

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14+
#endif

// Pages per move_pages call: bounds the temporary pointer/node arrays for large ranges (the
// kernel chunks internally too; old kernels refused very large counts).
constexpr size_t kChunkPages = 1024;

[[noreturn]] void throwErrno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

[[noreturn]] void badSize(const std::string& what) { throw HwsqRangeError("ERR_HWSQ_BAD_SIZE", what); }

size_t physicalBytes() {
  long pages = sysconf(_SC_PHYS_PAGES);
  if (pages <= 0) return SIZE_MAX;  // unknown: no cap
  size_t p = size_t(pages);
  return p > SIZE_MAX / pageSize() ? SIZE_MAX : p * pageSize();
}

// Page-aligned [start, start + count pages) covering [addr, addr + bytes). Ranges of more pages
// than physical memory holds are refused: results are one int per page and an absurd range
// would only exhaust memory building them.
struct PageRange {
  uintptr_t start = 0;
  size_t count = 0;
};

PageRange pageRange(const void* addr, size_t bytes) {
  const size_t page = pageSize();
  const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  if (bytes == 0) return {a & ~uintptr_t(page - 1), 0};
  if (bytes > UINTPTR_MAX - a || a + bytes > UINTPTR_MAX - (page - 1)) badSize("address range overflows");
  const uintptr_t start = a & ~uintptr_t(page - 1);
  const uintptr_t end = (a + bytes + page - 1) & ~uintptr_t(page - 1);
  const size_t count = (end - start) / page;
  if (count > physicalBytes() / page) badSize("range of " + std::to_string(bytes) + " bytes exceeds physical memory");
  return {start, count};
}

long sysMbind(void* addr, unsigned long len, int mode, const unsigned long* mask, unsigned long maxnode,
              unsigned flags) {
  return syscall(SYS_mbind, addr, len, mode, mask, maxnode, flags);
}

// pid 0 = this process. nodes == nullptr: query only, status gets each page's node or -errno.
long sysMovePages(unsigned long count, void** pages, const int* nodes, int* status, int flags) {
  return syscall(SYS_move_pages, 0, count, pages, nodes, status, flags);
}

// Unmaps unless released: every failure after mmap must leave nothing mapped.
struct MappingGuard {
  void* addr;
  size_t len;
  bool armed = true;
  ~MappingGuard() {
    if (armed) munmap(addr, len);
  }
};

// Faults every page in for writing, so it is allocated now under the VMA policy. A write is
// needed: a read fault maps the shared zero page, which has no node (move_pages reports -EFAULT)
// and is replaced on the first write wherever the writer then runs.
void populate(void* addr, size_t len) {
  // One call instead of a fault per page, and a failure (OOM under a strict bind, SIGBUS) is an
  // errno here instead of a signal. Kernels before 5.14 answer EINVAL (ENOSYS without
  // CONFIG_ADVISE_SYSCALLS): then we write one byte per page, which is always correct.
  if (madvise(addr, len, MADV_POPULATE_WRITE) == 0) return;
  const int err = errno;
  bool fatal = err == ENOMEM || err == EFAULT;
#ifdef EHWPOISON
  fatal = fatal || err == EHWPOISON;
#endif
  if (fatal) throwErrno(err, "madvise(MADV_POPULATE_WRITE)");
  volatile unsigned char* bytes = static_cast<volatile unsigned char*>(addr);
  const size_t page = pageSize();
  for (size_t off = 0; off < len; off += page) bytes[off] = 0;  // zero keeps mmap's contents
}

// Page residency without NUMA syscalls: resident pages are on node 0 (the only one).
void mincoreQuery(const PageRange& r, std::vector<int>& out) {
  const size_t page = pageSize();
  std::vector<unsigned char> vec(std::min(r.count, kChunkPages));
  for (size_t i = 0; i < r.count; i += kChunkPages) {
    const size_t n = std::min(kChunkPages, r.count - i);
    void* base = reinterpret_cast<void*>(r.start + i * page);
    if (mincore(base, n * page, vec.data()) == 0) {
      for (size_t j = 0; j < n; ++j) out[i + j] = (vec[j] & 1) ? 0 : -ENOENT;
      continue;
    }
    if (errno != ENOMEM) throwErrno(errno, "mincore");
    // ENOMEM: part of the chunk is unmapped; go page by page to tell which (-EFAULT like move_pages).
    for (size_t j = 0; j < n; ++j) {
      unsigned char v = 0;
      if (mincore(reinterpret_cast<void*>(r.start + (i + j) * page), page, &v) == 0)
        out[i + j] = (v & 1) ? 0 : -ENOENT;
      else if (errno == ENOMEM)
        out[i + j] = -EFAULT;
      else
        throwErrno(errno, "mincore");
    }
  }
}

// move_pages over the range in chunks. targetNode < 0: query; else migrate every page there.
void movePagesChunked(const PageRange& r, int targetNode, std::vector<int>& status) {
  const size_t page = pageSize();
  const size_t chunk = std::min(r.count, kChunkPages);
  std::vector<void*> pages(chunk);
  std::vector<int> nodes(targetNode >= 0 ? chunk : 0, targetNode);
  for (size_t i = 0; i < r.count; i += kChunkPages) {
    const size_t n = std::min(kChunkPages, r.count - i);
    for (size_t j = 0; j < n; ++j) pages[j] = reinterpret_cast<void*>(r.start + (i + j) * page);
    // A positive result (pages not migrated, 4.17+) is not an error: per-page status says why.
    if (sysMovePages(n, pages.data(), targetNode >= 0 ? nodes.data() : nullptr, status.data() + i,
                     targetNode >= 0 ? int(kMpolMfMove) : 0) >= 0)
      continue;
    const int err = errno;
    if (err == ENOSYS) throw UnsupportedError("move_pages is not available (kernel without CONFIG_MIGRATION)");
    if (err == ENODEV)  // node offline or without memory
      throw HwsqRangeError("ERR_HWSQ_UNKNOWN_NODE", "NUMA node " + std::to_string(targetNode) + " has no memory");
    if (err == EACCES)
      throw HwsqRangeError("ERR_HWSQ_NODE_NOT_ALLOWED",
                           "NUMA node " + std::to_string(targetNode) + " is not allowed by the cpuset");
    throwErrno(err, "move_pages");
  }
}

}  // namespace

size_t pageSize() {
  static const size_t size = [] {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? size_t(p) : size_t(4096);
  }();
  return size;
}

void* allocOnNodes(size_t bytes, MemPolicy policy, const std::vector<int>& nodes) {
  // Every caller error is raised before mmap, so those paths have nothing to undo.
  if (bytes == 0) badSize("cannot allocate 0 bytes");
  const size_t page = pageSize();
  if (bytes > SIZE_MAX - (page - 1)) badSize("size " + std::to_string(bytes) + " overflows");
  const size_t len = (bytes + page - 1) & ~(page - 1);
  // Touching more than RAM would summon the OOM killer rather than fail cleanly.
  if (len > physicalBytes())
    badSize("size " + std::to_string(bytes) + " exceeds physical memory (" + std::to_string(physicalBytes()) + " bytes)");
  std::vector<unsigned long> mask;
  const int mode = detail::policyToMode(policy, nodes, mask);
  const bool numa = numaSyscallsAvailable();
  if (!numa && std::any_of(nodes.begin(), nodes.end(), [](int n) { return n != 0; }) &&
      policy != MemPolicy::Default && policy != MemPolicy::Local)
    throw UnsupportedError("NUMA syscalls are not available: only node 0 can be used");

  void* addr = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (addr == MAP_FAILED) throwErrno(errno, "mmap");  // ENOMEM stays ENOMEM for the JS layer
  MappingGuard guard{addr, len};

  // MPOL_DEFAULT on a VMA means "follow the thread policy", which a fresh mapping already does.
  if (numa && policy != MemPolicy::Default) {
    // STRICT|MOVE only matter for pages already present (none yet); they make a bind strict if
    // this ever maps over existing memory.
    const unsigned flags = policy == MemPolicy::Bind ? (kMpolMfStrict | kMpolMfMove) : 0;
    long r = mask.empty() ? sysMbind(addr, len, mode, nullptr, 0, flags)
                          : sysMbind(addr, len, mode, mask.data(), detail::nodeMaskMaxnode(), flags);
    if (r != 0 && errno == EINVAL && mode == kMpolLocal)
      r = sysMbind(addr, len, kMpolPreferred, nullptr, 0, 0);  // before 3.8: preferred, no node = local
    if (r != 0) {
      const int err = errno;
      // Nodes were validated, so EINVAL means none is in the cpuset's mems (or has memory).
      if (err == EINVAL && !mask.empty())
        throw HwsqRangeError("ERR_HWSQ_NODE_NOT_ALLOWED", "none of the requested NUMA nodes is allowed by the cpuset or has memory");
      throwErrno(err, "mbind");
    }
  }
  // A transparent huge page lands on one node, so under interleave a 2 MiB-aligned stretch would
  // sit on a single node; callers asking for interleave want the page-by-page spread (bandwidth).
  if (policy == MemPolicy::Interleave) (void)madvise(addr, len, MADV_NOHUGEPAGE);
  populate(addr, len);
  guard.armed = false;
  return addr;
}

void freeNodeMemory(void* addr, size_t bytes) {
  if (addr == nullptr) return;
  const size_t page = pageSize();
  const size_t len = bytes > SIZE_MAX - (page - 1) ? bytes : (bytes + page - 1) & ~(page - 1);
  if (munmap(addr, len) != 0) throwErrno(errno, "munmap");
}

std::vector<int> queryPageNodes(const void* addr, size_t bytes) {
  const PageRange r = pageRange(addr, bytes);
  std::vector<int> status(r.count);
  if (r.count == 0) return status;
  if (numaSyscallsAvailable())
    movePagesChunked(r, -1, status);
  else
    mincoreQuery(r, status);
  return status;
}

std::vector<int> samplePageNodes(const void* addr, size_t bytes, size_t maxPages) {
  const PageRange r = pageRange(addr, bytes);
  const size_t n = std::min(r.count, maxPages);
  std::vector<int> status(n);
  if (n == 0) return status;
  const size_t page = pageSize();
  // Sample k sits in the middle of the k-th of n equal stretches: spread over the whole range,
  // first and last stretch included.
  std::vector<void*> pages(n);
  for (size_t k = 0; k < n; ++k) pages[k] = reinterpret_cast<void*>(r.start + ((2 * k + 1) * r.count / (2 * n)) * page);
  if (numaSyscallsAvailable()) {
    if (sysMovePages(n, pages.data(), nullptr, status.data(), 0) >= 0) return status;
    const int err = errno;
    if (err == ENOSYS) throw UnsupportedError("move_pages is not available (kernel without CONFIG_MIGRATION)");
    throwErrno(err, "move_pages");
  }
  for (size_t k = 0; k < n; ++k) {
    unsigned char v = 0;
    if (mincore(pages[k], page, &v) == 0)
      status[k] = (v & 1) ? 0 : -ENOENT;
    else if (errno == ENOMEM)
      status[k] = -EFAULT;
    else
      throwErrno(errno, "mincore");
  }
  return status;
}

size_t migratePages(void* addr, size_t bytes, int node) {
  (void)detail::nodeMask({node});  // ERR_HWSQ_UNKNOWN_NODE for ids out of range or offline
  const PageRange r = pageRange(addr, bytes);
  if (!numaSyscallsAvailable() && node != 0)
    throw UnsupportedError("NUMA syscalls are not available: only node 0 can be used");
  if (r.count == 0) return 0;
  std::vector<int> status(r.count);
  if (numaSyscallsAvailable()) movePagesChunked(r, node, status);
  // Count from a fresh query: some kernels report the target node in the status of a page whose
  // migration failed, and pages not present (-ENOENT) are on no node.
  status = queryPageNodes(reinterpret_cast<void*>(r.start), r.count * pageSize());
  return size_t(std::count(status.begin(), status.end(), node));
}

}  // namespace hwsq

#else  // !__linux__

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif
#include <string>

namespace hwsq {

size_t pageSize() {
#if defined(__unix__) || defined(__APPLE__)
  long p = sysconf(_SC_PAGESIZE);
  return p > 0 ? size_t(p) : size_t(4096);
#else
  throwLinuxOnly("pageSize");
#endif
}
void* allocOnNodes(size_t, MemPolicy, const std::vector<int>&) { throwLinuxOnly("allocOnNodes"); }
void freeNodeMemory(void*, size_t) { throwLinuxOnly("freeNodeMemory"); }
std::vector<int> queryPageNodes(const void*, size_t) { throwLinuxOnly("queryPageNodes"); }
std::vector<int> samplePageNodes(const void*, size_t, size_t) { throwLinuxOnly("samplePageNodes"); }
size_t migratePages(void*, size_t, int) { throwLinuxOnly("migratePages"); }

}  // namespace hwsq

#endif  // __linux__
