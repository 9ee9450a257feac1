// A JS task's transitions (the states and who owns the task in each: js_task.h): creation and
// submission, the run on a P (trampoline), completion, requeue, cancellation, exit.
#include "js_task.h"

#include <napi.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "args_js.h"
#include "errors.h"
#include "js_endpoint.h"
#include "js_runtime.h"

namespace hwsq::js {

using namespace hwsq::sched;
// The wire protocol (flags, codes, record layouts): wire.h.
using namespace hwsq::wire;

JsTask* taskOf(double h) {
  if (!(h > 0 && h <= static_cast<double>(hwsq::napi::kMaxSafeInteger)) || h != static_cast<double>(static_cast<uint64_t>(h)))
    throw std::invalid_argument("invalid task handle");
  auto* t = reinterpret_cast<JsTask*>(static_cast<uintptr_t>(h));
  if (t->magic != kMagic) throw std::invalid_argument("invalid task handle");
  return t;
}

void completeWith(Endpoint* ep, JsTask* t, int r, const uint8_t* bytes, size_t cap) {
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

namespace {

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

// The node: 'auto' choices of queued tasks (flags read before the push: once queued, another
// thread may run and free the task), into the runtime's counters.
void countPlacement(JsRuntime* rt, uint64_t byMemory, uint64_t fallback) {
  if (byMemory) rt->affineByMemory.fetch_add(byMemory, std::memory_order_relaxed);
  if (fallback) rt->affineFallback.fetch_add(fallback, std::memory_order_relaxed);
}

}  // namespace

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

// Batch records in the io scratch: [fnIndex u32][flags u32][node i32][len u32][seq f64][bytes].
std::vector<JsTask*> readBatch(JsRuntime* rt, const std::shared_ptr<Endpoint>& origin, uint32_t count, uint32_t extraFlags) {
  std::vector<JsTask*> tasks;
  tasks.reserve(count);
  const uint8_t* p = origin->io;
  const uint8_t* end = origin->io + origin->ioCap;
  try {
    for (uint32_t i = 0; i < count; ++i) {
      BatchRecord r;
      if (!readBatchRecord(p, end, r)) throw std::invalid_argument("batch overruns the scratch buffer");
      if (r.node < -1) throw HwsqRangeError("ERR_HWSQ_UNKNOWN_NODE", "node " + std::to_string(r.node) + " is not a node id");
      tasks.push_back(newTask(rt, origin, r.fn, r.seq, r.flags | extraFlags, r.node, r.bytes, r.len));
      p = r.bytes + r.len;
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

}  // namespace hwsq::js
