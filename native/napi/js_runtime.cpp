// N-API glue of the JS task runtime (Runtime.start / spawn, lib/runtime/runtime.ts, spawn.ts, endpoint.ts + lib/runtime/worker.ts).
//
// A JS runtime is a core Runtime in external-worker mode (scheduler.h): its Ps are
// worker_threads Workers. Each Worker thread attaches to its P (pinning itself), and its event
// loop drives the core through one uv_async handle: the core's wakeExternal(p) and every
// completion/abort addressed to that thread do uv_async_send; the callback (onAsync) delivers
// completions and aborts to JS, then calls Runtime::runSome on the thread. A JS task is an
// ordinary core Task whose fn (trampoline) calls the worker's JS dispatcher with the task's
// serialized arguments, so queues, stealing, stats, histograms and sysmon apply unchanged.
//
// Threads that spawn (the main thread, and workers for nested spawns) are "endpoints": each has
// a completion queue (mutex + intrusive list; one uv_async_send when it goes non-empty) drained
// in batches into a scratch buffer that JS reads with one call per batch.
//
// Task life: JS encodes args into its endpoint's io scratch -> submit copies them into a JsTask
// (state Queued) and submits it (main: GRQ/HWSQ; worker: its LRQ) -> a P's trampoline CASes
// Queued->Running (an abort that won the CAS first makes it Cancelled: the P just frees it),
// adds it to the P's in-flight list and calls the dispatcher -> the result (or error) bytes come
// back in the worker's io scratch, synchronously or later through complete() for async tasks ->
// the JsTask carries them to the origin endpoint's queue -> the origin's JS settles the promise.
// A worker that dies: its env cleanup hook (on its own thread) reports its in-flight tasks as
// exited to their origins and detaches the P; the P's queued tasks stay in its queues.
#include <napi.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "args_js.h"
#include "errors.h"
#include "errors_js.h"
#include "node_memory.h"
#include "options_js.h"
#include "parallelism_js.h"
#include "sched/clock.h"
#include "sched/scheduler.h"
#include "shm_js.h"
#include "stats_js.h"
#include "topology.h"
#include "wire.h"

namespace hwsq::js {

using namespace hwsq::sched;
using hwsq::napi::guarded;
using hwsq::napi::statsToJs;

namespace {

// The value of a persistent reference through the C API: nullptr when the env is going away.
// (Napi::Reference::Value() would throw, and these run from uv callbacks and inside core tasks,
// where no C++ exception may escape.)
napi_value refValue(napi_env env, napi_ref ref) {
  napi_value v = nullptr;
  return napi_get_reference_value(env, ref, &v) == napi_ok ? v : nullptr;
}

// JsTask::state: Queued -> Running (a P took it) -> Done (its result or exit is on its way to
// the origin); Queued -> Cancelled (aborted before it ran); Running -> Queued (requeue).
enum : uint32_t { kQueued = 0, kRunning = 1, kCancelled = 2, kDone = 3 };
// The wire protocol (flags, codes, record layouts): wire.h.
using namespace hwsq::wire;
constexpr uint32_t kMagic = 0x68777371;  // "hwsq"

// Bytes with a small inline buffer: most payloads (a few numbers / short strings) need no malloc.
class Bytes {
 public:
  Bytes() = default;
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;
  ~Bytes() {
    if (ptr_ != inline_) std::free(ptr_);
  }
  void assign(const uint8_t* src, size_t n) {
    if (n > cap_) {
      void* p = std::malloc(n);
      if (!p) throw std::bad_alloc();
      if (ptr_ != inline_) std::free(ptr_);
      ptr_ = static_cast<uint8_t*>(p);
      cap_ = n;
    }
    if (n) std::memcpy(ptr_, src, n);
    len_ = n;
  }
  const uint8_t* data() const { return ptr_; }
  size_t size() const { return len_; }

 private:
  uint8_t inline_[48];
  uint8_t* ptr_ = inline_;
  size_t len_ = 0;
  size_t cap_ = sizeof(inline_);
};

struct Endpoint;
struct JsRuntime;

struct JsTask {
  Task task;
  uint32_t magic = kMagic;
  // state decides the race between a P taking the task and an abort (cancelTask): acq_rel CAS
  // on both sides. execWorker, the P running it, is written before the CAS to Running, so an
  // abort whose CAS fails on Running sees it.
  std::atomic<uint32_t> state{kQueued};
  std::atomic<int32_t> execWorker{-1};
  uint32_t fnIndex = 0;
  uint32_t flags = 0;
  int32_t code = kCodeOk;
  double seq = 0;  // the origin's promise id
  uint64_t serial = 0;  // unique in its runtime: tells it from a later task at the same address
  JsRuntime* rt = nullptr;
  std::shared_ptr<Endpoint> origin;
  JsTask* prev = nullptr;  // in-flight list of the executing P / completion queue (next only)
  JsTask* next = nullptr;
  Bytes data;  // arguments, then the result or error
};

double handleOf(JsTask* t) { return static_cast<double>(reinterpret_cast<uintptr_t>(t)); }
// The handle of a task the caller's own bookkeeping says is alive (cancel from its origin).
JsTask* taskOf(double h) {
  if (!(h > 0 && h <= static_cast<double>(hwsq::napi::kMaxSafeInteger)) || h != static_cast<double>(static_cast<uint64_t>(h)))
    throw std::invalid_argument("invalid task handle");
  auto* t = reinterpret_cast<JsTask*>(static_cast<uintptr_t>(h));
  if (t->magic != kMagic) throw std::invalid_argument("invalid task handle");
  return t;
}

thread_local Endpoint* tlEndpoint = nullptr;

// A JS thread that spawns tasks (the main thread) or runs them (a worker: also spawns nested ones).
struct Endpoint {
  JsRuntime* rt = nullptr;
  int worker = -1;  // P index; -1: the main thread
  napi_env env = nullptr;

  // Shared with other threads, under mu.
  std::mutex mu;
  bool alive = false;
  uv_async_t* async = nullptr;
  JsTask* doneHead = nullptr;
  JsTask* doneTail = nullptr;
  std::vector<std::pair<JsTask*, uint64_t>> aborts;  // (task, its serial) aborted while running here
  bool polling = false;  // the owner polls its queue (uv_idle): deliveries need no uv_async_send

  // Owner thread only.
  Napi::FunctionReference onCompletions, onAbort, dispatcher;
  Napi::ObjectReference inRef, ioRef, resource;
  napi_async_context asyncCtx = nullptr;
  uint8_t* in = nullptr;  // native -> JS: task arguments, completion records
  size_t inCap = 0;
  uint8_t* io = nullptr;  // JS -> native: spawn arguments, results
  size_t ioCap = 0;
  // Worker: one byte the dispatcher sets right before it calls the task's function; cleared
  // before each dispatch. When the dispatch call fails (the thread is dying), 0 means the task
  // never started.
  uint8_t* started = nullptr;
  Napi::ObjectReference startedRef;
  JsTask* inflight = nullptr;
  JsTask* dispatching = nullptr;          // the task whose function is running now (synchronously)
  std::unordered_set<JsTask*> awaiting;   // async tasks started here and not settled: complete() takes only these
  int activeRoots = 0;    // async root tasks started here and not settled
  bool dying = false;     // a JS call failed (termination): stop running tasks
  bool stopRun = false;   // RunLimits::stop
  bool attached = false;  // worker: attached to the core P
  napi_async_cleanup_hook_handle cleanupHook = nullptr;
  // Main thread: after a submit, poll for completions (a uv_idle handle keeps the event loop from
  // blocking in epoll) until spinUntil, so a quick task's result needs no thread wake-up.
  uv_idle_t* idle = nullptr;
  bool idling = false;
  uint64_t spinUntil = 0;
  std::shared_ptr<Endpoint> selfHold;  // keeps the endpoint until its uv handle is closed

