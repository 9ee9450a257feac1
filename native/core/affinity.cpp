// Thread placement with raw Linux syscalls: sched_{set,get}affinity with dynamically sized CPU
// sets, getcpu, set_mempolicy/get_mempolicy. No libnuma: the few <numaif.h> constants are below.
#include "affinity.h"

#include "errors.h"
#include "topology.h"

#ifdef __linux__

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

namespace hwsq {
namespace {

// linux/mempolicy.h values (stable kernel ABI).
constexpr int kMpolDefault = 0;
constexpr int kMpolPreferred = 1;
constexpr int kMpolBind = 2;
constexpr int kMpolInterleave = 3;
constexpr int kMpolLocal = 4;               // Linux 3.8+
constexpr int kMpolPreferredMany = 5;       // Linux 5.15+
constexpr int kMpolWeightedInterleave = 6;  // Linux 6.9+
// Mode flags get_mempolicy may OR into the returned mode.
constexpr int kMpolModeFlags = (1 << 15) /*STATIC_NODES*/ | (1 << 14) /*RELATIVE_NODES*/ |
                               (1 << 13) /*NUMA_BALANCING*/;
// get_mempolicy flags.
[[maybe_unused]] constexpr unsigned long kMpolFNode = 1UL << 0;  // return a node id, not a policy
[[maybe_unused]] constexpr unsigned long kMpolFAddr = 1UL << 1;  // policy of the VMA at addr
constexpr unsigned long kMpolFMemsAllowed = 1UL << 2;            // the cpuset's allowed nodes

constexpr int kBitsPerLong = int(sizeof(unsigned long) * CHAR_BIT);
// The kernel's nodemask limit: get_nodes() rejects maxnode > PAGE_SIZE * 8 (4 KiB pages).
constexpr int kMaxNodeBits = 4096 * 8;

std::atomic<bool> gNumaDisabledForTesting{false};

[[noreturn]] void throwErrno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

std::optional<std::string> readFile(const char* path) {
  std::string text;
  if (!detail::readTextFile(path, text)) return std::nullopt;  // bounded, regular files only
  return text;
}

// A kernel id list (sysfs cpu/possible, node/online) through topology.cpp's bounded parsers;
// nullopt when malformed.
template <class Parse>
std::optional<std::vector<int>> parseList(const std::string& text, Parse parse) {
  try {
    return parse(text);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

std::string formatIds(const std::vector<int>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    if (i == 16) { s += "..."; break; }
    s += std::to_string(ids[i]);
  }
  return s + "]";
}

long sysGetMempolicy(int* mode, unsigned long* mask, unsigned long maxnode, void* addr,
                     unsigned long flags) {
  return syscall(SYS_get_mempolicy, mode, mask, maxnode, addr, flags);
}

long sysSetMempolicy(int mode, const unsigned long* mask, unsigned long maxnode) {
  return syscall(SYS_set_mempolicy, mode, mask, maxnode);
}

size_t maskWords(int bits) {
  // Whole 64-bit words even where long is 32 bits: copy_nodes_to_user() writes
  // ALIGN(maxnode - 1, 64) / 8 bytes.
  size_t bits64 = (size_t(bits) + 63) / 64 * 64;
  return bits64 / kBitsPerLong;
}

std::vector<int> maskToIds(const std::vector<unsigned long>& mask, int bits) {
  std::vector<int> ids;
  for (int i = 0; i < bits && size_t(i / kBitsPerLong) < mask.size(); ++i)
    if (mask[i / kBitsPerLong] & (1UL << (i % kBitsPerLong))) ids.push_back(i);
  return ids;
}

// Size of the kernel's nodemask in bits, as libnuma's set_nodemask_size(): Mems_allowed in
// /proc/self/status is printed with MAX_NUMNODES bits (4 per hex digit), which is always >=
// nr_node_ids, so masks of that size are accepted by every mempolicy syscall.
int computeMaxPossibleNode() {
  if (auto status = readFile("/proc/self/status")) {
    std::istringstream lines(*status);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("Mems_allowed:", 0) != 0) continue;
      int digits = 0;
      for (size_t i = sizeof("Mems_allowed:") - 1; i < line.size(); ++i)
        if (std::isxdigit(static_cast<unsigned char>(line[i]))) ++digits;
      if (digits > 0 && digits * 4 <= kMaxNodeBits) return digits * 4;
    }
  }
  // No procfs: probe like libnuma. get_mempolicy fails with EINVAL while maxnode <= nr_node_ids
  // (kernels 5.4+; `<` before), so growing powers of two + 1 find the smallest accepted size.
  for (int bits = 32; bits <= kMaxNodeBits; bits *= 2) {
    std::vector<unsigned long> mask(maskWords(bits));
    int mode = 0;
    if (sysGetMempolicy(&mode, mask.data(), bits + 1UL, nullptr, 0) == 0) return bits;
    if (errno != EINVAL) break;  // ENOSYS/EPERM: no NUMA syscalls; any size will do
  }
  return 64;
}

bool probeNumaSyscalls() {
  int mode = 0;
  if (sysGetMempolicy(&mode, nullptr, 0, nullptr, 0) == 0) return true;
  // ENOSYS: kernel built without CONFIG_NUMA. EPERM: a seccomp filter blocks it (Docker's default
  // profile allows the mempolicy syscalls only with CAP_SYS_NICE) — unusable just the same.
  return errno != ENOSYS && errno != EPERM;
}

void requireNuma(const char* what) {
  if (!numaSyscallsAvailable())
    throw UnsupportedError(std::string(what) + ": NUMA memory policy syscalls are not available");
}

// ---- CPU sets -------------------------------------------------------------------------------

struct CpuSetFree {
  void operator()(cpu_set_t* s) const { CPU_FREE(s); }
};

// A cpu_set_t of any size (CPU_ALLOC): the fixed cpu_set_t stops at 1024 CPUs.
struct CpuSet {
  std::unique_ptr<cpu_set_t, CpuSetFree> set;
  size_t bytes = 0;

