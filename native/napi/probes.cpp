// N-API surface of the probes (native/core/probes) used by `hwsq bench memory` and
// `hwsq bench compare` (lib/bench/*.ts): exports.probes = { prepareChase, adviseHugePages,
// hugePageBytes, latency, bandwidth, placement, cancel }. The measurements run on libuv's thread
// pool (AsyncWorker) and resolve promises, so the event loop stays free for the progress bar and
// Ctrl-C; cancel() stops every running probe at its next check. Buffers passed in are held by
// references until the work is done. Types are checked in lib/bench; this layer only marshals.
#include <napi.h>

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bytes_js.h"
#include "errors_js.h"
#include "parallelism.h"
#include "probes/memory_probe.h"
#include "probes/placement_probe.h"
#include "sched/placement.h"
#include "stats_js.h"
#include "topology.h"

namespace hwsq::js {

namespace {

using hwsq::napi::guarded;
using hwsq::napi::ByteRange;
using hwsq::napi::bytesOf;
namespace pr = hwsq::probes;

// Runs work() on the thread pool and settles a promise with toJs(result) or the typed error
// (errors_js.h) of what it threw. `keep` values stay referenced until then.
template <class R>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<R()>;
  using ToJs = std::function<Napi::Value(Napi::Env, R&)>;

  static Napi::Promise start(Napi::Env env, Work work, ToJs toJs, const std::vector<Napi::Value>& keep) {
    auto* w = new PromiseWorker(env, std::move(work), std::move(toJs), keep);
    Napi::Promise p = w->deferred_.Promise();
    w->Queue();
    return p;
  }

 protected:
  void Execute() override {
    try {
      result_ = work_();
    } catch (...) {
      error_ = std::current_exception();
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      if (error_) {
        guarded(env, [&]() -> int { std::rethrow_exception(error_); });
      }
      deferred_.Resolve(toJs_(env, result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  PromiseWorker(Napi::Env env, Work work, ToJs toJs, const std::vector<Napi::Value>& keep)
      : Napi::AsyncWorker(env, "hwsq.probe"), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), toJs_(std::move(toJs)) {
    for (const Napi::Value& v : keep) refs_.push_back(Napi::Persistent(v));
  }

  Napi::Promise::Deferred deferred_;
  Work work_;
  ToJs toJs_;
  R result_{};
  std::exception_ptr error_;
  std::vector<Napi::Reference<Napi::Value>> refs_;
};

double num(const Napi::Object& o, const char* key, double def) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
}

template <class T>
Napi::Array numbers(Napi::Env env, const std::vector<T>& values) {
  auto a = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(values[i])));
  return a;
}

template <class T>
Napi::Array matrix(Napi::Env env, const std::vector<std::vector<T>>& rows) {
  auto a = Napi::Array::New(env, rows.size());
  for (size_t i = 0; i < rows.size(); ++i) a.Set(static_cast<uint32_t>(i), numbers(env, rows[i]));
  return a;
}

// prepareChase(view, seed) -> Promise<lines>
Napi::Value PrepareChase(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    ByteRange b = bytesOf(info[0]);
    const uint64_t seed = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
    return PromiseWorker<size_t>::start(
        env, [b, seed] { return pr::preparePointerChase(b.data, b.length, seed); },
        [](Napi::Env e, size_t& lines) -> Napi::Value { return Napi::Number::New(e, static_cast<double>(lines)); }, {info[0]});
  });
}

// adviseHugePages(view) -> { alignedOffset, alignedBytes, advised, collapsed, collapseErrno }
Napi::Value AdviseHugePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    ByteRange b = bytesOf(info[0]);
    pr::HugePageAdvice a = pr::adviseHugePages(b.data, b.length);
    auto o = Napi::Object::New(env);
    o.Set("alignedOffset", Napi::Number::New(env, static_cast<double>(a.alignedOffset)));
    o.Set("alignedBytes", Napi::Number::New(env, static_cast<double>(a.alignedBytes)));
    o.Set("advised", a.advised);
    o.Set("collapsed", a.collapsed);
    o.Set("collapseErrno", a.collapseErrno);
    return o;
  });
}