  void signal() {
    std::lock_guard<std::mutex> lk(mu);
    if (alive && async) uv_async_send(async);
  }
  void inflightAdd(JsTask* t) {
    t->prev = nullptr;
    t->next = inflight;
    if (inflight) inflight->prev = t;
    inflight = t;
  }
  void inflightRemove(JsTask* t) {
    if (t->prev) t->prev->next = t->next;
    else inflight = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = t->next = nullptr;
  }
};

struct JsRuntime {
  uint32_t id = 0;
  std::unique_ptr<Runtime> core;
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

// The last task is gone while the owner waits for quiescence: wake its endpoint (processEndpoint
// tells JS). mainEp is set by setMain() before any task exists and never reset.
void JsRuntime::signalMainIdle() {
  if (Endpoint* ep = mainEp.get()) ep->signal();
}

// Runtimes by id: workers find theirs from the id in their bootstrap data. Leaked on purpose
// (no static destructor may block on workers at process exit).
std::mutex gRegMu;
auto* gRuntimes = new std::unordered_map<uint32_t, std::shared_ptr<JsRuntime>>();
uint32_t gNextId = 1;

std::shared_ptr<JsRuntime> lookup(uint32_t id) {
  std::lock_guard<std::mutex> lk(gRegMu);
  auto it = gRuntimes->find(id);
  if (it == gRuntimes->end()) throw HwsqRangeError("ERR_HWSQ_RUNTIME_CLOSED", "the runtime was destroyed");
  return it->second;
}

// Hands a finished task to its origin's completion queue (or frees it if the origin is gone).
void deliver(JsTask* t) {
  Runtime::taskEnding();  // from inside the task on its P: the waiter may spawn again at once
  Endpoint* o = t->origin.get();
  JsRuntime* rt = t->rt;
  std::unique_lock<std::mutex> lk(o->mu);
  if (!o->alive) {
    lk.unlock();
    rt->freeTask(t);
    return;
  }
  t->next = nullptr;
  const bool wasEmpty = o->doneHead == nullptr;
  if (o->doneTail) o->doneTail->next = t;
  else o->doneHead = t;
  o->doneTail = t;
  if (wasEmpty && !o->polling) uv_async_send(o->async);
}

void completeWith(Endpoint* ep, JsTask* t, int r, const uint8_t* bytes = nullptr, size_t cap = 0) {
  t->state.store(kDone, std::memory_order_release);  // an abort from now on has no worker to signal
  if (!bytes) {
    bytes = ep->io;
    cap = ep->ioCap;
  }
  ep->inflightRemove(t);
  ep->awaiting.erase(t);
  JsRuntime* rt = ep->rt;
  if (r == kResultSettledLocally) {
    rt->settledOk.fetch_add(1, std::memory_order_relaxed);
    rt->freeTask(t);
    return;
  }
  if (r >= 0) {
    t->code = kCodeOk;
    t->data.assign(bytes, std::min<size_t>(static_cast<size_t>(r), cap));
    rt->settledOk.fetch_add(1, std::memory_order_relaxed);
  } else {
    size_t n = static_cast<size_t>(static_cast<int64_t>(kErrorBase) - r);
    t->code = kCodeError;
    t->data.assign(bytes, std::min(n, cap));
    rt->settledError.fetch_add(1, std::memory_order_relaxed);
  }
  deliver(t);
}

// A JS call failed: an exception escaped our own JS (a bug) or the thread is terminating
// (process.exit() in a task, worker.terminate(), OOM). Either way this thread stops running tasks.
void jsCallFailed(Endpoint* ep) {
  ep->dying = true;
  ep->stopRun = true;
  bool pending = false;
  napi_is_exception_pending(ep->env, &pending);
  if (pending) {
    napi_value err;
    if (napi_get_and_clear_last_exception(ep->env, &err) == napi_ok) napi_fatal_exception(ep->env, err);
  }
}

// A task dispatched to a worker that could not start it: back to Queued and into the shared
// queues (its node's HWSQ or the GRQ, waking an idle P), as if it had never been taken. A
// cancel that saw it Running meanwhile already settled its promise; the run's result is then
// ignored, like that of any task aborted while it runs. Once destroy() began the core refuses
// it: it is freed, and its origin rejects it as dropped before it started.
void requeue(Endpoint* ep, JsTask* t) {
  JsRuntime* rt = ep->rt;
  ep->inflightRemove(t);
  t->execWorker.store(-1, std::memory_order_relaxed);
  if (t->flags & kFlagRoot) rt->queuedRoots.fetch_add(1, std::memory_order_relaxed);
  t->state.store(kQueued, std::memory_order_release);
  bool ok = false;
  try {
    ok = rt->core->submit(&t->task, SpawnHint::Shared);
  } catch (...) {  // out of memory in the GRQ: refused like a closed runtime
  }
  if (!ok) {
    if (t->flags & kFlagRoot) rt->queuedRoots.fetch_sub(1, std::memory_order_relaxed);
    rt->freeTask(t);
  }
}

// The Task fn of every JS task; runs inside runSome on a worker thread.
void trampoline(void* arg) {
  JsTask* t = static_cast<JsTask*>(arg);
  Endpoint* ep = tlEndpoint;
  JsRuntime* rt = t->rt;
  if ((t->flags & kFlagRoot) && ep->activeRoots >= rt->rootLimit) {
    // At the concurrency limit: another P (or this one later) takes it from the shared queues.
    rt->deferred.fetch_add(1, std::memory_order_relaxed);
    // Refused only once destroy() began (spawns from tasks are refused then): nobody waits for it.
    if (!rt->core->submit(&t->task, SpawnHint::Shared)) rt->freeTask(t);
    ep->stopRun = true;
    return;
  }
  t->execWorker.store(ep->worker, std::memory_order_relaxed);
  uint32_t expect = kQueued;
  if (!t->state.compare_exchange_strong(expect, kRunning, std::memory_order_acq_rel)) {
    rt->freeTask(t);  // aborted while queued; its promise is already settled
    return;
  }
  if (t->flags & kFlagRoot) rt->queuedRoots.fetch_sub(1, std::memory_order_relaxed);
  ep->inflightAdd(t);

  napi_env env = ep->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  uint32_t flags = t->flags & kFlagDispatchedMask;
  if (t->origin.get() == ep) flags |= kDispatchLocal;
  napi_value argv[6];
  napi_create_double(env, handleOf(t), &argv[0]);
  napi_create_uint32(env, t->fnIndex, &argv[1]);
  napi_create_uint32(env, static_cast<uint32_t>(t->data.size()), &argv[2]);
  napi_create_double(env, t->seq, &argv[3]);
  if (t->data.size() <= ep->inCap) {
    if (t->data.size()) std::memcpy(ep->in, t->data.data(), t->data.size());
    napi_get_undefined(env, &argv[5]);
  } else {
    flags |= kDispatchBuffer;
    void* copy;
    napi_create_buffer_copy(env, t->data.size(), t->data.data(), &copy, &argv[5]);
  }
  napi_create_uint32(env, flags, &argv[4]);
  napi_value recv, result;
  napi_get_undefined(env, &recv);
  napi_value dispatcher = refValue(env, ep->dispatcher);
  ep->dispatching = t;
  if (ep->started) *ep->started = 0;
  napi_status st = dispatcher ? napi_call_function(env, recv, dispatcher, 6, argv, &result) : napi_generic_failure;
  ep->dispatching = nullptr;
  if (st != napi_ok) {
    napi_close_handle_scope(env, scope);
    const bool started = ep->started && *ep->started != 0;
    jsCallFailed(ep);
    // Started: t stays in flight, teardown reports it as exited. Never started (this thread
    // can no longer run JS: it dies from a timer's exception or a terminate() in the turn that
    // handed it t): another P or this P's replacement runs it.
    if (!started) requeue(ep, t);
    return;
  }
  double r = kResultPending;
  napi_get_value_double(env, result, &r);
  napi_close_handle_scope(env, scope);
  const int code = static_cast<int>(r);
  if (code == kResultCompletedByJs) return;
  if (code == kResultPending) {
    try {
      ep->awaiting.insert(t);
    } catch (...) {  // out of memory: untracked, its complete() would be refused; report it as exited now
      ep->inflightRemove(t);
      t->state.store(kDone, std::memory_order_release);
      t->code = kCodeExited;
      t->data.assign(nullptr, 0);
      rt->exited.fetch_add(1, std::memory_order_relaxed);
      deliver(t);
      return;
    }
    if ((t->flags & kFlagRoot) && ++ep->activeRoots >= rt->rootLimit) ep->stopRun = true;
    return;
  }
  completeWith(ep, t, code);
}

void droppedTask(void* arg) {  // the core dropped a queued task (destroy)
  JsTask* t = static_cast<JsTask*>(arg);
  t->rt->freeTask(t);
}

JsTask* newTask(JsRuntime* rt, const std::shared_ptr<Endpoint>& origin, uint32_t fnIndex, double seq, uint32_t flags,
                int node, const uint8_t* data, size_t len) {
  auto* t = new JsTask();
  t->task.fn = trampoline;
  t->task.arg = t;
  t->task.cancel = droppedTask;
  t->task.doneArg = t;
  t->task.node = node;
  t->fnIndex = fnIndex;
  t->flags = flags & kFlagStoredMask;
  t->seq = seq;
  t->serial = rt->nextSerial.fetch_add(1, std::memory_order_relaxed);
  t->rt = rt;
  t->origin = origin;
  try {
    t->data.assign(data, len);
  } catch (...) {
    delete t;
    throw;
  }
  rt->live.fetch_add(1, std::memory_order_relaxed);
  if (t->flags & kFlagRoot) rt->queuedRoots.fetch_add(1, std::memory_order_relaxed);
  return t;
}

// The node: 'auto' choices of queued tasks (flags read before the push: once queued, another
// thread may run and free the task), into the runtime's counters.
void countPlacement(JsRuntime* rt, uint64_t byMemory, uint64_t fallback) {
  if (byMemory) rt->affineByMemory.fetch_add(byMemory, std::memory_order_relaxed);
  if (fallback) rt->affineFallback.fetch_add(fallback, std::memory_order_relaxed);
}

// Submits; false when the runtime is closed (the task is freed).
bool submitTask(JsRuntime* rt, JsTask* t) {
  const uint32_t flags = t->flags;
  bool ok;
  try {
    ok = rt->core->submit(&t->task, SpawnHint::Next);
  } catch (...) {
    if (t->flags & kFlagRoot) rt->queuedRoots.fetch_sub(1, std::memory_order_relaxed);
    rt->freeTask(t);
    throw;
  }
  if (!ok) {
    if (t->flags & kFlagRoot) rt->queuedRoots.fetch_sub(1, std::memory_order_relaxed);
    rt->freeTask(t);
  } else {
    countPlacement(rt, (flags & kFlagAffineMemory) != 0, (flags & kFlagAffineFallback) != 0);
  }
  return ok;
}

// ------------------------------------------------------------------ the thread's uv_async

bool callJs(Endpoint* ep, Napi::FunctionReference& fn, size_t argc, const napi_value* argv) {
  napi_value recv, result;
  napi_value f = refValue(ep->env, fn);
  if (!f || napi_get_undefined(ep->env, &recv) != napi_ok || napi_call_function(ep->env, recv, f, argc, argv, &result) != napi_ok) {
    jsCallFailed(ep);
    return false;
  }
  return true;
}

// Completion records in the in scratch: [seq f64][code i32][len u32][bytes], back to back.
bool drainCompletions(Endpoint* ep) {
  JsTask* list;
  {
    std::lock_guard<std::mutex> lk(ep->mu);
    list = ep->doneHead;
    ep->doneHead = ep->doneTail = nullptr;
  }
  napi_env env = ep->env;
  size_t off = 0;
  uint32_t count = 0;
  auto flush = [&]() -> bool {
    if (count == 0) return true;
    napi_value argv[1];
    napi_create_uint32(env, count, &argv[0]);
    count = 0;
    off = 0;
    return callJs(ep, ep->onCompletions, 1, argv);
  };
  bool ok = true;
  while (list) {
    JsTask* t = list;
    list = t->next;
    const size_t need = kCompletionHeader + t->data.size();
    if (ok && off + need > ep->inCap) ok = flush();
    if (ok && need > ep->inCap) {  // too big for the scratch: a Buffer of its own
      napi_handle_scope scope;
      napi_open_handle_scope(env, &scope);
      napi_value argv[4];
      void* copy;
      napi_create_int32(env, kCompletionsBig, &argv[0]);
      napi_create_double(env, t->seq, &argv[1]);
      napi_create_int32(env, t->code, &argv[2]);
      napi_create_buffer_copy(env, t->data.size(), t->data.data(), &copy, &argv[3]);
      ok = callJs(ep, ep->onCompletions, 4, argv);
      napi_close_handle_scope(env, scope);
    } else if (ok) {
      uint8_t* p = ep->in + off;
      const uint32_t len = static_cast<uint32_t>(t->data.size());
      std::memcpy(p + kCompletionSeq, &t->seq, 8);
      std::memcpy(p + kCompletionCode, &t->code, 4);
      std::memcpy(p + kCompletionLen, &len, 4);
      if (len) std::memcpy(p + kCompletionHeader, t->data.data(), len);
      off += need;
      ++count;
    }
    ep->rt->freeTask(t);
  }
  if (ok) ok = flush();
  return ok;
}

// Aborts of tasks running here. Only a task still awaited here gets one: a task that finished
// since (synchronously, or before this turn) may have been freed and its memory reused by a
// later task, which its serial tells apart.
bool drainAborts(Endpoint* ep) {
  std::vector<std::pair<JsTask*, uint64_t>> aborts;
  {
    std::lock_guard<std::mutex> lk(ep->mu);
    if (ep->aborts.empty()) return true;
    aborts.swap(ep->aborts);
  }
  for (const auto& [t, serial] : aborts) {
    if (ep->awaiting.count(t) == 0 || t->serial != serial) continue;
    napi_value argv[1];
    napi_create_double(ep->env, handleOf(t), &argv[0]);
    if (!callJs(ep, ep->onAbort, 1, argv)) return false;
  }
  return true;
}

void detachWorker(Endpoint* ep) {
  if (!ep->attached) return;
  ep->attached = false;
  ep->rt->core->detach();
}

void drive(Endpoint* ep) {
  JsRuntime* rt = ep->rt;
  RunLimits lim;
  lim.budget = rt->budget;
  lim.spinNs = rt->spinNs;
  lim.stop = &ep->stopRun;
  for (int round = 0; round < 4; ++round) {
    ep->stopRun = false;
    lim.localOnly = ep->activeRoots >= rt->rootLimit;
    RunResult r = rt->core->runSome(lim);
    if (ep->dying) return;
    switch (r.status) {
      case RunStatus::Parked:
      case RunStatus::Limited:  // a root's completion signals us when there is room again
        return;
      case RunStatus::Stopping:
        detachWorker(ep);
        return;
      case RunStatus::Budget:  // come back after this loop turn (microtasks, I/O, timers run first)
        ep->signal();
        return;
      case RunStatus::Stopped:  // reached the concurrency limit mid-run: go on local-only
        continue;
    }
  }
  ep->signal();
}

// Main endpoint: close() waits for quiescence (notifyIdle) and the last task is gone: an empty
// batch, onCompletions(0), lets JS see it.
void notifyIfIdle(Endpoint* ep) {
  JsRuntime* rt = ep->rt;
  if (!rt->idleWanted.load(std::memory_order_seq_cst) || rt->live.load(std::memory_order_seq_cst) != 0) return;
  rt->idleWanted.store(false, std::memory_order_relaxed);
  napi_value argv[1];
  napi_create_uint32(ep->env, 0, &argv[0]);
  callJs(ep, ep->onCompletions, 1, argv);
}

void processEndpoint(Endpoint* ep) {
  if (ep->dying) return;
  napi_env env = ep->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  napi_value resource = refValue(env, ep->resource);
  napi_callback_scope cs;  // microtasks run when it closes
  if (resource && napi_open_callback_scope(env, resource, ep->asyncCtx, &cs) == napi_ok) {
    if (drainAborts(ep) && drainCompletions(ep)) {
      if (ep->worker >= 0 && ep->attached && !ep->dying) drive(ep);
      else if (ep->worker < 0) notifyIfIdle(ep);
    }
    napi_close_callback_scope(env, cs);
  }
  napi_close_handle_scope(env, hs);
}

void onAsync(uv_async_t* handle) { processEndpoint(static_cast<Endpoint*>(handle->data)); }

void onIdle(uv_idle_t* handle) {
  Endpoint* ep = static_cast<Endpoint*>(handle->data);
  bool any;
  {
    std::lock_guard<std::mutex> lk(ep->mu);
    any = ep->doneHead != nullptr;
  }
  if (any) {
    processEndpoint(ep);
    return;
  }
  if (nowNs() >= ep->spinUntil) {
    uv_idle_stop(handle);
    ep->idling = false;
    {
      std::lock_guard<std::mutex> lk(ep->mu);  // pairs with deliver(): nothing slips between
      ep->polling = false;
      any = ep->doneHead != nullptr;
    }
    if (any) processEndpoint(ep);
  }
}

// Main thread, after a submit: poll for the result for spinNs before blocking.
void spinForResults(Endpoint* ep, uint64_t spinNs) {
  if (!spinNs || !ep->idle) return;
  ep->spinUntil = nowNs() + spinNs;
  if (!ep->idling) {
    ep->idling = true;
    {
      std::lock_guard<std::mutex> lk(ep->mu);
      ep->polling = true;
    }
    uv_idle_start(ep->idle, onIdle);
  }
}

void endpointCleanupHook(napi_async_cleanup_hook_handle, void* arg);

// On the endpoint's thread: its uv_async on this thread's loop, JS callbacks and scratch buffers,
// and an async env-cleanup hook that closes the handle if the thread's env goes away first.
void initEndpoint(Napi::Env env, const std::shared_ptr<Endpoint>& ep, Napi::Function onCompletions, Napi::Uint8Array in,
                  Napi::Uint8Array io, const char* name) {
  ep->env = env;
  ep->onCompletions = Napi::Persistent(onCompletions);
  ep->in = in.Data();
  ep->inCap = in.ByteLength();
  ep->io = io.Data();
  ep->ioCap = io.ByteLength();
  ep->inRef = Napi::Persistent(in.As<Napi::Object>());
  ep->ioRef = Napi::Persistent(io.As<Napi::Object>());
  auto resource = Napi::Object::New(env);
  ep->resource = Napi::Persistent(resource);
  napi_async_init(env, resource, Napi::String::New(env, name), &ep->asyncCtx);
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  ep->async = new uv_async_t();
  ep->async->data = ep.get();
  uv_async_init(loop, ep->async, onAsync);
  ep->selfHold = ep;
  napi_add_async_cleanup_hook(env, endpointCleanupHook, ep.get(), &ep->cleanupHook);
  ep->alive = true;
}

// On the endpoint's own thread: no more completions, the handle closes, JS references go.
void closeEndpoint(Endpoint* ep) {
  JsTask* list;
  {
    std::lock_guard<std::mutex> lk(ep->mu);
    if (!ep->alive) return;
    ep->alive = false;
    list = ep->doneHead;
    ep->doneHead = ep->doneTail = nullptr;
    ep->aborts.clear();
  }
  while (list) {
    JsTask* t = list;
    list = t->next;
    ep->rt->freeTask(t);
  }
  if (ep->idle) {
    uv_close(reinterpret_cast<uv_handle_t*>(ep->idle), [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
    ep->idle = nullptr;
    ep->idling = false;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(ep->async), [](uv_handle_t* h) {
    auto* e = static_cast<Endpoint*>(h->data);
    delete reinterpret_cast<uv_async_t*>(h);
    if (e->cleanupHook) napi_remove_async_cleanup_hook(e->cleanupHook);
    e->cleanupHook = nullptr;
    auto hold = std::move(e->selfHold);  // may free e
  });
  ep->async = nullptr;
  if (ep->asyncCtx) napi_async_destroy(ep->env, ep->asyncCtx);
  ep->asyncCtx = nullptr;
  ep->onCompletions.Reset();
  ep->onAbort.Reset();
  ep->dispatcher.Reset();
  ep->started = nullptr;
  ep->startedRef.Reset();
  ep->inRef.Reset();
  ep->ioRef.Reset();
  ep->resource.Reset();
}

// A worker's tasks in flight when it goes away: their origins learn they exited.
void reportExited(Endpoint* ep) {
  while (JsTask* t = ep->inflight) {
    ep->inflightRemove(t);
    t->state.store(kDone, std::memory_order_release);
    t->code = kCodeExited;
    t->data.assign(nullptr, 0);
    ep->rt->exited.fetch_add(1, std::memory_order_relaxed);
    deliver(t);
  }
  ep->activeRoots = 0;
  ep->awaiting.clear();
}

// Env cleanup of a worker thread (normal close, terminate(), process.exit() in a task, OOM).
void workerTeardown(Endpoint* ep) {
  ep->dying = true;
  reportExited(ep);
  detachWorker(ep);
  {
    std::lock_guard<std::mutex> lk(ep->rt->epMu);
    if (ep->rt->workerEps[ep->worker].get() == ep) ep->rt->workerEps[ep->worker].reset();
  }
  if (tlEndpoint == ep) tlEndpoint = nullptr;
  closeEndpoint(ep);
}

// Stops a runtime for good, on its owner's thread, once no P has a thread any more (the JS
// workers exited; Node stops an environment's Workers before its cleanup hooks run): drops what
// is still queued, hands the completions already queued for the owner to JS (unless its
// environment is being torn down: no JS may run), closes the owner's endpoint and forgets the
// runtime. The JS handle keeps the memory until it is collected.
void destroyRuntime(JsRuntime* rt, bool deliverCompletions) {
  if (rt->destroying) return;
  rt->destroying = true;
  try {
    for (int p = 0; p < rt->core->workerCount(); ++p) rt->core->reclaim(p);
    rt->core->destroy();
    rt->shm.reset();  // unpublished now: the last runtime's publisher thread is joined
  } catch (...) {  // nothing of it can fail for a runtime whose threads are gone; never throw from teardown
  }
  if (rt->events) rt->events->release();  // the core (its watch first) has stopped: nothing posts now
  if (Endpoint* ep = rt->mainEp.get()) {
    if (deliverCompletions && !ep->dying) drainCompletions(ep);
    closeEndpoint(ep);
  }
  std::shared_ptr<JsRuntime> keep;  // released after the registry lock
  {
    std::lock_guard<std::mutex> lk(gRegMu);
    auto it = gRuntimes->find(rt->id);
    if (it != gRuntimes->end()) {
      keep = std::move(it->second);
      gRuntimes->erase(it);
    }
  }
  rt->destroyed = true;
}

// The thread's env is being torn down: workers report and detach; the owner (main) thread
// destroys the runtime (its Workers are gone by now) instead of leaving its threads behind.
void endpointCleanupHook(napi_async_cleanup_hook_handle, void* arg) {
  auto* ep = static_cast<Endpoint*>(arg);
  {
    std::lock_guard<std::mutex> lk(ep->mu);
    if (!ep->alive) return;  // closed already (its runtime may be gone): the handle's close callback removes this hook
  }
  if (ep->worker >= 0) workerTeardown(ep);
  else if (!ep->rt->destroying) destroyRuntime(ep->rt, false);
  else closeEndpoint(ep);
}

// ------------------------------------------------------------------ JS surface

using hwsq::napi::indexArg;
using hwsq::napi::integerIn;
using hwsq::napi::kMaxSafeInteger;

JsRuntime* unwrap(const Napi::Value& v) {
  if (!v.IsExternal()) throw std::invalid_argument("expected a runtime handle");
  auto* rt = v.As<Napi::External<JsRuntime>>().Data();
  if (!rt || rt->destroyed) throw HwsqRangeError("ERR_HWSQ_RUNTIME_CLOSED", "the runtime was destroyed");
  return rt;
}

uint32_t u32Arg(const Napi::Value& v, const char* name) {
  return static_cast<uint32_t>(integerIn(v, name, 0, UINT32_MAX, "ERR_HWSQ_INVALID_ARG"));
}
// A spawn's affinity node: -1 (none) or a node id; the core refuses one it has no P on.
int nodeArg(const Napi::Value& v) { return indexArg(v, "node", "ERR_HWSQ_UNKNOWN_NODE", true); }
// A P index of rt.
int workerArg(JsRuntime* rt, const Napi::Value& v) {
  const int p = indexArg(v, "worker", "ERR_HWSQ_UNKNOWN_WORKER");
  if (p >= rt->core->workerCount()) {
    throw HwsqRangeError("ERR_HWSQ_UNKNOWN_WORKER", "no worker " + std::to_string(p) + " (this runtime has " + std::to_string(rt->core->workerCount()) + ")");
  }
  return p;
}
// A payload length in the caller's io scratch.
size_t lenArg(const Napi::Value& v, size_t cap) {
  return static_cast<size_t>(integerIn(v, "payload length", 0, static_cast<int64_t>(cap), "ERR_HWSQ_INVALID_ARG"));
}

// An optional non-negative number option (dflt when absent).
double numberField(const Napi::Object& o, const char* key, double dflt) {
  auto v = o.Get(key);
  return v.IsUndefined() ? dflt : hwsq::napi::numberIn(v, key, 0, static_cast<double>(kMaxSafeInteger), "ERR_HWSQ_INVALID_OPTION");
}

// create({ the scheduler config of options_js.h, concurrency, budget, spinNs, shm?, onParallelism? })
//   -> { runtime: External, id, workers: [{node, cpus}] }
Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsObject()) throw std::invalid_argument("create() needs a config object");
    auto o = info[0].As<Napi::Object>();
    std::shared_ptr<hwsq::napi::ParallelismEvents> events;  // following the cgroup: the 'parallelism' event
    RuntimeOptions ro = hwsq::napi::schedulerOptionsFromJs(o, &events);  // the same builder as NativeRuntime's
    ro.externalWorkers = true;
    // JS tasks cost microseconds each: timing every one is cheap here, and keeps their
    // histograms' counts exact (the native default times 1 in 128, for sub-microsecond tasks).
    ro.timingSampleShift = 0;
    auto rt = std::make_shared<JsRuntime>();
    rt->events = events;
    JsRuntime* raw = rt.get();
    ro.wakeExternal = [raw](int p) {
      if (auto ep = raw->endpointOf(p)) ep->signal();
    };
    const double conc = numberField(o, "concurrency", 0);  // a limit: beyond INT_MAX is no limit
    rt->rootLimit = conc >= 1 && conc < INT_MAX ? static_cast<int>(conc) : INT_MAX;
    rt->budget = static_cast<size_t>(std::max(1.0, numberField(o, "budget", 0)));  // lib/ passes it (DEFAULTS.tasksPerTurn)
    rt->spinNs = static_cast<uint64_t>(numberField(o, "spinNs", 0));
    rt->startNs = nowNs();
    rt->workerEps.resize(ro.workers.size());
    try {
      rt->core.reset(new Runtime(std::move(ro)));
    } catch (...) {
      if (events) events->release();
      throw;
    }
    rt->shm = hwsq::napi::publishIfEnabled(o, *rt->core, hwsq::shm::RuntimeKind::Js, [raw] {
      auto count = [](const std::atomic<int64_t>& a) { return static_cast<uint64_t>(std::max<int64_t>(0, a.load(std::memory_order_relaxed))); };
      return hwsq::shm::JsTaskCounts{count(raw->live), count(raw->queuedRoots), raw->settledOk.load(std::memory_order_relaxed),
                                     raw->settledError.load(std::memory_order_relaxed), raw->exited.load(std::memory_order_relaxed),
                                     raw->cancelled.load(std::memory_order_relaxed), raw->deferred.load(std::memory_order_relaxed)};
    });
    {
      std::lock_guard<std::mutex> lk(gRegMu);
      rt->id = gNextId++;
      (*gRuntimes)[rt->id] = rt;
    }
    auto out = Napi::Object::New(env);
    // The handle holds a reference: a late call after destroy() finds `destroyed`, not freed memory.
    out.Set("runtime", Napi::External<JsRuntime>::New(
                           env, raw, [](Napi::Env, JsRuntime*, std::shared_ptr<JsRuntime>* hold) { delete hold; },
                           new std::shared_ptr<JsRuntime>(rt)));
    out.Set("id", rt->id);
    const auto& opts = rt->core->options();
    auto workers = Napi::Array::New(env, opts.workers.size());
    for (size_t i = 0; i < opts.workers.size(); ++i) workers.Set(i, hwsq::napi::workerPlacementToJs(env, opts, i));
    out.Set("workers", workers);
    return out;
  });
}

// setMain(rt, onCompletions, in, io): the calling (main) thread becomes the runtime's origin
// endpoint for root tasks. The handle starts unref'd (see ref()).
Napi::Value SetMain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    JsRuntime* rt = unwrap(info[0]);
    auto ep = std::make_shared<Endpoint>();
    ep->rt = rt;
    initEndpoint(env, ep, info[1].As<Napi::Function>(), info[2].As<Napi::Uint8Array>(), info[3].As<Napi::Uint8Array>(),
                 "hwsq.runtime");
    uv_unref(reinterpret_cast<uv_handle_t*>(ep->async));
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    ep->idle = new uv_idle_t();
    ep->idle->data = ep.get();
    uv_idle_init(loop, ep->idle);
    uv_unref(reinterpret_cast<uv_handle_t*>(ep->idle));
    rt->mainEp = ep;
    return env.Undefined();
  });
}

