// NativeRuntime: a hwsq::sched::Runtime driven from JS with the built-in native task kinds
// (noop, spin, touch, chase). Its N-API surface: the wrapper class, prepareChase and benchSpawn.
// Marshalling only: option types are checked in lib/native-runtime/native-runtime.ts, semantics
// (nodes, policies, kinds) in the core, errors mapped by errors_js.h. What a call that completes
// later becomes (an Op), how it is delivered back and settled, and the runtime's lifetime:
// native_ops.h.
#include "runtime_binding.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "affinity.h"
#include "errors.h"
#include "errors_js.h"
#include "native_ops.h"
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
    op->kindFn = nativeTaskFn(kind);
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
        submitLightBatch(rt, &kOpTaskOps, raw, node, raw->count, sent);
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
      hwsq::nameThread(op->thread, "hwsq-op");
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
    submitLightBatch(*b->rt, &kNoopTaskOps, nullptr, -1, b->n, sent);
  } catch (...) {
  }
}

// benchSpawn(config, mode, tasks, reps, warmupTasks?) -> { mode, tasks, reps, nsPerTask, bestNsPerTask, cpuNsPerTask, samplesNs }
// The C++ spawn loop of bench/native/spawn.cpp, in this process, on a runtime built from config
// (blocks the calling thread). Timed: submit all `tasks` no-op tasks + wait until all completed;
// median of `reps` after an untimed warm-up of warmupTasks (default tasks/10); cpuNsPerTask: the process's CPU time per task, median.
//   mode 'external': from this thread in batches of 256 light tasks (hwsq_external_batch256)
//   mode 'inside':   one task spawns them all from a P, LRQ tail (hwsq_inside_tail)
Napi::Value BenchSpawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    RuntimeOptions opts = schedulerOptionsFromJs(info[0].As<Napi::Object>());
    const std::string mode = info[1].As<Napi::String>().Utf8Value();
    const uint64_t tasks = static_cast<uint64_t>(integerIn(info[2], "tasks", 1, kMaxSafeInteger, "ERR_HWSQ_INVALID_COUNT"));
    const int reps = intIn(info[3], "reps", 1, 1 << 20, "ERR_HWSQ_INVALID_COUNT");
    if (mode != "external" && mode != "inside") throw HwsqRangeError("ERR_HWSQ_INVALID_OPTION", "mode must be 'external' or 'inside'");
    const uint64_t warmup = info.Length() > 4 && !info[4].IsUndefined()
                                ? static_cast<uint64_t>(integerIn(info[4], "warmupTasks", 1, kMaxSafeInteger, "ERR_HWSQ_INVALID_COUNT"))
                                : std::max<uint64_t>(1, tasks / 10);
    Runtime rt(std::move(opts));
    // `shm` in config: published like any runtime (bench spawn measures the cost against off).
    hwsq::shm::Registration published = publishIfEnabled(info[0].As<Napi::Object>(), rt, hwsq::shm::RuntimeKind::Native);
    auto body = [&](uint64_t n) {
      if (mode == "external") {
        uint64_t sent = 0;
        submitLightBatch(rt, &kNoopTaskOps, nullptr, -1, n, sent);
      } else {
        BenchRoot b{&rt, n};
        Task root(benchRootFn, &b);
        rt.submit(&root);
      }
      rt.waitIdle();
    };
    body(warmup);  // untimed: task pool, queues, page faults
    // The process's CPU time too (every thread, spinning included): other load on the machine
    // moves it far less than wall-clock time.
    auto processCpuNs = [] {
      timespec ts{};
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
      return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
    };
    std::vector<double> xs, cpu;
    for (int r = 0; r < reps; ++r) {
      const double c0 = processCpuNs();
      const auto t0 = std::chrono::steady_clock::now();
      body(tasks);
      xs.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / static_cast<double>(tasks));
      cpu.push_back((processCpuNs() - c0) / static_cast<double>(tasks));
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
    std::sort(cpu.begin(), cpu.end());
    out.Set("cpuNsPerTask", cpu[cpu.size() / 2]);
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
