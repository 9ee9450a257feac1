// NativeRuntime: a hwsq::sched::Runtime driven from JS with the built-in native task kinds
// (noop, spin, touch, chase). Marshalling only: option types are checked in
// lib/native-runtime/native-runtime.ts, semantics (nodes, policies, kinds) in the core, errors mapped by
// errors_js.h.
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
#include "runtime_binding.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "affinity.h"
#include "errors.h"
#include "errors_js.h"
#include "parallelism.h"
#include "parallelism_js.h"
#include "sched/clock.h"
#include "sched/native_tasks.h"
#include "sched/placement.h"
#include "sched/scheduler.h"
#include "sched/task_pool.h"
#include "args_js.h"
#include "bytes_js.h"
#include "shm_js.h"
#include "stats_js.h"
#include "options_js.h"
#include "topology.h"

namespace hwsq::napi {
namespace {

using namespace hwsq::sched;

constexpr size_t kChunk = 256;  // tasks per submitBatch: one lock / ring claim per destination

// ------------------------------------------------------------------ pooled batch submission

// What every task of one submission looks like.
struct TaskTemplate {
  TaskFn fn = nullptr;
  void* arg = nullptr;
  int node = -1;
  TaskFn done = nullptr;
  TaskFn cancel = nullptr;
  void* doneArg = nullptr;
};

// Submits n pooled tasks made from tpl, kChunk at a time (from a worker of rt: to its LRQ's
// tail; from another thread: the node's HWSQ or the GRQ). `sent` counts the tasks submitted
// so far, also when this throws (std::bad_alloc; nothing of the failing chunk is submitted).
// Returns with sent < n only when rt was closed meanwhile.
void submitPooled(Runtime& rt, const TaskTemplate& tpl, uint64_t n, uint64_t& sent) {
  Task* buf[kChunk];
  sent = 0;
  while (sent < n) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(kChunk, n - sent));
    size_t made = 0;
    size_t taken = 0;
    try {
      for (; made < k; ++made) {
        Task* t = allocTask();
        t->fn = tpl.fn;
        t->arg = tpl.arg;
        t->node = tpl.node;
        t->done = tpl.done;
        t->cancel = tpl.cancel;
        t->doneArg = tpl.doneArg;
        buf[made] = t;
      }
      taken = rt.submitBatch(buf, k, SpawnHint::Tail);
    } catch (...) {
      for (size_t j = 0; j < made; ++j) freeTask(buf[j]);
      throw;
    }
    if (taken != k) {
      for (size_t j = 0; j < k; ++j) freeTask(buf[j]);
      return;
    }
    sent += k;
  }
}

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
  NativeTaskArgs args;                // shared by the Op's tasks (read-only while they run)
  int node = -1;
  HeldBytes buffer;                   // a touch/chase buffer's memory until the Op settles (bytes_js.h)
  std::vector<Location> locations;    // Locate: one per P
  std::thread thread;                 // Idle / Close
  std::string error;                  // Idle / Close: what the core threw
};

void deliverJs(Napi::Env env, Napi::Function, State* state, void*);
using Tsfn = Napi::TypedThreadSafeFunction<State, void, deliverJs>;

class NativeRuntimeWrap;

struct State {
  std::unique_ptr<Runtime> rt;
  hwsq::shm::Registration shm;      // declared after rt: unregistered before rt is destroyed
  std::vector<int> nodeIds;         // nodes with Ps (OS ids), in the core's order
  Tsfn tsfn;
  std::shared_ptr<ParallelismEvents> events;  // the 'parallelism' event (null: no listener wanted)

  std::mutex mu;
  std::vector<Op*> finished;        // guarded by mu
  bool notified = false;            // guarded by mu: a delivery is queued

  // JS thread only.
  napi_env env = nullptr;
  NativeRuntimeWrap* wrap = nullptr;
  bool tsfnLive = false;
  bool hookAdded = false;
  bool closing = false;             // close() or destroy() was called
  bool tornDown = false;
  size_t pending = 0;               // unsettled Ops
  std::vector<Op*> threaded;        // Ops whose thread is not joined yet

  ~State() { teardown(); }