Napi::Value Ref(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    JsRuntime* rt = unwrap(info[0]);
    if (rt->mainEp && rt->mainEp->async) {
      auto* h = reinterpret_cast<uv_handle_t*>(rt->mainEp->async);
      if (info[1].ToBoolean().Value()) uv_ref(h);
      else uv_unref(h);
    }
    return info.Env().Undefined();
  });
}

// submit(rt, fnIndex, seq, len, flags, node) -> task handle, or 0 when closed.
// The arguments are the first len bytes of the main endpoint's io scratch.
Napi::Value Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    JsRuntime* rt = unwrap(info[0]);
    Endpoint* ep = rt->mainEp.get();
    if (!ep) throw std::logic_error("setMain() was not called");
    const size_t len = lenArg(info[3], ep->ioCap);
    JsTask* t = newTask(rt, rt->mainEp, u32Arg(info[1], "task index"), info[2].As<Napi::Number>().DoubleValue(),
                        u32Arg(info[4], "flags") | kFlagRoot, nodeArg(info[5]), ep->io, len);
    if (!submitTask(rt, t)) return Napi::Number::New(env, 0);
    spinForResults(ep, rt->spinNs);
    return Napi::Number::New(env, handleOf(t));
  });
}

// submitBig(rt, fnIndex, seq, buffer, flags, node): like submit, arguments in their own buffer.
Napi::Value SubmitBig(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    JsRuntime* rt = unwrap(info[0]);
    auto buf = info[3].As<Napi::Uint8Array>();
    JsTask* t = newTask(rt, rt->mainEp, u32Arg(info[1], "task index"), info[2].As<Napi::Number>().DoubleValue(),
                        u32Arg(info[4], "flags") | kFlagRoot, nodeArg(info[5]), buf.Data(),
                        buf.ByteLength());
    if (!submitTask(rt, t)) return Napi::Number::New(env, 0);
    return Napi::Number::New(env, handleOf(t));
  });
}

