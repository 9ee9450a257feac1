#include "placement_probe.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "../affinity.h"
#include "../sched/native_tasks.h"
#include "memory_probe.h"

namespace hwsq::probes {

namespace {

using sched::Runtime;

// Per-P record, written only by that P's thread (relaxed atomic adds so that reading it from the
// caller after waitIdle() is not a data race even in the sanitizer's eyes).
struct alignas(64) PerWorker {
  std::vector<uint64_t> tasks;   // [cpu node idx * n + home idx]
  std::vector<uint64_t> bytes;   // [cpu node idx * n + memory idx]
  uint64_t unknownBytes = 0;
  uint64_t tasksRun = 0, remote = 0, remoteWhileOwnQueued = 0, mismatch = 0;
  uint64_t pickups = 0, pickupsWhileOwnQueued = 0;
  bool inRemoteRun = false;  // the previous task this P ran was away from home (owner-only)
  // Own home's Progress::spawned when this P's previous task ended (owner-only): every task it
  // counts was queued before this P next looked for work.
  int64_t ownSpawnedBefore = 0;
};

inline void add(uint64_t& counter, uint64_t v) { __atomic_fetch_add(&counter, v, __ATOMIC_RELAXED); }
inline uint64_t load(const uint64_t& counter) { return __atomic_load_n(&counter, __ATOMIC_RELAXED); }

// Per home: tasks (roots included) counted once queued, and once started. spawned - started is
// what is queued now (it dips below zero for a moment: a task may start before it is counted).
// Relaxed: counters read for a report, not used to order other memory.
struct alignas(64) Progress {
  std::atomic<int64_t> spawned{0};
  std::atomic<int64_t> started{0};
};

struct Workload;

struct TaskArg {
  Workload* w;
  uint32_t home;   // index into Workload::homes
  uint32_t slice;  // slice of the home buffer
};

struct RootArg {
  Workload* w;
  uint32_t home;
  size_t begin, end;  // range of Workload::args
};

// A slice's bytes per memory node (almost always one entry).
struct SliceShare {
  int memIdx;  // -1: unknown (page not resident)
  uint64_t bytes;
};

struct Workload {
  Runtime* rt = nullptr;
  uint64_t cancelGen = 0;
  std::atomic<bool> cancelled{false};
  size_t n = 0;                          // matrix dimension (nodes.size())
  std::vector<int> nodes;                // matrix index -> OS node id
  std::vector<int> indexOf;              // OS node id -> matrix index (-1: none)
  std::vector<int> homes;                // home idx -> matrix index of its node
  std::vector<int> workerHome;           // P -> home idx of its node (-1: its node has no buffer)
  std::vector<int> workerNodeIdx;        // P -> matrix index of its placement node
  std::vector<const HomeBuffer*> buffers;
  size_t bytesPerTask = 0;
  std::vector<std::vector<std::vector<SliceShare>>> slices;  // [home][slice]
  std::unique_ptr<Progress[]> progress;  // per home
  std::vector<PerWorker> perWorker;
  std::vector<TaskArg> args;
  std::vector<RootArg> roots;
  std::vector<sched::Task> rootTasks;
  bool record = true;

