// Where a task goes in: submissions from outside threads (GRQ, or HWSQ[k] for affinity to node
// k), spawns from a task running on a P (runnext / LRQ, or a shared queue), LRQ overflow (half
// the ring to the node's HWSQ) and submitToWorker (the target P's inbox). Every push to a shared
// queue is followed by a seq_cst fence and a wake (S1..S4 of the protocol in idle.cpp).
// Drain accounting (lifecycle.cpp): outside submissions count outsideSubmitted before the closed
// check; spawns count the P's `spawned`.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "../errors.h"
#include "../invariant.h"
#include "clock.h"
#include "fence.h"
#include "runtime_impl.h"
#include "task_pool.h"

namespace hwsq::sched {

// ------------------------------------------------------------------------------- Runtime API

bool Runtime::submit(Task* t, SpawnHint hint) {
  Impl& rt = *impl_;
  if (P* p = tlP; p && p->rt == &rt) {
    if (rt.refusesLocalSpawns()) return false;
    rt.spawnLocal(*p, t, hint);
    return true;
  }
  return rt.submitOutside(&t, 1) == 1;
}

size_t Runtime::submitBatch(Task* const* tasks, size_t n, SpawnHint hint) {
  Impl& rt = *impl_;
  if (P* p = tlP; p && p->rt == &rt) {
    bool anyAffinity = false;
    for (size_t i = 0; i < n; ++i)
      if (tasks[i]->node >= 0) {
        rt.checkedNodeIndex(tasks[i]->node);
        anyAffinity = true;
      }
    if (rt.refusesLocalSpawns()) return 0;  // all or nothing
    rt.spawnLocalBatch(*p, tasks, n, hint, anyAffinity);
    return n;
  }
  return rt.submitOutside(tasks, n);
}

bool Runtime::submitToWorker(int worker, Task* t) {
  Impl& rt = *impl_;
  if (worker < 0 || worker >= rt.nprocs)
    throw HwsqRangeError("ERR_HWSQ_UNKNOWN_WORKER", "no worker " + std::to_string(worker));
  P& target = *rt.ps[worker];
  if (P* p = tlP; p && p->rt == &rt) {
    if (rt.refusesLocalSpawns()) return false;
    p->c.spawned.add();
  } else {
    rt.outsideSubmitted.fetch_add(1, std::memory_order_seq_cst);
    if (rt.closed.load(std::memory_order_seq_cst)) {
      rt.rejected.fetch_add(1, std::memory_order_release);
      return false;
    }
  }
  rt.stamp(t, tlP && tlP->rt == &rt ? tlP->sampler : rt.outsideSampler());
  target.inbox.push(t);
  rt.wakeOwner(target);
  return true;
}

bool Runtime::spawn(TaskFn fn, void* arg, int node, TaskFn done, void* doneArg, TaskFn cancel, SpawnHint hint) {
  Task* t = allocTask();
  t->fn = fn;
  t->arg = arg;
  t->node = node;
  t->done = done;
  t->doneArg = doneArg;
  t->cancel = cancel;
  bool ok;
  try {
    ok = submit(t, hint);
  } catch (...) {
    freeTask(t);
    throw;
  }
  if (!ok) freeTask(t);
  return ok;
}

// [owner of sampler] stampBatch for n light tasks of ops, which carry no timestamp: the ones the
// sampler picks become full pooled Tasks stamped now (timeRefs). Inline, as its common case is
// that none is picked (one countdown, whatever the setting: TimingSampler); all or nothing: on
// std::bad_alloc the refs are as they were.
inline void Runtime::Impl::stampRefs(const TaskOps* ops, TaskRef* ts, size_t n, TimingSampler& sampler) {
  const size_t untimed = static_cast<size_t>(sampler.skip(n));
  if (__builtin_expect(untimed == n, 1)) return;
  timeRefs(ops, ts, n, untimed, sampler);
}

// [owner of sampler] stampRefs' rare case: ts[i] is the first picked task.
void Runtime::Impl::timeRefs(const TaskOps* ops, TaskRef* ts, size_t n, size_t i, TimingSampler& sampler) {
  const uint64_t now = nowTicks();
  try {
    while (i < n) {
      const bool timed = sampler.next(sampleShift);
      HWSQ_ASSERT(timed, "TimingSampler: skip stopped before an untimed task");
      (void)timed;
      Task* t = allocTask();  // a carrier of the timestamp: runTask and dropTask use ops
      t->fn = ops->run;
      t->arg = ts[i].arg;
      t->doneArg = const_cast<TaskOps*>(ops);
      t->flags |= kTaskLight;
      t->submitTicks = now;
      ts[i++] = TaskRef::full(t);
      i += static_cast<size_t>(sampler.skip(n - i));
    }
  } catch (...) {  // back to light refs (all of them were light), nothing allocated
    for (size_t k = 0; k < n; ++k)
      if (Task* t = ts[k].task()) {
        ts[k] = TaskRef::light(ops, t->arg);
        freeTask(t);
      }
    throw;
  }
}

size_t Runtime::spawnLight(const TaskOps* ops, void* const* args, size_t n, int node, SpawnHint hint) {
  if (ops == nullptr || ops->run == nullptr) throw std::invalid_argument("spawnLight: ops and ops->run are required");
  if (ops->done && ops->doneMany) throw std::invalid_argument("spawnLight: ops->done or ops->doneMany, not both");
  if (n > kLightBatchMax) throw std::invalid_argument("spawnLight: more than kLightBatchMax tasks in one call");
  if (n == 0) return 0;
  Impl& rt = *impl_;
  const int ni = node >= 0 ? rt.checkedNodeIndex(node) : -1;
  TaskRef refs[kLightBatchMax];
  for (size_t i = 0; i < n; ++i) refs[i] = TaskRef::light(ops, args[i]);
  P* p = tlP;
  const bool local = p && p->rt == &rt;
  if (local && rt.refusesLocalSpawns()) return 0;
  rt.stampRefs(ops, refs, n, local ? p->sampler : rt.outsideSampler());  // may throw: nothing counted yet
  if (local) {
    p->c.spawned.add(n);
    if (hint == SpawnHint::Shared || (ni >= 0 && (!rt.hier || ni != p->nodeIdx))) {
      rt.pushShared(*p, refs, n, ni >= 0 ? ni : p->nodeIdx);
    } else {  // Next acts as Tail: runnext holds one full Task
      p->c.localPushes.add(n);  // kept with stats off too, reported only with them (stats.cpp)
      rt.pushLocalRun(*p, refs, n);
    }
    return n;
  }
  rt.outsideSubmitted.fetch_add(n, std::memory_order_seq_cst);  // before the closed check (drain)
  if (rt.closed.load(std::memory_order_seq_cst)) {
    rt.rejected.fetch_add(n, std::memory_order_release);
    for (size_t i = 0; i < n; ++i)
      if (Task* t = refs[i].task()) freeTask(t);
    return 0;
  }
  rt.pushOutside(refs, n, [node](size_t) { return node; });
  return n;
}

// ------------------------------------------------------------------------------- Impl

// [outside] The sampler of a submit from a thread that is not one of this runtime's Ps (another
// runtime's P included: its own sampler follows its own runtime's setting): one per thread, so
// that outside submitters never contend on a shared counter, shared by the sampling runtimes
// that thread submits to. With stats off one that never picks, with full timing one that always
// does: neither moves the shared one's countdown.
TimingSampler& Runtime::Impl::outsideSampler() {
  thread_local TimingSampler sampling(reinterpret_cast<uintptr_t>(&tlP) * 0x9E3779B97F4A7C15ull);
  thread_local TimingSampler off(1, false);
  thread_local TimingSampler every(1);  // re-armed by next(0) for the next task, always
  if (!statsOn) return off;
  return timeAll ? every : sampling;
}

// [owner of sampler] Submit timestamp for the latency histogram (0: not timed, see TimingSampler).
void Runtime::Impl::stamp(Task* t, TimingSampler& sampler) {
  t->submitTicks = sampler.next(sampleShift) ? nowTicks() : 0;
}

// [owner of sampler] stamp() for n tasks of one submit: the sampled ones share one clock read,
// taken only if one is picked (a submit of a single task must not pay a clock read 255 times in
// 256), and the sampler skips over the gaps between them at once.
void Runtime::Impl::stampBatch(Task* const* ts, size_t n, TimingSampler& sampler) {
  size_t i = 0;
  uint64_t now = 0;
  while (i < n) {
    const size_t gap = sampler.skip(n - i);
    for (size_t end = i + gap; i < end; ++i) ts[i]->submitTicks = 0;
    if (i == n) return;
    const bool picked = sampler.next(sampleShift);
    HWSQ_ASSERT(picked, "TimingSampler: skip stopped before an untimed task");
    (void)picked;
    if (now == 0) now = nowTicks();
    ts[i++]->submitTicks = now;
  }
}

// [outside] n tasks from a thread that is not a P of this runtime: all or nothing.
size_t Runtime::Impl::submitOutside(Task* const* ts, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; ++i)
    if (ts[i]->node >= 0) checkedNodeIndex(ts[i]->node);
  outsideSubmitted.fetch_add(n, std::memory_order_seq_cst);  // before the closed check (drain)
  if (closed.load(std::memory_order_seq_cst)) {
    rejected.fetch_add(n, std::memory_order_release);
    return 0;
  }
  stampBatch(ts, n, outsideSampler());
  TaskRef refs[Runtime::kLightBatchMax];
  for (size_t done = 0; done < n;) {
    const size_t k = std::min(n - done, Runtime::kLightBatchMax);
    for (size_t i = 0; i < k; ++i) refs[i] = TaskRef::full(ts[done + i]);
    pushOutside(refs, k, [&](size_t i) { return ts[done + i]->node; });
    done += k;
  }
  return n;
}

