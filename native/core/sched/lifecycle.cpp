// A runtime's life: construction (options.cpp builds it, p_loop.cpp starts the threads, then
// sysmon), waitIdle and close (wait for the drain), destroy (stop now, drop what is queued),
// and the destructor.
//
// Drain. Each P counts spawned (tasks submitted from its tasks) and executed (after fn/done),
// single-writer; outside submissions count outsideSubmitted (one RMW per call, done BEFORE the
// closed check and the push) and rejections count rejected. drained() reads rejected, all
// executed (acquire), all spawned, outsideSubmitted, in that order, and reports
// executed + rejected == spawned + outsideSubmitted. Every counted execution's submission is
// visible (it happened before the executed store we acquired). If some task submitted before
// the read had not run, take its oldest not-executed ancestor: its submission is counted and
// visible, so spawned + outsideSubmitted would exceed executed + rejected. So equality means done.
#include <chrono>
#include <stdexcept>
#include <thread>

#include "../invariant.h"
#include "fence.h"
#include "idle.h"
#include "task_pool.h"

namespace hwsq::sched {

// ------------------------------------------------------------------------------- Runtime API

Runtime::Runtime(RuntimeOptions options) : impl_(new Impl(this, std::move(options))) {
  if (!impl_->opts.externalWorkers) impl_->startThreads();
  startSysmon();
  try {
    impl_->startWatch();
  } catch (...) {
    destroy();
    throw;
  }
}

void Runtime::startSysmon() {
  Impl& rt = *impl_;
  const RuntimeOptions& o = rt.opts;
  if (!o.sysmon) return;
  std::vector<const SysmonProbe*> probes;
  for (auto& p : rt.ps) probes.push_back(&p->probe);
  Sysmon::Config cfg;
  cfg.thresholdNs = o.hogThresholdNs;
  cfg.minDelayUs = o.sysmonMinDelayUs;
  cfg.maxDelayUs = o.sysmonMaxDelayUs;
  Impl* impl = &rt;
  cfg.onBusyRound = [impl] { impl->wakeForSaturatedNode(); };
  try {
    rt.sysmon.reset(new Sysmon(std::move(probes), cfg));
  } catch (...) {
    destroy();
    throw;
  }
}

Runtime::~Runtime() {
  if (impl_ && !impl_->stoppedFlag.load(std::memory_order_acquire)) {
    if (tlRuntime == impl_.get()) std::terminate();  // destroying a runtime from its own task
    destroy();
  }
}

void Runtime::waitIdle() {
  if (tlRuntime == impl_.get()) throw std::logic_error("waitIdle() called from a task of the same runtime");
  if (impl_->stoppedFlag.load(std::memory_order_acquire)) return;
  impl_->waitQuiescent();
}

void Runtime::close() {
  Impl& rt = *impl_;
  if (tlRuntime == &rt) throw std::logic_error("close() called from a task of the same runtime");
  rt.closed.store(true, std::memory_order_seq_cst);
  std::lock_guard<std::mutex> lk(rt.lifecycleMu);
  if (rt.stoppedFlag.load(std::memory_order_acquire)) return;
  rt.waitQuiescent();  // returns early if destroy() sets stopping meanwhile
  rt.stopAndJoin();
}

void Runtime::destroy() {
  Impl& rt = *impl_;
  if (tlRuntime == &rt) throw std::logic_error("destroy() called from a task of the same runtime");
  rt.closed.store(true, std::memory_order_seq_cst);
  rt.stopping.store(true, std::memory_order_seq_cst);  // also cuts a concurrent close() short
  rt.pokeQuiesce();
  for (auto& p : rt.ps) rt.unpark(*p);
  std::lock_guard<std::mutex> lk(rt.lifecycleMu);
  if (rt.stoppedFlag.load(std::memory_order_acquire)) return;
  rt.stopAndJoin();
}

bool Runtime::isClosed() const { return impl_->closed.load(std::memory_order_acquire); }
bool Runtime::isStopped() const { return impl_->stoppedFlag.load(std::memory_order_acquire); }

// ------------------------------------------------------------------------------- Impl

// [any] {finished: executed + rejected + droppedCount, submitted: spawned + outsideSubmitted}.
std::pair<uint64_t, uint64_t> Runtime::Impl::drainCounts(uint64_t droppedCount) const {
  uint64_t rej = rejected.load(std::memory_order_acquire);
  uint64_t e = 0, s = 0;
  for (auto& p : ps) e += p->c.executed.getAcquire();
  for (auto& p : ps) s += p->c.spawned.getAcquire();
  uint64_t x = outsideSubmitted.load(std::memory_order_acquire);
  // Read in this order, no task can be counted as finished before its submission is.
  HWSQ_ASSERT(e + rej + droppedCount <= s + x, "drain: more tasks finished than were submitted");
  return {e + rej + droppedCount, s + x};
}

// [any] Every submission so far ran, was refused or (droppedCount) dropped.
bool Runtime::Impl::drained(uint64_t droppedCount) const {
  auto [finished, submitted] = drainCounts(droppedCount);
  return finished >= submitted;
}

// [outside] Until drained or stopping; parking Ps poke us (pokeQuiesce), 2 ms safety net.
void Runtime::Impl::waitQuiescent() {
  quiesceWaiters.fetch_add(1, std::memory_order_seq_cst);
  storeLoadFence();
  for (;;) {
    uint32_t ev = idleEvent.load(std::memory_order_acquire);
    storeLoadFence();
    if (drained() || stopping.load(std::memory_order_acquire)) break;
    futexWait(idleEvent, ev, 2'000'000);
  }
  quiesceWaiters.fetch_sub(1, std::memory_order_relaxed);
}

// [any] Wakes the waitQuiescent waiters to re-check.
void Runtime::Impl::pokeQuiesce() {
  idleEvent.fetch_add(1, std::memory_order_release);
  futexWake(idleEvent, -1);
}

// [owner] A P ran dry (after a store-load fence that orders its executed count before this):
// wakes the waiters only when they can return. Waking them on every park cost a futex call
// here and a wake-up there per burst while the work went on. Not drained: some task is queued
// or running, and whichever P runs the last one runs dry after it and pokes then (of two Ps
// finishing at once, the fences make at least one see both counts); the waiter's 2 ms safety
// net stays.
void Runtime::Impl::pokeQuiesceIfDrained() {
  if (quiesceWaiters.load(std::memory_order_relaxed) != 0 && drained()) pokeQuiesce();
}

// [stopped] Drops one queued task: cancel(doneArg) (light: ops->cancel(arg)), freed if pooled,
// counted.
void Runtime::Impl::dropTask(TaskRef ref) {
  Task* const t = ref.task();
  const uint32_t flags = t ? t->flags : 0;
  const TaskOps* const light = lightOpsOf(ref);
  const TaskFn cancel = light ? light->cancel : t->cancel;
  void* const doneArg = light ? (t ? t->arg : ref.arg) : t->doneArg;
  if (cancel) {
    try {
      cancel(doneArg);
    } catch (...) {  // a throwing callback must not cut destroy() short (tasks left queued)
    }
  }
  if (flags & kTaskPooled) freeTask(t);
  dropped.fetch_add(1, std::memory_order_relaxed);
}

// [stopped] After the Ps are gone (joined; external mode: detached): drop every queued task --
// inboxes, runnext slots, LRQs, every HWSQ (ring and spill list), the GRQ -- until every
// submission is accounted for. Only an outside submitter that counted itself before `closed`
// can still be between its count and its push (a few instructions); nothing else adds tasks any
// more: no P runs, cancel callbacks that submit are refused (closed), spawns from tasks ended
// with them.
void Runtime::Impl::dropRemaining() {
  auto drop = [this](TaskRef t) { dropTask(t); };
  for (;;) {
    for (auto& pp : ps) {
      P& p = *pp;
      while (Task* t = p.lrq.takeRunnext()) dropTask(TaskRef::full(t));
      while (TaskRef t = p.lrq.popFront()) dropTask(t);
      while (Task* t = p.inbox.pop()) dropTask(TaskRef::full(t));
    }
    for (auto& node : nodes)
      if (node.hwsq) node.hwsq->drain(drop);
    TaskRef tmp[256];
    while (size_t n = grq.popBatch(tmp, 256))
      for (size_t i = 0; i < n; ++i) dropTask(tmp[i]);
    auto [finished, submitted] = drainCounts(dropped.load(std::memory_order_relaxed));
    if (finished >= submitted) {
      // Every submission ran, was refused or was dropped, exactly once.
      HWSQ_ASSERT(finished == submitted, "destroy: executed + rejected + dropped != spawned + submitted");
      return;
    }
    std::this_thread::yield();
  }
}

// [outside] under lifecycleMu: stop the Ps and sysmon, then drop what is left.
void Runtime::Impl::stopAndJoin() {
  if (watch) watch->stop();  // first: no limit change (nor event) once stopping
  stopping.store(true, std::memory_order_seq_cst);
  for (auto& p : ps) unpark(*p);
  for (auto& p : ps)
    if (p->thread.joinable()) p->thread.join();
  if (opts.externalWorkers) {  // the embedder detaches its threads when runSome says Stopping
    for (auto& p : ps)
      while (p->attached.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (sysmon) sysmon->stop();
  dropRemaining();
  stoppedFlag.store(true, std::memory_order_release);
}

}  // namespace hwsq::sched