  // Any thread: the Op is complete.
  void finish(Op* op) {
    op->endNs = nowNs();
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

// Counts n tasks of op as finished (run, or dropped without running).
void finishTasks(Op* op, uint64_t n, bool dropped) {
  if (n == 0) return;
  if (dropped) op->dropped.fetch_add(n, std::memory_order_relaxed);
  if (op->remaining.fetch_sub(n, std::memory_order_acq_rel) == n) op->state->finish(op);
}

void taskDone(void* p) { finishTasks(static_cast<Op*>(p), 1, false); }
void taskCancel(void* p) { finishTasks(static_cast<Op*>(p), 1, true); }

// Root of an `inside` spawn: runs on a P and spawns the Op's tasks into that P's LRQ.
void fanOut(void* p) {
  Op* op = static_cast<Op*>(p);
  TaskTemplate tpl{nativeTaskFn(op->args.kind), &op->args, op->node, taskDone, taskCancel, op};
  // Read before submitting: once every child has run, the JS thread may settle and free op.
  const uint64_t count = op->count;
  uint64_t sent = 0;
  try {
    submitPooled(*Runtime::current(), tpl, count, sent);
  } catch (...) {  // out of memory: what was not spawned counts as dropped
  }
  finishTasks(op, count - sent, true);  // touches op only when sent < count (op still pending)
}
// The root was dropped by destroy(): none of its tasks exists.
void fanOutCancel(void* p) { finishTasks(static_cast<Op*>(p), static_cast<Op*>(p)->count, true); }

void locateFn(void* p) {
  auto* loc = static_cast<Location*>(p);
  try {
    CpuLocation l = currentLocation();
    loc->cpu = l.cpu;
    loc->node = l.node;
    loc->affinity = getThreadAffinity();
  } catch (...) {  // a task must not throw; -1 / [] say "unknown"
  }
}

// ------------------------------------------------------------------ the wrapper

class NativeRuntimeWrap : public Napi::ObjectWrap<NativeRuntimeWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeRuntime",
                       {
                           InstanceMethod<&NativeRuntimeWrap::Spawn>("spawn"),
                           InstanceMethod<&NativeRuntimeWrap::Locate>("locate"),
                           InstanceMethod<&NativeRuntimeWrap::Idle>("idle"),
                           InstanceMethod<&NativeRuntimeWrap::Close>("close"),
                           InstanceMethod<&NativeRuntimeWrap::Destroy>("destroy"),
                           InstanceMethod<&NativeRuntimeWrap::Stats>("stats"),
                           InstanceMethod<&NativeRuntimeWrap::Topology>("topology"),
                           InstanceMethod<&NativeRuntimeWrap::IsStopped>("isStopped"),
                       });
  }

  explicit NativeRuntimeWrap(const Napi::CallbackInfo& info);
  ~NativeRuntimeWrap() override {
    if (state_) {
      state_->wrap = nullptr;
      state_->teardown();
    }
  }

 private:
  Napi::Value Spawn(const Napi::CallbackInfo& info);
  Napi::Value Locate(const Napi::CallbackInfo& info);
  Napi::Value Idle(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Topology(const Napi::CallbackInfo& info);
  Napi::Value IsStopped(const Napi::CallbackInfo& info);

  // Runs body on a helper thread as an Op (idle, close); returns the Op's promise.
  Napi::Value threadOp(Napi::Env env, Op::Kind kind, void (*body)(Runtime&));
  State& state() { return *state_; }
  // The state of a runtime that takes new work; throws ERR_HWSQ_RUNTIME_CLOSED after close()/destroy().
  State& openState(Napi::Env env) {
    if (state_->closing) throw closedError(env);
    return *state_;
  }
  static Napi::Error closedError(Napi::Env env) { return codedError(env, "ERR_HWSQ_RUNTIME_CLOSED", "this runtime is closed"); }

  std::shared_ptr<State> state_;
};

// ------------------------------------------------------------------ State (JS thread parts)

void State::beginOp(Napi::Env e) {
  if (pending++ == 0) {
    if (tsfnLive) tsfn.Ref(e);
    if (wrap) wrap->Ref();
  }
}

void State::endOp(Napi::Env e) {
  if (--pending == 0) {
    if (tsfnLive) tsfn.Unref(e);
    if (wrap) wrap->Unref();
  }
}

