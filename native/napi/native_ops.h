// NativeRuntime's operations, their delivery to the JS thread and the runtime's lifetime
// (native_ops.cpp); the N-API surface that makes them is runtime_binding.cpp.
//
// Operations. Each JS call that completes later (spawn, locate, idle, close) is an Op with one
// promise. A spawn of `count` tasks is one Op: its tasks share the Op's NativeTaskArgs and an
// atomic `remaining` counter, decremented by each task's done (ran) or cancel (dropped by
// destroy); the thread that brings it to zero hands the Op to State::finish. No per-task JS
// object, promise or callback exists.
//
// Delivery. finish() appends the Op to a mutex-protected list and, if no delivery is queued
// yet, queues one call of the runtime's thread-safe function: completions that arrive while a
// delivery is pending ride along with it. The TSFN is ref'd only while some Op is unsettled
// (State::pending > 0), and so is the wrapper object (ObjectWrap::Ref), so an idle runtime
// neither keeps the event loop alive nor is kept from garbage collection.
//
// Lifetime. The worker threads belong to the core Runtime. close() drains on a helper thread
// (the JS thread stays free) and resolves when every thread is joined; destroy() stops now on
// the calling thread and settles every Op at once (dropped tasks make their spawn reject with
// an AbortError in lib/). A wrapper garbage-collected without close is destroyed in its
// finalizer (it has no unsettled Op then, so that only joins parked threads), and an
// environment cleanup hook destroys runtimes still open when the environment (main thread or
// worker_threads Worker) is torn down.
#pragma once
#include <napi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bytes_js.h"
#include "parallelism_js.h"
#include "sched/clock.h"
#include "sched/native_tasks.h"
#include "sched/scheduler.h"
#include "shm/publisher.h"

namespace hwsq::napi {

// ------------------------------------------------------------------ batch submission

// Submits n light tasks ops->run(arg) (Runtime::spawnLight) with affinity `node` (-1: none),
// Runtime::kLightBatchMax at a time (from a worker of rt: to its LRQ's tail; from another
// thread: the node's HWSQ or the GRQ). `sent` counts the tasks submitted so far, also when this
// throws (std::bad_alloc; nothing of the failing chunk is submitted). Returns with sent < n only
// when rt was closed meanwhile.
void submitLightBatch(hwsq::sched::Runtime& rt, const hwsq::sched::TaskOps* ops, void* arg, int node, uint64_t n, uint64_t& sent);
// The no-op task kind as a light task (the in-process spawn benchmark).
extern const hwsq::sched::TaskOps kNoopTaskOps;

// ------------------------------------------------------------------ operations

struct State;

// Where a P found itself when asked (locate()).
struct Location {
  int cpu = -1;
  int node = -1;
  std::vector<int> affinity;
};

struct Op {
  enum class Kind { Spawn, Locate, Idle, Close };
  Op(Kind k, State* s, Napi::Env env) : kind(k), state(s), deferred(Napi::Promise::Deferred::New(env)) {}

  const Kind kind;
  State* const state;
  Napi::Promise::Deferred deferred;
  bool orphan = false;                // the JS call that made it threw: settle without a result
  std::atomic<uint64_t> remaining{0};
  std::atomic<uint64_t> dropped{0};
  uint64_t count = 0;
  uint64_t startNs = 0;
  uint64_t endNs = 0;                 // written by the finishing thread, published by State::mu
  hwsq::sched::NativeTaskArgs args;   // shared by the Op's tasks (read-only while they run)
  hwsq::sched::TaskFn kindFn = nullptr;  // Spawn: nativeTaskFn(args.kind), run by each task on args
  int node = -1;
  HeldBytes buffer;                   // a touch/chase buffer's memory until the Op settles (bytes_js.h)
  std::vector<Location> locations;    // Locate: one per P
  std::thread thread;                 // Idle / Close
  std::string error;                  // Idle / Close: what the core threw
};

void deliverJs(Napi::Env env, Napi::Function, State* state, void*);
using Tsfn = Napi::TypedThreadSafeFunction<State, void, deliverJs>;

struct State {
  std::unique_ptr<hwsq::sched::Runtime> rt;
  hwsq::shm::Registration shm;      // declared after rt: unregistered before rt is destroyed
  std::vector<int> nodeIds;         // nodes with Ps (OS ids), in the core's order
  Tsfn tsfn;
  std::shared_ptr<ParallelismEvents> events;  // the 'parallelism' event (null: no listener wanted)

  std::mutex mu;
  std::vector<Op*> finished;        // guarded by mu
  bool notified = false;            // guarded by mu: a delivery is queued

  // JS thread only.
  napi_env env = nullptr;
  Napi::Reference<Napi::Object>* wrap = nullptr;  // the NativeRuntime object (its ObjectWrap); null once collected
  bool tsfnLive = false;
  bool hookAdded = false;
  bool closing = false;             // close() or destroy() was called
  bool tornDown = false;
  size_t pending = 0;               // unsettled Ops
  std::vector<Op*> threaded;        // Ops whose thread is not joined yet

  ~State() { teardown(); }

  // Any thread: the Op is complete.
  void finish(Op* op) {
    op->endNs = hwsq::sched::nowNs();
    bool post;
    {
      std::lock_guard<std::mutex> lk(mu);
      finished.push_back(op);
      post = !notified;
      notified = true;
    }
    if (post) (void)tsfn.NonBlockingCall();  // napi_closing only during environment teardown
  }

  void beginOp(Napi::Env e);
  void endOp(Napi::Env e);
  void drain(Napi::Env e);
  void settle(Napi::Env e, Op* op);
  void joinThreads();
  void maybeRelease();
  void removeHook();
  void teardown();
  static void envCleanup(void* arg);
};

// The task callbacks of Ops. finishTasks counts n tasks of op as finished (run, or dropped
// without running): taskDone / taskCancel are a task's done / cancel; kOpTaskOps a spawn's light
// task (arg: the Op): its kind on the Op's args, its completions counted per run on a P
// (TaskOps::doneMany; taskCancel if dropped). fanOut is the root of an
// `inside` spawn (fanOutCancel: dropped by destroy()); locateFn a locate() probe task (arg: its
// Location).
void finishTasks(Op* op, uint64_t n, bool dropped);
void taskDone(void* p);
void taskCancel(void* p);
extern const hwsq::sched::TaskOps kOpTaskOps;
void fanOut(void* p);
void fanOutCancel(void* p);
void locateFn(void* p);

}  // namespace hwsq::napi
