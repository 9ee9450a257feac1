// The wake and park protocol: how a P goes to sleep, how it is woken, and why no wake-up is lost.
//
// State (runtime_impl.h): Impl::nspinning / nidle and, per node, Node::spinning / idle count the
// Ps spinning (looking for work to steal) and idle (in their node's idle stack, asleep or about
// to be); the stacks, P::idle and P::wakeSpinning are guarded by Impl::idleMu.
//
// How a P sleeps (findRunnable found nothing; the waiting strategy of idle.h decides P5):
//     P1 put itself in the idle list (nidle++, node idle++, seq_cst RMWs);
//     P2 if it was spinning: node spinning--, nspinning-- (seq_cst RMWs);
//     P3 seq_cst fence;  P4 re-check every queue it could take from; if any has work, leave the
//        idle list and look again (as a spinner) instead of sleeping;
//     P5 sleep: a thread-backed P parks on its Parker (a token semaphore); an external P
//        returns RunStatus::Parked from runSome and sleeps in its event loop.
// A waker takes it off the idle stack and unparks it (wake / wakeOwner); the woken P learns
// from P::wakeSpinning whether it was counted as a spinner (parkFinish).
//
// The wake family, after each kind of push:
//     wake(scope)           the primitive (Go's wakep): claim a spinning slot (the runtime's, or
//                           node ni's), pop an idle P, unpark it as a spinner
//     wakeSpinner(n)        after a GRQ push or a spawn into the LRQ: some P idle, none spinning
//     wakeForHwsq(ni)       after a HWSQ push: a P of node ni, or (node saturated) a thief
//     wakeOwner(p)          after a push to p's inbox: exactly p
//     resetSpinning(p)      a spinner found work: the last one wakes a replacement
//     wakeForSaturatedNode  sysmon: work stuck behind a saturated node
//     unpark(p)             P5's counterpart: the Parker's token, or wakeExternal(p)
//
// ---------------------------------------------------------------------------------------------
// No lost wake-up. The claim: a task made visible in a shared queue (GRQ, HWSQ, inbox) is run
// even if every P is going to park. Every submit of that kind does
//     S1 push;  S2 seq_cst fence;  S3 read nidle / nspinning (per node for HWSQ k);
//     S4 if some P is idle and none is spinning: CAS nspinning 0->1, pop an idle P, unpark it.
// Every P that runs out of work does P1..P5 above.
// Seq_cst fences are totally ordered. If P3 precedes S2, S3 sees P's idle-list entry and the
// spinning count without P: either nspinning == 0 and S4 wakes some idle P (possibly P, whose
// token makes P5 return at once), or another P Q is spinning; Q will either find work and, being
// the last spinner, wake a replacement (resetSpinning), or reach its own P3/P4 after our S2 and
// see the task. If S2 precedes P3, P4 sees the push and P does not sleep. A failed CAS in S4
// (or an S3 that read nspinning != 0) means a spinner exists, which reduces to the previous
// case, or another waker W holds the slot for a moment: W's CAS succeeded but W found no idle P.
// W then releases the slot (seq_cst RMW), fences and re-reads nidle: our S3 read W's 1, so it is
// ordered before W's release, hence P3 < S2 < W's fence, so W sees P's P1 and wakes it in our
// stead (the loop in wake(); found stress-testing two runtimes feeding each other). For HWSQ k
// the same argument runs with node k's idle/spinning counts and the Ps of node k (which always
// re-check HWSQ k).
// Spawns into the spawning P's own LRQ skip S2 (Go is equally "sloppy" there): that P is
// running and will take the task itself, so a missed wake costs parallelism, never liveness.
// Targeted wakes (submitToWorker) need no fence: unpark() leaves a token that P5 consumes.
// The test "lost wakeup" in test_sched_runtime.cpp exercises exactly this window.
// Ps above the parallelism limit (limit.cpp) stand outside all of this: never in an idle stack
// (parkPrepare refuses them; the limit is set under idleMu), never counted idle or spinning, not
// counted for saturation. The argument above runs over the active Ps; limit.cpp gives the same
// argument for the moment a P becomes limited (it sheds, fences, re-checks) and for the rise.
// ---------------------------------------------------------------------------------------------
#include "idle.h"

#include <algorithm>

#include "../invariant.h"
#include "clock.h"
#include "fence.h"