void deliverJs(Napi::Env env, Napi::Function, State* state, void*) {
  if (env == nullptr || state->tornDown) return;  // the TSFN is being torn down
  state->drain(env);
}

void State::drain(Napi::Env e) {
  std::vector<Op*> ops;
  {
    std::lock_guard<std::mutex> lk(mu);
    ops.swap(finished);
    notified = false;
  }
  for (Op* op : ops) settle(e, op);
  maybeRelease();
}

Napi::Object locationsToJs(Napi::Env env, const Op& op, Runtime& rt) {
  auto list = Napi::Array::New(env, op.locations.size());
  for (size_t p = 0; p < op.locations.size(); ++p) {
    const Location& l = op.locations[p];
    auto o = Napi::Object::New(env);
    o.Set("worker", static_cast<double>(p));
    o.Set("node", rt.workerNode(static_cast<int>(p)));
    o.Set("cpu", l.cpu);
    o.Set("cpuNode", l.node);
    auto aff = Napi::Array::New(env, l.affinity.size());
    for (size_t i = 0; i < l.affinity.size(); ++i) aff.Set(static_cast<uint32_t>(i), l.affinity[i]);
    o.Set("affinity", aff);
    list.Set(static_cast<uint32_t>(p), o);
  }
  auto out = Napi::Object::New(env);
  out.Set("dropped", static_cast<double>(op.dropped.load(std::memory_order_relaxed)));
  out.Set("locations", list);
  return out;
}

void State::settle(Napi::Env e, Op* op) {
  if (op->thread.joinable()) op->thread.join();
  threaded.erase(std::remove(threaded.begin(), threaded.end(), op), threaded.end());
  // A closed runtime is unpublished before close() resolves: the last one's publisher thread is
  // joined, so a service that closed its runtimes has no hwsq thread left.
  if (op->kind == Op::Kind::Close) shm.reset();
  if (!op->orphan) {
    Napi::HandleScope scope(e);
    switch (op->kind) {
      case Op::Kind::Spawn: {
        if (op->args.kind == NativeKind::Touch) op->buffer.copyBack();  // touch writes: a copy's result goes back
        const uint64_t dropped = op->dropped.load(std::memory_order_relaxed);
        auto r = Napi::Object::New(e);
        r.Set("count", static_cast<double>(op->count));
        r.Set("executed", static_cast<double>(op->count - dropped));
        r.Set("dropped", static_cast<double>(dropped));
        r.Set("elapsedNs", static_cast<double>(op->endNs - op->startNs));
        op->deferred.Resolve(r);
        break;
      }
      case Op::Kind::Locate:
        op->deferred.Resolve(locationsToJs(e, *op, *rt));
        break;
      case Op::Kind::Idle:
      case Op::Kind::Close:
        if (op->error.empty()) op->deferred.Resolve(e.Undefined());
        else op->deferred.Reject(codedError(e, "ERR_HWSQ_INVALID_STATE", op->error).Value());
        break;
    }
  }
  delete op;
  endOp(e);
}

void State::joinThreads() {
  for (Op* op : threaded)
    if (op->thread.joinable()) op->thread.join();
  threaded.clear();
}

// Once stopped and settled, nothing can call the TSFN any more: let it go.
void State::maybeRelease() {
  if (!tsfnLive || pending != 0 || !threaded.empty() || !rt || !rt->isStopped()) return;
  if (events) events->release();
  tsfn.Release();
  tsfnLive = false;
  removeHook();
}

void State::removeHook() {
  if (!hookAdded) return;
  hookAdded = false;
  napi_remove_env_cleanup_hook(env, &State::envCleanup, this);
}

// Without JS (finalizer, environment teardown): stop now, free what is left. Unsettled
// promises stay unsettled (there are none outside environment teardown: the wrapper is kept
// alive while Ops are pending).
void State::teardown() {
  if (tornDown) return;
  tornDown = true;
  closing = true;
  if (rt && !rt->isStopped()) {
    try {
      rt->destroy();
    } catch (...) {
    }
  }
  joinThreads();
  shm.reset();
  std::vector<Op*> ops;
  {
    std::lock_guard<std::mutex> lk(mu);
    ops.swap(finished);
  }
  for (Op* op : ops) delete op;
  pending = 0;
  if (events) events->release();
  if (tsfnLive) {
    tsfn.Release();
    tsfnLive = false;
  }
  removeHook();
}

