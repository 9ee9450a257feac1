// The shared-memory stats file from JS (lib/shm/): read(path, pid) returns a process's file with
// each runtime's stats in the shape of stats() (statsToJs: the decoded document is the core's
// own RuntimeStats), so the exporters take them unchanged. Errors carry the codes of
// shm::shmErrorCode (ERR_HWSQ_NO_SUCH_PROCESS, ERR_HWSQ_SHM_*).
#include "shm_js.h"

#include <cmath>
#include <limits>

#include "args_js.h"
#include "errors_js.h"
#include "shm/segment.h"
#include "stats_js.h"

namespace hwsq::napi {

using namespace hwsq::shm;

namespace {

Napi::Value orNull(Napi::Env env, const std::optional<std::string>& s) { return s ? Napi::String::New(env, *s) : env.Null(); }
Napi::Number num(Napi::Env env, uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }

Napi::Object runtimeToJs(Napi::Env env, const RuntimeSnapshot& r) {
  auto o = Napi::Object::New(env);
  o.Set("id", num(env, r.id));
  o.Set("kind", r.kind == RuntimeKind::Js ? "js" : "native");
  o.Set("stealPolicy", r.flat ? "flat" : "hierarchical");
  o.Set("pinned", r.pinned);
  o.Set("closed", r.closed);
  o.Set("createdAt", Napi::Number::New(env, static_cast<double>(r.createdAtNs) / 1e6));
  o.Set("elapsedNs", num(env, r.elapsedNs));
  o.Set("hogThresholdNs", num(env, r.hogThresholdNs));
  Napi::Object stats = statsToJs(env, r.stats);
  if (r.tasks) {
    auto t = Napi::Object::New(env);
    t.Set("live", num(env, r.tasks->live));
    t.Set("queued", num(env, r.tasks->queued));
    t.Set("completed", num(env, r.tasks->completed));
    t.Set("failed", num(env, r.tasks->failed));
    t.Set("workerExited", num(env, r.tasks->workerExited));
    t.Set("cancelled", num(env, r.tasks->cancelled));
    t.Set("deferred", num(env, r.tasks->deferred));
    stats.Set("tasks", t);
  }
  stats.Set("elapsedNs", num(env, r.elapsedNs));
  o.Set("stats", stats);
  auto placement = Napi::Array::New(env, r.stats.workers.size());
  for (size_t p = 0; p < r.stats.workers.size(); ++p) {
    auto w = Napi::Object::New(env);
    w.Set("worker", r.stats.workers[p].worker);
    w.Set("node", r.stats.workers[p].node);
    const std::vector<int>& cpus = p < r.workerCpus.size() ? r.workerCpus[p] : std::vector<int>();
    auto list = Napi::Array::New(env, cpus.size());
    for (size_t i = 0; i < cpus.size(); ++i) list.Set(static_cast<uint32_t>(i), cpus[i]);
    w.Set("cpus", list);
    placement.Set(static_cast<uint32_t>(p), w);
  }
  o.Set("workers", placement);
  if (r.parallelism) {
    auto p = Napi::Object::New(env);
    p.Set("activeWorkers", num(env, r.parallelism->activeWorkers));
    p.Set("parallelism", num(env, r.parallelism->parallelism));
    p.Set("source", parallelismSourceName(r.parallelism->source));
    p.Set("changes", num(env, r.parallelism->changes));
    o.Set("parallelism", p);
  } else {
    o.Set("parallelism", env.Null());
  }
  return o;
}

// read(path, pid) -> { pid, startTime, uid, layout: { major, minor }, publishes, path,
//   publishedAt (ms since the epoch), uptimeSeconds, intervalMs, truncated,
//   identity: { runtime_version, pod_id, pod_uid, namespace, node_name, cpu_limit }, runtimes[] }
Napi::Value Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsString()) throw std::invalid_argument("read(path, pid): path must be a string");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    const auto pid = static_cast<pid_t>(integerIn(info[1], "pid", 0, std::numeric_limits<int32_t>::max(), "ERR_HWSQ_INVALID_ARG"));
    Segment seg;
    try {
      seg = readSegment(path, pid);
    } catch (const ShmError& e) {
      throw codedError(env, shmErrorCode(e.kind), e.what());
    }
    const ProcessSnapshot& p = seg.doc.process;
    auto o = Napi::Object::New(env);
    o.Set("pid", num(env, seg.info.pid));
    o.Set("startTime", num(env, seg.info.startTime));
    o.Set("uid", num(env, seg.info.uid));
    auto layout = Napi::Object::New(env);
    layout.Set("major", seg.info.major);
    layout.Set("minor", seg.info.minor);
    o.Set("layout", layout);
    o.Set("publishes", num(env, seg.info.publishes));
    o.Set("path", seg.info.path);
    o.Set("publishedAt", Napi::Number::New(env, static_cast<double>(p.publishedAtNs) / 1e6));
    o.Set("uptimeSeconds", Napi::Number::New(env, static_cast<double>(p.uptimeNs) / 1e9));
    o.Set("intervalMs", Napi::Number::New(env, static_cast<double>(p.intervalNs) / 1e6));
    o.Set("truncated", p.truncated);
    auto id = Napi::Object::New(env);
    id.Set("runtime_version", orNull(env, p.strings[HwsqVersion]));
    id.Set("pod_id", orNull(env, p.strings[PodId]));
    id.Set("pod_uid", orNull(env, p.strings[PodUid]));
    id.Set("namespace", orNull(env, p.strings[PodNamespace]));
    id.Set("node_name", orNull(env, p.strings[NodeName]));
    id.Set("cpu_limit", orNull(env, p.strings[CpuLimit]));
    o.Set("identity", id);
    auto runtimes = Napi::Array::New(env, seg.doc.runtimes.size());
    for (size_t i = 0; i < seg.doc.runtimes.size(); ++i) runtimes.Set(static_cast<uint32_t>(i), runtimeToJs(env, seg.doc.runtimes[i]));
    o.Set("runtimes", runtimes);
    return o;
  });
}