  int matrixIndex(int node) const {
    return node >= 0 && static_cast<size_t>(node) < indexOf.size() ? indexOf[node] : -1;
  }
};

void taskFn(void* a) {
  auto* t = static_cast<TaskArg*>(a);
  Workload& w = *t->w;
  w.progress[t->home].started.fetch_add(1, std::memory_order_relaxed);
  const int p = Runtime::currentWorker();
  PerWorker& me = w.perWorker[static_cast<size_t>(p)];
  const int ownHome = w.workerHome[p];
  // However it ends, the next decision of this P comes after this point.
  struct SnapshotAtEnd {
    const Workload& w;
    PerWorker& me;
    int ownHome;
    ~SnapshotAtEnd() {
      if (ownHome >= 0) me.ownSpawnedBefore = w.progress[ownHome].spawned.load(std::memory_order_relaxed);
    }
  } snapshot{w, me, ownHome};
  if (w.cancelled.load(std::memory_order_relaxed)) return;
  int cpuIdx = w.workerNodeIdx[p];
  try {
    const int idx = w.matrixIndex(currentLocation().node);
    if (idx != cpuIdx) add(me.mismatch, 1);
    if (idx >= 0) cpuIdx = idx;
  } catch (const std::exception&) {
    // getcpu unavailable: the P's placement node stands for the CPU's.
  }
  const bool remote = static_cast<int>(t->home) != ownHome;
  if (remote) {
    const int64_t ownStarted = ownHome >= 0 ? w.progress[ownHome].started.load(std::memory_order_relaxed) : 0;
    const bool ownQueued = ownHome >= 0 && w.progress[ownHome].spawned.load(std::memory_order_relaxed) > ownStarted;
    add(me.remote, 1);
    if (ownQueued) add(me.remoteWhileOwnQueued, 1);
    // The first of a run of remote tasks: the P has just taken remote work (a steal or a batch
    // from another node's HWSQ). It decided to after its previous task ended and before this
    // one started, so own tasks queued by the end of the previous one and not started by now
    // were queued when it decided: a lower bound that tasks its node's root spawned meanwhile
    // cannot inflate (they are what a later look finds; an emulated CPU can stall for long).
    if (!me.inRemoteRun) {
      add(me.pickups, 1);
      if (ownHome >= 0 && me.ownSpawnedBefore > ownStarted) add(me.pickupsWhileOwnQueued, 1);
    }
  }
  me.inRemoteRun = remote;
  const HomeBuffer& b = *w.buffers[t->home];
  sched::touchBuffer(b.data + size_t(t->slice) * w.bytesPerTask, w.bytesPerTask);
  add(me.tasksRun, 1);
  add(me.tasks[cpuIdx * w.n + w.homes[t->home]], 1);
  for (const SliceShare& s : w.slices[t->home][t->slice]) {
    if (s.memIdx < 0) add(me.unknownBytes, s.bytes);
    else add(me.bytes[cpuIdx * w.n + s.memIdx], s.bytes);
  }
}

// Spawns its node's tasks from inside the runtime, checking for cancellation between chunks.
void rootFn(void* a) {
  auto* r = static_cast<RootArg*>(a);
  Workload& w = *r->w;
  w.progress[r->home].started.fetch_add(1, std::memory_order_relaxed);  // the root itself has started
  Runtime* rt = Runtime::current();
  const int node = w.buffers[r->home]->node;
  constexpr size_t kChunk = 64;
  for (size_t i = r->begin; i < r->end; i += kChunk) {
    if (ProbeCancel::cancelled(w.cancelGen)) {
      w.cancelled.store(true, std::memory_order_relaxed);
      return;
    }
    const size_t end = std::min(r->end, i + kChunk);
    // With the home node's affinity: on a P of that node they stay in its local queue (a parallel
    // loop); a root that ran elsewhere sends them to the node's HWSQ (hierarchical) or, with the
    // flat policy, which ignores affinity, to the global queue.
    // Counted once queued (a task may start first: the count dips below zero for a moment), so
    // "own node has tasks queued" is never claimed for tasks that are not in a queue yet.
    for (size_t k = i; k < end; ++k) {
      rt->spawn(&taskFn, &w.args[k], node, nullptr, nullptr, nullptr, sched::SpawnHint::Tail);
      w.progress[r->home].spawned.fetch_add(1, std::memory_order_relaxed);
    }
  }
  const int p = Runtime::currentWorker();
  const int ownHome = w.workerHome[p];
  if (ownHome >= 0) w.perWorker[static_cast<size_t>(p)].ownSpawnedBefore = w.progress[ownHome].spawned.load(std::memory_order_relaxed);
}

// One run of tasksPerNode tasks per home; returns the wall time in ns.
uint64_t runOnce(Workload& w, uint64_t tasksPerNode) {
  const size_t homes = w.buffers.size();
  w.args.clear();
  w.roots.clear();
  w.args.reserve(homes * tasksPerNode);
  for (size_t h = 0; h < homes; ++h) {
    const size_t begin = w.args.size();
    const size_t nslices = w.slices[h].size();
    for (uint64_t i = 0; i < tasksPerNode; ++i) w.args.push_back(TaskArg{&w, static_cast<uint32_t>(h), static_cast<uint32_t>(i % nslices)});
    w.roots.push_back(RootArg{&w, static_cast<uint32_t>(h), begin, w.args.size()});
  }
  w.rootTasks.assign(homes, sched::Task());
  std::vector<sched::Task*> batch;
  for (size_t h = 0; h < homes; ++h) {
    w.rootTasks[h] = sched::Task(&rootFn, &w.roots[h], w.buffers[h]->node);
    batch.push_back(&w.rootTasks[h]);
  }
  const auto t0 = std::chrono::steady_clock::now();
  // One batch: every root is queued before any P can run out of its node's work.
  if (w.rt->submitBatch(batch.data(), batch.size()) != batch.size()) throw std::runtime_error("the probe runtime refused the root tasks");
  for (size_t h = 0; h < homes; ++h) w.progress[h].spawned.fetch_add(1, std::memory_order_relaxed);
  w.rt->waitIdle();
  const auto t1 = std::chrono::steady_clock::now();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
}

std::vector<SliceShare> sliceShares(const Workload& w, const HomeBuffer& b, size_t slice) {
  std::vector<SliceShare> out;
  const uintptr_t base = reinterpret_cast<uintptr_t>(b.data);
  const uintptr_t firstPage = base & ~(uintptr_t(b.pageSize) - 1);
  const uintptr_t lo = base + slice * w.bytesPerTask, hi = lo + w.bytesPerTask;
  for (uintptr_t a = lo; a < hi;) {
    const uintptr_t pageEnd = (a & ~(uintptr_t(b.pageSize) - 1)) + b.pageSize;
    const uint64_t bytes = std::min(hi, pageEnd) - a;
    const size_t page = (a - firstPage) / b.pageSize;
    const int node = page < b.pageNodes.size() ? b.pageNodes[page] : -1;
    const int idx = w.matrixIndex(node);
    auto it = std::find_if(out.begin(), out.end(), [idx](const SliceShare& s) { return s.memIdx == idx; });
    if (it == out.end()) out.push_back(SliceShare{idx, bytes});
    else it->bytes += bytes;
    a += bytes;
  }
  return out;
}

}  // namespace

PlacementResult runPlacementWorkload(const PlacementWorkloadOptions& options) {
  if (options.bytesPerTask < kLineBytes || options.bytesPerTask % kLineBytes != 0)
    throw std::invalid_argument("bytesPerTask must be a positive multiple of 64");
  if (options.tasksPerNode == 0) throw std::invalid_argument("tasksPerNode must be at least 1");
  sched::RuntimeOptions ro = options.runtime;
  ro.stats = true;
  auto w = std::make_unique<Workload>();
  w->cancelGen = ProbeCancel::generation();
  w->bytesPerTask = options.bytesPerTask;

  // The matrix's nodes: online nodes, the Ps' nodes, the pages' nodes.
  std::vector<int> ids;
  try {
    ids = onlineNodes();
  } catch (const std::exception&) {
  }
  for (const auto& p : ro.workers) ids.push_back(p.node);
  for (const HomeBuffer& b : options.buffers) {
    ids.push_back(b.node);
    for (int n : b.pageNodes)
      if (n >= 0) ids.push_back(n);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  w->nodes = ids;
  w->n = ids.size();
  w->indexOf.assign(ids.empty() ? 0 : static_cast<size_t>(ids.back()) + 1, -1);
  for (size_t i = 0; i < ids.size(); ++i) w->indexOf[ids[i]] = static_cast<int>(i);

  // One buffer per node with Ps, each at least one slice.
  std::vector<int> workerNodes;
  for (const auto& p : ro.workers)
    if (std::find(workerNodes.begin(), workerNodes.end(), p.node) == workerNodes.end()) workerNodes.push_back(p.node);
  for (int node : workerNodes) {
    auto it = std::find_if(options.buffers.begin(), options.buffers.end(), [node](const HomeBuffer& b) { return b.node == node; });
    if (it == options.buffers.end()) throw std::invalid_argument("no home buffer for node " + std::to_string(node) + ", which has Ps");
  }
  for (const HomeBuffer& b : options.buffers) {
    if (std::find(workerNodes.begin(), workerNodes.end(), b.node) == workerNodes.end())
      throw std::invalid_argument("home buffer for node " + std::to_string(b.node) + ", which has no P");
    if (!b.data || b.bytes < options.bytesPerTask) throw std::invalid_argument("a home buffer is smaller than one task's slice");
    if (b.pageSize == 0 || (b.pageSize & (b.pageSize - 1)) != 0) throw std::invalid_argument("pageSize must be a power of two");
    w->buffers.push_back(&b);
    w->homes.push_back(w->matrixIndex(b.node));
    std::vector<std::vector<SliceShare>> shares;
    const size_t nslices = b.bytes / options.bytesPerTask;
    for (size_t s = 0; s < nslices; ++s) shares.push_back(sliceShares(*w, b, s));
    w->slices.push_back(std::move(shares));
  }
  w->progress.reset(new Progress[w->buffers.size()]);
  for (const auto& p : ro.workers) {
    int home = -1;
    for (size_t h = 0; h < w->buffers.size(); ++h)
      if (w->buffers[h]->node == p.node) home = static_cast<int>(h);
    w->workerHome.push_back(home);
    w->workerNodeIdx.push_back(w->matrixIndex(p.node));
  }
  auto resetRecord = [&] {
    w->perWorker.assign(ro.workers.size(), PerWorker());
    for (auto& pw : w->perWorker) {
      pw.tasks.assign(w->n * w->n, 0);
      pw.bytes.assign(w->n * w->n, 0);
    }
  };
  resetRecord();

  Runtime rt(ro);
  w->rt = &rt;
  PlacementResult r;
  try {
    if (options.warmupTasksPerNode > 0) runOnce(*w, options.warmupTasksPerNode);
    resetRecord();
    r.before = rt.stats();
    if (!w->cancelled.load()) r.elapsedNs = runOnce(*w, options.tasksPerNode);
    r.after = rt.stats();
  } catch (...) {
    rt.destroy();
    throw;
  }
  rt.close();
  r.cancelled = w->cancelled.load() || ProbeCancel::cancelled(w->cancelGen);
  r.nodes = w->nodes;
  r.tasksByCpuNodeAndHome.assign(w->n, std::vector<uint64_t>(w->n, 0));
  r.bytesByCpuNodeAndMemory.assign(w->n, std::vector<uint64_t>(w->n, 0));
  for (const PerWorker& pw : w->perWorker) {
    for (size_t i = 0; i < w->n; ++i)
      for (size_t j = 0; j < w->n; ++j) {
        r.tasksByCpuNodeAndHome[i][j] += load(pw.tasks[i * w->n + j]);
        r.bytesByCpuNodeAndMemory[i][j] += load(pw.bytes[i * w->n + j]);
      }
    r.unknownMemoryBytes += load(pw.unknownBytes);
    r.tasks += load(pw.tasksRun);
    r.remoteTasks += load(pw.remote);
    r.remoteWhileOwnQueued += load(pw.remoteWhileOwnQueued);
    r.cpuNodeMismatch += load(pw.mismatch);
    r.remotePickups += load(pw.pickups);
    r.remotePickupsWhileOwnQueued += load(pw.pickupsWhileOwnQueued);
  }
  for (const auto& p : ro.workers) r.workerNodes.push_back(p.node);
  return r;
}

}  // namespace hwsq::probes