// Batch records in the io scratch: [fnIndex u32][flags u32][node i32][len u32][seq f64][bytes].
std::vector<JsTask*> readBatch(JsRuntime* rt, const std::shared_ptr<Endpoint>& origin, uint32_t count, uint32_t extraFlags) {
  std::vector<JsTask*> tasks;
  tasks.reserve(count);
  const uint8_t* p = origin->io;
  const uint8_t* end = origin->io + origin->ioCap;
  try {
    for (uint32_t i = 0; i < count; ++i) {
      if (static_cast<size_t>(end - p) < kBatchHeader) throw std::invalid_argument("batch overruns the scratch buffer");
      uint32_t fn, flags, len;
      int32_t node;
      double seq;
      std::memcpy(&fn, p + kBatchFn, 4);
      std::memcpy(&flags, p + kBatchFlags, 4);
      std::memcpy(&node, p + kBatchNode, 4);
      std::memcpy(&len, p + kBatchLen, 4);
      std::memcpy(&seq, p + kBatchSeq, 8);
      if (len > static_cast<size_t>(end - p) - kBatchHeader) throw std::invalid_argument("batch overruns the scratch buffer");
      if (node < -1) throw HwsqRangeError("ERR_HWSQ_UNKNOWN_NODE", "node " + std::to_string(node) + " is not a node id");
      tasks.push_back(newTask(rt, origin, fn, seq, flags | extraFlags, node, p + kBatchHeader, len));
      p += kBatchHeader + len;
    }
  } catch (...) {
    for (JsTask* t : tasks) {
      if (t->flags & kFlagRoot) rt->queuedRoots.fetch_sub(1, std::memory_order_relaxed);
      rt->freeTask(t);
    }
    throw;
  }
  return tasks;
}