void State::envCleanup(void* arg) {
  auto* s = static_cast<State*>(arg);
  s->hookAdded = false;  // this hook is running: nothing to remove
  s->teardown();
}

// ------------------------------------------------------------------ wrapper methods

NativeRuntimeWrap::NativeRuntimeWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeRuntimeWrap>(info) {
  Napi::Env env = info.Env();
  auto s = std::make_shared<State>();
  guarded(env, [&] {
    if (!info[0].IsObject()) throw std::invalid_argument("NativeRuntime needs a config object");
    // Following the cgroup (workers 'auto'): the builder makes the 'parallelism' event's carrier.
    try {
      s->rt = std::make_unique<Runtime>(schedulerOptionsFromJs(info[0].As<Napi::Object>(), &s->events));
    } catch (...) {
      if (s->events) s->events->release();
      throw;
    }
    s->shm = publishIfEnabled(info[0].As<Napi::Object>(), *s->rt, hwsq::shm::RuntimeKind::Native);
    return 0;
  });
  for (int p = 0; p < s->rt->workerCount(); ++p) {
    int n = s->rt->workerNode(p);
    if (std::find(s->nodeIds.begin(), s->nodeIds.end(), n) == s->nodeIds.end()) s->nodeIds.push_back(n);
  }
  s->env = env;
  s->tsfn = Tsfn::New(
      env, "hwsq.NativeRuntime", 0, 1, s.get(), [](Napi::Env, std::shared_ptr<State>* holder, State*) { delete holder; },
      new std::shared_ptr<State>(s));
  s->tsfnLive = true;
  s->tsfn.Unref(env);
  if (napi_add_env_cleanup_hook(env, &State::envCleanup, s.get()) == napi_ok) s->hookAdded = true;
  s->wrap = this;
  state_ = std::move(s);
}

