// External Ps (RuntimeOptions::externalWorkers): the runtime starts no threads; a thread the
// embedder owns -- the JS layer's worker_threads Worker, one per P -- attaches to a P, calls
// runSome whenever the P may have work, and detaches before it exits. runSome searches exactly as
// a thread-backed P does (findRunnable), with the ExternalPark waiting strategy: where a thread
// would sleep it returns RunStatus::Parked, and the P's wake becomes RuntimeOptions::wakeExternal.
// This is all of what crosses between the core and an embedder thread: attach / runSome /
// detach / reclaim calls in, wakeExternal calls out.
#include <stdexcept>
#include <string>

#include "../affinity.h"
#include "../errors.h"
#include "../invariant.h"
#include "clock.h"
#include "fence.h"
#include "hot_path.h"
#include "idle.h"

namespace hwsq::sched {

// ------------------------------------------------------------------------------- Runtime API

void Runtime::attach(int worker) {
  Impl& rt = *impl_;
  if (!rt.opts.externalWorkers) throw std::logic_error("attach() needs RuntimeOptions::externalWorkers");
  if (worker < 0 || worker >= rt.nprocs) throw HwsqRangeError("ERR_HWSQ_UNKNOWN_WORKER", "no worker " + std::to_string(worker));
  if (tlP) throw std::logic_error("this thread is already a P");
  if (rt.stopping.load(std::memory_order_acquire)) throw std::logic_error("attach() after close()/destroy()");
  P& p = *rt.ps[worker];
  bool expected = false;
  if (!p.attached.compare_exchange_strong(expected, true, std::memory_order_acq_rel))
    throw std::logic_error("worker " + std::to_string(worker) + " is already attached");
  try {
    rt.placeThread(p);
    tlRuntime = &rt;
    tlP = &p;
    if (rt.opts.onWorkerStart) rt.opts.onWorkerStart(p.index);
  } catch (...) {
    leaveRuntimeThread();
    tlRuntime = nullptr;
    tlP = nullptr;
    p.attached.store(false, std::memory_order_release);
    throw;
  }
}

RunResult Runtime::runSome(const RunLimits& limits) {
  Impl& rt = *impl_;
  P* p = tlP;
  if (!p || p->rt != &rt) throw std::logic_error("runSome() from a thread that is not attached to this runtime");
  return rt.runSome(*p, limits);
}

void Runtime::detach() {
  Impl& rt = *impl_;
  P* p = tlP;
  if (!p || p->rt != &rt) return;
  if (rt.opts.onWorkerStop) {
    try {
      rt.opts.onWorkerStop(p->index);
    } catch (...) {
    }
  }
  tlP = nullptr;
  tlRuntime = nullptr;
  leaveRuntimeThread();
  rt.releaseOwner(*p);
}

void Runtime::reclaim(int worker) {
  Impl& rt = *impl_;
  if (worker < 0 || worker >= rt.nprocs) throw HwsqRangeError("ERR_HWSQ_UNKNOWN_WORKER", "no worker " + std::to_string(worker));
  P& p = *rt.ps[worker];
  if (!p.attached.load(std::memory_order_acquire)) return;
  if (tlP == &p) throw std::logic_error("reclaim() of the calling thread's own P; use detach()");
  rt.releaseOwner(p);
}

bool Runtime::isAttached(int worker) const {
  if (worker < 0 || worker >= impl_->nprocs) return false;
  return impl_->ps[worker]->attached.load(std::memory_order_acquire);
}

// ------------------------------------------------------------------------------- Impl

// [owner: the attached thread] Runs p's tasks until a limit says stop or nothing is runnable.
RunResult Runtime::Impl::runSome(P& p, const RunLimits& lim) {
  HWSQ_ASSERT(p.attached.load(std::memory_order_relaxed), "runSome: the P is not attached");
  RunResult r;
  p.limitParked = false;  // a limited P's wake (or a spurious call): findRunnable re-reads the flag
  if (p.extParked) {  // P5 is over: the embedder called us again after a wake (or spuriously)
    p.extParked = false;
    parkFinish(p);
  }
  while (r.ran < lim.budget) {
    if (lim.stop && *lim.stop) {
      r.status = RunStatus::Stopped;
      break;
    }
    TaskRef t;
    if (lim.localOnly) {
      const bool lim = p.limited.load(std::memory_order_acquire);
      if (stopping.load(std::memory_order_acquire)) t = TaskRef{};
      else if (lim) t = TaskRef::full(p.inbox.pop());  // limit.cpp: only its inbox
      else t = localGet(p);
      if (!t) {
        if (p.coalescedCount) flushCoalesced(p);
        if (lim && !stopping.load(std::memory_order_acquire)) shedForLimit(p);  // strand nothing while at its concurrency limit
        if (p.spinning) stopSpinning(p);
        r.status = stopping.load(std::memory_order_acquire) ? RunStatus::Stopping : RunStatus::Limited;
        return r;
      }
    } else {
      ExternalPark wait(*this, lim.spinNs);
      t = findRunnable(p, wait);
      if (!t) {
        if (!wait.parked()) {  // stopping
          if (p.spinning) stopSpinning(p);
          r.status = RunStatus::Stopping;
        }
        return r;  // Parked
      }
    }
    if (p.spinning) resetSpinning(p);
    runTask(p, t);
    ++r.ran;
  }
  if (r.ran >= lim.budget) r.status = RunStatus::Budget;
  if (p.coalescedCount) flushCoalesced(p);  // the embedder may not call again for a while
  if (p.spinning) stopSpinning(p);
  return r;
}

// [owner] (detach) or [any] (reclaim, once the owner thread is gone): the owner's side of a P
// leaving its thread. Afterwards the P is neither idle nor spinning, so no waker counts on it; if
// it left queued work behind, an idle P is woken to steal it.
void Runtime::Impl::releaseOwner(P& p) {
  bool wasSpinning = p.spinning;
  {
    std::lock_guard<std::mutex> lk(idleMu);
    if (p.idle) {
      leaveIdleLocked(p);
    } else if (p.extParked && p.wakeSpinning) {
      wasSpinning = true;  // a waker counted us as a spinner; the wake never reached runSome
    }
    p.wakeSpinning = false;
  }
  p.extParked = false;
  p.limitParked = false;
  if (wasSpinning) {
    if (!p.spinning) {
      p.spinning = true;
      if (statsOn) p.spinStart = nowTicks();
    }
    stopSpinning(p);
  }
  p.spinning = false;
  p.attached.store(false, std::memory_order_release);
  storeLoadFence();
  if (p.lrq.hasWork() || p.inbox.sharedNonEmpty() || wasSpinning) wake(WakeScope::anyNode(p.nodeIdx));
  if (quiesceWaiters.load(std::memory_order_relaxed) != 0) pokeQuiesce();
}

}  // namespace hwsq::sched