// [outside] Counted, stamped tasks (nodeOf(i): task i's affinity, -1 none) to the GRQ / HWSQs,
// one push per run of tasks with the same destination (S1), then S2 and the wakes.
template <class NodeOf>
void Runtime::Impl::pushOutside(const TaskRef* ts, size_t n, NodeOf nodeOf) {
  bool global = false;
  int wakeNodes[4];
  int nWake = 0;
  bool manyNodes = false;
  if (!hier) {
    grq.pushBatch(ts, n);  // S1
    global = true;
  } else {
    size_t i = 0;
    while (i < n) {  // S1, one push per run of tasks with the same destination
      size_t j = i + 1;
      const int node = nodeOf(i);
      if (node < 0) {
        while (j < n && nodeOf(j) < 0) ++j;
        grq.pushBatch(ts + i, j - i);
        global = true;
      } else {
        int ni = nodeIndexOf(node);
        while (j < n && nodeOf(j) == node) ++j;
        hwsqPush(ni, ts + i, j - i);
        if (nWake < 4) wakeNodes[nWake++] = ni;
        else manyNodes = true;
      }
      i = j;
    }
  }
  storeLoadFence();  // S2
  for (int k = 0; k < nWake; ++k) wakeForHwsq(wakeNodes[k]);
  if (manyNodes)
    for (size_t ni = 0; ni < nodes.size(); ++ni) wakeForHwsq(static_cast<int>(ni));
  if (global) wakeSpinner(-1);
}

