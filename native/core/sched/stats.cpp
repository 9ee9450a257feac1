// Runtime::stats(): the counters of stats.h summed into a snapshot, read with relaxed loads
// while everything runs (each counter is exact at some instant during the read).
#include <cmath>

#include "clock.h"
#include "runtime_impl.h"

namespace hwsq::sched {

// [any]
RuntimeStats Runtime::stats() const {
  const Impl& rt = *impl_;
  RuntimeStats s;
  s.statsEnabled = rt.statsOn;
  const double npt = nsPerTick();
  s.latency.unitNs = npt;
  s.runTime.unitNs = npt;
  s.workers.reserve(rt.ps.size());
  for (auto& pp : rt.ps) {
    const P& p = *pp;
    const PCounters& c = p.c;
    WorkerStats ws;
    ws.worker = p.index;
    ws.node = p.nodeId;
    ws.spawned = c.spawned.get();
    ws.executed = c.executed.get();
    // Counted whatever the setting (a plain store on the owner's line costs less than the branch
    // around it on the spawn path), reported only with stats on.
    ws.localPushes = rt.statsOn ? c.localPushes.get() : 0;
    ws.runnextHits = c.runnextHits.get();
    ws.hwsqPushes = c.hwsqPushes.get();
    ws.hwsqPops = c.hwsqPops.get();
    ws.grqPops = c.grqPops.get();
    ws.inboxPops = c.inboxPops.get();
    ws.stealsSameNode = c.stealsSameNode.get();
    ws.stealsSameNodeTasks = c.stealsSameNodeTasks.get();
    ws.stealsRemote = c.stealsRemote.get();
    ws.stealsRemoteTasks = c.stealsRemoteTasks.get();
    ws.failedSteals = c.failedSteals.get();
    ws.overflows = c.overflows.get();
    ws.overflowTasks = c.overflowTasks.get();
    ws.parks = c.parks.get();
    ws.wakeups = c.wakeups.get();
    ws.spinningNs = ticksToNs(static_cast<double>(c.spinningTicks.get()));
    // Every run is timed (shift 0) or 1 in 2^shift, at random: the timed runs' sum scaled back.
    ws.busyNs = ticksToNs(std::ldexp(static_cast<double>(p.timings.sum(TimingHistograms::kRunTime)), rt.shift));
    ws.lrqDepth = p.lrq.size() + (p.lrq.hasRunnext() ? 1 : 0);
    ws.parked = p.parkedFlag.load(std::memory_order_relaxed);
    ws.active = !p.limited.load(std::memory_order_relaxed);
    if (rt.sysmon) {
      ws.hogs = rt.sysmon->workerHogs(p.index);
      ws.runningForNs = rt.sysmon->runningForNs(p.index);
    }
    s.spawned += ws.spawned;
    s.executed += ws.executed;
    if (rt.statsOn) {
      p.timings.mergeInto(TimingHistograms::kLatency, s.latency);
      p.timings.mergeInto(TimingHistograms::kRunTime, s.runTime);
    }
    s.workers.push_back(ws);
  }
  for (size_t ni = 0; ni < rt.nodes.size(); ++ni) {
    const Node& node = rt.nodes[ni];
    NodeStats ns;
    ns.node = node.id;
    ns.workers = static_cast<int>(node.ps.size());
    if (rt.hier) {
      ns.hwsqDepth = rt.hwsqDepth(static_cast<int>(ni));
      ns.hwsqCapacity = node.hwsq->ringCapacity();
    }
    for (int v : node.ps) {
      ns.prefetches += rt.ps[v]->c.prefetches.get();
      ns.prefetchTasks += rt.ps[v]->c.prefetchTasks.get();
    }
    s.nodes.push_back(ns);
  }
  // Sampled timing: 1 task in 2^shift was recorded; scaled back, counts and sums estimate all
  // of them without bias (TimingSampler). `executed` stays the exact count.
  s.latency.scale(uint64_t{1} << rt.shift);
  s.runTime.scale(uint64_t{1} << rt.shift);
  s.grqDepth = rt.grq.size();
  s.externalSubmitted = rt.outsideSubmitted.load(std::memory_order_relaxed);
  s.rejected = rt.rejected.load(std::memory_order_relaxed);
  s.dropped = rt.dropped.load(std::memory_order_relaxed);
  s.spinning = rt.nspinning.load(std::memory_order_relaxed);
  s.idle = rt.nidle.load(std::memory_order_relaxed);
  if (rt.sysmon) s.sysmon = rt.sysmon->stats();
  s.parallelism = rt.limit.load(std::memory_order_relaxed);
  s.activeWorkers = rt.nactive.load(std::memory_order_relaxed);
  s.parallelismChanges = rt.limitChanges.load(std::memory_order_relaxed);
  s.parallelismSource = parallelismSourceName(static_cast<ParallelismSource>(rt.limitSource.load(std::memory_order_relaxed)));
  return s;
}

}  // namespace hwsq::sched
