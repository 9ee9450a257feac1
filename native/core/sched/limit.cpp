// The parallelism limit: how many Ps may take work (Go's GOMAXPROCS, which Go 1.25 follows from
// the cgroup CPU limit). A runtime starts all its Ps once; setParallelism(L) leaves L of them
// active and parks the others, with no thread started or stopped.
//
// Which Ps stay active under L: L is spread over the nodes in proportion to their weights
// (placement.h's spreadWorkers: largest remainder, ties to the earlier node, every node with
// weight keeps a P while L >= such nodes), at most a node's Ps each (the excess goes to the next
// nodes with room, in node order), and on each node its lowest-indexed Ps stay. The weights are
// the nodes' P counts, or (the cgroup watch) the CPUs of each node's Ps the cpuset still allows,
// so that a cpuset shrunk to one node's CPUs keeps that node's Ps. Deterministic: the same L and
// weights always give the same set, so a limit that falls and rises again moves no one else.
//
// A limited P (P::limited):
//  - finishes the task it is running (nothing can preempt it); at the top of its next
//    findRunnable round it sees the flag;
//  - takes nothing but its inbox (submitToWorker: those tasks are for that P alone and never
//    stolen, so it still runs them rather than strand them);
//  - gives its runnext and LRQ away (shedForLimit: to its node's HWSQ, or the GRQ with the flat
//    policy, with the usual fence and wake), then sleeps: thread-backed on its Parker until the
//    limit lifts (parkLimited), external by returning RunStatus::Parked (the lift is
//    wakeExternal(p));
//  - is never in an idle stack: the flag is set under idleMu, which takes the P off its stack
//    if it is there, and parkPrepare refuses to enter a limited P. So no waker picks it, it
//    counts in neither nidle nor nspinning, and a submit cannot wake it.
//  - does not count for its node's saturation (nodeSaturated skips it like a detached external
//    P): a node whose active Ps are all busy is saturated, and one with no active P at all
//    always is, so other nodes steal its HWSQ (and P4 of every parking P sees that work).
//
// No lost work when the limit falls: the P sheds after the flag is set (its acquire load saw the
// setter's seq_cst store), and a shed is a shared push (S1, S2, wake). Work already in its node's
// HWSQ that only it would have taken: after shedding it fences and, if anything is visible, wakes
// a P (the same argument as S2..S4 in idle.cpp: a P that went idle before our fence is woken,
// one that goes idle after it sees the flag in nodeSaturated and the work at P4).
// No lost wake when the limit rises: the setter clears the flag (seq_cst) and then unparks the P;
// the Parker is a token (external: wakeExternal), and the P re-reads the flag after each wake.
#include <algorithm>

#include "../errors.h"
#include "../invariant.h"
#include "fence.h"
#include "idle.h"
#include "placement.h"