// spawn(kind, spinNs, buffer, steps, node, worker, count, inside) -> Promise<{count, executed, dropped, elapsedNs}>
//   node >= 0: affinity; worker >= 0: that P's inbox (never stolen); inside: one root task (on
//   `worker`, on `node`, or anywhere) spawns the tasks from its P.
Napi::Value NativeRuntimeWrap::Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State& s = openState(env);
  return guarded(env, [&]() -> Napi::Value {
    Runtime& rt = *s.rt;
    auto op = std::make_unique<Op>(Op::Kind::Spawn, &s, env);
    const NativeKind kind = parseNativeKind(info[0].As<Napi::String>().Utf8Value());
    op->args.kind = kind;
    op->args.spinNs = static_cast<uint64_t>(integerIn(info[1], "spin ns", 0, kMaxSafeInteger, "ERR_HWSQ_INVALID_ARG"));
    op->args.steps = static_cast<uint64_t>(integerIn(info[3], "steps", 0, kMaxSafeInteger, "ERR_HWSQ_INVALID_ARG"));
    const int node = indexArg(info[4], "node", "ERR_HWSQ_UNKNOWN_NODE", true);
    const int worker = indexArg(info[5], "worker", "ERR_HWSQ_UNKNOWN_WORKER", true);
    const uint64_t count = static_cast<uint64_t>(integerIn(info[6], "count", 1, kMaxSafeInteger, "ERR_HWSQ_INVALID_COUNT"));
    const bool inside = info[7].ToBoolean().Value();
    if (kind == NativeKind::Touch || kind == NativeKind::Chase) {
      if (!info[2].IsTypedArray()) throw std::invalid_argument(std::string(nativeKindName(kind)) + " tasks need a buffer");
      op->buffer = HeldBytes(info[2]);
      if (op->buffer.size() < 64) throw HwsqRangeError("ERR_HWSQ_BAD_SIZE", std::string(nativeKindName(kind)) + " tasks need a buffer of at least 64 bytes");
      op->args.buffer = op->buffer.data();
      op->args.bytes = op->buffer.size();
    }
    if (node >= 0 && std::find(s.nodeIds.begin(), s.nodeIds.end(), node) == s.nodeIds.end())
      throw HwsqRangeError("ERR_HWSQ_UNKNOWN_NODE", "node " + std::to_string(node) + " has no worker in this runtime (nodes: " + hwsq::detail::joinInts(s.nodeIds) + ")");
    if (worker >= rt.workerCount())
      throw HwsqRangeError("ERR_HWSQ_UNKNOWN_WORKER", "no worker " + std::to_string(worker) + " (this runtime has " + std::to_string(rt.workerCount()) + ")");
    op->node = worker >= 0 && !inside ? -1 : node;
    op->count = count;
    op->remaining.store(op->count, std::memory_order_relaxed);
    op->startNs = nowNs();

    Op* raw = op.release();
    Napi::Promise promise = raw->deferred.Promise();
    s.beginOp(env);
    uint64_t sent = 0;  // tasks (or the root: count) handed to the core
    try {
      if (inside) {
        Task* root = allocTask();
        root->fn = fanOut;
        root->arg = raw;
        root->node = worker >= 0 ? -1 : node;
        root->cancel = fanOutCancel;
        root->doneArg = raw;
        bool ok;
        try {
          ok = worker >= 0 ? rt.submitToWorker(worker, root) : rt.submit(root);
        } catch (...) {
          freeTask(root);
          throw;
        }
        if (ok) sent = raw->count;
        else freeTask(root);
      } else if (worker >= 0) {
        for (; sent < raw->count; ++sent) {
          Task* t = allocTask();
          t->fn = nativeTaskFn(kind);
          t->arg = &raw->args;
          t->done = taskDone;
          t->cancel = taskCancel;
          t->doneArg = raw;
          if (!rt.submitToWorker(worker, t)) {
            freeTask(t);
            break;
          }
        }
      } else {
        submitPooled(rt, TaskTemplate{nativeTaskFn(kind), &raw->args, node, taskDone, taskCancel, raw}, raw->count, sent);
      }
    } catch (...) {
      if (sent == 0) {  // nothing reached the core: undo and throw
        delete raw;
        s.endOp(env);
        throw;
      }
      raw->orphan = true;  // the caller gets the exception, never this promise
      finishTasks(raw, raw->count - sent, true);
      throw;
    }
    if (sent == 0) {
      delete raw;
      s.endOp(env);
      throw closedError(env);
    }
    finishTasks(raw, raw->count - sent, true);  // refused by a concurrent close: dropped
    return promise;
  });
}

// locate() -> Promise<{dropped, locations: [{worker, node, cpu, cpuNode, affinity}]}>: one probe
// task per P (its inbox) reports getcpu() and the thread's affinity.
Napi::Value NativeRuntimeWrap::Locate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State& s = openState(env);
  return guarded(env, [&]() -> Napi::Value {
    Runtime& rt = *s.rt;
    const int n = rt.workerCount();
    auto op = std::make_unique<Op>(Op::Kind::Locate, &s, env);
    op->count = static_cast<uint64_t>(n);
    op->locations.resize(static_cast<size_t>(n));
    op->remaining.store(op->count, std::memory_order_relaxed);
    op->startNs = nowNs();
    std::vector<Task*> tasks;
    try {
      for (int p = 0; p < n; ++p) {
        Task* t = allocTask();
        t->fn = locateFn;
        t->arg = &op->locations[static_cast<size_t>(p)];
        t->done = taskDone;
        t->cancel = taskCancel;
        t->doneArg = op.get();
        tasks.push_back(t);
      }
    } catch (...) {
      for (Task* t : tasks) freeTask(t);
      throw;
    }
    Op* raw = op.release();
    Napi::Promise promise = raw->deferred.Promise();
    s.beginOp(env);
    for (int p = 0; p < n; ++p)
      if (!rt.submitToWorker(p, tasks[static_cast<size_t>(p)])) {
        freeTask(tasks[static_cast<size_t>(p)]);
        finishTasks(raw, 1, true);
      }
    return promise;
  });
}