// [owner] Spawns from a task are refused once destroy() began (the caller gets false and keeps
// the task): a task that keeps spawning -- a fan-out of millions -- would otherwise make
// destroy() wait for all of it and then drop it all. A spawn that passed this check just before
// stopping was set is queued and dropped like any other. close() still accepts them.
bool Runtime::Impl::refusesLocalSpawns() const { return stopping.load(std::memory_order_acquire); }

// [owner] From a task running on p (not refused).
void Runtime::Impl::spawnLocal(P& p, Task* t, SpawnHint hint) {
  int ni = t->node >= 0 ? checkedNodeIndex(t->node) : -1;  // validate before counting
  p.c.spawned.add();
  stamp(t, p.sampler);
  if (hint == SpawnHint::Shared || (ni >= 0 && (!hier || ni != p.nodeIdx))) {
    const TaskRef ref = TaskRef::full(t);
    pushShared(p, &ref, 1, ni >= 0 ? ni : p.nodeIdx);
    return;
  }
  p.c.localPushes.add();
  if (hint == SpawnHint::Next) {
    t = p.lrq.putRunnext(t);
    if (!t) {
      wakeSpinner(p.nodeIdx);  // no S2: see "sloppy" in idle.cpp
      return;
    }
  }
  if (!p.lrq.pushBack(TaskRef::full(t))) lrqOverflow(p, TaskRef::full(t));
  wakeSpinner(p.nodeIdx);
}

