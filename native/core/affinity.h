// Thread placement through raw Linux syscalls (no libnuma): CPU affinity of the calling
// thread or of every thread of the process, the CPU/node it runs on, its memory policy.
//
// Errors: hwsq::HwsqRangeError with a stable code for caller mistakes (ERR_HWSQ_EMPTY_CPUS,
// ERR_HWSQ_CPU_OUT_OF_RANGE, ERR_HWSQ_CPU_NOT_ALLOWED, ERR_HWSQ_UNKNOWN_NODE,
// ERR_HWSQ_NODE_NOT_ALLOWED, ERR_HWSQ_BAD_NODES, ERR_HWSQ_BAD_POLICY; memory.h adds
// ERR_HWSQ_BAD_SIZE), hwsq::UnsupportedError where the platform or
// kernel lacks the facility, std::system_error for any other errno.
// Non-Linux: everything throws UnsupportedError except numaSyscallsAvailable() (false),
// maxPossibleNode() (1) and possibleCpuCount() (sysconf), which are queries about support.
#pragma once
#include <string>
#include <thread>
#include <vector>

namespace hwsq {

std::vector<int> getThreadAffinity();                   // calling thread, sorted CPU ids
// Calling thread. Empty → ERR_HWSQ_EMPTY_CPUS; id < 0 or >= possibleCpuCount() →
// ERR_HWSQ_CPU_OUT_OF_RANGE; no online CPU allowed by the cpuset in the list →
// ERR_HWSQ_CPU_NOT_ALLOWED (ids that are possible but offline/disallowed are dropped by the
// kernel when at least one is usable). On any error the affinity is unchanged.
void setThreadAffinity(const std::vector<int>& cpus);
// Names a thread hwsq started (up to 15 bytes, the kernel's limit; longer is cut): hwsq's own
// threads are "hwsq-..." in top -H, ps -L, perf and gdb, and the tests count them by it. Called
// by the creator right after the std::thread is constructed, so the name is there before anyone
// can look. Best effort: never throws.
void nameThread(std::thread& t, const std::string& name);
int possibleCpuCount();                                 // kernel CPU ids are < this (cpu/possible)

// The affinity the process started with: the union of the masks of all its threads at the
// first call, which the addon makes when it is loaded. A union, not the caller's mask (nor the
// main thread's, which libnuma reads): when the first caller is a Worker whose creator pinned
// itself, or a main thread pinned by other means, the threads Node started at boot (V8
// platform, libuv) still carry the start mask. `taskset` on the whole process before the first
// call shows here; one applied to a running process later does not (as with libnuma).
// topology.h's processCpus() counts it only where it narrows the process below its cpuset.
const std::vector<int>& processStartAffinity();

// Runtime threads: the Ps of scheduler runtimes. Process-scope pins (setProcessAffinity,
// restoreProcessAffinity) pass them by, so user code pinning the process never moves a P off
// its CPUs. enterRuntimeThread marks the calling thread, leaveRuntimeThread unmarks it; so does
// the thread's exit. A P marks itself before it pins itself: marking waits for a process-scope
// walk in progress, so the P's own pin always comes last.
void enterRuntimeThread();
void leaveRuntimeThread();

// What a process-scope pin changed, for restoreProcessAffinity.
struct ProcessPin {
  struct Thread {
    int tid;
    std::vector<int> previous;  // its own mask before the pin
    std::vector<int> applied;   // its mask right after (the kernel may drop CPUs)
  };
  std::vector<Thread> threads;
};
// Every thread of the process but runtime threads (walks /proc/self/task, again while threads
// keep appearing). Same errors as setThreadAffinity; on error the threads already changed are
// restored (best effort).
ProcessPin setProcessAffinity(const std::vector<int>& cpus);
// Undoes a process-scope pin, best effort, never throws for a thread: each thread it changed
// that still has the mask it was given gets its own previous mask back (the kernel keeps
// what the cpuset still allows; if nothing, it gets `others`); one re-pinned meanwhile keeps its
// new mask. Threads started during the pin that still have the pin's mask (inherited from their
// creator) get `others` (the process's CPUs). Runtime threads are left alone.
void restoreProcessAffinity(const ProcessPin& pin, const std::vector<int>& others);

struct CpuLocation { int cpu; int node; };
CpuLocation currentLocation();                          // getcpu(2)

enum class MemPolicy { Default, Preferred, Bind, Interleave, Local };
// Memory policy of the calling thread for future allocations (set_mempolicy(2)).
// Preferred takes exactly one node, Bind/Interleave one or more (else ERR_HWSQ_BAD_NODES);
// Default and Local ignore nodes. A node that is not online → ERR_HWSQ_UNKNOWN_NODE; nodes
// none of which the cpuset allows (or without memory) → ERR_HWSQ_NODE_NOT_ALLOWED.
// Throws UnsupportedError when !numaSyscallsAvailable().
void setThreadMemPolicy(MemPolicy policy, const std::vector<int>& nodes);
struct MemPolicyState { MemPolicy policy; std::vector<int> nodes; };
// get_mempolicy(2). Kernel modes outside the enum are folded: MPOL_PREFERRED_MANY → Preferred
// (several nodes), MPOL_WEIGHTED_INTERLEAVE → Interleave.
MemPolicyState getThreadMemPolicy();

// False when get_mempolicy fails with ENOSYS (kernel without CONFIG_NUMA) or EPERM (a seccomp
// filter, e.g. Docker's default profile without CAP_SYS_NICE).
bool numaSyscallsAvailable();
int maxPossibleNode();                                  // highest node id the kernel allows + 1 (bits for masks)
std::vector<int> onlineNodes();                         // sysfs node/online, else mems allowed, else {0}

namespace detail {
// Internal, shared by affinity.cpp and memory.cpp. Validates every node (0 <= node <
// maxPossibleNode() and online, else ERR_HWSQ_UNKNOWN_NODE) and returns a kernel nodemask of
// maxPossibleNode() bits padded to whole 64-bit words (the kernel copies 64-bit words).
std::vector<unsigned long> nodeMask(const std::vector<int>& nodes);
// The maxnode argument that goes with nodeMask(): bits + 1 (see affinity.cpp for why).
unsigned long nodeMaskMaxnode();
// Kernel MPOL_* mode for policy after checking the node count (ERR_HWSQ_BAD_NODES) and the
// nodes; mask is filled for Preferred/Bind/Interleave and left empty for Default/Local.
// An enum value outside MemPolicy → ERR_HWSQ_BAD_POLICY.
int policyToMode(MemPolicy policy, const std::vector<int>& nodes, std::vector<unsigned long>& mask);
// Test hook: makes numaSyscallsAvailable() answer false (exercises the non-NUMA fallbacks).
void setNumaDisabledForTesting(bool disabled);
}  // namespace detail

}  // namespace hwsq