Napi::Value NativeRuntimeWrap::threadOp(Napi::Env env, Op::Kind kind, void (*body)(Runtime&)) {
  State& s = state();
  return guarded(env, [&]() -> Napi::Value {
    if (!s.tsfnLive) {
      // Stopped and every Op settled (maybeRelease / teardown): the TSFN is released, so no
      // thread may finish an Op any more, and there is nothing left to wait for.
      auto done = Napi::Promise::Deferred::New(env);
      done.Resolve(env.Undefined());
      return done.Promise();
    }
    auto* op = new Op(kind, &s, env);
    Napi::Promise promise = op->deferred.Promise();
    s.beginOp(env);
    Runtime* rt = s.rt.get();
    try {
      op->thread = std::thread([op, rt, body] {
        try {
          body(*rt);
        } catch (const std::exception& e) {
          op->error = e.what();
        }
        op->state->finish(op);
      });
    } catch (...) {
      delete op;
      s.endOp(env);
      throw;
    }
    s.threaded.push_back(op);
    return promise;
  });
}

// idle() -> Promise<void>: every task submitted so far (and what they spawned) has completed.
Napi::Value NativeRuntimeWrap::Idle(const Napi::CallbackInfo& info) {
  return threadOp(info.Env(), Op::Kind::Idle, [](Runtime& rt) { rt.waitIdle(); });
}

// close() -> Promise<void>: refuses new spawns, drains, joins every thread.
Napi::Value NativeRuntimeWrap::Close(const Napi::CallbackInfo& info) {
  state().closing = true;
  return threadOp(info.Env(), Op::Kind::Close, [](Runtime& rt) { rt.close(); });
}

// destroy(): stops now (running tasks finish, queued ones are dropped), joins every thread and
// settles every pending Op before returning.
Napi::Value NativeRuntimeWrap::Destroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State& s = state();
  s.closing = true;
  guarded(env, [&] {
    s.rt->destroy();
    return 0;
  });
  s.joinThreads();
  s.shm.reset();
  s.drain(env);
  return env.Undefined();
}

Napi::Value NativeRuntimeWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value { return statsToJs(env, state().rt->stats()); });
}

Napi::Value NativeRuntimeWrap::IsStopped(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), state().rt->isStopped());
}

// topology() -> { policy, pinned, statsEnabled, workers: [{worker, node, cpus}],
//                 nodes: [{node, workers: [p...], distances: [to nodes[i]]}] }
Napi::Value NativeRuntimeWrap::Topology(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State& s = state();
  const Runtime& rt = *s.rt;
  const RuntimeOptions& o = rt.options();
  std::vector<int> given = o.nodeIds;
  if (given.empty()) {
    for (const WorkerPlacement& w : o.workers) given.push_back(w.node);
    std::sort(given.begin(), given.end());
    given.erase(std::unique(given.begin(), given.end()), given.end());
  }
  auto indexOf = [&](int id) { return static_cast<size_t>(std::find(given.begin(), given.end(), id) - given.begin()); };
  auto distance = [&](int a, int b) {
    if (o.distances.empty()) return a == b ? 10 : 20;
    return o.distances[indexOf(a)][indexOf(b)];
  };
  auto workers = Napi::Array::New(env, o.workers.size());
  for (size_t p = 0; p < o.workers.size(); ++p) workers.Set(static_cast<uint32_t>(p), workerPlacementToJs(env, o, p));
  auto nodes = Napi::Array::New(env, s.nodeIds.size());
  for (size_t i = 0; i < s.nodeIds.size(); ++i) {
    const int id = s.nodeIds[i];
    auto n = Napi::Object::New(env);
    n.Set("node", id);
    auto ps = Napi::Array::New(env);
    for (size_t p = 0; p < o.workers.size(); ++p)
      if (o.workers[p].node == id) ps.Set(ps.Length(), static_cast<double>(p));
    n.Set("workers", ps);
    auto d = Napi::Array::New(env, s.nodeIds.size());
    for (size_t j = 0; j < s.nodeIds.size(); ++j) d.Set(static_cast<uint32_t>(j), distance(id, s.nodeIds[j]));
    n.Set("distances", d);
    nodes.Set(static_cast<uint32_t>(i), n);
  }
  auto out = Napi::Object::New(env);
  out.Set("policy", stealPolicyName(o.policy));
  out.Set("pinned", o.pin);
  out.Set("statsEnabled", o.stats);
  out.Set("workers", workers);
  out.Set("nodes", nodes);
  return out;
}