  explicit CpuSet(int bits = 1) {
    set.reset(CPU_ALLOC(bits));
    if (!set) throw std::bad_alloc();
    bytes = CPU_ALLOC_SIZE(bits);
    CPU_ZERO_S(bytes, set.get());
  }
  std::vector<int> ids() const {
    std::vector<int> out;
    for (size_t i = 0; i < bytes * CHAR_BIT; ++i)
      if (CPU_ISSET_S(i, bytes, set.get())) out.push_back(int(i));
    return out;
  }
};

int computePossibleCpus() {
  if (auto text = readFile("/sys/devices/system/cpu/possible")) {
    auto ids = parseList(*text, parseCpuList);
    if (ids && !ids->empty()) return ids->back() + 1;
  }
  // No sysfs: the raw syscall (not the glibc wrapper) returns the kernel's cpumask size in bytes,
  // and fails with EINVAL while the buffer is smaller than nr_cpu_ids bits (libnuma does this).
  for (size_t bytes = 128; bytes <= (size_t(1) << 20); bytes *= 2) {
    std::vector<unsigned long> buf(bytes / sizeof(unsigned long));
    long r = syscall(SYS_sched_getaffinity, 0, bytes, buf.data());
    if (r > 0) return int(r * CHAR_BIT);
    if (errno != EINVAL) break;
  }
  long n = sysconf(_SC_NPROCESSORS_CONF);
  return n > 0 ? int(n) : 1;
}

// errno of sched_getaffinity(tid), 0 on success. Grows the set on EINVAL in case the possible
// count was underestimated (CPU hotplug of never-seen ids, no sysfs).
int readAffinity(pid_t tid, CpuSet& out) {
  for (int bits = possibleCpuCount();; bits *= 2) {
    CpuSet s(bits);
    if (sched_getaffinity(tid, s.bytes, s.set.get()) == 0) {
      out = std::move(s);
      return 0;
    }
    if (errno != EINVAL || bits >= (1 << 24)) return errno;
  }
}

// Validates before any syscall so a caller error never changes anything.
CpuSet buildCpuSet(const std::vector<int>& cpus) {
  if (cpus.empty()) throw HwsqRangeError("ERR_HWSQ_EMPTY_CPUS", "the CPU list is empty");
  int possible = possibleCpuCount();
  for (int c : cpus)
    if (c < 0 || c >= possible)
      throw HwsqRangeError("ERR_HWSQ_CPU_OUT_OF_RANGE",
                           "CPU " + std::to_string(c) + " is out of range (possible CPUs: 0-" +
                               std::to_string(possible - 1) + ")");
  CpuSet s(possible);
  for (int c : cpus) CPU_SET_S(size_t(c), s.bytes, s.set.get());
  return s;
}

[[noreturn]] void throwSetAffinityError(int err, const std::vector<int>& cpus) {
  // EINVAL: the set has no CPU that is both online (active) and in the cpuset; the kernel
  // silently drops such CPUs otherwise.
  if (err == EINVAL)
    throw HwsqRangeError("ERR_HWSQ_CPU_NOT_ALLOWED", "none of the CPUs " + formatIds(cpus) +
                                                         " is online and allowed by the cpuset");
  throwErrno(err, "sched_setaffinity");
}

pid_t currentTid() { return pid_t(syscall(SYS_gettid)); }

std::vector<pid_t> listTasks() {
  DIR* dir = opendir("/proc/self/task");
  if (!dir) throwErrno(errno, "opendir /proc/self/task");
  std::vector<pid_t> tids;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    long tid = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0' && tid > 0) tids.push_back(pid_t(tid));
  }
  closedir(dir);
  return tids;
}

}  // namespace