size_t submitBatch(JsRuntime* rt, std::vector<JsTask*>& tasks, SpawnHint hint) {
  std::vector<Task*> ptrs(tasks.size());
  uint64_t byMemory = 0, fallback = 0;
  for (size_t i = 0; i < tasks.size(); ++i) {
    ptrs[i] = &tasks[i]->task;
    byMemory += (tasks[i]->flags & kFlagAffineMemory) != 0;
    fallback += (tasks[i]->flags & kFlagAffineFallback) != 0;
  }
  size_t n = 0;
  try {
    n = rt->core->submitBatch(ptrs.data(), ptrs.size(), hint);
  } catch (...) {
    n = 0;
    for (JsTask* t : tasks) {
      if (t->flags & kFlagRoot) rt->queuedRoots.fetch_sub(1, std::memory_order_relaxed);
      rt->freeTask(t);
    }
    throw;
  }
  if (n == 0)
    for (JsTask* t : tasks) {
      if (t->flags & kFlagRoot) rt->queuedRoots.fetch_sub(1, std::memory_order_relaxed);
      rt->freeTask(t);
    }
  else
    countPlacement(rt, byMemory, fallback);  // the core queues a batch whole or not at all
  return n;
}

// submitMany(rt, count) -> count submitted (0: closed).
Napi::Value SubmitMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    JsRuntime* rt = unwrap(info[0]);
    auto tasks = readBatch(rt, rt->mainEp, u32Arg(info[1], "count"), kFlagRoot);
    return Napi::Number::New(env, static_cast<double>(submitBatch(rt, tasks, SpawnHint::Tail)));
  });
}