// ------------------------------------------------------------------ free functions

// prepareChase(view, seed): one random cycle over the buffer's cache lines (for 'chase' tasks).
Napi::Value PrepareChase(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const ByteRange bytes = bytesOf(info[0]);
    prepareChase(bytes.data, bytes.length, static_cast<uint64_t>(integerIn(info[1], "seed", 0, kMaxSafeInteger, "ERR_HWSQ_INVALID_ARG")));
    return env.Undefined();
  });
}

struct BenchRoot {
  Runtime* rt;
  uint64_t n;
};
void benchRootFn(void* p) {
  auto* b = static_cast<BenchRoot*>(p);
  uint64_t sent = 0;
  try {
    submitPooled(*b->rt, TaskTemplate{nativeTaskFn(NativeKind::Noop), nullptr, -1, nullptr, nullptr, nullptr}, b->n, sent);
  } catch (...) {
  }
}

// benchSpawn(config, mode, tasks, reps) -> { mode, tasks, reps, nsPerTask, bestNsPerTask, samplesNs }
// The C++ spawn loop of bench/native/spawn.cpp, in this process, on a runtime built from config
// (blocks the calling thread). Timed: submit all `tasks` no-op tasks + wait until all completed;
// median of `reps` after a warm-up of tasks/10.
//   mode 'external': from this thread in batches of 256 pooled tasks (hwsq_external_batch256)
//   mode 'inside':   one task spawns them all from a P, LRQ tail (hwsq_inside_tail)
Napi::Value BenchSpawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    RuntimeOptions opts = schedulerOptionsFromJs(info[0].As<Napi::Object>());
    const std::string mode = info[1].As<Napi::String>().Utf8Value();
    const uint64_t tasks = static_cast<uint64_t>(integerIn(info[2], "tasks", 1, kMaxSafeInteger, "ERR_HWSQ_INVALID_COUNT"));
    const int reps = intIn(info[3], "reps", 1, 1 << 20, "ERR_HWSQ_INVALID_COUNT");
    if (mode != "external" && mode != "inside") throw HwsqRangeError("ERR_HWSQ_INVALID_OPTION", "mode must be 'external' or 'inside'");
    Runtime rt(std::move(opts));
    // `shm` in config: published like any runtime (bench spawn measures the cost against off).
    hwsq::shm::Registration published = publishIfEnabled(info[0].As<Napi::Object>(), rt, hwsq::shm::RuntimeKind::Native);
    auto body = [&](uint64_t n) {
      if (mode == "external") {
        uint64_t sent = 0;
        submitPooled(rt, TaskTemplate{nativeTaskFn(NativeKind::Noop), nullptr, -1, nullptr, nullptr, nullptr}, n, sent);
      } else {
        BenchRoot b{&rt, n};
        Task root(benchRootFn, &b);
        rt.submit(&root);
      }
      rt.waitIdle();
    };
    body(std::max<uint64_t>(1, tasks / 10));  // warm-up: task pool, queues, page faults
    std::vector<double> xs;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      body(tasks);
      xs.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / static_cast<double>(tasks));
    }
    rt.close();
    auto samples = Napi::Array::New(env, xs.size());
    for (size_t i = 0; i < xs.size(); ++i) samples.Set(static_cast<uint32_t>(i), xs[i]);
    std::sort(xs.begin(), xs.end());
    auto out = Napi::Object::New(env);
    out.Set("mode", mode);
    out.Set("tasks", static_cast<double>(tasks));
    out.Set("reps", reps);
    out.Set("workers", rt.workerCount());
    out.Set("nsPerTask", xs[xs.size() / 2]);
    out.Set("bestNsPerTask", xs[0]);
    out.Set("samplesNs", samples);
    return out;
  });
}

}  // namespace

void initNativeRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeRuntime", NativeRuntimeWrap::Define(env));
  exports.Set("prepareChase", Napi::Function::New(env, PrepareChase));
  exports.Set("benchSpawn", Napi::Function::New(env, BenchSpawn));
}

}  // namespace hwsq::napi
