// The one options builder of both runtimes (see options_js.h).
#include "options_js.h"

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "affinity.h"
#include "args_js.h"
#include "errors.h"
#include "errors_js.h"
#include "parallelism.h"
#include "parallelism_js.h"
#include "sched/placement.h"
#include "topology.h"

namespace hwsq::napi {

using namespace hwsq::sched;


namespace {

constexpr int kMaxWorkers = 4096;

int intField(const Napi::Object& o, const char* key, int def, int min, int max, const char* code) {
  return static_cast<int>(integerField(o, key, def, min, max, code));
}
bool boolField(const Napi::Object& o, const char* key, bool def) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
}
std::string stringField(const Napi::Object& o, const char* key, const char* def) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : def;
}

PinMode parsePin(const std::string& name) {
  if (name == "node") return PinMode::Node;
  if (name == "cpu") return PinMode::Cpu;
  if (name == "none") return PinMode::None;
  throw HwsqRangeError("ERR_HWSQ_INVALID_OPTION", "pin must be 'node', 'cpu' or 'none', got '" + name + "'");
}

// Explicit placement entries { node, cpus? } (checked by lib/) -> the core's requests. An empty
// cpus array is refused by lib/ (ERR_HWSQ_EMPTY_CPUS) before it gets here.
std::vector<PlacementRequest> placementRequests(const Napi::Array& entries) {
  std::vector<PlacementRequest> out;
  for (uint32_t i = 0; i < entries.Length(); ++i) {
    Napi::Object e = entries.Get(i).As<Napi::Object>();
    PlacementRequest r;
    r.node = indexArg(e.Get("node"), "placement node", "ERR_HWSQ_UNKNOWN_NODE");
    Napi::Value cpus = e.Get("cpus");
    if (cpus.IsArray()) r.cpus = indexList(cpus, "placement cpus", "ERR_HWSQ_CPU_OUT_OF_RANGE");
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

RuntimeOptions schedulerOptionsFromJs(const Napi::Object& c, std::shared_ptr<ParallelismEvents>* events) {
  const PinMode pin = parsePin(stringField(c, "pin", "node"));
  const int virtualNodes = intField(c, "virtualNodes", 0, 0, kMaxWorkers, "ERR_HWSQ_INVALID_WORKERS");
  const int workers = intField(c, "workers", 0, 0, kMaxWorkers, "ERR_HWSQ_INVALID_WORKERS");
  Napi::Value placement = c.Get("placement");
  RuntimeOptions o;
  bool follow = false;
  if (virtualNodes > 0) {
    const int perNode = intField(c, "virtualWorkersPerNode", 1, 1, kMaxWorkers / virtualNodes, "ERR_HWSQ_INVALID_WORKERS");
    o = RuntimeOptions::virtualTopology(virtualNodes, perNode);
  } else {
    hwsq::Topology topo = readTopology("");
    if (boolField(c, "confineToCaller", false)) confineToCallingThread(topo);
    const int numaNode = intField(c, "numaNode", -1, -1, 1023, "ERR_HWSQ_UNKNOWN_NODE");  // HWSQ_NUMA_NODE, read and checked by lib/
    if (numaNode >= 0 && !placement.IsArray() && !topo.allowedCpus.empty()) topo = confineToNode(topo, numaNode, "HWSQ_NUMA_NODE");
    if (topo.allowedCpus.empty()) {  // no sysfs (non-Linux): one node, not pinned
      const int n = workers > 0 ? workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      for (int i = 0; i < n; ++i) o.workers.push_back(WorkerPlacement{0, {}});
      o.pin = false;
    } else if (placement.IsArray()) {
      o = optionsFromPlacement(topo, placementRequests(placement.As<Napi::Array>()), pin);
    } else {
      // 'auto' following the cgroup: a P per allowed CPU, started once; the watch's first reading
      // (in the core's constructor) parks those above the CPU limit. Not following: the limit's
      // count, fixed.
      follow = workers <= 0 && integerField(c, "cgroupPollMs", 0, 0, 3'600'000, "ERR_HWSQ_INVALID_OPTION") > 0;
      const int allowed = static_cast<int>(topo.allowedCpus.size());
      const int n = workers > 0 ? workers : follow ? allowed : readParallelism("", allowed).value;
      o = optionsFromTopology(topo, n, pin);
      if (follow) followCgroup(c, o, nullptr);
    }
  }
  o.policy = parseStealPolicy(stringField(c, "policy", "hierarchical"));
  o.stats = boolField(c, "stats", true);
  o.timingSampleShift = intField(c, "timingSampleShift", RuntimeOptions{}.timingSampleShift, 0, 20, "ERR_HWSQ_INVALID_OPTION");
  o.sysmon = boolField(c, "sysmon", true);
  Napi::Value idleSpin = c.Get("idleSpinNs");
  if (idleSpin.IsNumber()) o.idleSpinNs = static_cast<uint64_t>(numberIn(idleSpin, "idleSpinNs", 0, 1e8, "ERR_HWSQ_INVALID_OPTION"));
  Napi::Value hog = c.Get("hogThresholdNs");
  if (hog.IsNumber()) o.hogThresholdNs = static_cast<uint64_t>(numberIn(hog, "hogThresholdNs", 0, static_cast<double>(kMaxSafeInteger), "ERR_HWSQ_INVALID_OPTION"));
  // Last, once nothing here can throw: the event's carrier exists for following runtimes only.
  if (follow && events) {
    *events = ParallelismEvents::create(c.Env(), c.Get("onParallelism"));
    if (auto ev = *events) o.onParallelism = [ev](const ParallelismChange& ch) { ev->post(ch); };
  }
  return o;
}


Napi::Object workerPlacementToJs(Napi::Env env, const RuntimeOptions& o, size_t p) {
  auto w = Napi::Object::New(env);
  w.Set("worker", static_cast<double>(p));
  w.Set("node", o.workers[p].node);
  const std::vector<int>& cpus = o.pin ? o.workers[p].cpus : std::vector<int>();
  auto arr = Napi::Array::New(env, cpus.size());
  for (size_t i = 0; i < cpus.size(); ++i) arr.Set(static_cast<uint32_t>(i), cpus[i]);
  w.Set("cpus", arr);
  return w;
}

}  // namespace hwsq::napi
