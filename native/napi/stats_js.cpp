#include "stats_js.h"

#include <cstdint>

namespace hwsq::napi {

using hwsq::sched::HistogramLayout;
using hwsq::sched::HistogramSnapshot;
using hwsq::sched::NodeStats;
using hwsq::sched::RuntimeStats;
using hwsq::sched::WorkerStats;

namespace {
// Counters are uint64 in the core; as JS numbers they stay exact up to 2^53.
inline Napi::Number num(Napi::Env env, uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }
inline Napi::Number num(Napi::Env env, double v) { return Napi::Number::New(env, v); }
}  // namespace

Napi::Object histogramToJs(Napi::Env env, const HistogramSnapshot& h) {
  auto o = Napi::Object::New(env);
  o.Set("count", num(env, h.count));
  o.Set("sumNs", num(env, static_cast<double>(h.sum) * h.unitNs));
  o.Set("meanNs", num(env, h.meanNs()));
  o.Set("p50Ns", num(env, h.quantileNs(0.50)));
  o.Set("p90Ns", num(env, h.quantileNs(0.90)));
  o.Set("p99Ns", num(env, h.quantileNs(0.99)));
  o.Set("maxNs", num(env, h.maxNs()));
  size_t used = 0;
  for (uint64_t c : h.counts)
    if (c) ++used;
  auto lower = Napi::Array::New(env, used);
  auto upper = Napi::Array::New(env, used);
  auto counts = Napi::Array::New(env, used);
  uint32_t k = 0;
  for (size_t i = 0; i < h.counts.size(); ++i) {
    if (!h.counts[i]) continue;
    const double lo = static_cast<double>(HistogramLayout::bucketLow(i)) * h.unitNs;
    const double hi = i + 1 < HistogramLayout::kBuckets ? static_cast<double>(HistogramLayout::bucketLow(i + 1)) * h.unitNs
                                                         : h.maxNs();
    lower.Set(k, num(env, lo));
    upper.Set(k, num(env, hi));
    counts.Set(k, num(env, h.counts[i]));
    ++k;
  }
  auto buckets = Napi::Object::New(env);
  buckets.Set("lowerNs", lower);
  buckets.Set("upperNs", upper);
  buckets.Set("counts", counts);
  o.Set("buckets", buckets);
  return o;
}

Napi::Object workerStatsToJs(Napi::Env env, const WorkerStats& w) {
  auto o = Napi::Object::New(env);
  o.Set("worker", w.worker);
  o.Set("node", w.node);
  o.Set("spawned", num(env, w.spawned));
  o.Set("executed", num(env, w.executed));
  o.Set("localPushes", num(env, w.localPushes));
  o.Set("runnextHits", num(env, w.runnextHits));
  o.Set("hwsqPushes", num(env, w.hwsqPushes));
  o.Set("hwsqPops", num(env, w.hwsqPops));
  o.Set("grqPops", num(env, w.grqPops));
  o.Set("inboxPops", num(env, w.inboxPops));
  o.Set("stealsSameNode", num(env, w.stealsSameNode));
  o.Set("stealsSameNodeTasks", num(env, w.stealsSameNodeTasks));
  o.Set("stealsRemote", num(env, w.stealsRemote));
  o.Set("stealsRemoteTasks", num(env, w.stealsRemoteTasks));
  o.Set("failedSteals", num(env, w.failedSteals));
  o.Set("overflows", num(env, w.overflows));
  o.Set("overflowTasks", num(env, w.overflowTasks));
  o.Set("parks", num(env, w.parks));
  o.Set("wakeups", num(env, w.wakeups));
  o.Set("spinningNs", num(env, w.spinningNs));
  o.Set("busyNs", num(env, w.busyNs));
  o.Set("hogs", num(env, w.hogs));
  o.Set("queueDepth", num(env, static_cast<uint64_t>(w.lrqDepth)));
  o.Set("parked", w.parked);
  o.Set("active", w.active);
  o.Set("runningForNs", num(env, w.runningForNs));
  return o;
}

Napi::Object nodeStatsToJs(Napi::Env env, const NodeStats& n, const RuntimeStats& s) {
  auto o = Napi::Object::New(env);
  o.Set("node", n.node);
  o.Set("workers", n.workers);
  o.Set("queueDepth", num(env, n.hwsqDepth));
  o.Set("queueCapacity", num(env, n.hwsqCapacity));
  o.Set("prefetches", num(env, n.prefetches));
  o.Set("prefetchTasks", num(env, n.prefetchTasks));
  uint64_t spawned = 0, executed = 0, hwsqPops = 0, same = 0, sameTasks = 0, remote = 0, remoteTasks = 0, busy = 0;
  for (const WorkerStats& w : s.workers) {
    if (w.node != n.node) continue;
    spawned += w.spawned;
    executed += w.executed;
    hwsqPops += w.hwsqPops;
    same += w.stealsSameNode;
    sameTasks += w.stealsSameNodeTasks;
    remote += w.stealsRemote;
    remoteTasks += w.stealsRemoteTasks;
    busy += w.busyNs;
  }
  o.Set("spawned", num(env, spawned));
  o.Set("executed", num(env, executed));
  o.Set("hwsqPops", num(env, hwsqPops));
  o.Set("stealsSameNode", num(env, same));
  o.Set("stealsSameNodeTasks", num(env, sameTasks));
  o.Set("stealsRemote", num(env, remote));
  o.Set("stealsRemoteTasks", num(env, remoteTasks));
  o.Set("busyNs", num(env, busy));
  return o;
}

Napi::Object statsToJs(Napi::Env env, const RuntimeStats& s) {
  auto workers = Napi::Array::New(env, s.workers.size());
  for (size_t i = 0; i < s.workers.size(); ++i) workers.Set(static_cast<uint32_t>(i), workerStatsToJs(env, s.workers[i]));
  auto nodes = Napi::Array::New(env, s.nodes.size());
  for (size_t i = 0; i < s.nodes.size(); ++i) nodes.Set(static_cast<uint32_t>(i), nodeStatsToJs(env, s.nodes[i], s));
  auto sys = Napi::Object::New(env);
  sys.Set("hogs", num(env, s.sysmon.hogs));
  sys.Set("longestHogNs", num(env, s.sysmon.longestHogNs));
  sys.Set("longestHogWorker", s.sysmon.longestHogWorker);
  sys.Set("stuckWorkers", num(env, s.sysmon.stuckWorkers));
  sys.Set("rounds", num(env, s.sysmon.rounds));
  sys.Set("currentDelayUs", num(env, s.sysmon.currentDelayUs));
  auto o = Napi::Object::New(env);
  o.Set("statsEnabled", s.statsEnabled);
  o.Set("workers", workers);
  o.Set("nodes", nodes);
  o.Set("globalQueueDepth", num(env, s.grqDepth));
  o.Set("externalSubmitted", num(env, s.externalSubmitted));
  o.Set("rejected", num(env, s.rejected));
  o.Set("dropped", num(env, s.dropped));
  o.Set("spawned", num(env, s.spawned));
  o.Set("executed", num(env, s.executed));
  o.Set("spinning", s.spinning);
  o.Set("idle", s.idle);
  o.Set("activeWorkers", s.activeWorkers);
  o.Set("parallelism", s.parallelism);
  o.Set("parallelismSource", s.parallelismSource);
  o.Set("parallelismChanges", num(env, s.parallelismChanges));
  o.Set("latency", histogramToJs(env, s.latency));
  o.Set("runTime", histogramToJs(env, s.runTime));
  o.Set("sysmon", sys);
  return o;
}

}  // namespace hwsq::napi
