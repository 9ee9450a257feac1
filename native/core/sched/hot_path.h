// The per-task path of a P: taking from its own queues (localGet: inbox, runnext, LRQ) and running
// a task (runTask). Inline in each caller (a thread-backed P's loop in p_loop.cpp, findRunnable in
// find_work.cpp, an external P's runOne in external.cpp) and forced so: defined out of line, with
// two callers each, the addon's link-time optimizer kept them as calls, and the inside spawn shape
// took 1.3x the time per task.
#pragma once
#include "../invariant.h"
#include "clock.h"
#include "runtime_impl.h"
#include "task_pool.h"

namespace hwsq::sched {

// [owner] Only p's own queues: its inbox, then runnext / LRQ (also all an external P at its
// concurrency limit may take: RunLimits::localOnly).
inline TaskRef Runtime::Impl::localGet(P& p) {
  if (Task* t = p.inbox.pop()) {
    if (statsOn) p.c.inboxPops.add();
    return TaskRef::full(t);
  }
  return lrqGet(p);
}

// [owner] runnext, at most kMaxRunnextChain in a row, then the LRQ's oldest.
inline TaskRef Runtime::Impl::lrqGet(P& p) {
  if (p.runnextChain < kMaxRunnextChain) {
    if (Task* t = p.lrq.takeRunnext()) {
      ++p.runnextChain;
      if (statsOn) p.c.runnextHits.add();
      return TaskRef::full(t);
    }
  } else if (Task* t = p.lrq.takeRunnext()) {
    // The runnext chain used its budget: demote to the back of the ring so the ring's older
    // tasks run (tokio's LIFO-slot limit; Go issue 52934 for the starvation it prevents).
    if (!p.lrq.pushBack(TaskRef::full(t))) lrqOverflow(p, TaskRef::full(t));
  }
  p.runnextChain = 0;
  const TaskRef t = p.lrq.popFront();
  // A full task's line is usually cold (written by the spawning core): start loading the one a
  // few pops ahead now, so that misses overlap instead of costing one full miss per task (a
  // prefetch of a stale or torn slot's pointer is harmless: it never faults).
  if (t)
    if (const Task* ahead = p.lrq.peekAhead(kTaskPrefetchDistance).task()) __builtin_prefetch(ahead);
  return t;
}

// [owner] Runs a task: fn, then done, then (pooled) frees it; counts executed last. Three
// shapes, each on a path of its own so that the rare ones cost one misprediction, not one per
// branch they would share with the common one:
//   - a light task inline ({ops, arg}): ops->run(arg), then ops->done(arg) or its completion
//     coalesced with the P's run of the same ops and arg (TaskOps::doneMany). Never timed: the
//     submit path gives each timed light task a carrier (timeRefs);
//   - a timed light task carried by a full Task (kTaskLight): the same, always timed (a carrier
//     exists only for that: no second test of whether to time it);
//   - a full task: t->fn(t->arg), then t->done(t->doneArg), timed when stamped.
inline void Runtime::Impl::runTask(P& p, TaskRef ref) {
  if (__builtin_expect(ref.isLight(), 1)) {
    HWSQ_ASSERT(!timeAll, "runTask: an inline light task where every task is timed");
    runLight<Timing::kNever>(p, ref.ops, ref.arg, 0);
    return;
  }
  Task* const t = ref.task();
  // Copy out first: fn may free or reuse a caller-owned task.
  const TaskFn fn = t->fn;
  void* const arg = t->arg;
  const uint64_t sub = t->submitTicks;
  const uint32_t flags = t->flags;
  if (flags & kTaskLight) {  // the carrier is the runtime's: freed before the run
    const TaskOps* const ops = static_cast<const TaskOps*>(t->doneArg);
    HWSQ_ASSERT(statsOn && sub != 0, "runTask: a timed light task's carrier without a stamp");
    freeTask(t);
    runLight<Timing::kAlways>(p, ops, arg, sub);
    return;
  }
  const TaskFn done = t->done;
  void* const doneArg = t->doneArg;
  if (p.coalescedCount) flushCoalesced(p);  // a coalesced run ends where another task begins
  runFn<Timing::kIfStamped>(p, fn, arg, sub);
  if (done) done(doneArg);
  if (flags & kTaskPooled) freeTask(t);
  p.c.executed.addRelease();  // last: drained() relies on everything above being visible
}

// [owner] runTask for a light task (sub: its carrier's stamp; 0 if none).
template <Runtime::Impl::Timing kTiming>
inline void Runtime::Impl::runLight(P& p, const TaskOps* ops, void* arg, uint64_t sub) {
  // A coalesced run ends where another task begins (TaskOps::doneMany).
  if (p.coalescedCount && (ops != p.coalescedOps || arg != p.coalescedArg)) flushCoalesced(p);
  runFn<kTiming>(p, ops->run, arg, sub);
  if (ops->doneMany) {  // counted as executed when the run is reported
    p.coalescedOps = ops;
    p.coalescedArg = arg;
    if (++p.coalescedCount == kMaxCoalescedDone) flushCoalesced(p);
    return;
  }
  if (ops->done) ops->done(arg);
  p.c.executed.addRelease();  // last: drained() relies on everything above being visible
}

// [owner] fn(arg) between the sysmon probe's odd and even ticks; timed (latency from sub, run
// time) when the submit path stamped the task (TimingSampler; shift 0: every task): kIfStamped
// tests that, the other two know it.
template <Runtime::Impl::Timing kTiming>
inline void Runtime::Impl::runFn(P& p, TaskFn fn, void* arg, uint64_t sub) {
  const uint64_t tick = p.probe.tick.load(std::memory_order_relaxed);
  // One branch, fn called on each side: a timed task among untimed ones costs one misprediction.
  if (kTiming == Timing::kAlways ||
      (kTiming == Timing::kIfStamped && __builtin_expect(timeAll || (sub != 0 && statsOn), 0))) {
    const uint64_t start = nowTicks();
    p.probe.startTicks.store(start, std::memory_order_relaxed);
    p.probe.tick.store(tick + 1, std::memory_order_release);  // odd: running (sysmon)
    fn(arg);
    const uint64_t run = nowTicks() - start;
    if (kTiming == Timing::kAlways || sub)
      p.timings.record(start > sub ? start - sub : 0, run);
    else  // timeAll, a task without a stamp: its run time only
      p.timings.recordRun(run);
  } else {
    p.probe.startTicks.store(0, std::memory_order_relaxed);  // 0: sysmon uses its own clock
    p.probe.tick.store(tick + 1, std::memory_order_release);
    fn(arg);
  }
  // Even before done(): a completion may make its waiter submit the next task at once, and
  // this P, about to look for work, must not look saturated to thieves (nodeSaturated). Tasks
  // that publish their result from inside fn call taskEnding() first for the same reason.
  p.probe.tick.store(tick + 2, std::memory_order_release);
}

}  // namespace hwsq::sched
