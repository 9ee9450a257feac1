// The per-task path of a P: taking from its own queues (localGet: inbox, runnext, LRQ) and running
// a task (runTask). Inline in each caller (a thread-backed P's loop in p_loop.cpp, findRunnable in
// find_work.cpp, an external P's runOne in external.cpp) and forced so: defined out of line, with
// two callers each, the addon's link-time optimizer kept them as calls, and the inside spawn shape
// took 1.3x the time per task.
#pragma once
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

// [owner] Runs t: fn, then done, then (pooled) frees it; counts executed last. A light task
// (inline, or a timed one carried by a full Task): ops->run(arg), then ops->done(arg), or its
// completion coalesced with the P's run of the same ops and arg (TaskOps::doneMany).
inline void Runtime::Impl::runTask(P& p, TaskRef ref) {
  Task* const t = ref.task();
  TaskFn fn;
  void* arg;
  TaskFn done = nullptr;
  void* doneArg = nullptr;
  uint32_t flags = 0;
  uint64_t sub = 0;
  const TaskOps* const light = lightOpsOf(ref);
  if (t) {  // copy out first: fn may free or reuse a caller-owned task
    fn = t->fn;
    arg = t->arg;
    done = t->done;
    doneArg = t->doneArg;
    flags = t->flags;
    sub = t->submitTicks;
  } else {
    fn = ref.ops->run;
    arg = ref.arg;
  }
  if (light) {
    done = light->done;
    doneArg = arg;
  }
  // A coalesced run ends where another task begins (TaskOps::doneMany).
  if (p.coalescedCount && (light != p.coalescedOps || arg != p.coalescedArg)) flushCoalesced(p);
  const uint64_t tick = p.probe.tick.load(std::memory_order_relaxed);
  uint64_t start = 0;
  // The submit path picked the timed tasks: it stamped them (TimingSampler; shift 0: all).
  const bool timed = timeAll || (sub != 0 && statsOn);
  if (timed) {
    start = nowTicks();
    if (sub) p.latency.record(start > sub ? start - sub : 0);
  }
  p.probe.startTicks.store(start, std::memory_order_relaxed);  // 0: sysmon uses its own clock
  p.probe.tick.store(tick + 1, std::memory_order_release);      // odd: running (sysmon)
  fn(arg);
  if (timed) {
    uint64_t end = nowTicks();
    p.runTime.record(end - start);
    p.c.busyTicks.add((end - start) << shift);
  }
  // Even before done(): a completion may make its waiter submit the next task at once, and
  // this P, about to look for work, must not look saturated to thieves (nodeSaturated). Tasks
  // that publish their result from inside fn call taskEnding() first for the same reason.
  p.probe.tick.store(tick + 2, std::memory_order_release);
  if (light && light->doneMany) {  // counted as executed when the run is reported
    if (flags & kTaskPooled) freeTask(t);
    p.coalescedOps = light;
    p.coalescedArg = arg;
    if (++p.coalescedCount == kMaxCoalescedDone) flushCoalesced(p);
    return;
  }
  if (done) done(doneArg);
  if (flags & kTaskPooled) freeTask(t);
  p.c.executed.addRelease();  // last: drained() relies on everything above being visible
}

}  // namespace hwsq::sched
