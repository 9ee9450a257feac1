// The scheduler's data: a P, an active node and the runtime (Runtime::Impl), one comment per
// field, and every Impl function with the file that defines it and who may call it.
// docs/architecture.md walks through the whole core; the files, one concept each:
//
//   scheduler.h    the public API (Runtime, RuntimeOptions, RunLimits)
//   runtime_impl.h this file: the fields
//   options.cpp    options, validation, active nodes, distances and steal tiers
//   submit.cpp     submit, spawn, LRQ overflow, inbox (where a task goes in)
//   find_work.cpp  findRunnable, the search order, and the queue gets (inbox, runnext/LRQ,
//                  HWSQ, GRQ with prefetch)
//   steal.cpp      where steals happen: tiers by distance, saturated nodes' HWSQs
//   idle.h/.cpp    the wake and park protocol with its no-lost-wake-up proof; how a P sleeps
//                  (ThreadPark, ExternalPark: the waiting strategies of findRunnable)
//   p_loop.cpp     a thread-backed P's thread: start, the loop, running one task
//   external.cpp   external (JS-driven) Ps: attach, runSome, detach, reclaim
//   lifecycle.cpp  construction, drain, waitIdle, close, destroy
//   stats.cpp      Runtime::stats()
//   limit.cpp      the parallelism limit: which Ps are active, parking the others
//   cgroup_watch.* the monitor thread that moves the limit with the cgroup CPU limit
// The queues are their own types: local_queue.h (LRQ + runnext), hwsq.h (HWSQ: ring + spill
// list), global_queue.h (GRQ), inbox.h.
//
// Names: a P is a scheduling slot with its queues (Go's P); in thread-backed mode the runtime
// starts one thread per P, in external mode a thread the embedder owns drives it (the JS layer's
// worker_threads Worker). The public API calls a P a "worker" (RuntimeOptions::workers,
// submitToWorker, WorkerStats): same thing, its index. "Outside" submissions come from threads
// that are not Ps of this runtime; "external" is only the mode in which embedder threads drive Ps.
// ni is a node index (into Impl::nodes, 0..nodes.size()); a node id is the OS's.
//
// Who may call a function, in the comments below:
//   [owner]    the thread that is P p's (its runtime thread, or the attached thread)
//   [any]      any thread
//   [outside]  a thread that is not a P of this runtime
//   [sysmon]   the sysmon thread only
//   [watch]    the cgroup watch thread only
//   [idleMu]   any thread, holding Impl::idleMu
//   [ctor]     the constructor, before any thread exists
//   [stopped]  after every P stopped (threads joined; external: detached)
//
// Borrowed designs, credited where used:
//  - Go runtime/proc.go: the LRQ (runq*), runnext, globrunqget's bounded share, the 1-in-61
//    global-queue fairness check, the spinning protocol (wakep/resetspinning, at most half the
//    busy Ps spinning, the last spinner to find work wakes a replacement), the park re-check,
//    random coprime-stride victim order, sysmon's tick sampling.
//  - tokio multi_thread: the budget on consecutive LIFO-slot (runnext) polls (3).
//  - oneTBB: victims tiered by locality (arena slots / NUMA), here by SLIT distance; the way a
//    P waits as a policy type (its waiters).
// What is ours: per-node HWSQs with batch claims, node-level spinning/idle counts so that work
// with affinity wakes a P of its node, GRQ->HWSQ prefetch, the counter-based drain.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "cgroup_watch.h"
#include "global_queue.h"
#include "histogram.h"
#include "hwsq.h"
#include "inbox.h"
#include "local_queue.h"
#include "parker.h"
#include "scheduler.h"
#include "stats.h"
#include "sysmon.h"