// Aborts a task: kCancelRemoved when it was removed from its queue (it will never run); p >= 0 when it is
// running on P p (that worker's onAbort(handle) runs; abort: 'terminate' terminates it); kCancelFinished
// when it already finished, its result (or its worker's exit) on the way: its worker, maybe
// running other tasks or replaced by now, is left alone. (A task that finishes at the very
// instant of the abort may still count as running.)
int cancelTask(JsRuntime* rt, JsTask* t) {
  uint32_t expect = kQueued;
  if (t->state.compare_exchange_strong(expect, kCancelled, std::memory_order_acq_rel)) {
    if (t->flags & kFlagRoot) rt->queuedRoots.fetch_sub(1, std::memory_order_relaxed);
    rt->cancelled.fetch_add(1, std::memory_order_relaxed);
    return kCancelRemoved;
  }
  if (expect != kRunning) return kCancelFinished;
  const int p = t->execWorker.load(std::memory_order_relaxed);
  if (p < 0) return kCancelFinished;
  if (auto ep = rt->endpointOf(p)) {
    std::lock_guard<std::mutex> lk(ep->mu);
    if (ep->alive) {
      ep->aborts.emplace_back(t, t->serial);
      uv_async_send(ep->async);
    }
  }
  return p;
}

// cancel(rt, handle) from the main thread: see cancelTask.
Napi::Value Cancel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    JsRuntime* rt = unwrap(info[0]);
    hwsq::napi::requireNumber(info[1], "handle");
    return Napi::Number::New(env, cancelTask(rt, taskOf(info[1].As<Napi::Number>().DoubleValue())));
  });
}

