// A thread-backed P's thread: the constructor starts one per P and waits until each has pinned
// itself and run onWorkerStart; then each loops "find a task, run it" (findRunnable with the
// ThreadPark strategy) until the runtime stops. runTask, running one task, is in hot_path.h
// (shared with external Ps).
#include <thread>

#include "../affinity.h"
#include "hot_path.h"
#include "idle.h"
#include "task_pool.h"

namespace hwsq::sched {

// [ctor] Starts the Ps and waits until each has pinned itself and run onWorkerStart; rethrows
// the first failure after joining every thread.
void Runtime::Impl::startThreads() {
  size_t started = 0;
  try {
    for (auto& pp : ps) {
      P* p = pp.get();
      p->thread = std::thread([this, p] { pMain(*p); });
      nameThread(p->thread, "hwsq-p" + std::to_string(p->index));
      ++started;
    }
  } catch (...) {
    startError = std::current_exception();
  }
  {
    std::unique_lock<std::mutex> lk(startMu);
    startCv.wait(lk, [&] { return reported == static_cast<int>(started); });
    if (startError) stopping.store(true, std::memory_order_seq_cst);
    go = true;
    startCv.notify_all();
  }
  if (startError) {
    for (auto& pp : ps)
      if (pp->thread.joinable()) pp->thread.join();
    stoppedFlag.store(true);
    std::rethrow_exception(startError);
  }
}

// [owner] The calling thread becomes p's: a runtime thread (process-scope pins pass it by),
// pinned to p's CPUs or, without its own, to the runtime's (RuntimeOptions::unpinnedCpus).
// A cpuset change since the runtime started (cgroup_watch.cpp) gives it P::pinTarget instead.
void Runtime::Impl::placeThread(P& p) {
  enterRuntimeThread();
  std::vector<int> cpus;
  {
    std::lock_guard<std::mutex> lk(limitMu);
    cpus = !p.pinTarget.empty() ? p.pinTarget : opts.pin && !p.cpus.empty() ? p.cpus : opts.unpinnedCpus;
    p.pinSeen = pinEpoch.load(std::memory_order_relaxed);
  }
  if (cpus.empty()) return;
  if (opts.pinThread) opts.pinThread(p.index, cpus);
  else setThreadAffinity(cpus);
}

// [owner] At the top of each findRunnable round: one acquire load unless the cgroup watch
// re-planned the pins (cgroup_watch.cpp).
void Runtime::Impl::repinIfMoved(P& p) {
  if (pinEpoch.load(std::memory_order_acquire) == p.pinSeen) return;
  std::vector<int> cpus;
  {
    std::lock_guard<std::mutex> lk(limitMu);
    cpus = p.pinTarget;
    p.pinSeen = pinEpoch.load(std::memory_order_relaxed);
  }
  if (cpus.empty()) return;
  try {
    if (opts.pinThread) opts.pinThread(p.index, cpus);
    else setThreadAffinity(cpus);
  } catch (...) {  // a CPU of the plan left the cpuset meanwhile: the next reading re-plans
  }
}

// [owner] Reports the P's coalesced run (TaskOps::doneMany), then counts it as executed (last,
// as runTask's count: drained() relies on the completions being visible).
void Runtime::Impl::flushCoalesced(P& p) {
  const uint64_t n = p.coalescedCount;
  p.coalescedCount = 0;
  p.coalescedOps->doneMany(p.coalescedArg, n);
  p.c.executed.addRelease(n);
}

// [owner] The body of p's thread.
void Runtime::Impl::pMain(P& p) {
  tlRuntime = this;
  tlP = &p;
  try {
    placeThread(p);
    if (opts.onWorkerStart) opts.onWorkerStart(p.index);
    p.startedOk = true;
  } catch (...) {
    std::lock_guard<std::mutex> lk(startMu);
    if (!startError) startError = std::current_exception();
  }
  {
    std::unique_lock<std::mutex> lk(startMu);
    ++reported;
    startCv.notify_all();
    startCv.wait(lk, [&] { return go; });
  }
  if (p.startedOk && !stopping.load(std::memory_order_acquire)) {
    for (;;) {
      TaskRef t;
      {
        ThreadPark wait{*this};  // a fresh spin window per search; its slot is free while t runs
        t = findRunnable(p, wait);
      }
      if (!t) break;
      if (p.spinning) resetSpinning(p);
      runTask(p, t);
    }
    if (p.coalescedCount) flushCoalesced(p);
    if (p.spinning) stopSpinning(p);
  }
  if (p.startedOk && opts.onWorkerStop) {
    try {
      opts.onWorkerStop(p.index);
    } catch (...) {
    }
  }
  tlP = nullptr;
  tlRuntime = nullptr;
  leaveRuntimeThread();
}

Runtime* Runtime::current() { return tlRuntime ? tlRuntime->self : nullptr; }
int Runtime::currentWorker() { return tlP ? tlP->index : -1; }

void Runtime::taskEnding() {
  // runTask stores start tick + 2 when fn returns: storing it early is idempotent with that.
  if (P* p = tlP) {
    const uint64_t t = p->probe.tick.load(std::memory_order_relaxed);
    if (t & 1) p->probe.tick.store(t + 1, std::memory_order_release);
  }
}

}  // namespace hwsq::sched
