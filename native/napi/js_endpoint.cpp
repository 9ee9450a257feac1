// Endpoint plumbing (js_endpoint.h): the uv handles of each JS thread, completion and abort
// delivery, driving a worker's P from its event loop, and opening and closing endpoints.
#include "js_endpoint.h"

#include <stdexcept>

#include "js_runtime.h"
#include "options_js.h"
#include "sched/clock.h"

namespace hwsq::js {

using namespace hwsq::sched;
using namespace hwsq::wire;

thread_local Endpoint* tlEndpoint = nullptr;

napi_value refValue(napi_env env, napi_ref ref) {
  napi_value v = nullptr;
  return napi_get_reference_value(env, ref, &v) == napi_ok ? v : nullptr;
}

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

namespace {

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

}  // namespace

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
      writeCompletion(ep->in + off, t->seq, t->code, t->data.data(), static_cast<uint32_t>(t->data.size()));
      off += need;
      ++count;
    }
    ep->rt->freeTask(t);
  }
  if (ok) ok = flush();
  return ok;
}

namespace {

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

}  // namespace

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

namespace {

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

}  // namespace

// On the endpoint's own thread: no more completions, the handle closes, JS references go.
void closeEndpoint(Endpoint* ep) {
  if (!ep->async) return;  // closed already (the handle is owner-thread state; `alive` is not: workerExited)
  JsTask* list;
  {
    std::lock_guard<std::mutex> lk(ep->mu);
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

namespace {

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

// The thread's env is being torn down: workers report and detach; the owner (main) thread
// destroys the runtime (its Workers are gone by now) instead of leaving its threads behind.
void endpointCleanupHook(napi_async_cleanup_hook_handle, void* arg) {
  auto* ep = static_cast<Endpoint*>(arg);
  // Closed already (its runtime may be gone): the handle's close callback removes this hook.
  // Keyed on the handle, not on `alive`: an env waits for this hook until it is removed, so
  // an endpoint whose handle is still open must close it here whatever else happened.
  if (!ep->async) return;
  if (ep->worker >= 0) workerTeardown(ep);
  else if (!ep->rt->destroying) destroyRuntime(ep->rt, false);
  else closeEndpoint(ep);
}

}  // namespace

// ------------------------------------------------------------------ opening, for js_binding.cpp

void openMainEndpoint(Napi::Env env, JsRuntime* rt, Napi::Function onCompletions, Napi::Uint8Array in, Napi::Uint8Array io) {
  auto ep = std::make_shared<Endpoint>();
  ep->rt = rt;
  initEndpoint(env, ep, onCompletions, in, io, "hwsq.runtime");
  uv_unref(reinterpret_cast<uv_handle_t*>(ep->async));
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  ep->idle = new uv_idle_t();
  ep->idle->data = ep.get();
  uv_idle_init(loop, ep->idle);
  uv_unref(reinterpret_cast<uv_handle_t*>(ep->idle));
  rt->mainEp = ep;
}

void refMainEndpoint(JsRuntime* rt, bool ref) {
  if (rt->mainEp && rt->mainEp->async) {
    auto* h = reinterpret_cast<uv_handle_t*>(rt->mainEp->async);
    if (ref) uv_ref(h);
    else uv_unref(h);
  }
}

void openWorkerEndpoint(Napi::Env env, const std::shared_ptr<JsRuntime>& rt, int p, double threadId, Napi::Function dispatcher,
                        Napi::Function onCompletions, Napi::Function onAbort, const Napi::Value& in, const Napi::Value& io,
                        const Napi::Value& startedArg) {
  auto ep = std::make_shared<Endpoint>();
  ep->rt = rt.get();
  ep->worker = p;
  ep->threadId = threadId;
  ep->dispatcher = Napi::Persistent(dispatcher);
  ep->onAbort = Napi::Persistent(onAbort);
  if (!startedArg.IsTypedArray()) throw std::invalid_argument("attach() needs the started flag");
  auto started = startedArg.As<Napi::Uint8Array>();
  if (started.ByteLength() < 1) throw std::invalid_argument("attach() needs the started flag");
  ep->started = started.Data();
  ep->startedRef = Napi::Persistent(started.As<Napi::Object>());
  initEndpoint(env, ep, onCompletions, in.As<Napi::Uint8Array>(), io.As<Napi::Uint8Array>(), "hwsq.worker");
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
}

void workerExited(JsRuntime* rt, int p, double threadId) {
  std::shared_ptr<Endpoint> ep;
  {
    std::lock_guard<std::mutex> lk(rt->epMu);
    if (p < 0 || static_cast<size_t>(p) >= rt->workerEps.size()) return;
    std::shared_ptr<Endpoint>& slot = rt->workerEps[p];
    // Another worker attached to P p since: its endpoint and its P are live, not ours to touch
    // (the runtime starts a P's next worker only after the last one's 'exit'; this is the guard
    // should an 'exit' ever arrive late).
    if (slot && slot->threadId != threadId) return;
    ep = std::move(slot);
  }
  if (ep) {  // no cleanup ran: the thread is gone, so its owner state is ours now
    reportExited(ep.get());
    std::lock_guard<std::mutex> lk(ep->mu);
    ep->alive = false;  // its uv handle belonged to the dead loop: never touch it again
  }
  rt->core->reclaim(p);
}

}  // namespace hwsq::js
