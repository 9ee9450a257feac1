// NativeRuntime's operations (native_ops.h): light-task batch submission, the task callbacks that
// finish an Op, and State, which delivers finished Ops to the JS thread and settles them.
#include "native_ops.h"

#include <algorithm>

#include "affinity.h"
#include "errors_js.h"
#include "sched/clock.h"
#include "sched/task_pool.h"

namespace hwsq::napi {

using namespace hwsq::sched;

void submitLightBatch(Runtime& rt, const TaskOps* ops, void* arg, int node, uint64_t n, uint64_t& sent) {
  void* args[Runtime::kLightBatchMax];
  std::fill(std::begin(args), std::end(args), arg);
  sent = 0;
  while (sent < n) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(Runtime::kLightBatchMax, n - sent));
    if (rt.spawnLight(ops, args, k, node, SpawnHint::Tail) != k) return;  // all or nothing
    sent += k;
  }
}

const TaskOps kNoopTaskOps{nativeTaskFn(NativeKind::Noop), nullptr, nullptr, nullptr};

// Counts n tasks of op as finished (run, or dropped without running).
void finishTasks(Op* op, uint64_t n, bool dropped) {
  if (n == 0) return;
  if (dropped) op->dropped.fetch_add(n, std::memory_order_relaxed);
  if (op->remaining.fetch_sub(n, std::memory_order_acq_rel) == n) op->state->finish(op);
}

void taskDone(void* p) { finishTasks(static_cast<Op*>(p), 1, false); }
void taskCancel(void* p) { finishTasks(static_cast<Op*>(p), 1, true); }

namespace {
void runOpTask(void* p) {
  Op* op = static_cast<Op*>(p);
  op->kindFn(&op->args);
}
void opTasksDone(void* p, uint64_t n) { finishTasks(static_cast<Op*>(p), n, false); }
}  // namespace
// Completions coalesced per P (TaskOps::doneMany): one update of the Op's shared counter per run
// of its tasks on a P, not one per task, which both Ps' cores would pass back and forth.
const TaskOps kOpTaskOps{runOpTask, nullptr, taskCancel, opTasksDone};

// Root of an `inside` spawn: runs on a P and spawns the Op's tasks into that P's LRQ.
void fanOut(void* p) {
  Op* op = static_cast<Op*>(p);
  // Read before submitting: once every child has run, the JS thread may settle and free op.
  const uint64_t count = op->count;
  const int node = op->node;
  uint64_t sent = 0;
  try {
    submitLightBatch(*Runtime::current(), &kOpTaskOps, op, node, count, sent);
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

namespace {

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

}  // namespace

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

}  // namespace hwsq::napi