// workerExited(rt, p): after the Worker of P p exited (its thread is joined). Normally its env
// cleanup already did everything; this covers a thread that ended without it.
Napi::Value WorkerExited(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    JsRuntime* rt = unwrap(info[0]);
    const int p = workerArg(rt, info[1]);
    std::shared_ptr<Endpoint> ep;
    {
      std::lock_guard<std::mutex> lk(rt->epMu);
      if (p >= 0 && static_cast<size_t>(p) < rt->workerEps.size()) ep = std::move(rt->workerEps[p]);
    }
    if (ep) {  // no cleanup ran: the thread is gone, so its owner state is ours now
      reportExited(ep.get());
      std::lock_guard<std::mutex> lk(ep->mu);
      ep->alive = false;  // its uv handle belonged to the dead loop: never touch it again
    }
    rt->core->reclaim(p);
    return env.Undefined();
  });
}

Napi::Value Counts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    JsRuntime* rt = unwrap(info[0]);
    auto o = Napi::Object::New(env);
    o.Set("live", Napi::Number::New(env, static_cast<double>(rt->live.load(std::memory_order_acquire))));
    o.Set("queued", Napi::Number::New(env, static_cast<double>(rt->queuedRoots.load(std::memory_order_relaxed))));
    return o;
  });
}

// notifyIdle(rt): from now until it happens, the main endpoint's onCompletions(0) runs once the
// runtime's live task count is 0 (close() waits on it instead of polling). -> live now.
Napi::Value NotifyIdle(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    JsRuntime* rt = unwrap(info[0]);
    rt->idleWanted.store(true, std::memory_order_seq_cst);
    return Napi::Number::New(info.Env(), static_cast<double>(rt->live.load(std::memory_order_seq_cst)));
  });
}

Napi::Value Queued(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(unwrap(info[0])->queuedRoots.load(std::memory_order_relaxed)));
  });
}

Napi::Value Live(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(unwrap(info[0])->live.load(std::memory_order_acquire)));
  });
}

// stats(rt) -> the core's snapshot (per P / per node / histograms / sysmon) plus JS-task counters.
Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    JsRuntime* rt = unwrap(info[0]);
    RuntimeStats s = rt->core->stats();
    const double elapsed = static_cast<double>(nowNs() - rt->startNs);
    auto n = [&](uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
    Napi::Object out = statsToJs(env, s);
    // Per worker, what only this runtime knows: utilization over its lifetime, attached isolate.
    auto workers = out.Get("workers").As<Napi::Array>();
    for (size_t i = 0; i < s.workers.size(); ++i) {
      const WorkerStats& w = s.workers[i];
      auto o = workers.Get(static_cast<uint32_t>(i)).As<Napi::Object>();
      o.Set("utilization", Napi::Number::New(env, elapsed > 0 ? std::min(1.0, static_cast<double>(w.busyNs) / elapsed) : 0));
      o.Set("attached", rt->core->isAttached(w.worker));
    }
    auto tasks = Napi::Object::New(env);
    tasks.Set("live", n(static_cast<uint64_t>(std::max<int64_t>(0, rt->live.load()))));
    tasks.Set("queued", n(static_cast<uint64_t>(std::max<int64_t>(0, rt->queuedRoots.load()))));
    tasks.Set("completed", n(rt->settledOk.load()));
    tasks.Set("failed", n(rt->settledError.load()));
    tasks.Set("workerExited", n(rt->exited.load()));
    tasks.Set("cancelled", n(rt->cancelled.load()));
    tasks.Set("deferred", n(rt->deferred.load()));

    out.Set("tasks", tasks);
    auto affinity = Napi::Object::New(env);
    affinity.Set("affineByMemory", n(rt->affineByMemory.load(std::memory_order_relaxed)));
    affinity.Set("affineFallback", n(rt->affineFallback.load(std::memory_order_relaxed)));
    out.Set("memoryAffinity", affinity);
    out.Set("elapsedNs", Napi::Number::New(env, elapsed));
    return out;
  });
}

// destroy(rt): every worker has exited (JS terminated them and waited). Drops whatever is still
// queued, delivers the completions already queued for this thread (tasks that finished meanwhile
// settle with their results; tasks that were running report exited), closes the main endpoint
// and forgets the runtime. What stays pending in JS never started: JS rejects it. Idempotent.
Napi::Value Destroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsExternal()) throw std::invalid_argument("expected a runtime handle");
    JsRuntime* rt = info[0].As<Napi::External<JsRuntime>>().Data();
    if (rt && !rt->destroying) destroyRuntime(rt, true);
    return env.Undefined();
  });
}

// ---- worker side