namespace hwsq::sched {

// ------------------------------------------------------------------- the idle list and counts

// P1. [idleMu]
void Runtime::Impl::enterIdleLocked(P& p) {
  HWSQ_ASSERT(!p.idle, "idle list: a P entered it twice");
  Node& node = nodes[p.nodeIdx];
  p.idle = true;
  p.parkedFlag.store(true, std::memory_order_relaxed);
  node.idleStack.push_back(p.index);
  checkCountUp(node.idle.fetch_add(1, std::memory_order_seq_cst), nodeSize(p.nodeIdx), "node idle count above the node's Ps");
  checkCountUp(nidle.fetch_add(1, std::memory_order_seq_cst), nprocs, "idle count above nprocs");
}

// [idleMu] p is in the idle list.
void Runtime::Impl::leaveIdleLocked(P& p) {
  Node& node = nodes[p.nodeIdx];
  auto& st = node.idleStack;
  const auto it = std::find(st.begin(), st.end(), p.index);
  HWSQ_ASSERT(p.idle && it != st.end(), "idle list: a P left it without being in it");
  st.erase(it);
  p.idle = false;
  p.parkedFlag.store(false, std::memory_order_relaxed);
  const int nodePrev = node.idle.fetch_sub(1, std::memory_order_seq_cst);
  const int prev = nidle.fetch_sub(1, std::memory_order_seq_cst);
  HWSQ_ASSERT(nodePrev >= 1 && prev >= 1, "idle counts went negative");
  (void)nodePrev, (void)prev;
}

// [any] Counts stay within [0, limit]; prev: the value an increment saw. Idle counts count Ps:
// limit = the Ps counted. Spinning counts count Ps plus, for a moment, the one waker whose CAS
// 0 -> 1 claimed the slot (tryWake): limit = the Ps counted + 1.
void Runtime::Impl::checkCountUp(int prev, int limit, const char* what) const {
  HWSQ_ASSERT(prev >= 0 && prev < limit, what);
  (void)prev, (void)limit, (void)what;
}

// ------------------------------------------------------------------- the wake family

// [any] Go's wakep, for either slot: wake an idle P as a spinner unless one spins already.
void Runtime::Impl::wake(WakeScope s) {
  while (!tryWake(s)) {
    // Our CAS made the spinning count 1 for a moment without a spinner behind it: a submitter
    // that read that 1 skipped its wake, counting on a spinner. If a P went idle meanwhile, it
    // may have re-checked the queues before that submitter's push: wake it in its stead. (After
    // our seq_cst decrement and fence, a P idle before the skipped submitter's fence is seen.)
    storeLoadFence();
    const std::atomic<int>& idle = s.nodeOnly ? nodes[s.node].idle : nidle;
    if (idle.load(std::memory_order_relaxed) == 0) return;
  }
}

// [any] True when done: a P was woken, or another thread holds the spinning slot (a real
// spinner, or another waker); false when the slot was ours and there was no idle P to wake.
bool Runtime::Impl::tryWake(WakeScope s) {
  std::atomic<int>& slot = s.nodeOnly ? nodes[s.node].spinning : nspinning;
  int zero = 0;
  if (!slot.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return true;
  P* p = nullptr;
  {
    std::lock_guard<std::mutex> lk(idleMu);
    p = pickIdleLocked(s);
    if (p) {
      leaveIdleLocked(*p);
      p->wakeSpinning = true;
      // The slot counts it in one spinning count; it spins, so it counts in the other too.
      if (s.nodeOnly)
        checkCountUp(nspinning.fetch_add(1, std::memory_order_seq_cst), nprocs + 1, "spinning count above nprocs + 1");
      else
        checkCountUp(nodes[p->nodeIdx].spinning.fetch_add(1, std::memory_order_seq_cst), nodeSize(p->nodeIdx) + 1,
                     "node spinning count above the node's Ps + 1");
    }
  }
  if (!p) {
    const int prev = slot.fetch_sub(1, std::memory_order_seq_cst);
    HWSQ_ASSERT(prev >= 1, s.nodeOnly ? "node spinning count went negative" : "spinning count went negative");
    (void)prev;
    return false;
  }
  unpark(*p);
  return true;
}

// [idleMu] The idle P a wake of scope s takes (the last to park on its node), or nullptr.
P* Runtime::Impl::pickIdleLocked(WakeScope s) {
  if (s.nodeOnly) {
    const auto& st = nodes[s.node].idleStack;
    return st.empty() ? nullptr : ps[st.back()].get();
  }
  if (s.node >= 0) {
    for (int ni : nodes[s.node].order)
      if (!nodes[ni].idleStack.empty()) return ps[nodes[ni].idleStack.back()].get();
    return nullptr;
  }
  P* p = nullptr;
  const int nn = static_cast<int>(nodes.size());
  for (int k = 0; k < nn && !p; ++k) {
    const auto& st = nodes[(wakeRotor + k) % nn].idleStack;
    if (!st.empty()) p = ps[st.back()].get();
  }
  ++wakeRotor;
  return p;
}

// [any] After a push to the GRQ (S1) and a seq_cst fence (S2), or a spawn into the spawner's
// own LRQ (no fence, see the file comment).
void Runtime::Impl::wakeSpinner(int preferNode) {
  if (nidle.load(std::memory_order_relaxed) > 0 && nspinning.load(std::memory_order_relaxed) == 0)
    wake(WakeScope::anyNode(preferNode));
}

// [any] After a push to HWSQ ni (S1) and a seq_cst fence (S2).
void Runtime::Impl::wakeForHwsq(int ni) {
  if (nodes[ni].spinning.load(std::memory_order_relaxed) > 0) return;  // a P of the node will look
  if (nodes[ni].idle.load(std::memory_order_relaxed) > 0) wake(WakeScope::onNode(ni));
  else if (nodeSaturated(ni)) wakeSpinner(ni);  // let a P elsewhere come and steal
}

// [any] After a push to p's inbox: only p can take it.
void Runtime::Impl::wakeOwner(P& p) {
  {
    std::lock_guard<std::mutex> lk(idleMu);
    if (p.idle) {
      leaveIdleLocked(p);
      p.wakeSpinning = false;
    }
  }
  unpark(p);  // a token even if it is not asleep: its park re-check cannot miss it
}

// [sysmon] While some P is busy: a node became saturated after its last submit woke no one (its
// Ps took one batch each and are now inside long tasks) while more of its work waits and Ps
// elsewhere sleep. No submit will come to wake them, so sysmon sends one spinner, from the
// nearest node (Go's sysmon retakes Ps for a similar reason). At most one per round.
void Runtime::Impl::wakeForSaturatedNode() {
  if (!hier || stopping.load(std::memory_order_relaxed)) return;
  if (nidle.load(std::memory_order_relaxed) == 0 || nspinning.load(std::memory_order_relaxed) != 0) return;
  for (size_t ni = 0; ni < nodes.size(); ++ni)
    if (hwsqDepth(static_cast<int>(ni)) > 0 && nodeSaturated(static_cast<int>(ni))) {
      wake(WakeScope::anyNode(static_cast<int>(ni)));
      return;
    }
}

// [any] P5's counterpart. External mode: the embedder's wake (a token too: the P's thread calls
// runSome afterwards, whose parkFinish/search sees what the waker published).
void Runtime::Impl::unpark(P& p) {
  if (!opts.externalWorkers) p.parker.unpark();
  else if (opts.wakeExternal) opts.wakeExternal(p.index);
}

// ------------------------------------------------------------------- spinning

// [owner] p looks for work to steal (findRunnable's step 5, or P4 found work).
void Runtime::Impl::startSpinning(P& p) {
  p.spinning = true;
  checkCountUp(nspinning.fetch_add(1, std::memory_order_seq_cst), nprocs + 1, "spinning count above nprocs + 1");
  checkCountUp(nodes[p.nodeIdx].spinning.fetch_add(1, std::memory_order_seq_cst), nodeSize(p.nodeIdx) + 1,
               "node spinning count above the node's Ps + 1");
  if (statsOn) p.spinStart = nowTicks();
}

// [owner] (or releaseOwner once the owner thread is gone). Returns {previous global count,
// previous node count}.
std::pair<int, int> Runtime::Impl::stopSpinning(P& p) {
  HWSQ_ASSERT(p.spinning, "stopSpinning: the P was not spinning");
  p.spinning = false;
  if (statsOn) p.c.spinningTicks.add(nowTicks() - p.spinStart);
  int nodePrev = nodes[p.nodeIdx].spinning.fetch_sub(1, std::memory_order_seq_cst);
  int prev = nspinning.fetch_sub(1, std::memory_order_seq_cst);
  HWSQ_ASSERT(nodePrev >= 1 && prev >= 1, "spinning counts went negative");
  return {prev, nodePrev};
}

// [owner] Go's resetspinning: a spinner found work; if it was the last one, wake a replacement,
// but only when there is visible work left for it (Go wakes one regardless): a wake is a futex
// call here and a sleep there, or a thread hop through another event loop in external mode, and
// a replacement that finds nothing only costs a CPU the submitting threads need. Safe: a
// submitter that skipped its wake because it saw us spinning pushed before our seq_cst
// decrement, so the re-check below sees its task.
void Runtime::Impl::resetSpinning(P& p) {
  auto [prev, nodePrev] = stopSpinning(p);
  if (prev == 1) {
    storeLoadFence();  // the decrement before the re-check: Dekker with the submitter's S2
    if (nidle.load(std::memory_order_seq_cst) > 0 && (p.lrq.hasWork() || anyWorkVisible(p)))
      wake(WakeScope::anyNode(p.nodeIdx));
  }
  Node& node = nodes[p.nodeIdx];
  if (hier && nodePrev == 1 && node.idle.load(std::memory_order_seq_cst) > 0 && hwsqDepth(p.nodeIdx) > 0)
    wake(WakeScope::onNode(p.nodeIdx));
}

// ------------------------------------------------------------------- parking

// [owner] P4: is there anything this P could take?
bool Runtime::Impl::anyWorkVisible(P& p) {
  if (p.inbox.ownerHasWork() || !grq.empty()) return true;
  if (hier) {
    if (hwsqDepth(p.nodeIdx) > 0) return true;
    for (size_t ni = 0; ni < nodes.size(); ++ni)
      if (static_cast<int>(ni) != p.nodeIdx && hwsqDepth(static_cast<int>(ni)) > 0 && nodeSaturated(static_cast<int>(ni))) return true;
  }
  for (auto& v : ps)
    if (v.get() != &p && v->lrq.hasWork()) return true;
  return false;
}

// [owner] P1..P4. Returns true when p must sleep (P5); false when it should look again (it may
// have become a spinner).
bool Runtime::Impl::parkPrepare(P& p) {
  {
    std::lock_guard<std::mutex> lk(idleMu);
    if (p.limited.load(std::memory_order_relaxed)) return false;  // never idle while limited (limit.cpp)
    enterIdleLocked(p);                                 // P1
  }
  if (p.spinning) stopSpinning(p);                      // P2
  storeLoadFence();                                     // P3
  pokeQuiesceIfDrained();
  if (stopping.load(std::memory_order_acquire) || anyWorkVisible(p)) {  // P4
    bool becomeSpinner = false;
    {
      std::lock_guard<std::mutex> lk(idleMu);
      if (p.idle) {
        leaveIdleLocked(p);
        becomeSpinner = true;  // like Go: look again as a spinner
      } else {                 // a waker got here first; its unpark token is on the way
        p.spinning = p.wakeSpinning;
        p.wakeSpinning = false;
        if (statsOn) p.c.wakeups.add();
      }
    }
    if (becomeSpinner) startSpinning(p);
    else if (p.spinning && statsOn) p.spinStart = nowTicks();
    return false;
  }
  if (statsOn) p.c.parks.add();
  return true;
}

// [owner] After P5: leave the idle list (spurious wake / stale token / stopping) or take the
// waker's verdict on whether we are a spinner.
void Runtime::Impl::parkFinish(P& p) {
  {
    std::lock_guard<std::mutex> lk(idleMu);
    if (p.idle) {
      leaveIdleLocked(p);  // spurious, stale token or stopping: not spinning
    } else {
      p.spinning = p.wakeSpinning;
      p.wakeSpinning = false;
      if (statsOn) p.c.wakeups.add();
    }
  }
  if (p.spinning && statsOn) p.spinStart = nowTicks();
}

// [owner] A thread-backed P: P1..P5. Returns when there may be work (or we are stopping).
void Runtime::Impl::parkThread(P& p) {
  if (!parkPrepare(p)) return;
  p.parker.park();  // P5
  parkFinish(p);
}

// ------------------------------------------------------------------- the waiting strategies

bool IdleSpin::spinning() {
  if (spinNs_ == 0) return false;
  const uint64_t now = nowNs();
  if (spinUntil_ == 0 && !holdsSlot_) {
    const int limit = std::max(1, rt_.nprocs / 2);
    const int spinners = rt_.idleSpinners.fetch_add(1, std::memory_order_relaxed);
    rt_.checkCountUp(spinners, rt_.nprocs, "idle spinners above nprocs");
    if (spinners < limit) {
      holdsSlot_ = true;
      spinUntil_ = now + spinNs_;
      // Ran dry: a waitIdle()/close() waiter must not wait for the end of the window to see it
      // (parkPrepare's P3 + poke, earlier). The fence orders our executed counts before the load.
      storeLoadFence();
      rt_.pokeQuiesceIfDrained();
    } else {
      rt_.idleSpinners.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  if (holdsSlot_ && now < spinUntil_) {
    cpuRelax();
    return true;
  }
  release();
  return false;
}

void IdleSpin::release() {
  spinUntil_ = 0;
  if (!holdsSlot_) return;
  holdsSlot_ = false;
  const int prev = rt_.idleSpinners.fetch_sub(1, std::memory_order_relaxed);
  HWSQ_ASSERT(prev >= 1, "idle spinners went negative");
  (void)prev;
}

bool ThreadPark::idle(P& p) {
  if (!spin_.spinning()) rt_.parkThread(p);
  return true;
}

bool ExternalPark::idle(P& p) {
  if (spin_.spinning()) return true;
  if (rt_.parkPrepare(p)) {  // P1..P4 said sleep: P5 is the embedder's
    p.extParked = true;
    parked_ = true;
    return false;
  }
  return true;
}

}  // namespace hwsq::sched
