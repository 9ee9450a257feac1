// The scheduler core. Borrowed designs, credited where used:
//  - Go runtime/proc.go: the LRQ (runq*), runnext, globrunqget's bounded share, the 1-in-61
//    global-queue fairness check, the spinning protocol (wakep/resetspinning, at most half the
//    busy Ps spinning, the last spinner to find work wakes a replacement), the park re-check,
//    random coprime-stride victim order (randomOrder), sysmon's tick sampling.
//  - tokio multi_thread: the budget on consecutive LIFO-slot (runnext) polls (3).
//  - oneTBB: victims tiered by locality (arena slots / NUMA), here by SLIT distance.
// What is ours: per-node HWSQs with batch claims, node-level spinning/idle counts so that work
// with affinity wakes a P of its node, GRQ->HWSQ prefetch, the counter-based drain.
//
// ---------------------------------------------------------------------------------------------
// No lost wake-up. The claim: a task made visible in a shared queue (GRQ, HWSQ, inbox) is run
// even if every P is going to park. Every submit of that kind does
//     S1 push;  S2 seq_cst fence;  S3 read nidle / nspinning (per node for HWSQ k);
//     S4 if some P is idle and none is spinning: CAS nspinning 0->1, pop an idle P, unpark it.
// Every P that runs out of work does, before sleeping,
//     P1 put itself in the idle list (nidle++, nodeIdle++, seq_cst RMWs);
//     P2 if it was spinning: nodeSpinning--, nspinning-- (seq_cst RMWs);
//     P3 seq_cst fence;  P4 re-check every queue it could take from; if any has work, leave the
//        idle list and look again instead of sleeping;  P5 park (token semaphore).
// Seq_cst fences are totally ordered. If P3 precedes S2, S3 sees P's idle-list entry and the
// spinning count without P: either nspinning == 0 and S4 wakes some idle P (possibly P, whose
// token makes P5 return at once), or another P Q is spinning; Q will either find work and, being
// the last spinner, wake a replacement (resetSpinning), or reach its own P3/P4 after our S2 and
// see the task. If S2 precedes P3, P4 sees the push and P does not sleep. A failed CAS in S4
// (or an S3 that read nspinning != 0) means a spinner exists, which reduces to the previous
// case, or another waker W holds the slot for a moment: W's CAS succeeded but W found no idle P.
// W then releases the slot (seq_cst RMW), fences and re-reads nidle: our S3 read W's 1, so it is
// ordered before W's release, hence P3 < S2 < W's fence, so W sees P's P1 and wakes it in our
// stead (wakeP / wakeOnNode loop; found stress-testing two runtimes feeding each other). For HWSQ k the same argument runs
// with nodeIdle[k]/nodeSpinning[k] and the Ps of node k (which always re-check HWSQ k).
// Spawns into the spawning P's own LRQ skip S2 (Go is equally "sloppy" there): that P is
// running and will take the task itself, so a missed wake costs parallelism, never liveness.
// Targeted wakes (submitToWorker) need no fence: unpark() leaves a token that P5 consumes.
// The test "lost wakeup" in test_sched_runtime.cpp exercises exactly this window.
//
// Drain. Each P counts spawned (tasks submitted from its tasks) and executed (after fn/done),
// single-writer; outside submissions count extSubmitted (one RMW per call, done BEFORE the
// closed check and the push) and rejections count rejected. drained() reads rejected, all
// executed (acquire), all spawned, extSubmitted, in that order, and reports
// executed + rejected == spawned + extSubmitted. Every counted execution's submission is
// visible (it happened before the executed store we acquired). If some task submitted before
// the read had not run, take its oldest not-executed ancestor: its submission is counted and
// visible, so spawned + extSubmitted would exceed executed + rejected. So equality means done.
// ---------------------------------------------------------------------------------------------
#include "scheduler.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "../affinity.h"
#include "../errors.h"
#include "../invariant.h"
#include "clock.h"
#include "fence.h"
#include "global_queue.h"
#include "histogram.h"
#include "hwsq.h"
#include "inbox.h"
#include "local_queue.h"
#include "parker.h"
#include "sysmon.h"
#include "task_pool.h"

namespace hwsq::sched {

namespace {
constexpr uint32_t kGlobalCheckEvery = 61;                 // Go: schedtick%61
constexpr uint32_t kMaxRunnextChain = 3;                   // tokio: MAX_LIFO_POLLS_PER_TICK
constexpr int kStealPasses = 4;                            // Go: stealTries
constexpr uint32_t kBatchMax = LocalQueue::kCapacity / 2;  // a grab never exceeds half the ring
constexpr size_t kPrefetchMax = 256;
constexpr size_t kBufSize = LocalQueue::kCapacity + kPrefetchMax;
}  // namespace

const char* stealPolicyName(StealPolicy p) { return p == StealPolicy::Flat ? "flat" : "hierarchical"; }

StealPolicy parseStealPolicy(const std::string& name) {
  if (name == "hierarchical") return StealPolicy::Hierarchical;
  if (name == "flat") return StealPolicy::Flat;
  throw HwsqRangeError("ERR_HWSQ_UNKNOWN_POLICY", "unknown steal policy '" + name + "' (hierarchical | flat)");
}

RuntimeOptions RuntimeOptions::virtualTopology(int nodes, int workersPerNode) {
  if (nodes < 1 || workersPerNode < 1) throw HwsqRangeError("ERR_HWSQ_INVALID_WORKERS", "virtualTopology needs nodes >= 1 and workersPerNode >= 1");
  RuntimeOptions o;
  for (int n = 0; n < nodes; ++n) {
    o.nodeIds.push_back(n);
    for (int i = 0; i < workersPerNode; ++i) o.workers.push_back(WorkerPlacement{n, {}});
  }
  o.distances.assign(nodes, std::vector<int>(nodes, 10));
  for (int i = 0; i < nodes; ++i)
    for (int j = 0; j < nodes; ++j) o.distances[i][j] = 10 + 10 * std::abs(i - j);
  o.pin = false;
  return o;
}

namespace {

struct Tier {
  std::vector<int> ps;          // victim Ps
  std::vector<int> nodes;       // remote nodes (indices) whose HWSQ may be raided after the Ps
  std::vector<uint32_t> coprimes;
  bool sameNode = false;        // the thief's own node (hierarchical only)
};

std::vector<uint32_t> coprimesOf(uint32_t n) {
  std::vector<uint32_t> out;
  for (uint32_t c = 1; c <= n; ++c)
    if (std::gcd(c, n) == 1) out.push_back(c);
  return out;
}

}  // namespace

struct alignas(64) Worker {
  Worker(Runtime::Impl* r, int i, int ni, int nid, std::vector<int> c)
      : rt(r), index(i), nodeIdx(ni), nodeId(nid), cpus(std::move(c)), rng(0x9E3779B97F4A7C15ull * (i + 1)) {}

  Runtime::Impl* const rt;
  const int index;
  const int nodeIdx;   // index into Impl::nodeIds
  const int nodeId;    // OS id
  const std::vector<int> cpus;

  LocalQueue lrq;
  Inbox inbox;
  Parker parker;
  SysmonProbe probe;
  WorkerCounters c;
  Histogram latency;
  Histogram runTime;

  // Owner-private.
  uint32_t schedTick = 0;
  uint32_t runnextChain = 0;
  bool spinning = false;
  uint64_t spinStart = 0;
  uint32_t stampCounter = 0;   // timing samples (RuntimeOptions::timingSampleShift)
  uint64_t rng;
  std::vector<Tier> tiers;
  Task* buf[kBufSize];

  // Guarded by Impl::idleMu.
  bool idle = false;
  bool wakeSpinning = false;   // set by a waker that counted this P as spinning
  std::atomic<bool> parkedFlag{false};  // mirror of idle for stats (relaxed)

  bool startedOk = false;      // written by the thread before reporting under startMu
  std::thread thread;

  // External mode. extParked: owner state (the last runSome parked the P at P5).
  // attached: the thread driving the P (release by attach/detach/reclaim, acquire by readers).
  bool extParked = false;
  bool idleSpinSlot = false;   // holds one of Impl::idleSpinners' slots (RunLimits::spinNs)
  std::atomic<bool> attached{false};

