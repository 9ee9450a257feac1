// N-API surface of the probes (native/core/probes) used by `hwsq bench memory` and
// `hwsq bench compare` (lib/bench/*.ts): exports.probes = { prepareChase, adviseHugePages,
// hugePageBytes, latency, bandwidth, placement, cancel }. The measurements run on libuv's thread
// pool (AsyncWorker) and resolve promises, so the event loop stays free for the progress bar and
// Ctrl-C; cancel() stops every running probe at its next check. Buffers passed in are held as
// HeldBytes (bytes_js.h) until the work is done, in place or refused (a probe measures memory
// where it is, and a pointer chase stores addresses): the memory a probe reads on the thread
// pool cannot be freed or shrunk by JS meanwhile. Types are checked in lib/bench; this layer only
// marshals, and refuses numbers that do not fit (args_js.h).
#include <napi.h>

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "args_js.h"
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
using hwsq::napi::HeldBytes;
using hwsq::napi::integerIn;
using hwsq::napi::kMaxSafeInteger;
namespace pr = hwsq::probes;

// Runs work() on the thread pool and settles a promise with toJs(result) or the typed error
// (errors_js.h) of what it threw. `held` buffers stay held until then.
template <class R>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<R()>;
  using ToJs = std::function<Napi::Value(Napi::Env, R&)>;

  static Napi::Promise start(Napi::Env env, Work work, ToJs toJs, std::vector<HeldBytes> held) {
    auto* w = new PromiseWorker(env, std::move(work), std::move(toJs), std::move(held));
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
  PromiseWorker(Napi::Env env, Work work, ToJs toJs, std::vector<HeldBytes> held)
      : Napi::AsyncWorker(env, "hwsq.probe"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        toJs_(std::move(toJs)),
        held_(std::move(held)) {}

  Napi::Promise::Deferred deferred_;
  Work work_;
  ToJs toJs_;
  R result_{};
  std::exception_ptr error_;
  std::vector<HeldBytes> held_;
};

// One buffer to hold for a probe; the probes need at least one cache line.
std::vector<HeldBytes> holdOne(const Napi::Value& view, uint8_t*& data, size_t& bytes) {
  std::vector<HeldBytes> held;
  held.emplace_back(view, HeldBytes::Otherwise::Refuse);
  data = held.back().data();
  bytes = held.back().size();
  if (bytes < 64) throw HwsqRangeError("ERR_HWSQ_BAD_SIZE", "the buffer must hold at least 64 bytes");
  return held;
}

// Optional fields (def when absent), refused rather than wrapped: ids and counts are integers in
// [min, max]; amounts (durations, loads) are non-negative numbers, rounded down.
int64_t num(const Napi::Object& o, const char* key, int64_t def, int64_t min = 0, int64_t max = kMaxSafeInteger) {
  return hwsq::napi::integerField(o, key, def, min, max, "ERR_HWSQ_INVALID_ARG");
}
uint64_t amount(const Napi::Object& o, const char* key, uint64_t def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return def;
  return static_cast<uint64_t>(hwsq::napi::numberIn(v, key, 0, static_cast<double>(kMaxSafeInteger), "ERR_HWSQ_INVALID_ARG"));
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
    const uint64_t seed = static_cast<uint64_t>(integerIn(info[1], "seed", 0, kMaxSafeInteger, "ERR_HWSQ_INVALID_ARG"));
    uint8_t* data = nullptr;
    size_t bytes = 0;
    auto held = holdOne(info[0], data, bytes);
    return PromiseWorker<size_t>::start(
        env, [data, bytes, seed] { return pr::preparePointerChase(data, bytes, seed); },
        [](Napi::Env e, size_t& lines) -> Napi::Value { return Napi::Number::New(e, static_cast<double>(lines)); }, std::move(held));
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
    pr::LatencyOptions lo;
    uint8_t* data = nullptr;
    auto held = holdOne(o.Get("view"), data, lo.bytes);
    lo.buffer = data;
    lo.cpu = static_cast<int>(num(o, "cpu", -1, -1, INT_MAX));
    lo.durationNs = static_cast<uint64_t>(amount(o, "durationNs", 100'000'000));
    lo.samples = static_cast<int>(num(o, "samples", 5, 1, INT_MAX));
    lo.warmupLoads = static_cast<uint64_t>(amount(o, "warmupLoads", 0));
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
        std::move(held));
  });
}

// bandwidth({ view, cpus, durationNs, samples, warmupNs }) -> Promise<BandwidthResult>
Napi::Value Bandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = info[0].As<Napi::Object>();
    pr::BandwidthOptions bo;
    uint8_t* data = nullptr;
    auto held = holdOne(o.Get("view"), data, bo.bytes);
    bo.buffer = data;
    bo.cpus = hwsq::napi::indexList(o.Get("cpus"), "cpus", "ERR_HWSQ_CPU_OUT_OF_RANGE");
    bo.durationNs = static_cast<uint64_t>(amount(o, "durationNs", 100'000'000));
    bo.samples = static_cast<int>(num(o, "samples", 5, 1, INT_MAX));
    bo.warmupNs = static_cast<uint64_t>(amount(o, "warmupNs", 0));
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
        std::move(held));
  });
}

// The probe runtime's Ps: the machine's topology spread like NativeRuntime's 'spread' placement.
sched::RuntimeOptions probeRuntimeOptions(const Napi::Object& c) {
  const std::string pin = c.Get("pin").IsString() ? c.Get("pin").As<Napi::String>().Utf8Value() : "node";
  const sched::PinMode mode = pin == "cpu" ? sched::PinMode::Cpu : pin == "none" ? sched::PinMode::None : sched::PinMode::Node;
  hwsq::Topology topo = readTopology("");
  if (topo.allowedCpus.empty()) throw UnsupportedError("the compare workload needs Linux sysfs topology");
  int workers = static_cast<int>(num(c, "workers", 0, 0, 4096));
  if (workers <= 0) workers = readParallelism("", static_cast<int>(topo.allowedCpus.size())).value;
  sched::RuntimeOptions o = sched::optionsFromTopology(topo, workers, mode);
  o.policy = sched::parseStealPolicy(c.Get("policy").IsString() ? c.Get("policy").As<Napi::String>().Utf8Value() : "hierarchical");
  o.sysmon = false;
  o.timingSampleShift = 0;  // the comparison's p99 latency: every task timed, exact counts
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
    po.tasksPerNode = static_cast<uint64_t>(amount(c, "tasksPerNode", 10000));
    po.bytesPerTask = static_cast<size_t>(num(c, "bytesPerTask", 16384, 1));
    po.warmupTasksPerNode = static_cast<uint64_t>(amount(c, "warmupTasksPerNode", 0));
    auto buffers = c.Get("buffers").As<Napi::Array>();
    std::vector<HeldBytes> held;
    for (uint32_t i = 0; i < buffers.Length(); ++i) {
      Napi::Object b = buffers.Get(i).As<Napi::Object>();
      held.emplace_back(b.Get("view"), HeldBytes::Otherwise::Refuse);
      pr::HomeBuffer h;
      h.node = static_cast<int>(num(b, "node", -1, -1, INT_MAX));
      h.data = held.back().data();
      h.bytes = held.back().size();
      h.pageSize = static_cast<size_t>(num(b, "pageSize", 4096, 1));
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
        std::move(held));
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