namespace hwsq::sched {

constexpr uint32_t kGlobalCheckEvery = 61;                 // Go: schedtick%61
constexpr uint32_t kMaxRunnextChain = 3;                   // tokio: MAX_LIFO_POLLS_PER_TICK
constexpr int kStealPasses = 4;                            // Go: stealTries
constexpr uint32_t kBatchMax = LocalQueue::kCapacity / 2;  // a grab never exceeds half the ring
constexpr size_t kPrefetchMax = 256;                       // GRQ -> HWSQ prefetch, per operation
constexpr size_t kBufSize = LocalQueue::kCapacity + kPrefetchMax;

// One step of a P's steal order (options.cpp builds them, steal.cpp walks them).
struct Tier {
  std::vector<int> ps;              // victim Ps, probed in a random coprime-stride order
  std::vector<int> nodes;           // nodes (ni) whose HWSQ may be raided after the Ps, when saturated
  std::vector<uint32_t> coprimes;   // the strides coprime with ps.size()
  bool sameNode = false;            // the thief's own node (hierarchical only)
};

// A P: a scheduling slot with its own queues, placed on one node.
struct alignas(64) P {
  P(Runtime::Impl* r, int i, int ni, int nid, std::vector<int> c, bool statsOn)
      : rt(r), index(i), nodeIdx(ni), nodeId(nid), cpus(std::move(c)), sampler(0xD1B54A32D192ED03ull * (i + 1), statsOn), rng(0x9E3779B97F4A7C15ull * (i + 1)) {}

  Runtime::Impl* const rt;     // its runtime
  const int index;             // 0..nprocs-1 (the API's "worker")
  const int nodeIdx;           // its node: index into Impl::nodes
  const int nodeId;            // its node: OS id
  const std::vector<int> cpus; // where its thread is pinned (empty: RuntimeOptions::unpinnedCpus)

  LocalQueue lrq;              // runnext + LRQ: the owner pushes and pops, thieves steal half
  Inbox inbox;                 // tasks for this P only (submitToWorker), never stolen
  Parker parker;               // thread-backed P5: sleeps here (idle.cpp)
  SysmonProbe probe;           // task start/end ticks for sysmon (odd: inside a task)
  PCounters c;                 // its counters (single writer: the owner; own cache lines)
  TimingHistograms timings;    // latency and run time of its timed tasks (stats on; own cache lines)

  // Owner only.
  uint32_t fairnessCountdown = kGlobalCheckEvery;  // findRunnable rounds to the next fairness check (1 in 61)
  uint32_t runnextChain = 0;   // runnext tasks taken in a row (kMaxRunnextChain)
  // Completions not yet reported (TaskOps::doneMany): `coalescedCount` light tasks of
  // `coalescedOps` and `coalescedArg` ran, not yet counted as executed (flushCoalesced).
  const TaskOps* coalescedOps = nullptr;
  void* coalescedArg = nullptr;
  uint64_t coalescedCount = 0;
  bool spinning = false;       // counted in Impl::nspinning and its node's spinning count
  uint64_t spinStart = 0;      // nowTicks() when it started spinning (stats on)
  TimingSampler sampler;       // which of its spawns are timed (RuntimeOptions::timingSampleShift)
  uint64_t rng;                // xorshift64* state: victim order
  std::vector<Tier> tiers;     // its steal order (constant after construction)
  TaskRef buf[kBufSize];         // batch scratch: HWSQ/GRQ pops, overflow, prefetch

  // Guarded by Impl::idleMu.
  bool idle = false;           // in its node's idle stack (counted in nidle, its node's idle)
  bool wakeSpinning = false;   // the waker that took it off the idle stack counted it as spinning
  std::atomic<bool> parkedFlag{false};  // mirror of idle for stats() (relaxed)

  // Thread-backed mode.
  bool startedOk = false;      // its thread pinned itself and ran onWorkerStart (written before it reports under startMu)
  std::thread thread;          // its thread

  // The parallelism limit (limit.cpp). Written under Impl::limitMu (seq_cst store), read by
  // the owner at the top of each findRunnable round (acquire) and by thieves/wakers (relaxed).
  std::atomic<bool> limited{false};  // above the limit: takes nothing but its inbox, holds no queued work
  bool limitParked = false;    // owner: external P returned Parked because it is limited (no P1..P4 ran)
  std::vector<int> pinTarget;  // under Impl::limitMu: its CPUs after a cpuset change (empty: its placement's)
  uint64_t pinSeen = 0;        // owner: the Impl::pinEpoch its thread is pinned for

  // External mode.
  bool extParked = false;      // owner: the last runSome parked it (P1..P4 done, P5 pending)
  std::atomic<bool> attached{false};  // a thread drives it (release by attach/detach/reclaim, acquire by readers)