  uint32_t random() {  // xorshift64*
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return static_cast<uint32_t>((rng * 0x2545F4914F6CDD1Dull) >> 32);
  }
};

namespace {
thread_local Runtime::Impl* tlRuntime = nullptr;
thread_local Worker* tlWorker = nullptr;
}  // namespace

struct Runtime::Impl {
  Runtime* self = nullptr;
  RuntimeOptions opts;
  bool statsOn = true;
  bool hier = true;
  uint32_t sampleMask = 0;   // (1 << timingSampleShift) - 1
  int shift = 0;
  int nprocs = 0;

  std::vector<int> nodeIds;                    // active nodes (with >= 1 P), OS ids
  std::vector<std::vector<int>> dist;          // over active nodes
  std::vector<int> nodeIndexById;              // OS id -> active index, -1
  std::vector<std::vector<int>> nodeWorkers;   // per active node: P indices
  std::vector<std::vector<int>> nodeOrder;     // per active node: active nodes by distance
  std::vector<std::unique_ptr<Hwsq>> hwsq;     // per active node (hierarchical only): ring + spill list
  GlobalQueue grq;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<Sysmon> sysmon;

  // Spinning / idle accounting (see the file comment). All RMWs are seq_cst.
  alignas(64) std::atomic<int> nspinning{0};
  alignas(64) std::atomic<int> nidle{0};
  std::unique_ptr<std::atomic<int>[]> nodeSpinning;
  std::unique_ptr<std::atomic<int>[]> nodeIdle;
  std::mutex idleMu;
  std::vector<std::vector<int>> idleStacks;    // per active node, guarded by idleMu
  uint32_t wakeRotor = 0;                      // guarded by idleMu

  // Lifecycle.
  alignas(64) std::atomic<bool> closed{false};    // seq_cst: pairs with extSubmitted (drain)
  std::atomic<bool> stopping{false};              // release by stop, acquire by workers
  std::atomic<bool> stoppedFlag{false};
  std::mutex lifecycleMu;

  // External mode: Ps busy-waiting before they park (RunLimits::spinNs), at most half the Ps
  // (at least one) so that spinners never take every CPU from the threads that submit.
  alignas(64) std::atomic<int> idleSpinners{0};

  // Sampling phase of outside submissions (several outside threads: relaxed RMW, only used when
  // timingSampleShift > 0; the value only picks which tasks get a timestamp).
  std::atomic<uint32_t> extStampCounter{0};

  // Drain accounting.
  alignas(64) std::atomic<uint64_t> extSubmitted{0};
  alignas(64) std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> dropped{0};
  alignas(64) std::atomic<uint32_t> quiesceWaiters{0};
  std::atomic<uint32_t> idleEvent{0};             // futex word bumped by parking Ps when someone waits

  // Startup handshake.
  std::mutex startMu;
  std::condition_variable startCv;
  int reported = 0;
  bool go = false;
  std::exception_ptr startError;

  // ---------------------------------------------------------------- helpers
  int nodeIndexOf(int id) const {
    return id >= 0 && static_cast<size_t>(id) < nodeIndexById.size() ? nodeIndexById[id] : -1;
  }
  int checkedNodeIndex(int id) const {
    int ni = nodeIndexOf(id);
    if (ni < 0) throw HwsqRangeError("ERR_HWSQ_UNKNOWN_NODE", "task affinity names node " + std::to_string(id) + ", which has no worker in this runtime");
    return ni;
  }
  // Submit timestamp for the latency histogram (sampled: 0 = not measured).
  void stamp(Task* t, uint32_t& counter) {
    t->submitTicks = statsOn && ((++counter & sampleMask) == 0) ? nowTicks() : 0;
  }

  // ---------------------------------------------------------------- waking
  void removeIdleLocked(Worker& w) {
    auto& st = idleStacks[w.nodeIdx];
    st.erase(std::find(st.begin(), st.end(), w.index));
    w.idle = false;
    w.parkedFlag.store(false, std::memory_order_relaxed);
    const int nodePrev = nodeIdle[w.nodeIdx].fetch_sub(1, std::memory_order_seq_cst);
    const int prev = nidle.fetch_sub(1, std::memory_order_seq_cst);
    HWSQ_ASSERT(nodePrev >= 1 && prev >= 1, "idle counts went negative");
    (void)nodePrev, (void)prev;
  }

  // Counts of Ps (idle, spinning) stay within [0, Ps counted]; prev: the value an increment saw.
  void checkCountUp(int prev, int limit, const char* what) const {
    HWSQ_ASSERT(prev >= 0 && prev < limit, what);
    (void)prev, (void)limit, (void)what;
  }
  int nodeSize(int ni) const { return static_cast<int>(nodeWorkers[ni].size()); }