// attach(id, p, dispatcher, onCompletions, onAbort, in, io, started) -> { node, cpus }
Napi::Value Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto rt = lookup(u32Arg(info[0], "runtime id"));
    const int p = workerArg(rt.get(), info[1]);
    if (tlEndpoint) throw std::logic_error("this thread is already a worker of a runtime");
    auto ep = std::make_shared<Endpoint>();
    ep->rt = rt.get();
    ep->worker = p;
    ep->dispatcher = Napi::Persistent(info[2].As<Napi::Function>());
    ep->onAbort = Napi::Persistent(info[4].As<Napi::Function>());
    if (!info[7].IsTypedArray()) throw std::invalid_argument("attach() needs the started flag");
    auto started = info[7].As<Napi::Uint8Array>();
    if (started.ByteLength() < 1) throw std::invalid_argument("attach() needs the started flag");
    ep->started = started.Data();
    ep->startedRef = Napi::Persistent(started.As<Napi::Object>());
    initEndpoint(env, ep, info[3].As<Napi::Function>(), info[5].As<Napi::Uint8Array>(), info[6].As<Napi::Uint8Array>(),
                 "hwsq.worker");
    try {
      rt->core->attach(p);  // pins this thread to the P's CPUs
    } catch (...) {
      closeEndpoint(ep.get());
      throw;
    }
    ep->attached = true;
    tlEndpoint = ep.get();
    {
      std::lock_guard<std::mutex> lk(rt->epMu);
      rt->workerEps[p] = ep;
    }
    ep->signal();  // first run: whatever was queued for this P meanwhile
    return hwsq::napi::workerPlacementToJs(env, rt->core->options(), static_cast<size_t>(p));
  });
}

Endpoint* currentEndpoint() {
  Endpoint* ep = tlEndpoint;
  if (!ep || ep->dying) throw std::logic_error("not inside a worker of an hwsq runtime");
  return ep;
}

// spawn(fnIndex, seq, len, flags, node) from a task: onto this P's local queue (runnext, like
// `go f()`), arguments in this worker's io scratch. -> handle, 0 when the runtime is stopping.
Napi::Value WorkerSpawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Endpoint* ep = currentEndpoint();
    JsRuntime* rt = ep->rt;
    const size_t len = static_cast<size_t>(u32Arg(info[2], "payload length"));
    std::shared_ptr<Endpoint> self = rt->endpointOf(ep->worker);
    if (self.get() != ep) throw std::logic_error("worker endpoint is gone");
    const uint8_t* data = ep->io;
    size_t n = len;
    if (info.Length() > 5 && info[5].IsTypedArray()) {
      auto buf = info[5].As<Napi::Uint8Array>();
      data = buf.Data();
      n = buf.ByteLength();
    } else if (len > ep->ioCap) {
      throw std::invalid_argument("payload larger than the scratch buffer");
    }
    JsTask* t = newTask(rt, self, u32Arg(info[0], "task index"), info[1].As<Napi::Number>().DoubleValue(),
                        u32Arg(info[3], "flags") & ~kFlagRoot, nodeArg(info[4]), data, n);
    if (!submitTask(rt, t)) return Napi::Number::New(env, 0);
    return Napi::Number::New(env, handleOf(t));
  });
}

// spawnMany(count): batch records in the io scratch (see readBatch) -> count, 0 when stopping.
Napi::Value WorkerSpawnMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Endpoint* ep = currentEndpoint();
    std::shared_ptr<Endpoint> self = ep->rt->endpointOf(ep->worker);
    if (self.get() != ep) throw std::logic_error("worker endpoint is gone");
    auto tasks = readBatch(ep->rt, self, u32Arg(info[0], "count"), 0);
    for (JsTask* t : tasks) t->flags &= ~kFlagRoot;
    return Napi::Number::New(env, static_cast<double>(submitBatch(ep->rt, tasks, SpawnHint::Tail)));
  });
}

// complete(handle, code, pending, big?): a task settled (code as the dispatcher's return value);
// pending: it was async (counted in activeRoots); big: result bytes that did not fit io.
Napi::Value Complete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Endpoint* ep = currentEndpoint();
    hwsq::napi::requireNumber(info[0], "handle");
    const double h = info[0].As<Napi::Number>().DoubleValue();
    const bool wasPending = info[2].ToBoolean().Value();
    // Only a task this worker is running may complete, once: the one being dispatched now (a big
    // sync result) or an async one still awaited. The handle is looked up, never dereferenced, first.
    JsTask* t = nullptr;
    if (h > 0 && h <= static_cast<double>(kMaxSafeInteger)) {
      auto* candidate = reinterpret_cast<JsTask*>(static_cast<uintptr_t>(h));
      if (wasPending ? ep->awaiting.count(candidate) != 0 : candidate == ep->dispatching) t = candidate;
    }
    if (!t) throw std::invalid_argument("complete(): not a task running on this worker, or completed already");
    const int code = static_cast<int>(integerIn(info[1], "completion code", INT32_MIN, INT32_MAX, "ERR_HWSQ_INVALID_ARG"));
    if (code == kResultPending || code == kResultCompletedByJs) throw std::invalid_argument("complete(): not a completion code");
    if (wasPending && (t->flags & kFlagRoot)) {
      if (ep->activeRoots-- == ep->rt->rootLimit) ep->signal();  // room again: take roots
    }
    if (info.Length() > 3 && info[3].IsTypedArray()) {
      auto big = info[3].As<Napi::Uint8Array>();
      completeWith(ep, t, code, big.Data(), big.ByteLength());
    } else {
      completeWith(ep, t, code);
    }
    return env.Undefined();
  });
}

// cancelChild(handle) from a worker: cancelTask for a task this worker spawned.
Napi::Value WorkerCancel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Endpoint* ep = currentEndpoint();
    hwsq::napi::requireNumber(info[0], "handle");
    return Napi::Number::New(env, cancelTask(ep->rt, taskOf(info[0].As<Napi::Number>().DoubleValue())));
  });
}

}  // namespace

void registerJsRuntime(Napi::Env env, Napi::Object exports) {
  auto o = Napi::Object::New(env);
  registerNodeMemory(env, o);
  o.Set("create", Napi::Function::New(env, Create));
  o.Set("setMain", Napi::Function::New(env, SetMain));
  o.Set("ref", Napi::Function::New(env, Ref));
  o.Set("submit", Napi::Function::New(env, Submit));
  o.Set("submitBig", Napi::Function::New(env, SubmitBig));
  o.Set("submitMany", Napi::Function::New(env, SubmitMany));
  o.Set("cancel", Napi::Function::New(env, Cancel));
  o.Set("workerExited", Napi::Function::New(env, WorkerExited));
  o.Set("queued", Napi::Function::New(env, Queued));
  o.Set("live", Napi::Function::New(env, Live));
  o.Set("notifyIdle", Napi::Function::New(env, NotifyIdle));
  o.Set("counts", Napi::Function::New(env, Counts));
  o.Set("stats", Napi::Function::New(env, Stats));
  o.Set("destroy", Napi::Function::New(env, Destroy));
  o.Set("attach", Napi::Function::New(env, Attach));
  o.Set("spawn", Napi::Function::New(env, WorkerSpawn));
  o.Set("spawnMany", Napi::Function::New(env, WorkerSpawnMany));
  o.Set("complete", Napi::Function::New(env, Complete));
  o.Set("cancelChild", Napi::Function::New(env, WorkerCancel));
  exports.Set("jsRuntime", o);
  exports.Set("wire", hwsq::wire::wireToJs(env));
}

}  // namespace hwsq::js
