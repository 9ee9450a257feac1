// The JS-task runtime (Runtime.start / spawn, lib/runtime/runtime.ts, spawn.ts, endpoint.ts +
// lib/runtime/worker.ts), its shared state: JsRuntime, the registry of runtimes by id, and
// destroyRuntime (js_runtime.cpp).
//
// A JS runtime is a core Runtime in external-worker mode (scheduler.h): its Ps are
// worker_threads Workers, each driving its P from its event loop (js_endpoint.h). Its parts,
// one file each:
//   js_task.h/.cpp       the task record, its states and transitions
//   js_endpoint.h/.cpp   endpoint plumbing: uv handles, completion queues, driving a P
//   js_runtime.h/.cpp    this: the runtime's counters and endpoints, registry, teardown
//   js_binding.cpp       the N-API surface (binding.jsRuntime, typed in lib/core/js-binding.ts)
//   wire.h/.cpp          what crosses between JS and C++: flags, codes, records
#pragma once

#include <atomic>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "js_endpoint.h"
#include "js_task.h"
#include "parallelism_js.h"
#include "sched/scheduler.h"
#include "shm/publisher.h"

namespace hwsq::js {

struct JsRuntime {
  uint32_t id = 0;
  std::unique_ptr<hwsq::sched::Runtime> core;
  // Set once destroyRuntime() is done (destroy(), or the owner's environment teardown): the JS
  // handle outlives the runtime's use, so every entry point checks it (owner thread only).
  bool destroyed = false;
  bool destroying = false;  // destroyRuntime() began (owner thread only)
  std::atomic<int64_t> live{0};         // JsTasks in existence (queued, running, completing)
  // Quiescence notification for close(): set by the owner (notifyIdle) while it waits for live
  // to reach 0. Both sides use seq_cst (the owner stores idleWanted then loads live; freeTask
  // decrements live then loads idleWanted), so at least one of them sees the other: either the
  // owner reads 0 itself or the freer of the last task signals the main endpoint.
  std::atomic<bool> idleWanted{false};
  std::atomic<uint64_t> nextSerial{1};  // JsTask::serial (relaxed: only uniqueness matters)
  std::atomic<int64_t> queuedRoots{0};  // root tasks submitted and not started / cancelled
  std::atomic<uint64_t> settledOk{0}, settledError{0}, exited{0}, cancelled{0}, deferred{0};
  // Tasks queued with node: 'auto', by choice: on the node of their memory, or placed as usual
  // (relaxed: statistics only, from the main thread and every worker).
  std::atomic<uint64_t> affineByMemory{0}, affineFallback{0};
  int rootLimit = INT_MAX;              // concurrentTasksPerWorker (async roots)
  size_t budget = 1;  // tasksPerTurn, set by create()
  uint64_t spinNs = 0;
  uint64_t startNs = 0;
  std::mutex epMu;
  std::vector<std::shared_ptr<Endpoint>> workerEps;  // current endpoint of each P
  std::shared_ptr<Endpoint> mainEp;
  std::shared_ptr<hwsq::napi::ParallelismEvents> events;  // the 'parallelism' event (null: none wanted)
  hwsq::shm::Registration shm;  // last: unregistered before the counters and core it reads go

  void freeTask(JsTask* t) {
    t->magic = 0;
    delete t;
    if (live.fetch_sub(1, std::memory_order_seq_cst) == 1 && idleWanted.load(std::memory_order_seq_cst)) signalMainIdle();
  }
  void signalMainIdle();
  std::shared_ptr<Endpoint> endpointOf(int p) {
    std::lock_guard<std::mutex> lk(epMu);
    return p >= 0 && static_cast<size_t>(p) < workerEps.size() ? workerEps[p] : nullptr;
  }
};

// The registry: runtimes by id, so workers find theirs from the id in their bootstrap data.
// registerRuntime gives rt its id; lookup throws ERR_HWSQ_RUNTIME_CLOSED for an id not (or no
// longer) registered.
void registerRuntime(const std::shared_ptr<JsRuntime>& rt);
std::shared_ptr<JsRuntime> lookup(uint32_t id);

// Stops a runtime for good, on its owner's thread, once no P has a thread any more.
void destroyRuntime(JsRuntime* rt, bool deliverCompletions);

}  // namespace hwsq::js
