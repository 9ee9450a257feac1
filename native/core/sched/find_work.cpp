// Finding work: findRunnable, the search order of a P (README "Finding work"), and the gets of
// each queue it reads. Stealing is steal.cpp; what the P does when nothing is found is its
// waiting strategy (idle.h).
#include <algorithm>

#include "clock.h"
#include "fence.h"
#include "hot_path.h"
#include "idle.h"

namespace hwsq::sched {

// [owner] The next task for p, in the order of README "Finding work" (hierarchical policy; flat
// has no HWSQ steps):
//   1. every 61st round: one task from the GRQ, then from its node's HWSQ (fairness: the shared
//      queues cannot starve behind local work);
//   2. local: its inbox, then runnext / LRQ;
//   3. its own node's HWSQ: a batch of about its share, the rest into its LRQ;
//   4. the GRQ: a bounded share (plus the node siblings' share prefetched into the HWSQ);
//   5. become a spinner and steal (steal.cpp): Ps of its own node, then of other nodes by
//      distance, and saturated nodes' HWSQs;
//   0. above the parallelism limit (limit.cpp): only its inbox, else wait.limited(p);
//   6. nothing: wait.idle(p) parks it (P1..P5, idle.cpp) and it looks again, or (external)
//      stops looking.
// Returns nullptr when the runtime is stopping or the waiting strategy stopped looking.
template <class Wait>
TaskRef Runtime::Impl::findRunnable(P& p, Wait& wait) {
  for (;;) {
    if (stopping.load(std::memory_order_acquire)) {
      if (p.coalescedCount) flushCoalesced(p);
      return TaskRef{};
    }
    repinIfMoved(p);  // after a cpuset change (cgroup_watch.cpp)
    if (p.limited.load(std::memory_order_acquire)) {  // 0. above the parallelism limit (limit.cpp)
      if (Task* t = p.inbox.pop()) {
        if (statsOn) p.c.inboxPops.add();
        return TaskRef::full(t);
      }
      if (p.coalescedCount) flushCoalesced(p);
      if (!wait.limited(p)) return TaskRef{};
      continue;
    }
    if (--p.fairnessCountdown == 0) {  // 1. fairness
      p.fairnessCountdown = kGlobalCheckEvery;
      p.runnextChain = 0;
      if (TaskRef t = grqGet(p, 1)) return t;
      if (hier)
        if (TaskRef t = hwsqGet(p, p.nodeIdx, 1, true)) return t;
    }
    if (TaskRef t = localGet(p)) return t;  // 2. local
    if (p.coalescedCount) flushCoalesced(p);  // its own queues ran dry: report before going further
    if (hier)                                // 3. own node
      if (TaskRef t = hwsqGet(p, p.nodeIdx, kBatchMax)) return t;
    if (TaskRef t = grqGet(p, kBatchMax)) return t;  // 4. global
    if (TaskRef t = steal(p)) return t;              // 5. same node, then remote
    if (!wait.idle(p)) return TaskRef{};             // 6. park
  }
}

template TaskRef Runtime::Impl::findRunnable<ThreadPark>(P&, ThreadPark&);
template TaskRef Runtime::Impl::findRunnable<ExternalPark>(P&, ExternalPark&);

// [owner] Pops a batch of about p's share of HWSQ ni (spill list first on fairness ticks, see
// hwsq.h) into p.buf: the first is for p to run, the rest go to its LRQ (empty on this path,
// except max == 1; what does not fit goes back to the HWSQ). Returns the count; *depth: the
// depth it saw.
size_t Runtime::Impl::hwsqTake(P& p, int ni, size_t max, bool spillFirst, size_t* depth) {
  HWSQ_ASSERT(hier, "a HWSQ get under the flat policy");
  Hwsq& q = *nodes[ni].hwsq;
  *depth = q.size();
  if (*depth == 0) return 0;
  size_t want = std::min<size_t>(max, *depth / nodes[ni].ps.size() + 1);
  size_t n = q.pop(p.buf, want, spillFirst);
  if (n > 1) {
    uint32_t k = p.lrq.pushBackBatch(p.buf + 1, static_cast<uint32_t>(n - 1));
    if (k < n - 1) hwsqPush(ni, p.buf + 1 + k, n - 1 - k);
  }
  return n;
}

// [owner] From HWSQ ni, p's own node.
TaskRef Runtime::Impl::hwsqGet(P& p, int ni, size_t max, bool spillFirst) {
  size_t depth;
  const size_t n = hwsqTake(p, ni, max, spillFirst, &depth);
  if (n == 0) return TaskRef{};
  if (statsOn) p.c.hwsqPops.add(n);
  // More of the node's work left (in its queue or our LRQ) and a sibling asleep with no
  // spinner around: hand it over now rather than after this batch (a P that was between
  // tasks, not spinning, took it, so no resetSpinning will wake anyone).
  if ((n > 1 || depth > n) && nodes[ni].idle.load(std::memory_order_relaxed) > 0 &&
      nodes[ni].spinning.load(std::memory_order_relaxed) == 0)
    wake(WakeScope::onNode(ni));
  return p.buf[0];
}

// [owner] A bounded share of the GRQ (Go's globrunqget): the first to run, the rest into the
// LRQ. A P with node siblings then prefetches their share into its node's HWSQ.
TaskRef Runtime::Impl::grqGet(P& p, size_t max) {
  if (grq.empty()) return TaskRef{};
  size_t n = grq.popShare(p.buf, static_cast<size_t>(nprocs), max);
  if (n == 0) return TaskRef{};
  if (n > 1) {
    uint32_t k = p.lrq.pushBackBatch(p.buf + 1, static_cast<uint32_t>(n - 1));
    if (k < n - 1) grq.pushBatch(p.buf + 1 + k, n - 1 - k);
  }
  if (statsOn) p.c.grqPops.add(n);
  const TaskRef t = p.buf[0];
  if (max > 1 && hier && nodes[p.nodeIdx].ps.size() > 1 && !grq.empty()) grqPrefetch(p);
  return t;
}

// [owner] An idle P of this node went to the GRQ: bring its siblings' share into the node's
// HWSQ (ring only: work with no affinity is not worth a spill).
void Runtime::Impl::grqPrefetch(P& p) {
  Hwsq& q = *nodes[p.nodeIdx].hwsq;
  size_t siblings = nodes[p.nodeIdx].ps.size() - 1;
  size_t share = (grq.size() / static_cast<size_t>(nprocs) + 1) * siblings;
  size_t want = std::min({kPrefetchMax, share, q.ringRoom()});
  if (want == 0) return;
  TaskRef* out = p.buf + LocalQueue::kCapacity;
  size_t n = grq.popBatch(out, want);
  if (n == 0) return;
  size_t k = q.pushRing(out, n);
  if (k < n) grq.pushBatch(out + k, n - k);
  if (statsOn && k) {
    p.c.prefetches.add();
    p.c.prefetchTasks.add(k);
    p.c.hwsqPushes.add(k);
  }
  storeLoadFence();
  if (k) wakeForHwsq(p.nodeIdx);
}

}  // namespace hwsq::sched