// hugePageBytes(view) -> bytes backed by transparent huge pages (-1: unknown)
Napi::Value HugePageBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    ByteRange b = bytesOf(info[0]);
    return Napi::Number::New(env, static_cast<double>(pr::hugePageBytes(b.data, b.length)));
  });
}

// latency({ view, cpu, durationNs, samples, warmupLoads }) -> Promise<LatencyResult>
Napi::Value Latency(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = info[0].As<Napi::Object>();
    ByteRange b = bytesOf(o.Get("view"));
    pr::LatencyOptions lo;
    lo.buffer = b.data;
    lo.bytes = b.length;
    lo.cpu = static_cast<int>(num(o, "cpu", -1));
    lo.durationNs = static_cast<uint64_t>(num(o, "durationNs", 1e8));
    lo.samples = static_cast<int>(num(o, "samples", 5));
    lo.warmupLoads = static_cast<uint64_t>(num(o, "warmupLoads", 0));
    return PromiseWorker<pr::LatencyResult>::start(
        env, [lo] { return pr::measureLatency(lo); },
        [](Napi::Env e, pr::LatencyResult& r) -> Napi::Value {
          auto out = Napi::Object::New(e);
          out.Set("nsPerLoad", numbers(e, r.nsPerLoad));
          out.Set("loads", numbers(e, r.loads));
          out.Set("cpu", r.cpu);
          out.Set("cpuNode", r.cpuNode);
          out.Set("cancelled", r.cancelled);
          return out;
        },
        {o});
  });
}

// bandwidth({ view, cpus, durationNs, samples, warmupNs }) -> Promise<BandwidthResult>
Napi::Value Bandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = info[0].As<Napi::Object>();
    ByteRange b = bytesOf(o.Get("view"));
    pr::BandwidthOptions bo;
    bo.buffer = b.data;
    bo.bytes = b.length;
    auto cpus = o.Get("cpus").As<Napi::Array>();
    for (uint32_t i = 0; i < cpus.Length(); ++i) bo.cpus.push_back(cpus.Get(i).As<Napi::Number>().Int32Value());
    bo.durationNs = static_cast<uint64_t>(num(o, "durationNs", 1e8));
    bo.samples = static_cast<int>(num(o, "samples", 5));
    bo.warmupNs = static_cast<uint64_t>(num(o, "warmupNs", 0));
    return PromiseWorker<pr::BandwidthResult>::start(
        env, [bo] { return pr::measureBandwidth(bo); },
        [](Napi::Env e, pr::BandwidthResult& r) -> Napi::Value {
          auto out = Napi::Object::New(e);
          out.Set("bytesPerSec", numbers(e, r.bytesPerSec));
          out.Set("bytesRead", numbers(e, r.bytesRead));
          out.Set("seconds", numbers(e, r.seconds));
          out.Set("threads", r.threads);
          out.Set("cancelled", r.cancelled);
          return out;
        },
        {o});
  });
}

// The probe runtime's Ps: the machine's topology spread like NativeRuntime's 'spread' placement.
sched::RuntimeOptions probeRuntimeOptions(const Napi::Object& c) {
  const std::string pin = c.Get("pin").IsString() ? c.Get("pin").As<Napi::String>().Utf8Value() : "node";
  const sched::PinMode mode = pin == "cpu" ? sched::PinMode::Cpu : pin == "none" ? sched::PinMode::None : sched::PinMode::Node;
  hwsq::Topology topo = readTopology("");
  if (topo.allowedCpus.empty()) throw UnsupportedError("the compare workload needs Linux sysfs topology");
  int workers = static_cast<int>(num(c, "workers", 0));
  if (workers <= 0) workers = readParallelism("", static_cast<int>(topo.allowedCpus.size())).value;
  sched::RuntimeOptions o = sched::optionsFromTopology(topo, workers, mode);
  o.policy = sched::parseStealPolicy(c.Get("policy").IsString() ? c.Get("policy").As<Napi::String>().Utf8Value() : "hierarchical");
  o.sysmon = false;
  return o;
}