// [owner] n tasks from a task running on p (validated, not refused; anyAffinity: some task has a
// node), in order. The tasks bound for p's own ring (no hint, no foreign node) are queued as one
// run: one count, one clock read for the sampled ones, one ring claim, one wake; any other task
// goes through spawnLocal.
void Runtime::Impl::spawnLocalBatch(P& p, Task* const* ts, size_t n, SpawnHint hint, bool anyAffinity) {
  if (hint != SpawnHint::Tail) {
    for (size_t i = 0; i < n; ++i) spawnLocal(p, ts[i], hint);
    return;
  }
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    if (!anyAffinity) j = n;  // one run, nothing to look at
    while (j < n && (ts[j]->node < 0 || (hier && nodeIndexOf(ts[j]->node) == p.nodeIdx))) ++j;
    if (j == i) {  // bound elsewhere
      spawnLocal(p, ts[i++], hint);
      continue;
    }
    const size_t k = j - i;
    p.c.spawned.add(k);
    p.c.localPushes.add(k);
    stampBatch(ts + i, k, p.sampler);
    TaskRef refs[Runtime::kLightBatchMax];
    while (i < j) {
      const size_t m = std::min(j - i, Runtime::kLightBatchMax);
      for (size_t r = 0; r < m; ++r) refs[r] = TaskRef::full(ts[i + r]);
      pushLocalRun(p, refs, m);
      i += m;
    }
  }
}

// [owner] Counted, stamped tasks for p's own ring, in order: the ring, what does not fit by
// lrqOverflow; then a wake.
void Runtime::Impl::pushLocalRun(P& p, const TaskRef* ts, size_t n) {
  size_t i = 0;
  while (i < n) {
    i += p.lrq.pushBackBatch(ts + i, static_cast<uint32_t>(std::min<size_t>(n - i, LocalQueue::kCapacity)));
    if (i < n) lrqOverflow(p, ts[i++]);
  }
  wakeSpinner(p.nodeIdx);
}

// [owner] Tasks that must not stay on p: node ni's HWSQ (hierarchical), else the GRQ; S2 + wake.
void Runtime::Impl::pushShared(P& p, const TaskRef* ts, size_t n, int ni) {
  if (hier) {
    hwsqPush(ni, ts, n);
    if (statsOn) p.c.hwsqPushes.add(n);
    storeLoadFence();
    wakeForHwsq(ni);
  } else {
    grq.pushBatch(ts, n);
    storeLoadFence();
    wakeSpinner(-1);
  }
}

// [owner] The LRQ is full: move its older half plus t out in one batch (Go's runqputslow).
void Runtime::Impl::lrqOverflow(P& p, TaskRef t) {
  for (;;) {
    uint32_t n = p.lrq.grabHalfForOverflow(p.buf);
    if (n == 0) {
      if (p.lrq.pushBack(t)) return;  // thieves made room
      continue;
    }
    HWSQ_ASSERT(n == LocalQueue::kCapacity / 2, "LRQ overflow: not half a ring");
    p.buf[n++] = t;
    if (statsOn) {
      p.c.overflows.add();
      p.c.overflowTasks.add(n);
    }
    pushShared(p, p.buf, n, p.nodeIdx);
    return;
  }
}

}  // namespace hwsq::sched