// ---- affinity -------------------------------------------------------------------------------

int possibleCpuCount() {
  static const int n = computePossibleCpus();
  return n;
}

std::vector<int> getThreadAffinity() {
  CpuSet s;
  if (int err = readAffinity(0, s)) throwErrno(err, "sched_getaffinity");
  return s.ids();
}

void setThreadAffinity(const std::vector<int>& cpus) {
  CpuSet s = buildCpuSet(cpus);
  if (sched_setaffinity(0, s.bytes, s.set.get()) != 0) throwSetAffinityError(errno, cpus);
}

// ---- runtime threads and process-scope pins ------------------------------------------------

namespace {

// Guards the set of runtime threads, and serializes process-scope walks with P threads pinning
// themselves (enterRuntimeThread). Leaked: a thread may exit during static destruction.
std::mutex& runtimeMu() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::set<pid_t>& runtimeTids() {  // guarded by runtimeMu()
  static auto* tids = new std::set<pid_t>;
  return *tids;
}

// Unmarks a runtime thread that exits without leaveRuntimeThread (its tid may be reused).
struct RuntimeThreadExit {
  bool marked = false;
  ~RuntimeThreadExit() {
    if (marked) leaveRuntimeThread();
  }
};
thread_local RuntimeThreadExit tlRuntimeThread;

std::vector<int> maskOf(pid_t tid, int& err) {
  CpuSet s;
  err = readAffinity(tid, s);
  return err ? std::vector<int>{} : s.ids();
}

// sched_setaffinity(tid, ids): errno, 0 on success; never throws (rollbacks and restores use
// it). ids come from masks the kernel reported, so buildCpuSet can only fail to allocate.
int setMask(pid_t tid, const std::vector<int>& ids) noexcept {
  if (ids.empty()) return EINVAL;
  try {
    CpuSet s = buildCpuSet(ids);
    return sched_setaffinity(tid, s.bytes, s.set.get()) == 0 ? 0 : errno;
  } catch (...) {
    return ENOMEM;
  }
}

std::vector<int> computeStartAffinity() {
  std::set<int> all;
  try {
    for (pid_t tid : listTasks()) {
      int err = 0;
      for (int c : maskOf(tid, err)) all.insert(c);
    }
  } catch (const std::exception&) {
    // no procfs: the calling thread's mask below
  }
  if (all.empty()) {
    try {
      return getThreadAffinity();
    } catch (const std::exception&) {
      return {};  // unknown: callers then use online ∩ cpuset
    }
  }
  return {all.begin(), all.end()};
}

}  // namespace

const std::vector<int>& processStartAffinity() {
  static const std::vector<int> cpus = computeStartAffinity();
  return cpus;
}

void enterRuntimeThread() {
  std::lock_guard<std::mutex> lk(runtimeMu());
  runtimeTids().insert(currentTid());
  tlRuntimeThread.marked = true;
}