namespace hwsq::sched {

// ------------------------------------------------------------------------------- Runtime API

const char* parallelismSourceName(ParallelismSource s) {
  switch (s) {
    case ParallelismSource::Cgroup2: return "cgroup2";
    case ParallelismSource::Cgroup1: return "cgroup1";
    case ParallelismSource::Cpuset: return "cpuset";
    case ParallelismSource::Fixed: break;
  }
  return "fixed";
}

void Runtime::setParallelism(int limit, ParallelismSource source, const std::vector<int>& nodeWeights) {
  Impl& rt = *impl_;
  if (!nodeWeights.empty() && nodeWeights.size() != rt.nodes.size())
    throw HwsqRangeError("ERR_HWSQ_INVALID_OPTION", "nodeWeights needs one weight per node of the runtime");
  std::lock_guard<std::mutex> lk(rt.limitMu);
  rt.applyLimit(limit, source, nodeWeights);
}

int Runtime::parallelism() const { return impl_->limit.load(std::memory_order_acquire); }
int Runtime::activeWorkers() const { return impl_->nactive.load(std::memory_order_acquire); }
bool Runtime::isWorkerActive(int worker) const {
  if (worker < 0 || worker >= impl_->nprocs) return false;
  return !impl_->ps[worker]->limited.load(std::memory_order_acquire);
}

// ------------------------------------------------------------------------------- Impl

// [any] Active Ps under limit (1..nprocs): see the file comment.
std::vector<bool> Runtime::Impl::activeSet(int lim, const std::vector<int>& weights) const {
  std::vector<int> sizes;
  for (size_t ni = 0; ni < nodes.size(); ++ni) sizes.push_back(nodeSize(static_cast<int>(ni)));
  const bool weighted = weights.size() == sizes.size() && std::any_of(weights.begin(), weights.end(), [](int w) { return w > 0; });
  std::vector<int> perNode = spreadWorkers(weighted ? weights : sizes, lim);
  int excess = 0;
  for (size_t ni = 0; ni < perNode.size(); ++ni)
    if (perNode[ni] > sizes[ni]) {
      excess += perNode[ni] - sizes[ni];
      perNode[ni] = sizes[ni];
    }
  for (int pass = 0; pass < 2 && excess > 0; ++pass)  // nodes with weight first, then any
    for (size_t ni = 0; ni < perNode.size() && excess > 0; ++ni) {
      if (pass == 0 && weighted && weights[ni] <= 0) continue;
      const int add = std::min(excess, sizes[ni] - perNode[ni]);
      perNode[ni] += add;
      excess -= add;
    }
  std::vector<bool> out(static_cast<size_t>(nprocs), false);
  for (size_t ni = 0; ni < nodes.size(); ++ni)
    for (int k = 0; k < perNode[ni] && k < nodeSize(static_cast<int>(ni)); ++k) out[nodes[ni].ps[k]] = true;
  return out;
}

// [any] under limitMu. Clamps to 1..nprocs.
void Runtime::Impl::applyLimit(int lim, ParallelismSource source, const std::vector<int>& weights) {
  limitSource.store(static_cast<int>(source), std::memory_order_relaxed);
  lim = std::max(1, std::min(lim, nprocs));
  limitWeights = weights;
  const std::vector<bool> act = activeSet(lim, weights);
  const int count = static_cast<int>(std::count(act.begin(), act.end(), true));
  std::vector<P*> changed;
  {
    std::lock_guard<std::mutex> lk(idleMu);
    for (int i = 0; i < nprocs; ++i) {
      P& p = *ps[i];
      const bool lims = !act[i];
      if (lims == p.limited.load(std::memory_order_relaxed)) continue;
      p.limited.store(lims, std::memory_order_seq_cst);
      if (lims && p.idle) {  // asleep in its idle stack: take it off, no waker may pick it now
        leaveIdleLocked(p);
        p.wakeSpinning = false;
      }
      changed.push_back(&p);
    }
    nactive.store(count, std::memory_order_seq_cst);
    if (limit.exchange(lim, std::memory_order_seq_cst) != lim) limitChanges.fetch_add(1, std::memory_order_relaxed);
  }
  // A newly limited P must notice (and shed); a newly active one must look for work.
  for (P* p : changed) unpark(*p);
}

// [owner] p is limited: stop spinning, move runnext and LRQ to its node's HWSQ (flat: the GRQ),
// then wake a P if any work is visible (file comment: no lost work).
void Runtime::Impl::shedForLimit(P& p) {
  if (p.spinning) stopSpinning(p);
  size_t n = 0;
  for (;;) {
    TaskRef t = TaskRef::full(p.lrq.takeRunnext());
    if (!t) t = p.lrq.popFront();
    if (!t) break;
    p.buf[n++] = t;
    if (n == LocalQueue::kCapacity) {
      pushShared(p, p.buf, n, p.nodeIdx);
      n = 0;
    }
  }
  if (n) pushShared(p, p.buf, n, p.nodeIdx);
  storeLoadFence();
  if (anyWorkVisible(p)) wake(WakeScope::anyNode(p.nodeIdx));
}

// [owner] Thread-backed: shed, then sleep until the limit lifts, the runtime stops or its inbox
// gets a task (wakeOwner unparks it).
void Runtime::Impl::parkLimited(P& p) {
  shedForLimit(p);
  if (statsOn) p.c.parks.add();
  while (p.limited.load(std::memory_order_acquire) && !stopping.load(std::memory_order_acquire) && !p.inbox.ownerHasWork())
    p.parker.park();
}

// ------------------------------------------------------------------------------- strategies

bool ThreadPark::limited(P& p) {
  spin_.release();
  rt_.parkLimited(p);
  return true;
}

bool ExternalPark::limited(P& p) {
  spin_.release();
  rt_.shedForLimit(p);
  if (!p.limited.load(std::memory_order_acquire) || rt_.stopping.load(std::memory_order_acquire) || p.inbox.ownerHasWork())
    return true;
  if (rt_.statsOn) p.c.parks.add();
  p.limitParked = true;
  parked_ = true;
  return false;
}

}  // namespace hwsq::sched