  // Owner only: a victim index (xorshift64*).
  uint32_t random() {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return static_cast<uint32_t>((rng * 0x2545F4914F6CDD1Dull) >> 32);
  }
};

// An active node: a NUMA node with at least one P, in RuntimeOptions' node order.
struct alignas(64) Node {
  int id = -1;                   // OS node id
  std::vector<int> ps;           // its Ps
  std::vector<int> order;        // every active node (ni) by distance from this one, itself first
  std::unique_ptr<Hwsq> hwsq;    // its HWSQ (hierarchical policy; null with flat)
  std::vector<int> idleStack;    // guarded by Impl::idleMu: its idle Ps, the last to park on top
  // The wake and park protocol's per-node counts (idle.cpp); all RMWs seq_cst.
  alignas(64) std::atomic<int> spinning{0};  // its Ps spinning, + 1 for a moment per waker claiming the slot
  std::atomic<int> idle{0};                  // its Ps in idleStack
};

// What a wake claims and who may answer it (idle.cpp).
struct WakeScope {
  int node;       // nodeOnly: that node; else the preferred node (its idle Ps first, then the nearest), -1: nodes in turn
  bool nodeOnly;  // claims the node's spinning slot and wakes only its Ps; else the runtime's
  static WakeScope anyNode(int preferNode = -1) { return {preferNode, false}; }
  static WakeScope onNode(int ni) { return {ni, true}; }
};

// The thread's runtime and P when it is one (p_loop.cpp, external.cpp set them).
inline thread_local Runtime::Impl* tlRuntime = nullptr;
inline thread_local P* tlP = nullptr;

struct Runtime::Impl {
  // Built by the constructor (options.cpp), constant afterwards.
  Runtime* const self;                // the public object
  RuntimeOptions opts;                // as given (validated)
  bool statsOn = true;                // RuntimeOptions::stats
  bool timeAll = false;               // statsOn and shift == 0: every task is timed
  bool hier = true;                   // hierarchical policy: HWSQs and node tiers (flat: neither)
  int shift = 0;                      // timingSampleShift: 1 task in 2^shift timed (TimingSampler)
  int sampleShift = 0;                // what samplers re-arm with: shift, TimingSampler::kOff with stats off
  int nprocs = 0;                     // Ps
  std::vector<Node> nodes;            // active nodes (sized once, never moved)
  std::vector<int> nodeIndexById;     // OS id -> ni, -1 for nodes without Ps
  std::vector<std::unique_ptr<P>> ps; // the Ps
  GlobalQueue grq;                    // GRQ: tasks without affinity from outside (and flat overflow)
  std::unique_ptr<Sysmon> sysmon;     // the monitor thread (RuntimeOptions::sysmon)

  // The wake and park protocol (idle.cpp). All RMWs seq_cst.
  alignas(64) std::atomic<int> nspinning{0};  // Ps spinning, + 1 for a moment per waker claiming the slot
  alignas(64) std::atomic<int> nidle{0};      // Ps in an idle stack
  std::mutex idleMu;                          // guards the idle stacks, P::idle, P::wakeSpinning
  uint32_t wakeRotor = 0;                     // guarded by idleMu: next node for an unpreferring wake

  // The parallelism limit (limit.cpp).
  std::mutex limitMu;                         // one setParallelism at a time
  std::atomic<int> limit{0};                  // Ps allowed to take work (1..nprocs), seq_cst store under limitMu
  std::atomic<int> nactive{0};                // Ps not limited (== min(limit, nprocs)); relaxed readers
  std::atomic<int> limitSource{0};            // ParallelismSource of the current limit (relaxed, for stats)
  std::atomic<uint64_t> limitChanges{0};      // times the limit's value changed (relaxed, for stats)
  std::unique_ptr<CgroupWatch> watch;         // re-reads the cgroup limit (RuntimeOptions::cgroupPollMs)

  // Lifecycle (lifecycle.cpp).
  alignas(64) std::atomic<bool> closed{false};  // close()/destroy() began (seq_cst: pairs with outsideSubmitted)
  std::atomic<bool> stopping{false};            // Ps must stop (release by stop, acquire by Ps)
  std::atomic<bool> stoppedFlag{false};         // every thread is joined
  std::mutex lifecycleMu;                       // one close()/destroy() at a time

  // Ps busy-waiting before they park (IdleSpin: RunLimits::spinNs, RuntimeOptions::idleSpinNs),
  // at most half the Ps (at least one) so that spinners never take every CPU from the threads
  // that submit.
  alignas(64) std::atomic<int> idleSpinners{0};

