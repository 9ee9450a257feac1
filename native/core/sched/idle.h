// How a P waits when findRunnable found nothing: the waiting strategy, a policy type (oneTBB's
// waiters) instead of flag arguments. findRunnable(p, wait) calls wait.idle(p) after a round
// found nothing; true: look again, false: stop looking (findRunnable returns nullptr).
// Both end in the park protocol of idle.cpp (P1..P4 there); they differ at P5.
#pragma once
#include <cstdint>

#include "runtime_impl.h"

namespace hwsq::sched {

// A thread-backed P: sleeps on its Parker (P5) until a wake, then looks again. findRunnable
// returns nullptr only when the runtime stops. Owner only.
struct ThreadPark {
  Runtime::Impl& rt;
  bool idle(P& p);
  bool limited(P& p);  // p is above the parallelism limit (limit.cpp): sleep until it is not
};

// An external P (a thread the embedder owns, RuntimeOptions::externalWorkers): never blocks the
// thread. First it may spin for spinNs (RunLimits::spinNs) holding one of the runtime's
// idle-spinner slots, then it runs P1..P4 and, where a thread-backed P would sleep, marks the P
// parked and stops looking: runSome returns RunStatus::Parked and the next wakeExternal(p)
// resumes it (parkFinish at the next runSome). One object per findRunnable call; the destructor
// gives the spinner slot back. Owner only.
class ExternalPark {
 public:
  ExternalPark(Runtime::Impl& rt, uint64_t spinNs) : rt_(rt), spinNs_(spinNs) {}
  ~ExternalPark() { releaseSpinSlot(); }
  ExternalPark(const ExternalPark&) = delete;
  ExternalPark& operator=(const ExternalPark&) = delete;

  bool idle(P& p);
  // p is above the parallelism limit (limit.cpp): give its work away and, still limited, stop
  // looking (runSome returns Parked; the wake that lifts the limit is wakeExternal(p)).
  bool limited(P& p);
  // findRunnable returned nullptr because the P parked (else: the runtime is stopping).
  bool parked() const { return parked_; }

 private:
  void releaseSpinSlot();

  Runtime::Impl& rt_;
  const uint64_t spinNs_;
  uint64_t spinUntil_ = 0;     // end of the current spin (0: not spinning)
  bool holdsSpinSlot_ = false; // counted in Impl::idleSpinners
  bool parked_ = false;
};

}  // namespace hwsq::sched