// status() -> { path, error, publishes, runtimes }: this process's publisher.
Napi::Value Status(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const PublisherStatus s = publisherStatus();
  auto o = Napi::Object::New(env);
  o.Set("path", s.path.empty() ? env.Null() : Napi::String::New(env, s.path));
  o.Set("error", s.error.empty() ? env.Null() : Napi::String::New(env, s.error));
  o.Set("publishes", num(env, s.publishes));
  o.Set("runtimes", num(env, s.runtimes));
  return o;
}

}  // namespace

Registration publishIfEnabled(const Napi::Object& config, const sched::Runtime& rt, RuntimeKind kind, std::function<JsTaskCounts()> jsTasks) {
  try {
    Napi::Value v = config.Get("shm");
    if (!v.IsObject()) return {};
    Napi::Object c = v.As<Napi::Object>();
    PublishSettings s;
    if (!c.Get("dir").IsString()) return {};
    s.dir = c.Get("dir").As<Napi::String>().Utf8Value();
    Napi::Value ms = c.Get("intervalMs");
    if (ms.IsNumber()) {
      const double d = ms.As<Napi::Number>().DoubleValue();
      if (std::isfinite(d) && d >= 1 && d <= 3.6e6) s.intervalNs = static_cast<uint64_t>(d * 1e6);
    }
    Napi::Value strings = c.Get("strings");
    if (strings.IsArray()) {
      auto a = strings.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length() && i < ProcessStringCount; ++i) {
        Napi::Value e = a.Get(i);
        if (e.IsString()) s.strings[i] = e.As<Napi::String>().Utf8Value();
      }
    }
    return publishRuntime({&rt, kind, std::move(jsTasks)}, s);
  } catch (...) {  // a JS getter that threw, no thread for the publisher: the runtime runs unpublished
    return {};
  }
}

void registerShm(Napi::Env env, Napi::Object exports) {
  auto o = Napi::Object::New(env);
  o.Set("read", Napi::Function::New(env, Read));
  o.Set("status", Napi::Function::New(env, Status));
  exports.Set("shm", o);
}

}  // namespace hwsq::napi