  // Drain accounting (lifecycle.cpp).
  alignas(64) std::atomic<uint64_t> outsideSubmitted{0};  // tasks submitted from outside, counted before the closed check
  alignas(64) std::atomic<uint64_t> rejected{0};          // outside submissions refused (closed)
  std::atomic<uint64_t> dropped{0};                        // tasks destroy() dropped
  alignas(64) std::atomic<uint32_t> quiesceWaiters{0};     // threads in waitQuiescent
  std::atomic<uint32_t> idleEvent{0};                      // futex word bumped by parking Ps while someone waits

  // Startup handshake of the thread-backed Ps (p_loop.cpp), guarded by startMu.
  std::mutex startMu;
  std::condition_variable startCv;
  int reported = 0;                // threads that pinned themselves and ran onWorkerStart (or failed)
  bool go = false;                 // the constructor let them start
  std::exception_ptr startError;   // the first failure

  // ---- options.cpp
  Impl(Runtime* self, RuntimeOptions options);  // [ctor] validates (throws, nothing started), builds nodes, Ps, tiers
  void buildTiers(P& p, const std::vector<std::vector<int>>& dist);  // [ctor]
  int nodeIndexOf(int id) const {               // [any] OS id -> ni, -1
    return id >= 0 && static_cast<size_t>(id) < nodeIndexById.size() ? nodeIndexById[id] : -1;
  }
  int checkedNodeIndex(int id) const;           // [any] throws ERR_HWSQ_UNKNOWN_NODE
  int nodeSize(int ni) const { return static_cast<int>(nodes[ni].ps.size()); }  // [any]

  // ---- submit.cpp
  size_t submitOutside(Task* const* ts, size_t n);  // [outside]
  template <class NodeOf>
  void pushOutside(const TaskRef* ts, size_t n, NodeOf nodeOf);  // [outside] counted, stamped: S1, S2, wakes
  bool refusesLocalSpawns() const;                  // [owner]
  void spawnLocal(P& p, Task* t, SpawnHint hint);   // [owner] from one of its tasks
  void spawnLocalBatch(P& p, Task* const* ts, size_t n, SpawnHint hint, bool anyAffinity);  // [owner] same, n in order
  void pushShared(P& p, const TaskRef* ts, size_t n, int ni);  // [owner] HWSQ ni (flat: GRQ), then wake
  void pushLocalRun(P& p, const TaskRef* ts, size_t n);  // [owner] into its ring (overflow), wake
  void lrqOverflow(P& p, TaskRef t);                // [owner]
  void hwsqPush(int ni, const TaskRef* ts, size_t n) { nodes[ni].hwsq->push(ts, n); }  // [any]
  size_t hwsqDepth(int ni) const { return nodes[ni].hwsq->size(); }                   // [any]
  TimingSampler& outsideSampler();                  // [outside]
  void stamp(Task* t, TimingSampler& sampler);      // [owner of sampler]
  void stampBatch(Task* const* ts, size_t n, TimingSampler& sampler);  // [owner of sampler]
  void stampRefs(const TaskOps* ops, TaskRef* ts, size_t n, TimingSampler& sampler);  // [owner of sampler] light: sampled -> full
  void timeRefs(const TaskOps* ops, TaskRef* ts, size_t n, size_t first, TimingSampler& sampler);  // [owner of sampler]

  // ---- find_work.cpp
  template <class Wait>
  TaskRef findRunnable(P& p, Wait& wait);             // [owner] the search order
  [[gnu::always_inline]] TaskRef localGet(P& p);     // [owner] inbox, runnext, LRQ (hot_path.h)
  [[gnu::always_inline]] TaskRef lrqGet(P& p);       // [owner] runnext (budgeted), LRQ (hot_path.h)
  size_t hwsqTake(P& p, int ni, size_t max, bool spillFirst, size_t* depth);  // [owner]
  TaskRef hwsqGet(P& p, int ni, size_t max, bool spillFirst = false);           // [owner] its own node
  TaskRef grqGet(P& p, size_t max);                 // [owner]
  void grqPrefetch(P& p);                           // [owner]

  // ---- steal.cpp
  TaskRef steal(P& p);                              // [owner] spin, then steal by tier
  TaskRef hwsqSteal(P& p, int ni);                  // [owner] a saturated remote node's HWSQ
  void countSteal(P& p, const P& victim, uint32_t tasks);  // [owner]
  bool nodeSaturated(int ni) const;                 // [any]
  bool ownNodeHasWork(P& p) const;                  // [owner]