void leaveRuntimeThread() {
  std::lock_guard<std::mutex> lk(runtimeMu());
  runtimeTids().erase(currentTid());
  tlRuntimeThread.marked = false;
}

ProcessPin setProcessAffinity(const std::vector<int>& cpus) {
  CpuSet target = buildCpuSet(cpus);
  std::lock_guard<std::mutex> lk(runtimeMu());
  const std::set<pid_t>& skip = runtimeTids();
  ProcessPin pin;
  auto rollback = [&] {
    for (auto& t : pin.threads) (void)setMask(t.tid, t.previous);
  };
  // A thread that exited meanwhile (ESRCH) is skipped; any other failure rolls back and throws.
  auto apply = [&](pid_t tid) {
    int err = 0;
    std::vector<int> previous = maskOf(tid, err);
    if (err) {
      if (err == ESRCH) return;
      rollback();
      throwErrno(err, "sched_getaffinity");
    }
    if (sched_setaffinity(tid, target.bytes, target.set.get()) != 0) {
      err = errno;
      if (err == ESRCH) return;
      rollback();
      throwSetAffinityError(err, cpus);
    }
    std::vector<int> applied = maskOf(tid, err);
    if (err) applied = cpus;  // exited just now: never compared again
    pin.threads.push_back({int(tid), std::move(previous), std::move(applied)});
  };
  // The caller first: with an unusable set it fails here, before any other thread changed.
  std::set<pid_t> seen{currentTid()};
  if (!skip.count(*seen.begin())) apply(*seen.begin());
  // Threads started during the walk by a thread not yet updated inherit the old mask; another pass
  // catches them. Bounded so a process spawning threads nonstop cannot keep us here.
  for (int pass = 0; pass < 8; ++pass) {
    bool found = false;
    for (pid_t tid : listTasks())
      if (seen.insert(tid).second && !skip.count(tid)) {
        found = true;
        apply(tid);
      }
    if (!found) break;
  }
  return pin;
}

void restoreProcessAffinity(const ProcessPin& pin, const std::vector<int>& others) {
  std::lock_guard<std::mutex> lk(runtimeMu());
  const std::set<pid_t>& skip = runtimeTids();
  std::set<pid_t> changed;
  std::set<std::vector<int>> pinned;  // the masks the pin gave (one, unless cpusets differ per thread)
  for (const auto& t : pin.threads) {
    changed.insert(t.tid);
    pinned.insert(t.applied);
    if (skip.count(t.tid)) continue;  // became a P meanwhile: its own pin rules
    int err = 0;
    if (maskOf(t.tid, err) != t.applied || err) continue;  // re-pinned meanwhile, or gone
    if (setMask(t.tid, t.previous) == EINVAL) (void)setMask(t.tid, others);  // cpuset moved away
  }
  if (others.empty()) return;
  try {
    for (pid_t tid : listTasks()) {
      if (changed.count(tid) || skip.count(tid)) continue;
      int err = 0;
      if (pinned.count(maskOf(tid, err)) && !err) (void)setMask(tid, others);
    }
  } catch (const std::exception&) {
    // no procfs now: newcomers keep the pin's mask
  }
}

CpuLocation currentLocation() {
  unsigned cpu = 0, node = 0;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
  // glibc's getcpu uses the vDSO (no kernel entry): cheap enough to call per task.
  if (::getcpu(&cpu, &node) != 0) throwErrno(errno, "getcpu");
#else
  if (syscall(SYS_getcpu, &cpu, &node, nullptr) != 0) throwErrno(errno, "getcpu");
#endif
  return {int(cpu), int(node)};
}

// ---- memory policy --------------------------------------------------------------------------

bool numaSyscallsAvailable() {
  static const bool available = probeNumaSyscalls();
  return available && !gNumaDisabledForTesting.load(std::memory_order_relaxed);
}

int maxPossibleNode() {
  static const int bits = computeMaxPossibleNode();
  return bits;
}

