// The workload of `hwsq bench compare`: one run of node-local work on a fresh scheduler Runtime,
// with a per-task record of where each task ran and which node's memory it read.
//
// Per node k with Ps there is a home buffer (placed on k by the caller and described by its
// page -> node array, from move_pages) and tasksPerNode tasks. One root task per node is
// submitted from outside with node affinity k; on the P it runs on, it spawns its node's tasks,
// with affinity k too, from inside: on a P of node k they are local spawns (its LRQ, overflow to
// the node's HWSQ), as a parallel loop's; the other Ps get them only through the scheduler's
// queues and steals. The flat policy ignores affinity (the tasks go to the global queue when the
// root runs elsewhere, and overflow there). Each task touches (reads and writes) one
// bytesPerTask slice of its home buffer.
//
// The record, per task, at its start: the executing CPU's node (getcpu), the P's node and the
// task's home; the bytes it touches per memory node (from the page array); for a task running on
// a P of another node than its home, whether that P's own node still had tasks queued (spawned
// and not started). A P runs the remote tasks it took (half a victim's queue) one after the
// other, so it is the first task of each such run that tells whether the P went remote while its
// own node had work: under the hierarchical policy a P goes remote only when its node's work has
// run out, so that count stays near zero there (tasks in transit between two queues make it not
// exactly zero); under flat stealing it does not.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../sched/scheduler.h"
#include "../sched/stats.h"

namespace hwsq::probes {

struct HomeBuffer {
  int node = -1;                 // the node whose tasks use it (a node with Ps)
  unsigned char* data = nullptr;
  size_t bytes = 0;
  size_t pageSize = 4096;
  std::vector<int> pageNodes;    // node of each page of [data, data + bytes); negative: unknown
};

struct PlacementWorkloadOptions {
  sched::RuntimeOptions runtime;   // the Ps, their nodes and CPUs, the policy (stats are forced on)
  std::vector<HomeBuffer> buffers; // one per node with Ps
  uint64_t tasksPerNode = 10'000;
  size_t bytesPerTask = 16 * 1024; // a multiple of 64, at most a buffer's size
  uint64_t warmupTasksPerNode = 0; // a first run, not recorded (caches, page tables, thread wake-ups)
};

struct PlacementResult {
  // Node ids indexing the matrices (OS ids, ascending): the online nodes and every node of the
  // Ps and of the buffers' pages.
  std::vector<int> nodes;
  std::vector<std::vector<uint64_t>> tasksByCpuNodeAndHome;  // [cpu node][home node] tasks
  std::vector<std::vector<uint64_t>> bytesByCpuNodeAndMemory;  // [cpu node][memory node] bytes touched
  uint64_t unknownMemoryBytes = 0;  // bytes on pages whose node was unknown (not resident)
  uint64_t tasks = 0;               // recorded tasks (the measured run)
  uint64_t remoteTasks = 0;         // ran on a P whose node is not the task's home
  uint64_t remoteWhileOwnQueued = 0;  // ... while that P's node still had tasks of its own queued
  // Runs of consecutive remote tasks on one P (each starts when the P took remote work: a steal
  // or a batch from another node's HWSQ), and those taken while the P's own node certainly had
  // tasks queued: tasks of its node queued before the P's previous task ended and still not
  // started when the first remote one did (a lower bound, blind to what was queued after that
  // end). Under the hierarchical policy the latter stay near zero; under flat not.
  uint64_t remotePickups = 0;
  uint64_t remotePickupsWhileOwnQueued = 0;
  uint64_t cpuNodeMismatch = 0;     // getcpu's node differed from the P's placement node
  uint64_t elapsedNs = 0;           // submit of the roots -> every task completed (steady_clock)
  bool cancelled = false;
  sched::RuntimeStats before, after;  // around the measured run (after the warm-up)
  std::vector<int> workerNodes;     // P index -> placement node
};

// Throws what sched::Runtime's constructor throws (bad options), std::invalid_argument for
// buffers that do not match the runtime's nodes or are smaller than one task's slice.
PlacementResult runPlacementWorkload(const PlacementWorkloadOptions& options);

}  // namespace hwsq::probes
