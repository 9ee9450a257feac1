// The N-API surface of the JS-task runtime: binding.jsRuntime (typed in lib/core/js-binding.ts),
// each exported function with its argument checks (create() also assembles the runtime from its
// config), and nothing else: the task states are in js_task.cpp, the uv plumbing of each JS
// thread in js_endpoint.cpp, the runtime's state and teardown in js_runtime.cpp, the bytes that
// cross in wire.h (js_runtime.h says which is where).
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "args_js.h"
#include "errors.h"
#include "errors_js.h"
#include "js_endpoint.h"
#include "js_runtime.h"
#include "js_task.h"
#include "node_memory.h"
#include "options_js.h"
#include "sched/clock.h"
#include "sched/scheduler.h"
#include "shm_js.h"
#include "stats_js.h"
#include "wire.h"

namespace hwsq::js {

using namespace hwsq::sched;
// The wire protocol (flags, codes, record layouts): wire.h.
using namespace hwsq::wire;
using hwsq::napi::guarded;
using hwsq::napi::statsToJs;

namespace {

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
    // histograms' counts exact (the native default times 1 in 256, for tasks of nanoseconds).
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
    registerRuntime(rt);
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
    openMainEndpoint(env, rt, info[1].As<Napi::Function>(), info[2].As<Napi::Uint8Array>(), info[3].As<Napi::Uint8Array>());
    return env.Undefined();
  });
}

Napi::Value Ref(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    JsRuntime* rt = unwrap(info[0]);
    refMainEndpoint(rt, info[1].ToBoolean().Value());
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

// submitMany(rt, count) -> count submitted (0: closed).
Napi::Value SubmitMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    JsRuntime* rt = unwrap(info[0]);
    auto tasks = readBatch(rt, rt->mainEp, u32Arg(info[1], "count"), kFlagRoot);
    return Napi::Number::New(env, static_cast<double>(submitBatch(rt, tasks, SpawnHint::Tail)));
  });
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

// workerExited(rt, p, threadId): after the Worker of P p exited (its thread is joined). Normally
// its env cleanup already did everything; this covers a thread that ended without it.
Napi::Value WorkerExited(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    JsRuntime* rt = unwrap(info[0]);
    hwsq::napi::requireNumber(info[2], "threadId");
    workerExited(rt, workerArg(rt, info[1]), info[2].As<Napi::Number>().DoubleValue());
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
    hwsq::napi::requireNumber(info[8], "threadId");
    openWorkerEndpoint(env, rt, p, info[8].As<Napi::Number>().DoubleValue(), info[2].As<Napi::Function>(),
                       info[3].As<Napi::Function>(), info[4].As<Napi::Function>(), info[5], info[6], info[7]);
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