std::vector<int> onlineNodes() {
  if (auto text = readFile("/sys/devices/system/node/online")) {
    auto ids = parseList(*text, parseNodeList);
    if (ids && !ids->empty()) return *ids;
  }
  // No sysfs (some containers): the nodes our cpuset allows are at least real nodes.
  if (numaSyscallsAvailable()) {
    std::vector<unsigned long> mask(maskWords(maxPossibleNode()));
    int mode = 0;
    if (sysGetMempolicy(&mode, mask.data(), detail::nodeMaskMaxnode(), nullptr,
                        kMpolFMemsAllowed) == 0) {
      auto ids = maskToIds(mask, maxPossibleNode());
      if (!ids.empty()) return ids;
    }
  }
  return {0};
}

namespace detail {

std::vector<unsigned long> nodeMask(const std::vector<int>& nodes) {
  const int bits = maxPossibleNode();
  std::vector<unsigned long> mask(maskWords(bits));
  std::vector<int> online;
  for (int n : nodes) {
    // Range first: it also keeps the bit inside the mask buffer.
    if (n < 0 || n >= bits)
      throw HwsqRangeError("ERR_HWSQ_UNKNOWN_NODE", "NUMA node " + std::to_string(n) +
                                                        " does not exist (node ids are < " +
                                                        std::to_string(bits) + ")");
    if (online.empty()) online = onlineNodes();
    if (!std::binary_search(online.begin(), online.end(), n))
      throw HwsqRangeError("ERR_HWSQ_UNKNOWN_NODE", "NUMA node " + std::to_string(n) +
                                                        " is not online (online: " +
                                                        formatIds(online) + ")");
    mask[size_t(n) / kBitsPerLong] |= 1UL << (n % kBitsPerLong);
  }
  return mask;
}

// Why bits + 1: the kernel's get_nodes() starts with `--maxnode` and reads only maxnode - 1
// bits, and copy_nodes_to_user() writes ALIGN(maxnode - 1, 64) bits; get_mempolicy also insists
// on maxnode > nr_node_ids. The man pages' "maxnode bits" is off by one; libnuma passes
// bmp->size + 1 everywhere, so do we (passing bits would drop the highest node).
unsigned long nodeMaskMaxnode() { return static_cast<unsigned long>(maxPossibleNode()) + 1; }

int policyToMode(MemPolicy policy, const std::vector<int>& nodes, std::vector<unsigned long>& mask) {
  mask.clear();
  switch (policy) {
    case MemPolicy::Default: return kMpolDefault;  // nodes ignored (the kernel wants none)
    case MemPolicy::Local: return kMpolLocal;      // nodes ignored (the kernel wants none)
    case MemPolicy::Preferred:
      if (nodes.size() != 1)
        throw HwsqRangeError("ERR_HWSQ_BAD_NODES", "the preferred policy takes exactly one node, got " +
                                                       formatIds(nodes));
      mask = nodeMask(nodes);
      return kMpolPreferred;
    case MemPolicy::Bind:
    case MemPolicy::Interleave:
      if (nodes.empty())
        throw HwsqRangeError("ERR_HWSQ_BAD_NODES", std::string("the ") +
                                                       (policy == MemPolicy::Bind ? "bind" : "interleave") +
                                                       " policy needs at least one node");
      mask = nodeMask(nodes);
      return policy == MemPolicy::Bind ? kMpolBind : kMpolInterleave;
  }
  throw HwsqRangeError("ERR_HWSQ_BAD_POLICY", "unknown memory policy " + std::to_string(int(policy)));
}

void setNumaDisabledForTesting(bool disabled) {
  gNumaDisabledForTesting.store(disabled, std::memory_order_relaxed);
}

}  // namespace detail

void setThreadMemPolicy(MemPolicy policy, const std::vector<int>& nodes) {
  std::vector<unsigned long> mask;
  const int mode = detail::policyToMode(policy, nodes, mask);  // caller errors before support errors
  requireNuma("setThreadMemPolicy");
  long r = mask.empty() ? sysSetMempolicy(mode, nullptr, 0)
                        : sysSetMempolicy(mode, mask.data(), detail::nodeMaskMaxnode());
  if (r != 0 && errno == EINVAL && mode == kMpolLocal)
    r = sysSetMempolicy(kMpolPreferred, nullptr, 0);  // before 3.8: preferred with no node = local
  if (r == 0) return;
  int err = errno;
  // Nodes validated above, so EINVAL means none is in the cpuset's mems (or has memory).
  if (err == EINVAL && !mask.empty())
    throw HwsqRangeError("ERR_HWSQ_NODE_NOT_ALLOWED", "none of the NUMA nodes " + formatIds(nodes) +
                                                          " is allowed by the cpuset or has memory");
  throwErrno(err, "set_mempolicy");
}

