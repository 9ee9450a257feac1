// Where steals happen. A P that found no work in its own queues, its node's HWSQ and the GRQ
// (find_work.cpp) becomes a spinner -- at most half of the busy Ps spin -- and walks its steal
// tiers (options.cpp builds them): the Ps of its own node, then the Ps of other nodes by SLIT
// distance, nearest first, each tier followed by the HWSQs of that tier's nodes while the node
// is saturated. A steal takes half of a victim's LRQ (LocalQueue::stealHalfFrom); victims within
// a tier are probed in a random coprime-stride order; four passes, runnext only on the last.
// Flat policy: one tier of every other P, no HWSQs.
#include "../invariant.h"
#include "idle.h"

namespace hwsq::sched {

// [owner] Step 5 of findRunnable. Returns a task to run now, or nullptr.
TaskRef Runtime::Impl::steal(P& p) {
  if (nprocs == 1) return TaskRef{};
  if (!p.spinning) {  // only spinners steal, and at most half of the busy Ps spin (Go)
    int busy = nactive.load(std::memory_order_relaxed) - nidle.load(std::memory_order_relaxed);
    if (2 * nspinning.load(std::memory_order_relaxed) < busy) startSpinning(p);
  }
  if (!p.spinning) return TaskRef{};
  for (int pass = 0; pass < kStealPasses; ++pass) {
    const bool last = pass == kStealPasses - 1;
    if (pass > 0) {  // what a lost race or a new push left in the queues a steal does not visit
      if (hier)
        if (TaskRef t = hwsqGet(p, p.nodeIdx, kBatchMax)) return t;
      if (TaskRef t = grqGet(p, kBatchMax)) return t;
    }
    for (const Tier& tier : p.tiers) {
      const uint32_t n = static_cast<uint32_t>(tier.ps.size());
      if (n) {
        uint32_t pos = p.random() % n;
        const uint32_t stride = tier.coprimes[p.random() % tier.coprimes.size()];
        for (uint32_t i = 0; i < n; ++i, pos = (pos + stride) % n) {
          if (stopping.load(std::memory_order_relaxed)) return TaskRef{};
          P& victim = *ps[tier.ps[pos]];
          uint32_t cnt = 0;
          if (TaskRef t = p.lrq.stealHalfFrom(victim.lrq, last, &cnt)) {
            if (statsOn) countSteal(p, victim, cnt);
            return t;
          }
          if (statsOn) p.c.failedSteals.add();
        }
      }
      if (hier)
        for (int ni : tier.nodes)
          if (nodeSaturated(ni))
            if (TaskRef t = hwsqSteal(p, ni)) return t;
      // Our node still has work we failed to take (a steal lost a race, or a sibling holds
      // only its runnext task, stealable on the last pass): try it again before going remote.
      if (tier.sameNode && !last && ownNodeHasWork(p)) break;
    }
  }
  return TaskRef{};
}

// [owner] A batch from HWSQ ni of another node (saturated: see nodeSaturated), counted as a
// remote steal.
TaskRef Runtime::Impl::hwsqSteal(P& p, int ni) {
  HWSQ_ASSERT(ni != p.nodeIdx, "a HWSQ steal from the thief's own node");
  size_t depth;
  const size_t n = hwsqTake(p, ni, kBatchMax, false, &depth);
  if (n == 0) return TaskRef{};
  if (statsOn) {
    p.c.stealsRemote.add();
    p.c.stealsRemoteTasks.add(n);
  }
  return p.buf[0];
}

// [owner] A successful LRQ steal of `tasks` tasks from victim, by scope.
void Runtime::Impl::countSteal(P& p, const P& victim, uint32_t tasks) {
  if (victim.nodeIdx == p.nodeIdx) {
    p.c.stealsSameNode.add();
    p.c.stealsSameNodeTasks.add(tasks);
  } else {
    p.c.stealsRemote.add();
    p.c.stealsRemoteTasks.add(tasks);
  }
}

// [any] Affine tasks stay for their node unless it is saturated: every P of it is inside a task
// (its sysmon tick is odd). Not parked, not spinning (a P just woken for the node spins until
// it has found work), not between two tasks looking for the next one: each of those will take
// from HWSQ k itself. Read only by thieves and wakers, so the hot path pays nothing for it.
// Ps above the parallelism limit do not count: a node with no active P is always saturated.
// Liveness never depends on this: node k's Ps re-check HWSQ k before parking (P4).
bool Runtime::Impl::nodeSaturated(int ni) const {
  const Node& node = nodes[ni];
  if (node.idle.load(std::memory_order_relaxed) > 0 || node.spinning.load(std::memory_order_relaxed) > 0) return false;
  for (int v : node.ps) {
    const P& victim = *ps[v];
    // External mode: a P with no thread attached (its isolate died or restarts) takes nothing.
    if (opts.externalWorkers && !victim.attached.load(std::memory_order_relaxed)) continue;
    // Above the parallelism limit: takes nothing either (limit.cpp).
    if (victim.limited.load(std::memory_order_relaxed)) continue;
    if ((victim.probe.tick.load(std::memory_order_relaxed) & 1) == 0) return false;
  }
  return true;
}

// [owner] Work of p's node that p could still take: its HWSQ, a sibling's LRQ or runnext.
bool Runtime::Impl::ownNodeHasWork(P& p) const {
  if (hier && hwsqDepth(p.nodeIdx) > 0) return true;
  for (int v : nodes[p.nodeIdx].ps)
    if (v != p.index && ps[v]->lrq.hasWork()) return true;
  return false;
}

}  // namespace hwsq::sched