  // ---- idle.cpp: the wake and park protocol
  void wake(WakeScope s);                           // [any] the wake primitive (Go's wakep)
  bool tryWake(WakeScope s);                        // [any] one attempt of wake
  P* pickIdleLocked(WakeScope s);                   // [idleMu]
  void wakeSpinner(int preferNode);                 // [any] after a GRQ/LRQ push
  void wakeForHwsq(int ni);                         // [any] after a HWSQ push (S1) and fence (S2)
  void wakeOwner(P& p);                             // [any] after a push to p's inbox
  void wakeForSaturatedNode();                      // [sysmon]
  void unpark(P& p);                                // [any] P5's counterpart
  void enterIdleLocked(P& p);                       // [idleMu] P1
  void leaveIdleLocked(P& p);                       // [idleMu]
  void checkCountUp(int prev, int limit, const char* what) const;  // [any]
  void startSpinning(P& p);                         // [owner]
  std::pair<int, int> stopSpinning(P& p);           // [owner]
  void resetSpinning(P& p);                         // [owner] a spinner found work
  bool anyWorkVisible(P& p);                        // [owner] P4
  bool parkPrepare(P& p);                           // [owner] P1..P4
  void parkFinish(P& p);                            // [owner] after P5
  void parkThread(P& p);                            // [owner] thread-backed: P1..P5

  // ---- limit.cpp
  std::vector<int> limitWeights;                    // under limitMu: the node weights of the current limit
  std::vector<bool> activeSet(int limit, const std::vector<int>& weights) const;  // [any] which Ps stay active
  void applyLimit(int limit, ParallelismSource source, const std::vector<int>& weights = {});  // [any] under limitMu
  void shedForLimit(P& p);                          // [owner] a limited P gives its queued work away
  void parkLimited(P& p);                           // [owner] thread-backed: sleep while limited

  // ---- cgroup_watch.cpp
  std::vector<int> watchCpus;                       // the runtime's CPUs for readCgroupLimit (constant)
  std::vector<int> watchAllowed;                    // under limitMu: those the process could use at the last reading
  // Bumped (release, under limitMu) after P::pinTarget are rewritten; a P that sees a new value
  // (acquire, repinIfMoved) re-reads its target under limitMu and pins itself to it.
  std::atomic<uint64_t> pinEpoch{0};
  void startWatch();                                // [ctor] first reading, then the thread
  void pollWatch(bool notify);                      // [watch] one reading
  void replanPins(bool force);                      // [watch] under limitMu
  void repinIfMoved(P& p);                          // [owner] cheap unless pinEpoch moved

  // ---- p_loop.cpp
  void startThreads();                              // [ctor] thread-backed: start the Ps, wait for them
  void placeThread(P& p);                     // [owner] pin the calling thread for p
  void pMain(P& p);                                 // [owner] a thread-backed P's thread
  [[gnu::always_inline]] void runTask(P& p, TaskRef t);  // [owner] (hot_path.h)
  enum class Timing { kNever, kAlways, kIfStamped };  // what a runTask path knows of its task's timing
  template <Timing kTiming>
  [[gnu::always_inline]] void runLight(P& p, const TaskOps* ops, void* arg, uint64_t sub);  // [owner] (hot_path.h)
  template <Timing kTiming>
  [[gnu::always_inline]] void runFn(P& p, TaskFn fn, void* arg, uint64_t sub);  // [owner] (hot_path.h)
  void flushCoalesced(P& p);                        // [owner] doneMany for the coalesced run, then executed

  // ---- external.cpp
  RunResult runSome(P& p, const RunLimits& lim);    // [owner] the attached thread
  void releaseOwner(P& p);                          // [owner] or [any] once the owner thread is gone

  // ---- lifecycle.cpp
  std::pair<uint64_t, uint64_t> drainCounts(uint64_t droppedCount) const;  // [any]
  bool drained(uint64_t droppedCount = 0) const;    // [any]
  void waitQuiescent();                             // [outside]
  void pokeQuiesce();                               // [any]
  void pokeQuiesceIfDrained();                      // [owner] a P ran dry
  void dropTask(TaskRef t);                         // [stopped]
  void dropRemaining();                             // [stopped]
  void stopAndJoin();                               // [outside] under lifecycleMu
};

}  // namespace hwsq::sched