MemPolicyState getThreadMemPolicy() {
  requireNuma("getThreadMemPolicy");
  const int bits = maxPossibleNode();
  std::vector<unsigned long> mask(maskWords(bits));
  int mode = 0;
  if (sysGetMempolicy(&mode, mask.data(), detail::nodeMaskMaxnode(), nullptr, 0) != 0)
    throwErrno(errno, "get_mempolicy");
  std::vector<int> nodes = maskToIds(mask, bits);
  switch (mode & ~kMpolModeFlags) {
    case kMpolDefault: return {MemPolicy::Default, {}};
    case kMpolLocal: return {MemPolicy::Local, {}};
    case kMpolPreferred:
      // Before 5.x, local allocation was stored as "preferred, no node".
      if (nodes.empty()) return {MemPolicy::Local, {}};
      return {MemPolicy::Preferred, nodes};
    case kMpolPreferredMany: return {MemPolicy::Preferred, nodes};
    case kMpolBind: return {MemPolicy::Bind, nodes};
    case kMpolInterleave:
    case kMpolWeightedInterleave: return {MemPolicy::Interleave, nodes};
    default:
      throw UnsupportedError("get_mempolicy returned unknown mode " + std::to_string(mode));
  }
}

void nameThread(std::thread& t, const std::string& name) {
  // The kernel keeps at most 15 bytes and a NUL (TASK_COMM_LEN 16); a longer name is ERANGE.
  char buf[16] = {};
  name.copy(buf, sizeof buf - 1);
  if (t.joinable()) (void)pthread_setname_np(t.native_handle(), buf);
}

}  // namespace hwsq

#else  // !__linux__

// Other platforms have no comparable placement API we implement. getThreadAffinity and
// currentLocation throw too rather than invent "CPU 0 / node 0": a fake answer would make the
// scheduler believe every thread shares one CPU. Pure support queries answer instead of throwing.
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace hwsq {

std::vector<int> getThreadAffinity() { throwLinuxOnly("getThreadAffinity"); }
void setThreadAffinity(const std::vector<int>&) { throwLinuxOnly("setThreadAffinity"); }
void nameThread(std::thread&, const std::string&) {}
const std::vector<int>& processStartAffinity() {
  static const std::vector<int> none;
  return none;
}
void enterRuntimeThread() {}
void leaveRuntimeThread() {}
ProcessPin setProcessAffinity(const std::vector<int>&) { throwLinuxOnly("setProcessAffinity"); }
void restoreProcessAffinity(const ProcessPin&, const std::vector<int>&) {}
int possibleCpuCount() {
#if defined(__unix__) || defined(__APPLE__)
  long n = sysconf(_SC_NPROCESSORS_CONF);
  return n > 0 ? int(n) : 1;
#else
  return 1;
#endif
}
CpuLocation currentLocation() { throwLinuxOnly("currentLocation"); }
void setThreadMemPolicy(MemPolicy, const std::vector<int>&) { throwLinuxOnly("setThreadMemPolicy"); }
MemPolicyState getThreadMemPolicy() { throwLinuxOnly("getThreadMemPolicy"); }
bool numaSyscallsAvailable() { return false; }
int maxPossibleNode() { return 1; }
std::vector<int> onlineNodes() { throwLinuxOnly("onlineNodes"); }
namespace detail {
std::vector<unsigned long> nodeMask(const std::vector<int>&) { throwLinuxOnly("nodeMask"); }
unsigned long nodeMaskMaxnode() { throwLinuxOnly("nodeMaskMaxnode"); }
int policyToMode(MemPolicy, const std::vector<int>&, std::vector<unsigned long>&) {
  throwLinuxOnly("policyToMode");
}
void setNumaDisabledForTesting(bool) {}
}  // namespace detail

}  // namespace hwsq

#endif  // __linux__
