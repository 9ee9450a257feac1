// Pins with undo: the model behind pinToCpus / pinToNumaNode (lib/affinity.ts), as libnuma has it.
// - A pin may name any CPU of the process -- processCpus(): online ∩ the affinity the process
//   started with ∩ the cgroup cpuset -- whatever the calling thread is pinned to now: re-pinning
//   anywhere in that set works, and a CPU outside it is ERR_HWSQ_CPU_NOT_ALLOWED.
// - Thread scope pins the calling thread. Process scope pins every thread of the process except
//   runtime threads (the Ps of scheduler runtimes, affinity.h); its undo gives each thread its
//   own previous mask back (restoreProcessAffinity).
// - What a pin undoes lives on a stack per OS thread here in the addon, not in JS: every copy of
//   the JS API a thread loads (require and import of hwsq are two bundles of lib/) shares it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "affinity.h"

namespace hwsq {

enum class PinScope { Thread, Process };

struct PinRequest {
  std::vector<int> cpus;
  PinScope scope = PinScope::Thread;
  // Non-empty, and NUMA syscalls available: the calling thread's memory policy becomes
  // memoryPolicy over these nodes until the undo.
  std::vector<int> memoryNodes;
  MemPolicy memoryPolicy = MemPolicy::Preferred;
};

struct PinRecord {
  uint64_t id = 0;                 // unique in the process: the handle popPinsTo takes
  std::vector<int> cpus;           // sorted, without duplicates
  std::vector<int> previousCpus;   // the calling thread's mask before
};

// Errors, with nothing changed: ERR_HWSQ_EMPTY_CPUS; ERR_HWSQ_CPU_OUT_OF_RANGE (id < 0 or
// >= possibleCpuCount()); ERR_HWSQ_CPU_NOT_ALLOWED (a CPU outside processCpus()); those of
// setThreadMemPolicy (the affinity is put back first).
PinRecord pushPin(const PinRequest& request);
// Undoes the calling thread's pin `id` and every later one, latest first. ERR_HWSQ_NOT_PINNED
// when `id` is not on this thread's stack (undone already, or another thread's pin). A mask the
// cpuset no longer allows at all becomes processCpus().
void popPinsTo(uint64_t id);
// Undoes the calling thread's latest pin; false when it has none.
bool popPin();
size_t pinDepth();  // the calling thread's stack

}  // namespace hwsq