  // Go's wakep: wake one idle P as a spinner, only if nobody is spinning.
  void wakeP(int preferNode) {
    while (!tryWakeP(preferNode)) {
      // Our CAS made nspinning 1 for a moment without a spinner behind it: a submitter that
      // read that 1 skipped its wake, counting on a spinner. If a P went idle meanwhile, it may
      // have re-checked the queues before that submitter's push: wake it in its stead. (After
      // our seq_cst decrement and fence, a P idle before the skipped submitter's fence is seen.)
      storeLoadFence();
      if (nidle.load(std::memory_order_relaxed) == 0) return;
    }
  }
  // True when done: a P was woken, or another thread holds the spinning slot (a real spinner,
  // or another waker); false when the slot was ours and there was no idle P to wake.
  bool tryWakeP(int preferNode) {
    int zero = 0;
    if (!nspinning.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return true;
    Worker* w = nullptr;
    {
      std::lock_guard<std::mutex> lk(idleMu);
      const int nn = static_cast<int>(nodeIds.size());
      if (preferNode >= 0) {
        for (int ni : nodeOrder[preferNode])
          if (!idleStacks[ni].empty()) { w = workers[idleStacks[ni].back()].get(); break; }
      } else {
        for (int k = 0; k < nn && !w; ++k) {
          int ni = static_cast<int>((wakeRotor + k) % nn);
          if (!idleStacks[ni].empty()) w = workers[idleStacks[ni].back()].get();
        }
        ++wakeRotor;
      }
      if (w) {
        removeIdleLocked(*w);
        w->wakeSpinning = true;
        checkCountUp(nodeSpinning[w->nodeIdx].fetch_add(1, std::memory_order_seq_cst), nodeSize(w->nodeIdx),
                     "node spinning count above the node's Ps");
      }
    }
    if (!w) {
      const int prev = nspinning.fetch_sub(1, std::memory_order_seq_cst);
      HWSQ_ASSERT(prev >= 1, "spinning count went negative");
      (void)prev;
      return false;
    }
    unparkWorker(*w);
    return true;
  }

  // Wake an idle P of node ni as a spinner, only if none of that node is spinning. The same
  // hand-over as wakeP when our claim of the node's spinning slot found no idle P.
  void wakeOnNode(int ni) {
    while (!tryWakeOnNode(ni)) {
      storeLoadFence();
      if (nodeIdle[ni].load(std::memory_order_relaxed) == 0) return;
    }
  }
  bool tryWakeOnNode(int ni) {
    int zero = 0;
    if (!nodeSpinning[ni].compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return true;
    Worker* w = nullptr;
    {
      std::lock_guard<std::mutex> lk(idleMu);
      if (!idleStacks[ni].empty()) {
        w = workers[idleStacks[ni].back()].get();
        removeIdleLocked(*w);
        w->wakeSpinning = true;
        checkCountUp(nspinning.fetch_add(1, std::memory_order_seq_cst), nprocs, "spinning count above nprocs");
      }
    }
    if (!w) {
      const int prev = nodeSpinning[ni].fetch_sub(1, std::memory_order_seq_cst);
      HWSQ_ASSERT(prev >= 1, "node spinning count went negative");
      (void)prev;
      return false;
    }
    unparkWorker(*w);
    return true;
  }

  // After a push to the GRQ (S1) and a seq_cst fence (S2).
  void wakeForGlobal(int preferNode) {
    if (nidle.load(std::memory_order_relaxed) > 0 && nspinning.load(std::memory_order_relaxed) == 0) wakeP(preferNode);
  }
  // After a push to HWSQ ni (S1) and a seq_cst fence (S2).
  void wakeForNode(int ni) {
    if (nodeSpinning[ni].load(std::memory_order_relaxed) > 0) return;  // a P of the node will look
    if (nodeIdle[ni].load(std::memory_order_relaxed) > 0) wakeOnNode(ni);
    else if (nodeSaturated(ni)) wakeForGlobal(ni);  // let a P elsewhere come and steal
  }
  void wakeWorker(Worker& w) {
    {
      std::lock_guard<std::mutex> lk(idleMu);
      if (w.idle) {
        removeIdleLocked(w);
        w.wakeSpinning = false;
      }
    }
    unparkWorker(w);  // a token even if it is not asleep: its park re-check cannot miss it
  }
  // P5's counterpart. External mode: the embedder's wake (a token too: the P's thread calls
  // runSome afterwards, whose parkFinish/search sees what the waker published).
  void unparkWorker(Worker& w) {
    if (!opts.externalWorkers) w.parker.unpark();
    else if (opts.wakeExternal) opts.wakeExternal(w.index);
  }

  // ---------------------------------------------------------------- spinning
  void becomeSpinning(Worker& w) {
    w.spinning = true;
    checkCountUp(nspinning.fetch_add(1, std::memory_order_seq_cst), nprocs, "spinning count above nprocs");
    checkCountUp(nodeSpinning[w.nodeIdx].fetch_add(1, std::memory_order_seq_cst), nodeSize(w.nodeIdx),
                 "node spinning count above the node's Ps");
    if (statsOn) w.spinStart = nowTicks();
  }
  // Returns {previous global count, previous node count}.
  std::pair<int, int> stopSpinning(Worker& w) {
    w.spinning = false;
    if (statsOn) w.c.spinningTicks.add(nowTicks() - w.spinStart);
    int nodePrev = nodeSpinning[w.nodeIdx].fetch_sub(1, std::memory_order_seq_cst);
    int prev = nspinning.fetch_sub(1, std::memory_order_seq_cst);
    HWSQ_ASSERT(nodePrev >= 1 && prev >= 1, "spinning counts went negative");
    return {prev, nodePrev};
  }
  // Go's resetspinning: a spinner found work; if it was the last one, wake a replacement.
  // External mode wakes the replacement only when there is visible work left for it: a wake
  // there is a thread hop through another event loop (a spinner that finds nothing costs a CPU
  // the submitting thread needs). Safe: a submitter that skipped its wake because it saw us
  // spinning pushed before our seq_cst decrement, so the re-check below sees its task.
  void resetSpinning(Worker& w) {
    auto [prev, nodePrev] = stopSpinning(w);
    if (prev == 1 && nidle.load(std::memory_order_seq_cst) > 0 &&
        (!opts.externalWorkers || w.lrq.hasWork() || anyWorkVisible(w)))
      wakeP(w.nodeIdx);
    if (hier && nodePrev == 1 && nodeIdle[w.nodeIdx].load(std::memory_order_seq_cst) > 0 && nodeDepth(w.nodeIdx) > 0)
      wakeOnNode(w.nodeIdx);
  }

  // ---------------------------------------------------------------- submission
  // From threads that are not Ps of this runtime.
  size_t submitExternal(Task* const* ts, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; ++i)
      if (ts[i]->node >= 0) checkedNodeIndex(ts[i]->node);
    extSubmitted.fetch_add(n, std::memory_order_seq_cst);  // before the closed check (drain)
    if (closed.load(std::memory_order_seq_cst)) {
      rejected.fetch_add(n, std::memory_order_release);
      return 0;
    }
    // One clock read per call (sampled per task when timingSampleShift > 0).
    uint64_t now = statsOn ? nowTicks() : 0;
    if (sampleMask == 0) {
      for (size_t i = 0; i < n; ++i) ts[i]->submitTicks = now;
    } else {
      uint32_t phase = extStampCounter.fetch_add(static_cast<uint32_t>(n), std::memory_order_relaxed);
      for (size_t i = 0; i < n; ++i) ts[i]->submitTicks = ((phase + i) & sampleMask) == 0 ? now : 0;
    }
    bool global = false;
    int wakeNodes[4];
    int nWake = 0;
    bool manyNodes = false;
    if (!hier) {
      grq.pushBatch(ts, n);
      global = true;
    } else {
      size_t i = 0;
      while (i < n) {
        size_t j = i + 1;
        if (ts[i]->node < 0) {
          while (j < n && ts[j]->node < 0) ++j;
          grq.pushBatch(ts + i, j - i);
          global = true;
        } else {
          int ni = nodeIndexOf(ts[i]->node);
          while (j < n && ts[j]->node == ts[i]->node) ++j;
          pushNode(ni, ts + i, j - i);
          if (nWake < 4) wakeNodes[nWake++] = ni;
          else manyNodes = true;
        }
        i = j;
      }
    }
    storeLoadFence();  // S2
    for (int k = 0; k < nWake; ++k) wakeForNode(wakeNodes[k]);
    if (manyNodes)
      for (size_t ni = 0; ni < nodeIds.size(); ++ni) wakeForNode(static_cast<int>(ni));
    if (global) wakeForGlobal(-1);
    return n;
  }

  // Spawns from a task are refused once destroy() began (the caller gets false and keeps the
  // task): a task that keeps spawning -- a fan-out of millions -- would otherwise make destroy()
  // wait for all of it and then drop it all. A spawn that passed this check just before
  // stopping was set is queued and dropped like any other. close() still accepts them.
  bool refusesLocalSpawns() const { return stopping.load(std::memory_order_acquire); }

  // From a task running on P w of this runtime (validated, not refused).
  void spawnLocal(Worker& w, Task* t, SpawnHint hint) {
    int ni = t->node >= 0 ? checkedNodeIndex(t->node) : -1;  // validate before counting
    w.c.spawned.add();
    stamp(t, w.stampCounter);
    if (hint == SpawnHint::Shared || (ni >= 0 && (!hier || ni != w.nodeIdx))) {
      pushShared(w, t, ni >= 0 ? ni : w.nodeIdx);
      return;
    }
    if (statsOn) w.c.localPushes.add();
    if (hint == SpawnHint::Next) {
      t = w.lrq.putRunnext(t);
      if (!t) {
        sloppyWake(w);
        return;
      }
    }
    if (!w.lrq.pushBack(t)) overflow(w, t);
    sloppyWake(w);
  }

  // S1 of a node submit: HWSQ ni takes them all (its ring, then its spill list).
  void pushNode(int ni, Task* const* ts, size_t n) { hwsq[ni]->push(ts, n); }
  size_t nodeDepth(int ni) const { return hwsq[ni]->size(); }

  // A spawn that must not stay on this P: node ni's HWSQ (hierarchical), else the GRQ; S2 + wake.
  void pushShared(Worker& w, Task* t, int ni) {
    if (hier) {
      pushNode(ni, &t, 1);
      if (statsOn) w.c.hwsqPushes.add();
      storeLoadFence();
      wakeForNode(ni);
    } else {
      grq.push(t);
      storeLoadFence();
      wakeForGlobal(hier ? ni : -1);
    }
  }

  void sloppyWake(Worker& w) {
    if (nidle.load(std::memory_order_relaxed) > 0 && nspinning.load(std::memory_order_relaxed) == 0) wakeP(w.nodeIdx);
  }

  // The LRQ is full: move its older half plus t out in one batch (Go's runqputslow).
  void overflow(Worker& w, Task* t) {
    for (;;) {
      uint32_t n = w.lrq.grabHalfForOverflow(w.buf);
      if (n == 0) {
        if (w.lrq.pushBack(t)) return;  // thieves made room
        continue;
      }
      w.buf[n++] = t;
      if (statsOn) {
        w.c.overflows.add();
        w.c.overflowTasks.add(n);
      }
      if (hier) {
        pushNode(w.nodeIdx, w.buf, n);
        if (statsOn) w.c.hwsqPushes.add(n);
        storeLoadFence();
        wakeForNode(w.nodeIdx);
      } else {
        grq.pushBatch(w.buf, n);
        storeLoadFence();
        wakeForGlobal(-1);
      }
      return;
    }
  }

  // ---------------------------------------------------------------- finding work
  Task* localGet(Worker& w) {
    if (w.runnextChain < kMaxRunnextChain) {
      if (Task* t = w.lrq.takeRunnext()) {
        ++w.runnextChain;
        if (statsOn) w.c.runnextHits.add();
        return t;
      }
    } else if (Task* t = w.lrq.takeRunnext()) {
      // The runnext chain used its budget: demote to the back of the ring so the ring's older
      // tasks run (tokio's LIFO-slot limit; Go issue 52934 for the starvation it prevents).
      if (!w.lrq.pushBack(t)) overflow(w, t);
    }
    w.runnextChain = 0;
    return w.lrq.popFront();
  }

  // Pops from HWSQ ni (spill list first on fairness ticks, see hwsq.h): a batch of about this
  // P's share; the first is returned, the rest go to the LRQ (empty on this path, except
  // max == 1). remote: counted as a remote steal.
  Task* hwsqGet(Worker& w, int ni, size_t max, bool remote, bool spillFirst = false) {
    Hwsq& q = *hwsq[ni];
    size_t depth = q.size();
    if (depth == 0) return nullptr;
    size_t want = std::min<size_t>(max, depth / nodeWorkers[ni].size() + 1);
    size_t n = q.pop(w.buf, want, spillFirst);
    if (n == 0) return nullptr;
    if (n > 1) {
      uint32_t k = w.lrq.pushBackBatch(w.buf + 1, static_cast<uint32_t>(n - 1));
      if (k < n - 1) pushNode(ni, w.buf + 1 + k, n - 1 - k);
    }
    if (statsOn) {
      if (remote) {
        w.c.stealsRemote.add();
        w.c.stealsRemoteTasks.add(n);
      } else {
        w.c.hwsqPops.add(n);
      }
    }
    // More of the node's work left (in its queue or our LRQ) and a sibling asleep with no
    // spinner around: hand it over now rather than after this batch (a P that was between
    // tasks, not spinning, took it, so no resetSpinning will wake anyone).
    if (!remote && (n > 1 || depth > n) && nodeIdle[ni].load(std::memory_order_relaxed) > 0 &&
        nodeSpinning[ni].load(std::memory_order_relaxed) == 0)
      wakeOnNode(ni);
    return w.buf[0];
  }

  Task* grqGet(Worker& w, size_t max) {
    if (grq.empty()) return nullptr;
    size_t n = grq.popShare(w.buf, static_cast<size_t>(nprocs), max);
    if (n == 0) return nullptr;
    if (n > 1) {
      uint32_t k = w.lrq.pushBackBatch(w.buf + 1, static_cast<uint32_t>(n - 1));
      if (k < n - 1) grq.pushBatch(w.buf + 1 + k, n - 1 - k);
    }
    if (statsOn) w.c.grqPops.add(n);
    Task* t = w.buf[0];
    if (max > 1 && hier && nodeWorkers[w.nodeIdx].size() > 1 && !grq.empty()) prefetch(w);
    return t;
  }

  // An idle P of this node went to the GRQ: bring its siblings' share into the node's HWSQ.
  void prefetch(Worker& w) {
    Hwsq& q = *hwsq[w.nodeIdx];
    size_t siblings = nodeWorkers[w.nodeIdx].size() - 1;
    size_t share = (grq.size() / static_cast<size_t>(nprocs) + 1) * siblings;
    size_t want = std::min({kPrefetchMax, share, q.ringRoom()});
    if (want == 0) return;
    Task** out = w.buf + LocalQueue::kCapacity;
    size_t n = grq.popBatch(out, want);
    if (n == 0) return;
    size_t k = q.pushRing(out, n);
    if (k < n) grq.pushBatch(out + k, n - k);
    if (statsOn && k) {
      w.c.prefetches.add();
      w.c.prefetchTasks.add(k);
      w.c.hwsqPushes.add(k);
    }
    storeLoadFence();
    if (k) wakeForNode(w.nodeIdx);
  }

  // Affine tasks stay for their node unless it is saturated: every P of it is inside a task
  // (its sysmon tick is odd). Not parked, not spinning (a P just woken for the node spins until
  // it has found work), not between two tasks looking for the next one: each of those will take
  // from HWSQ k itself. Read only by thieves, so the hot path pays nothing for it.
  // Liveness never depends on this: node k's Ps re-check HWSQ k before parking (P4).
  bool nodeSaturated(int ni) const {
    if (nodeIdle[ni].load(std::memory_order_relaxed) > 0 || nodeSpinning[ni].load(std::memory_order_relaxed) > 0) return false;
    for (int p : nodeWorkers[ni]) {
      const Worker& v = *workers[p];
      // External mode: a P with no thread attached (its isolate died or restarts) takes nothing.
      if (opts.externalWorkers && !v.attached.load(std::memory_order_relaxed)) continue;
      if ((v.probe.tick.load(std::memory_order_relaxed) & 1) == 0) return false;
    }
    return true;
  }

  // sysmon, while some P is busy: a node became saturated after its last submit woke no one
  // (its Ps took one batch each and are now inside long tasks) while more of its work waits and
  // Ps elsewhere sleep. No submit will come to wake them, so sysmon sends one spinner, from the
  // nearest node (Go's sysmon retakes Ps for a similar reason). At most one per round.
  void helpSaturatedNodes() {
    if (!hier || stopping.load(std::memory_order_relaxed)) return;
    if (nidle.load(std::memory_order_relaxed) == 0 || nspinning.load(std::memory_order_relaxed) != 0) return;
    for (size_t ni = 0; ni < hwsq.size(); ++ni)
      if (nodeDepth(static_cast<int>(ni)) > 0 && nodeSaturated(static_cast<int>(ni))) {
        wakeP(static_cast<int>(ni));
        return;
      }
  }

  Task* stealWork(Worker& w) {
    for (int pass = 0; pass < kStealPasses; ++pass) {
      const bool last = pass == kStealPasses - 1;
      if (pass > 0) {
        if (hier)
          if (Task* t = hwsqGet(w, w.nodeIdx, kBatchMax, false)) return t;
        if (Task* t = grqGet(w, kBatchMax)) return t;
      }
      for (const Tier& tier : w.tiers) {
        const uint32_t n = static_cast<uint32_t>(tier.ps.size());
        if (n) {
          uint32_t pos = w.random() % n;
          const uint32_t stride = tier.coprimes[w.random() % tier.coprimes.size()];
          for (uint32_t i = 0; i < n; ++i, pos = (pos + stride) % n) {
            if (stopping.load(std::memory_order_relaxed)) return nullptr;
            Worker& v = *workers[tier.ps[pos]];
            uint32_t cnt = 0;
            if (Task* t = w.lrq.stealHalfFrom(v.lrq, last, &cnt)) {
              if (statsOn) {
                if (v.nodeIdx == w.nodeIdx) {
                  w.c.stealsSameNode.add();
                  w.c.stealsSameNodeTasks.add(cnt);
                } else {
                  w.c.stealsRemote.add();
                  w.c.stealsRemoteTasks.add(cnt);
                }
              }
              return t;
            }
            if (statsOn) w.c.failedSteals.add();
          }
        }
        if (hier)
          for (int ni : tier.nodes)
            if (nodeSaturated(ni))
              if (Task* t = hwsqGet(w, ni, kBatchMax, true)) return t;
        // Our node still has work we failed to take (a steal lost a race, or a sibling holds
        // only its runnext task, stealable on the last pass): try it again before going remote.
        if (tier.sameNode && !last && ownNodeHasWork(w)) break;
      }
    }
    return nullptr;
  }

  bool ownNodeHasWork(Worker& w) const {
    if (nodeDepth(w.nodeIdx) > 0) return true;
    for (int p : nodeWorkers[w.nodeIdx])
      if (p != w.index && workers[p]->lrq.hasWork()) return true;
    return false;
  }

  // P4 of the protocol: is there anything this P could take?
  bool anyWorkVisible(Worker& w) {
    if (w.inbox.ownerHasWork() || !grq.empty()) return true;
    if (hier) {
      if (nodeDepth(w.nodeIdx) > 0) return true;
      for (size_t ni = 0; ni < hwsq.size(); ++ni)
        if (static_cast<int>(ni) != w.nodeIdx && nodeDepth(static_cast<int>(ni)) > 0 && nodeSaturated(static_cast<int>(ni))) return true;
    }
    for (auto& v : workers)
      if (v.get() != &w && v->lrq.hasWork()) return true;
    return false;
  }

  void pokeQuiesce() {
    idleEvent.fetch_add(1, std::memory_order_release);
    futexWake(idleEvent, -1);
  }

  // Parks w (P1..P5). Returns when there may be work (or we are stopping).
  void parkWorker(Worker& w) {
    if (!parkPrepare(w)) return;
    w.parker.park();  // P5
    parkFinish(w);
  }

  // P1..P4. Returns true when w must sleep (P5); false when it should look again (it may have
  // become a spinner).
  bool parkPrepare(Worker& w) {
    {
      std::lock_guard<std::mutex> lk(idleMu);  // P1
      w.idle = true;
      w.parkedFlag.store(true, std::memory_order_relaxed);
      idleStacks[w.nodeIdx].push_back(w.index);
      checkCountUp(nodeIdle[w.nodeIdx].fetch_add(1, std::memory_order_seq_cst), nodeSize(w.nodeIdx),
                   "node idle count above the node's Ps");
      checkCountUp(nidle.fetch_add(1, std::memory_order_seq_cst), nprocs, "idle count above nprocs");
    }
    if (w.spinning) stopSpinning(w);                      // P2
    storeLoadFence();  // P3
    if (quiesceWaiters.load(std::memory_order_relaxed) != 0) pokeQuiesce();
    if (stopping.load(std::memory_order_acquire) || anyWorkVisible(w)) {  // P4
      bool becomeSpinner = false;
      {
        std::lock_guard<std::mutex> lk(idleMu);
        if (w.idle) {
          removeIdleLocked(w);
          becomeSpinner = true;  // like Go: look again as a spinner
        } else {                 // a waker got here first; its unpark token is on the way
          w.spinning = w.wakeSpinning;
          w.wakeSpinning = false;
          if (statsOn) w.c.wakeups.add();
        }
      }
      if (becomeSpinner) becomeSpinning(w);
      else if (w.spinning && statsOn) w.spinStart = nowTicks();
      return false;
    }
    if (statsOn) w.c.parks.add();
    return true;
  }

  // After P5: leave the idle list (spurious wake / stale token / stopping) or take the waker's
  // verdict on whether we are a spinner.
  void parkFinish(Worker& w) {
    {
      std::lock_guard<std::mutex> lk(idleMu);
      if (w.idle) {
        removeIdleLocked(w);  // spurious, stale token or stopping: not spinning
      } else {
        w.spinning = w.wakeSpinning;
        w.wakeSpinning = false;
        if (statsOn) w.c.wakeups.add();
      }
    }
    if (w.spinning && statsOn) w.spinStart = nowTicks();
  }

  // Only this P's own queues (external mode at its concurrency limit).
  Task* findLocal(Worker& w) {
    if (Task* t = w.inbox.pop()) {
      if (statsOn) w.c.inboxPops.add();
      return t;
    }
    return localGet(w);
  }

  // ext: external mode; returns nullptr with *parked = true where a thread-backed P would sleep
  // (after P1..P4), or with *parked = false when stopping. spinNs: look again for that long first.
  Task* findRunnable(Worker& w, bool ext = false, bool* parked = nullptr, uint64_t spinNs = 0) {
    uint64_t spinUntil = 0;
    for (;;) {
      if (stopping.load(std::memory_order_acquire)) return nullptr;
      if (++w.schedTick % kGlobalCheckEvery == 0) {  // fairness: shared queues cannot starve
        w.runnextChain = 0;
        if (Task* t = grqGet(w, 1)) return t;
        if (hier)
          if (Task* t = hwsqGet(w, w.nodeIdx, 1, false, true)) return t;
      }
      if (Task* t = w.inbox.pop()) {
        if (statsOn) w.c.inboxPops.add();
        return t;
      }
      if (Task* t = localGet(w)) return t;
      if (hier)
        if (Task* t = hwsqGet(w, w.nodeIdx, kBatchMax, false)) return t;
      if (Task* t = grqGet(w, kBatchMax)) return t;
      if (nprocs > 1) {
        if (!w.spinning) {
          int busy = nprocs - nidle.load(std::memory_order_relaxed);
          if (2 * nspinning.load(std::memory_order_relaxed) < busy) becomeSpinning(w);
        }
        if (w.spinning)
          if (Task* t = stealWork(w)) return t;
      }
      if (!ext) {
        parkWorker(w);
        continue;
      }
      if (spinNs) {
        uint64_t now = nowNs();
        if (spinUntil == 0 && !w.idleSpinSlot) {
          const int limit = std::max(1, nprocs / 2);
          const int spinners = idleSpinners.fetch_add(1, std::memory_order_relaxed);
          checkCountUp(spinners, nprocs, "idle spinners above nprocs");
          if (spinners < limit) {
            w.idleSpinSlot = true;
            spinUntil = now + spinNs;
          } else {
            idleSpinners.fetch_sub(1, std::memory_order_relaxed);
          }
        }
        if (w.idleSpinSlot && now < spinUntil) {
          cpuRelax();
          continue;
        }
        releaseSpinSlot(w);
        spinUntil = 0;
      }
      if (parkPrepare(w)) {
        w.extParked = true;
        *parked = true;
        return nullptr;
      }
    }
  }

  void releaseSpinSlot(Worker& w) {
    if (!w.idleSpinSlot) return;
    w.idleSpinSlot = false;
    const int prev = idleSpinners.fetch_sub(1, std::memory_order_relaxed);
    HWSQ_ASSERT(prev >= 1, "idle spinners went negative");
    (void)prev;
  }

  // External mode: the owner's side of a P leaving its thread (detach on it, or reclaim from
  // another thread once it is gone). Afterwards the P is neither idle nor spinning, so no waker
  // counts on it; if it left queued work behind, an idle P is woken to steal it.
  void releaseOwner(Worker& w) {
    bool wasSpinning = w.spinning;
    {
      std::lock_guard<std::mutex> lk(idleMu);
      if (w.idle) {
        removeIdleLocked(w);
      } else if (w.extParked && w.wakeSpinning) {
        wasSpinning = true;  // a waker counted us as a spinner; the wake never reached runSome
      }
      w.wakeSpinning = false;
    }
    w.extParked = false;
    if (wasSpinning) {
      if (!w.spinning) {
        w.spinning = true;
        if (statsOn) w.spinStart = nowTicks();
      }
      stopSpinning(w);
    }
    w.spinning = false;
    w.attached.store(false, std::memory_order_release);
    storeLoadFence();
    if (w.lrq.hasWork() || w.inbox.sharedNonEmpty() || wasSpinning) wakeP(w.nodeIdx);
    if (quiesceWaiters.load(std::memory_order_relaxed) != 0) pokeQuiesce();
  }

  RunResult runSomeOn(Worker& w, const RunLimits& lim) {
    RunResult r;
    if (w.extParked) {
      w.extParked = false;
      parkFinish(w);
    }
    while (r.ran < lim.budget) {
      if (lim.stop && *lim.stop) {
        r.status = RunStatus::Stopped;
        break;
      }
      Task* t;
      bool parked = false;
      if (lim.localOnly) {
        if (stopping.load(std::memory_order_acquire)) t = nullptr;
        else t = findLocal(w);
        if (!t) {
          if (w.spinning) stopSpinning(w);
          r.status = stopping.load(std::memory_order_acquire) ? RunStatus::Stopping : RunStatus::Limited;
          return r;
        }
      } else {
        t = findRunnable(w, true, &parked, lim.spinNs);
        releaseSpinSlot(w);
        if (!t) {
          if (!parked) {  // stopping
            if (w.spinning) stopSpinning(w);
            r.status = RunStatus::Stopping;
          }
          return r;  // Parked
        }
      }
      if (w.spinning) resetSpinning(w);
      runTask(w, t);
      ++r.ran;
    }
    if (r.ran >= lim.budget) r.status = RunStatus::Budget;
    if (w.spinning) stopSpinning(w);
    return r;
  }

  // ---------------------------------------------------------------- running
  void runTask(Worker& w, Task* t) {
    // Copy out first: fn may free or reuse a caller-owned task.
    const TaskFn fn = t->fn;
    void* const arg = t->arg;
    const TaskFn done = t->done;
    void* const doneArg = t->doneArg;
    const uint32_t flags = t->flags;
    const uint64_t tick = w.probe.tick.load(std::memory_order_relaxed);
    uint64_t start = 0;
    const uint64_t sub = t->submitTicks;
    // The submit path picked the sampled tasks (it stamped them); with no sampling, time all.
    const bool timed = statsOn && (sampleMask == 0 || sub != 0);
    if (timed) {
      start = nowTicks();
      if (sub) w.latency.record(start > sub ? start - sub : 0);
    }
    w.probe.startTicks.store(start, std::memory_order_relaxed);  // 0: sysmon uses its own clock
    w.probe.tick.store(tick + 1, std::memory_order_release);      // odd: running (sysmon)
    fn(arg);
    if (timed) {
      uint64_t end = nowTicks();
      w.runTime.record(end - start);
      w.c.busyTicks.add((end - start) << shift);
    }
    // Even before done(): a completion may make its waiter submit the next task at once, and
    // this P, about to look for work, must not look saturated to thieves (nodeSaturated). Tasks
    // that publish their result from inside fn call taskEnding() first for the same reason.
    w.probe.tick.store(tick + 2, std::memory_order_release);
    if (done) done(doneArg);
    if (flags & kTaskPooled) freeTask(t);
    w.c.executed.addRelease();  // last: drained() relies on everything above being visible
  }

  void workerMain(Worker& w) {
    tlRuntime = this;
    tlWorker = &w;
    try {
      if (opts.pin && !w.cpus.empty()) {
        if (opts.pinThread) opts.pinThread(w.index, w.cpus);
        else setThreadAffinity(w.cpus);
      }
      if (opts.onWorkerStart) opts.onWorkerStart(w.index);
      w.startedOk = true;
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
    if (w.startedOk && !stopping.load(std::memory_order_acquire)) {
      while (Task* t = findRunnable(w)) {
        if (w.spinning) resetSpinning(w);
        runTask(w, t);
      }
      if (w.spinning) stopSpinning(w);
    }
    if (w.startedOk && opts.onWorkerStop) {
      try {
        opts.onWorkerStop(w.index);
      } catch (...) {
      }
    }
    tlWorker = nullptr;
    tlRuntime = nullptr;
  }

  // ---------------------------------------------------------------- lifecycle
  // {finished: executed + rejected + droppedCount, submitted: spawned + extSubmitted}.
  std::pair<uint64_t, uint64_t> drainCounts(uint64_t droppedCount) const {
    uint64_t rej = rejected.load(std::memory_order_acquire);
    uint64_t e = 0, s = 0;
    for (auto& w : workers) e += w->c.executed.getAcquire();
    for (auto& w : workers) s += w->c.spawned.getAcquire();
    uint64_t x = extSubmitted.load(std::memory_order_acquire);
    // Read in this order, no task can be counted as finished before its submission is.
    HWSQ_ASSERT(e + rej + droppedCount <= s + x, "drain: more tasks finished than were submitted");
    return {e + rej + droppedCount, s + x};
  }
  bool drained(uint64_t droppedCount = 0) const {
    auto [finished, submitted] = drainCounts(droppedCount);
    return finished >= submitted;
  }

  void waitQuiescent() {
    quiesceWaiters.fetch_add(1, std::memory_order_seq_cst);
    storeLoadFence();
    for (;;) {
      uint32_t ev = idleEvent.load(std::memory_order_acquire);
      storeLoadFence();
      if (drained() || stopping.load(std::memory_order_acquire)) break;
      futexWait(idleEvent, ev, 2'000'000);  // 2 ms safety net; parking Ps poke us
    }
    quiesceWaiters.fetch_sub(1, std::memory_order_relaxed);
  }

  void dropTask(Task* t) {
    const TaskFn cancel = t->cancel;
    void* const doneArg = t->doneArg;
    const uint32_t flags = t->flags;
    if (cancel) {
      try {
        cancel(doneArg);
      } catch (...) {  // a throwing callback must not cut destroy() short (tasks left queued)
      }
    }
    if (flags & kTaskPooled) freeTask(t);
    dropped.fetch_add(1, std::memory_order_relaxed);
  }

  // After the Ps are gone (joined; external mode: detached): drop every queued task -- inboxes,
  // runnext slots, LRQs, every HWSQ (ring and spill list), the GRQ -- until every submission is
  // accounted for. Only an outside submitter that counted itself before `closed` can still be
  // between its count and its push (a few instructions); nothing else adds tasks any more: no P
  // runs, cancel callbacks that submit are refused (closed), spawns from tasks ended with them.
  void dropRemaining() {
    auto drop = [this](Task* t) { dropTask(t); };
    for (;;) {
      for (auto& wp : workers) {
        Worker& w = *wp;
        while (Task* t = w.lrq.takeRunnext()) dropTask(t);
        while (Task* t = w.lrq.popFront()) dropTask(t);
        while (Task* t = w.inbox.pop()) dropTask(t);
      }
      for (auto& q : hwsq) q->drain(drop);
      Task* tmp[256];
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

  void stopAndJoin() {
    stopping.store(true, std::memory_order_seq_cst);
    for (auto& w : workers) unparkWorker(*w);
    for (auto& w : workers)
      if (w->thread.joinable()) w->thread.join();
    if (opts.externalWorkers) {  // the embedder detaches its threads when runSome says Stopping
      for (auto& w : workers)
        while (w->attached.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (sysmon) sysmon->stop();
    dropRemaining();
    stoppedFlag.store(true, std::memory_order_release);
  }
};

// ------------------------------------------------------------------------------- Runtime

Runtime::Runtime(RuntimeOptions options) : impl_(new Impl()) {
  Impl& rt = *impl_;
  rt.self = this;
  rt.opts = std::move(options);
  RuntimeOptions& o = rt.opts;
  if (o.workers.empty()) throw HwsqRangeError("ERR_HWSQ_INVALID_WORKERS", "a runtime needs at least one worker");
  if (o.workers.size() > 4096) throw HwsqRangeError("ERR_HWSQ_INVALID_WORKERS", "at most 4096 workers");
  if (o.hwsqCapacity < 2 || (o.hwsqCapacity & (o.hwsqCapacity - 1)) != 0)
    throw HwsqRangeError("ERR_HWSQ_INVALID_OPTION", "hwsqCapacity must be a power of two >= 2");
  std::vector<int> given = o.nodeIds;
  if (given.empty()) {
    for (auto& w : o.workers) given.push_back(w.node);
    std::sort(given.begin(), given.end());
    given.erase(std::unique(given.begin(), given.end()), given.end());
    if (!o.distances.empty() && o.distances.size() != given.size())
      throw HwsqRangeError("ERR_HWSQ_INVALID_DISTANCES", "distances given without nodeIds must match the workers' nodes");
  }
  for (size_t i = 0; i < given.size(); ++i) {
    if (given[i] < 0 || given[i] > 65535) throw HwsqRangeError("ERR_HWSQ_UNKNOWN_NODE", "invalid node id " + std::to_string(given[i]));
    for (size_t j = 0; j < i; ++j)
      if (given[i] == given[j]) throw HwsqRangeError("ERR_HWSQ_INVALID_OPTION", "duplicate node id " + std::to_string(given[i]));
  }
  if (!o.distances.empty()) {
    if (o.distances.size() != given.size()) throw HwsqRangeError("ERR_HWSQ_INVALID_DISTANCES", "distance matrix must be nodes x nodes");
    for (auto& row : o.distances)
      if (row.size() != given.size()) throw HwsqRangeError("ERR_HWSQ_INVALID_DISTANCES", "distance matrix must be nodes x nodes");
  }
  auto givenIndex = [&](int id) {
    for (size_t i = 0; i < given.size(); ++i)
      if (given[i] == id) return static_cast<int>(i);
    return -1;
  };
  for (auto& w : o.workers) {
    if (givenIndex(w.node) < 0) throw HwsqRangeError("ERR_HWSQ_UNKNOWN_NODE", "worker placed on unknown node " + std::to_string(w.node));
    for (int cpu : w.cpus)
      if (cpu < 0) throw HwsqRangeError("ERR_HWSQ_INVALID_CPU", "invalid CPU " + std::to_string(cpu));
  }
  // Active nodes: those with at least one P, in the given order.
  std::vector<int> activeGiven;
  for (size_t i = 0; i < given.size(); ++i)
    for (auto& w : o.workers)
      if (w.node == given[i]) { activeGiven.push_back(static_cast<int>(i)); break; }
  const size_t nn = activeGiven.size();
  int maxId = 0;
  for (int gi : activeGiven) {
    rt.nodeIds.push_back(given[gi]);
    maxId = std::max(maxId, given[gi]);
  }
  rt.nodeIndexById.assign(maxId + 1, -1);
  for (size_t i = 0; i < nn; ++i) rt.nodeIndexById[rt.nodeIds[i]] = static_cast<int>(i);
  rt.dist.assign(nn, std::vector<int>(nn, 20));
  for (size_t i = 0; i < nn; ++i)
    for (size_t j = 0; j < nn; ++j)
      rt.dist[i][j] = o.distances.empty() ? (i == j ? 10 : 20) : o.distances[activeGiven[i]][activeGiven[j]];

  rt.statsOn = o.stats;
  if (o.timingSampleShift < 0 || o.timingSampleShift > 20)
    throw HwsqRangeError("ERR_HWSQ_INVALID_OPTION", "timingSampleShift must be in [0, 20]");
  rt.sampleMask = (1u << o.timingSampleShift) - 1;
  rt.shift = o.timingSampleShift;
  rt.hier = o.policy == StealPolicy::Hierarchical;
  rt.nprocs = static_cast<int>(o.workers.size());
  rt.nodeWorkers.assign(nn, {});
  rt.nodeOrder.assign(nn, {});
  rt.idleStacks.assign(nn, {});
  rt.nodeSpinning.reset(new std::atomic<int>[nn]);
  rt.nodeIdle.reset(new std::atomic<int>[nn]);
  for (size_t i = 0; i < nn; ++i) {
    rt.nodeSpinning[i].store(0, std::memory_order_relaxed);
    rt.nodeIdle[i].store(0, std::memory_order_relaxed);
    rt.idleStacks[i].reserve(o.workers.size());
    std::vector<int> order(nn);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      if ((a == static_cast<int>(i)) != (b == static_cast<int>(i))) return a == static_cast<int>(i);
      return rt.dist[i][a] < rt.dist[i][b];
    });
    rt.nodeOrder[i] = order;
    if (rt.hier) {
      rt.hwsq.emplace_back(new Hwsq(o.hwsqCapacity));
    }
  }
  for (size_t p = 0; p < o.workers.size(); ++p) {
    int ni = rt.nodeIndexById[o.workers[p].node];
    rt.nodeWorkers[ni].push_back(static_cast<int>(p));
    rt.workers.emplace_back(new Worker(&rt, static_cast<int>(p), ni, o.workers[p].node, o.workers[p].cpus));
  }
  // Steal tiers.
  for (auto& wp : rt.workers) {
    Worker& w = *wp;
    auto addTier = [&](std::vector<int> ps, std::vector<int> nodes, bool sameNode = false) {
      if (ps.empty() && nodes.empty()) return;
      Tier t;
      t.sameNode = sameNode;
      t.coprimes = coprimesOf(static_cast<uint32_t>(std::max<size_t>(ps.size(), 1)));
      t.ps = std::move(ps);
      t.nodes = std::move(nodes);
      w.tiers.push_back(std::move(t));
    };
    if (!rt.hier) {
      std::vector<int> all;
      for (int p = 0; p < rt.nprocs; ++p)
        if (p != w.index) all.push_back(p);
      addTier(all, {});
      continue;
    }
    std::vector<int> same;
    for (int p : rt.nodeWorkers[w.nodeIdx])
      if (p != w.index) same.push_back(p);
    addTier(same, {}, true);
    std::vector<int> dists;
    for (size_t ni = 0; ni < nn; ++ni)
      if (static_cast<int>(ni) != w.nodeIdx) dists.push_back(rt.dist[w.nodeIdx][ni]);
    std::sort(dists.begin(), dists.end());
    dists.erase(std::unique(dists.begin(), dists.end()), dists.end());
    for (int d : dists) {
      std::vector<int> ps, nodes;
      for (size_t ni = 0; ni < nn; ++ni) {
        if (static_cast<int>(ni) == w.nodeIdx || rt.dist[w.nodeIdx][ni] != d) continue;
        nodes.push_back(static_cast<int>(ni));
        for (int p : rt.nodeWorkers[ni]) ps.push_back(p);
      }
      addTier(ps, nodes);
    }
  }
  if (rt.statsOn) (void)nsPerTick();

  if (o.externalWorkers) {
    if (!o.wakeExternal) throw std::invalid_argument("externalWorkers needs a wakeExternal hook");
    startSysmon();
    return;
  }
  // Start the Ps and wait until each has pinned itself and run onWorkerStart.
  size_t started = 0;
  try {
    for (auto& wp : rt.workers) {
      Worker* w = wp.get();
      w->thread = std::thread([&rt, w] { rt.workerMain(*w); });
      ++started;
    }
  } catch (...) {
    rt.startError = std::current_exception();
  }
  {
    std::unique_lock<std::mutex> lk(rt.startMu);
    rt.startCv.wait(lk, [&] { return rt.reported == static_cast<int>(started); });
    if (rt.startError) rt.stopping.store(true, std::memory_order_seq_cst);
    rt.go = true;
    rt.startCv.notify_all();
  }
  if (rt.startError) {
    for (auto& wp : rt.workers)
      if (wp->thread.joinable()) wp->thread.join();
    rt.stoppedFlag.store(true);
    std::rethrow_exception(rt.startError);
  }
  startSysmon();
}

void Runtime::startSysmon() {
  Impl& rt = *impl_;
  const RuntimeOptions& o = rt.opts;
  if (!o.sysmon) return;
  std::vector<const SysmonProbe*> probes;
  for (auto& wp : rt.workers) probes.push_back(&wp->probe);
  Sysmon::Config cfg;
  cfg.thresholdNs = o.hogThresholdNs;
  cfg.minDelayUs = o.sysmonMinDelayUs;
  cfg.maxDelayUs = o.sysmonMaxDelayUs;
  Impl* impl = &rt;
  cfg.onBusyRound = [impl] { impl->helpSaturatedNodes(); };
  try {
    rt.sysmon.reset(new Sysmon(std::move(probes), cfg));
  } catch (...) {
    destroy();
    throw;
  }
}

void Runtime::attach(int worker) {
  Impl& rt = *impl_;
  if (!rt.opts.externalWorkers) throw std::logic_error("attach() needs RuntimeOptions::externalWorkers");
  if (worker < 0 || worker >= rt.nprocs) throw HwsqRangeError("ERR_HWSQ_UNKNOWN_WORKER", "no worker " + std::to_string(worker));
  if (tlWorker) throw std::logic_error("this thread is already a P");
  if (rt.stopping.load(std::memory_order_acquire)) throw std::logic_error("attach() after close()/destroy()");
  Worker& w = *rt.workers[worker];
  bool expected = false;
  if (!w.attached.compare_exchange_strong(expected, true, std::memory_order_acq_rel))
    throw std::logic_error("worker " + std::to_string(worker) + " is already attached");
  try {
    if (rt.opts.pin && !w.cpus.empty()) {
      if (rt.opts.pinThread) rt.opts.pinThread(w.index, w.cpus);
      else setThreadAffinity(w.cpus);
    }
    tlRuntime = &rt;
    tlWorker = &w;
    if (rt.opts.onWorkerStart) rt.opts.onWorkerStart(w.index);
  } catch (...) {
    tlRuntime = nullptr;
    tlWorker = nullptr;
    w.attached.store(false, std::memory_order_release);
    throw;
  }
}

RunResult Runtime::runSome(const RunLimits& limits) {
  Impl& rt = *impl_;
  Worker* w = tlWorker;
  if (!w || w->rt != &rt) throw std::logic_error("runSome() from a thread that is not attached to this runtime");
  return rt.runSomeOn(*w, limits);
}

void Runtime::detach() {
  Impl& rt = *impl_;
  Worker* w = tlWorker;
  if (!w || w->rt != &rt) return;
  if (rt.opts.onWorkerStop) {
    try {
      rt.opts.onWorkerStop(w->index);
    } catch (...) {
    }
  }
  tlWorker = nullptr;
  tlRuntime = nullptr;
  rt.releaseOwner(*w);
}

void Runtime::reclaim(int worker) {
  Impl& rt = *impl_;
  if (worker < 0 || worker >= rt.nprocs) throw HwsqRangeError("ERR_HWSQ_UNKNOWN_WORKER", "no worker " + std::to_string(worker));
  Worker& w = *rt.workers[worker];
  if (!w.attached.load(std::memory_order_acquire)) return;
  if (tlWorker == &w) throw std::logic_error("reclaim() of the calling thread's own P; use detach()");
  rt.releaseOwner(w);
}

bool Runtime::isAttached(int worker) const {
  if (worker < 0 || worker >= impl_->nprocs) return false;
  return impl_->workers[worker]->attached.load(std::memory_order_acquire);
}

Runtime::~Runtime() {
  if (impl_ && !impl_->stoppedFlag.load(std::memory_order_acquire)) {
    if (tlRuntime == impl_.get()) std::terminate();  // destroying a runtime from its own task
    destroy();
  }
}

bool Runtime::submit(Task* t, SpawnHint hint) {
  Impl& rt = *impl_;
  if (Worker* w = tlWorker; w && w->rt == &rt) {
    if (rt.refusesLocalSpawns()) return false;
    rt.spawnLocal(*w, t, hint);
    return true;
  }
  return rt.submitExternal(&t, 1) == 1;
}

size_t Runtime::submitBatch(Task* const* tasks, size_t n, SpawnHint hint) {
  Impl& rt = *impl_;
  if (Worker* w = tlWorker; w && w->rt == &rt) {
    for (size_t i = 0; i < n; ++i)
      if (tasks[i]->node >= 0) rt.checkedNodeIndex(tasks[i]->node);
    if (rt.refusesLocalSpawns()) return 0;  // all or nothing
    for (size_t i = 0; i < n; ++i) rt.spawnLocal(*w, tasks[i], hint);
    return n;
  }
  return rt.submitExternal(tasks, n);
}

bool Runtime::submitToWorker(int worker, Task* t) {
  Impl& rt = *impl_;
  if (worker < 0 || worker >= rt.nprocs)
    throw HwsqRangeError("ERR_HWSQ_UNKNOWN_WORKER", "no worker " + std::to_string(worker));
  Worker& target = *rt.workers[worker];
  if (Worker* w = tlWorker; w && w->rt == &rt) {
    if (rt.refusesLocalSpawns()) return false;
    w->c.spawned.add();
  } else {
    rt.extSubmitted.fetch_add(1, std::memory_order_seq_cst);
    if (rt.closed.load(std::memory_order_seq_cst)) {
      rt.rejected.fetch_add(1, std::memory_order_release);
      return false;
    }
  }
  const bool sampled = rt.sampleMask == 0 || (rt.extStampCounter.fetch_add(1, std::memory_order_relaxed) & rt.sampleMask) == 0;
  t->submitTicks = rt.statsOn && sampled ? nowTicks() : 0;
  target.inbox.push(t);
  rt.wakeWorker(target);
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
  for (auto& w : rt.workers) rt.unparkWorker(*w);
  std::lock_guard<std::mutex> lk(rt.lifecycleMu);
  if (rt.stoppedFlag.load(std::memory_order_acquire)) return;
  rt.stopAndJoin();
}

bool Runtime::isClosed() const { return impl_->closed.load(std::memory_order_acquire); }
bool Runtime::isStopped() const { return impl_->stoppedFlag.load(std::memory_order_acquire); }
int Runtime::workerCount() const { return impl_->nprocs; }
int Runtime::nodeCount() const { return static_cast<int>(impl_->nodeIds.size()); }
const RuntimeOptions& Runtime::options() const { return impl_->opts; }
int Runtime::workerNode(int worker) const {
  if (worker < 0 || worker >= impl_->nprocs) throw HwsqRangeError("ERR_HWSQ_UNKNOWN_WORKER", "no worker " + std::to_string(worker));
  return impl_->workers[worker]->nodeId;
}
Runtime* Runtime::current() { return tlRuntime ? tlRuntime->self : nullptr; }
int Runtime::currentWorker() { return tlWorker ? tlWorker->index : -1; }
void Runtime::taskEnding() {
  // runTask stores start tick + 2 when fn returns: storing it early is idempotent with that.
  if (Worker* w = tlWorker) {
    const uint64_t t = w->probe.tick.load(std::memory_order_relaxed);
    if (t & 1) w->probe.tick.store(t + 1, std::memory_order_release);
  }
}

RuntimeStats Runtime::stats() const {
  const Impl& rt = *impl_;
  RuntimeStats s;
  s.statsEnabled = rt.statsOn;
  const double npt = nsPerTick();
  s.latency.unitNs = npt;
  s.runTime.unitNs = npt;
  s.workers.reserve(rt.workers.size());
  for (auto& wp : rt.workers) {
    const Worker& w = *wp;
    const WorkerCounters& c = w.c;
    WorkerStats ws;
    ws.worker = w.index;
    ws.node = w.nodeId;
    ws.spawned = c.spawned.get();
    ws.executed = c.executed.get();
    ws.localPushes = c.localPushes.get();
    ws.runnextHits = c.runnextHits.get();
    ws.hwsqPushes = c.hwsqPushes.get();
    ws.hwsqPops = c.hwsqPops.get();
    ws.grqPops = c.grqPops.get();
    ws.inboxPops = c.inboxPops.get();
    ws.stealsSameNode = c.stealsSameNode.get();
    ws.stealsSameNodeTasks = c.stealsSameNodeTasks.get();
    ws.stealsRemote = c.stealsRemote.get();
    ws.stealsRemoteTasks = c.stealsRemoteTasks.get();
    ws.failedSteals = c.failedSteals.get();
    ws.overflows = c.overflows.get();
    ws.overflowTasks = c.overflowTasks.get();
    ws.parks = c.parks.get();
    ws.wakeups = c.wakeups.get();
    ws.spinningNs = static_cast<uint64_t>(c.spinningTicks.get() * npt);
    ws.busyNs = static_cast<uint64_t>(c.busyTicks.get() * npt);
    ws.lrqDepth = w.lrq.size() + (w.lrq.hasRunnext() ? 1 : 0);
    ws.parked = w.parkedFlag.load(std::memory_order_relaxed);
    if (rt.sysmon) {
      ws.hogs = rt.sysmon->workerHogs(w.index);
      ws.runningForNs = rt.sysmon->runningForNs(w.index);
    }
    s.spawned += ws.spawned;
    s.executed += ws.executed;
    if (rt.statsOn) {
      w.latency.mergeInto(s.latency);
      w.runTime.mergeInto(s.runTime);
    }
    s.workers.push_back(ws);
  }
  for (size_t ni = 0; ni < rt.nodeIds.size(); ++ni) {
    NodeStats ns;
    ns.node = rt.nodeIds[ni];
    ns.workers = static_cast<int>(rt.nodeWorkers[ni].size());
    if (rt.hier) {
      ns.hwsqDepth = rt.nodeDepth(static_cast<int>(ni));
      ns.hwsqCapacity = rt.hwsq[ni]->ringCapacity();
    }
    for (int p : rt.nodeWorkers[ni]) {
      ns.prefetches += rt.workers[p]->c.prefetches.get();
      ns.prefetchTasks += rt.workers[p]->c.prefetchTasks.get();
    }
    s.nodes.push_back(ns);
  }
  s.grqDepth = rt.grq.size();
  s.externalSubmitted = rt.extSubmitted.load(std::memory_order_relaxed);
  s.rejected = rt.rejected.load(std::memory_order_relaxed);
  s.dropped = rt.dropped.load(std::memory_order_relaxed);
  s.spinning = rt.nspinning.load(std::memory_order_relaxed);
  s.idle = rt.nidle.load(std::memory_order_relaxed);
  if (rt.sysmon) s.sysmon = rt.sysmon->stats();
  return s;
}

}  // namespace hwsq::sched
