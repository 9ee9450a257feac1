// How a P waits when findRunnable found nothing: the waiting strategy, a policy type (oneTBB's
// waiters) instead of flag arguments. findRunnable(p, wait) calls wait.idle(p) after a round
// found nothing; true: look again, false: stop looking (findRunnable returns nullptr).
// Both end in the park protocol of idle.cpp (P1..P4 there); they differ at P5.
#pragma once
#include <cstdint>

#include "runtime_impl.h"

namespace hwsq::sched {

// Keeping on looking for work for a while before parking: holds one of the runtime's
// idle-spinner slots (at most half the Ps, Impl::idleSpinners) for up to spinNs from the first
// round that found nothing; spinning() is true while it may go on. A P that gets work back
// within microseconds skips the futex sleep and the waker's wake-up (both system calls, the
// larger part of a short task's cost when a P keeps running dry). One object per findRunnable
// call; the destructor gives the slot back. Owner only.
class IdleSpin {
 public:
  IdleSpin(Runtime::Impl& rt, uint64_t spinNs) : rt_(rt), spinNs_(spinNs) {}
  ~IdleSpin() { release(); }
  IdleSpin(const IdleSpin&) = delete;
  IdleSpin& operator=(const IdleSpin&) = delete;

  // True: look again now (after a pause); false: go on to P1..P4 (the next call starts a new
  // window, after a wake that found nothing for instance).
  bool spinning();
  // Gives the slot back and ends the window (a P about to sleep for another reason).
  void release();

 private:
  Runtime::Impl& rt_;
  const uint64_t spinNs_;
  uint64_t spinUntil_ = 0;  // end of the current window (0: none)
  bool holdsSlot_ = false;  // counted in Impl::idleSpinners
};

// A thread-backed P: spins (RuntimeOptions::idleSpinNs), then sleeps on its Parker (P5) until a
// wake, then looks again. findRunnable returns nullptr only when the runtime stops. One object
// per findRunnable call. Owner only.
class ThreadPark {
 public:
  explicit ThreadPark(Runtime::Impl& rt) : rt_(rt), spin_(rt, rt.opts.idleSpinNs) {}
  bool idle(P& p);
  bool limited(P& p);  // p is above the parallelism limit (limit.cpp): sleep until it is not

 private:
  Runtime::Impl& rt_;
  IdleSpin spin_;
};

// An external P (a thread the embedder owns, RuntimeOptions::externalWorkers): never blocks the
// thread. First it may spin for spinNs (RunLimits::spinNs), then it runs P1..P4 and, where a
// thread-backed P would sleep, marks the P parked and stops looking: runSome returns
// RunStatus::Parked and the next wakeExternal(p) resumes it (parkFinish at the next runSome).
// One object per findRunnable call. Owner only.
class ExternalPark {
 public:
  ExternalPark(Runtime::Impl& rt, uint64_t spinNs) : rt_(rt), spin_(rt, spinNs) {}

  bool idle(P& p);
  // p is above the parallelism limit (limit.cpp): give its work away and, still limited, stop
  // looking (runSome returns Parked; the wake that lifts the limit is wakeExternal(p)).
  bool limited(P& p);
  // findRunnable returned nullptr because the P parked (else: the runtime is stopping).
  bool parked() const { return parked_; }

 private:
  Runtime::Impl& rt_;
  IdleSpin spin_;
  bool parked_ = false;
};

}  // namespace hwsq::sched