// placement({ workers, pin, policy, tasksPerNode, bytesPerTask, warmupTasksPerNode,
//             buffers: [{ node, view, pageNodes: Int32Array, pageSize }] }) -> Promise<...>
Napi::Value Placement(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object c = info[0].As<Napi::Object>();
    pr::PlacementWorkloadOptions po;
    po.runtime = probeRuntimeOptions(c);
    po.tasksPerNode = static_cast<uint64_t>(num(c, "tasksPerNode", 10000));
    po.bytesPerTask = static_cast<size_t>(num(c, "bytesPerTask", 16384));
    po.warmupTasksPerNode = static_cast<uint64_t>(num(c, "warmupTasksPerNode", 0));
    auto buffers = c.Get("buffers").As<Napi::Array>();
    for (uint32_t i = 0; i < buffers.Length(); ++i) {
      Napi::Object b = buffers.Get(i).As<Napi::Object>();
      ByteRange bytes = bytesOf(b.Get("view"));
      pr::HomeBuffer h;
      h.node = static_cast<int>(num(b, "node", -1));
      h.data = bytes.data;
      h.bytes = bytes.length;
      h.pageSize = static_cast<size_t>(num(b, "pageSize", 4096));
      auto pages = b.Get("pageNodes").As<Napi::Int32Array>();
      h.pageNodes.assign(pages.Data(), pages.Data() + pages.ElementLength());
      po.buffers.push_back(std::move(h));
    }
    return PromiseWorker<pr::PlacementResult>::start(
        env, [po] { return pr::runPlacementWorkload(po); },
        [](Napi::Env e, pr::PlacementResult& r) -> Napi::Value {
          auto out = Napi::Object::New(e);
          out.Set("nodes", numbers(e, r.nodes));
          out.Set("tasksByCpuNodeAndHome", matrix(e, r.tasksByCpuNodeAndHome));
          out.Set("bytesByCpuNodeAndMemory", matrix(e, r.bytesByCpuNodeAndMemory));
          out.Set("unknownMemoryBytes", Napi::Number::New(e, static_cast<double>(r.unknownMemoryBytes)));
          out.Set("tasks", Napi::Number::New(e, static_cast<double>(r.tasks)));
          out.Set("remoteTasks", Napi::Number::New(e, static_cast<double>(r.remoteTasks)));
          out.Set("remoteWhileOwnQueued", Napi::Number::New(e, static_cast<double>(r.remoteWhileOwnQueued)));
          out.Set("remotePickups", Napi::Number::New(e, static_cast<double>(r.remotePickups)));
          out.Set("remotePickupsWhileOwnQueued", Napi::Number::New(e, static_cast<double>(r.remotePickupsWhileOwnQueued)));
          out.Set("cpuNodeMismatch", Napi::Number::New(e, static_cast<double>(r.cpuNodeMismatch)));
          out.Set("elapsedNs", Napi::Number::New(e, static_cast<double>(r.elapsedNs)));
          out.Set("cancelled", r.cancelled);
          out.Set("workerNodes", numbers(e, r.workerNodes));
          out.Set("before", hwsq::napi::statsToJs(e, r.before));
          out.Set("after", hwsq::napi::statsToJs(e, r.after));
          return out;
        },
        {c});
  });
}

Napi::Value Cancel(const Napi::CallbackInfo& info) {
  pr::ProbeCancel::cancelAll();
  return info.Env().Undefined();
}

}  // namespace

// Adds exports.probes (see the file comment).
void registerProbes(Napi::Env env, Napi::Object exports) {
  auto probes = Napi::Object::New(env);
  probes.Set("prepareChase", Napi::Function::New(env, PrepareChase));
  probes.Set("adviseHugePages", Napi::Function::New(env, AdviseHugePages));
  probes.Set("hugePageBytes", Napi::Function::New(env, HugePageBytes));
  probes.Set("latency", Napi::Function::New(env, Latency));
  probes.Set("bandwidth", Napi::Function::New(env, Bandwidth));
  probes.Set("placement", Napi::Function::New(env, Placement));
  probes.Set("cancel", Napi::Function::New(env, Cancel));
  exports.Set("probes", probes);
}

}  // namespace hwsq::js
