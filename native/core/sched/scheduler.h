// The hwsq runtime: the public API of the G-P-M scheduler core in plain C++17 (no Node headers).
// How it works, file by file: runtime_impl.h (the data and the file map) and docs/architecture.md.
//
//   submitters (any thread)            Ps (one per WorkerPlacement)
//        |  no affinity ---------> GRQ (global, unbounded, mutex + chunks)
//        |  affinity node k -----> HWSQ[k] (per node: a bounded lock-free MPMC ring + a spill list)
//        |  submitToWorker(p) ---> inbox[p] (never stolen)
//   a task on P spawning ---------> runnext / LRQ[P] (SPMC ring of 256), overflow half -> HWSQ/GRQ
//
// findRunnable (find_work.cpp), for P on node n (hierarchical policy):
//   every 61st tick: GRQ (one task), then the HWSQ, for fairness
//   inbox -> runnext (at most 3 in a row) -> LRQ -> HWSQ[n] (batch) -> GRQ (bounded share,
//   + prefetch of the node's share into HWSQ[n]) -> steal (steal.cpp): [become spinning, at most
//   half the busy Ps] half of a P of node n -> Ps of other nodes, nearest distance first, then
//   their HWSQs (4 passes; runnext only on the last) -> park (idle.cpp, with the re-check that
//   prevents lost wake-ups).
// Victims within a tier are visited in a random coprime-stride order.
// 'flat' policy: no HWSQ (affine tasks go to the GRQ), one tier of all Ps, node-blind.
//
// "Worker" in this API means a P, by index (RuntimeOptions::workers, submitToWorker,
// WorkerStats): a scheduling slot with its queues. Thread-backed, the runtime runs one thread per
// P; in external mode a thread the embedder owns drives each P (the JS layer: a worker_threads
// Worker per P).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stats.h"
#include "task.h"

namespace hwsq::sched {

enum class StealPolicy { Hierarchical, Flat };
const char* stealPolicyName(StealPolicy p);
StealPolicy parseStealPolicy(const std::string& name);  // "hierarchical" | "flat"; throws HwsqRangeError

// Where a P runs: its NUMA node (OS id, used for queues and steal order) and the CPUs its
// thread is pinned to (empty: not pinned).
struct WorkerPlacement {
  int node = 0;
  std::vector<int> cpus;
};

// What set a runtime's parallelism limit (stats, the change event): its workers as given
// ("fixed", also a direct setParallelism), or the cgroup watch (cgroup_watch.h): a cgroup v2
// cpu.max, a v1 cfs quota, or no quota (the cpuset / allowed CPUs). Names as readParallelism's.
enum class ParallelismSource { Fixed, Cgroup2, Cgroup1, Cpuset };
const char* parallelismSourceName(ParallelismSource s);

// A change of the limit made by the cgroup watch.
struct ParallelismChange {
  int previous = 0, current = 0;
  ParallelismSource source = ParallelismSource::Fixed;
};

struct RuntimeOptions {
  std::vector<WorkerPlacement> workers;         // one per P; at least one
  std::vector<int> nodeIds;                     // nodes in use (OS ids); empty: derived from workers
  std::vector<std::vector<int>> distances;      // over nodeIds (SLIT); empty: 10 local, 20 remote
  StealPolicy policy = StealPolicy::Hierarchical;
  bool pin = true;                              // apply WorkerPlacement::cpus
  bool stats = true;                            // counters beyond spawned/executed, clocks, histograms
  // With stats on, time 1 task in 2^timingSampleShift, picked at random (TimingSampler in
  // stats.h): the latency and run-time histograms hold the timed tasks, their counts and sums
  // scaled by 2^shift when read (unbiased estimates; busyNs likewise); every counter, executed
  // included, stays exact. 0 = time every task. A timed task costs three clock reads (rdtsc:
  // ~8 ns on bare metal, 11..27 ns in the development VM) and two histogram records, 30..45 ns,
  // two to three times a whole no-op light spawn+run; the default, 1 in 256, spreads that to a
  // few tenths of a nanosecond a task, so stats can stay on in production (Go times 1 goroutine
  // in 8, but its spawn costs ~20x ours). bench_spawn measures it against stats off and full
  // timing, and the histograms' fidelity at this rate.
  int timingSampleShift = 8;
  bool sysmon = true;                           // start the monitor thread
  // Thread-backed Ps: before parking, keep looking for work this long (busy, no system calls;
  // at most half the Ps at once), like RunLimits::spinNs for external ones. 0: park at once.
  uint64_t idleSpinNs = 0;
  size_t hwsqCapacity = 4096;                   // per node, power of two
  uint64_t hogThresholdNs = 10'000'000;
  uint64_t sysmonMinDelayUs = 20;
  uint64_t sysmonMaxDelayUs = 10'000;
  // Where Ps without CPUs of their own (pin false, or empty WorkerPlacement::cpus) run: the
  // runtime's CPU set (placement.h puts there the CPUs it spread the Ps over), so that they do
  // not inherit the pin of the thread that created the runtime. Empty: they keep that mask.
  std::vector<int> unpinnedCpus;
  // Pins the calling worker thread to its CPUs (pin && !cpus.empty()) or else to unpinnedCpus;
  // default hwsq::setThreadAffinity (throws on failure, which makes the constructor throw).
  // Not called when both are empty. Every P thread is also a runtime thread (affinity.h).
  std::function<void(int worker, const std::vector<int>& cpus)> pinThread;
  // Called on each worker thread before it takes tasks / after its last task (the JS layer
  // creates and disposes the P's isolate here). An exception from onWorkerStart fails the
  // constructor.
  std::function<void(int worker)> onWorkerStart;
  std::function<void(int worker)> onWorkerStop;

  // External-worker mode: the Runtime starts no threads for its Ps. Each P is driven by a thread
  // the embedder owns (the JS layer: one worker_threads Worker per P), which calls attach(p)
  // once (pinning itself to the P's CPUs, then onWorkerStart), runSome() whenever the P may have
  // work, and detach() before it exits. A P that runs out of work is parked by the same protocol
  // as a thread-backed one (P1..P4 of idle.cpp) except that, instead of sleeping at P5,
  // runSome returns RunStatus::Parked; every unpark of that P becomes wakeExternal(p), which
  // must make the P's thread call runSome again soon (from any thread, possibly spuriously,
  // without blocking: the JS layer does a uv_async_send into the P's event loop). A wake is a
  // token: a P that calls runSome after a wakeExternal sees everything the waker published.
  // sysmon, stats, stealing and close/destroy work unchanged; close()/destroy() require every
  // P to be detached (or reclaimed) first, and wait for that.
  bool externalWorkers = false;
  std::function<void(int worker)> wakeExternal;

  // The parallelism limit at start (limit.cpp): Ps allowed to take work, the others parked from
  // the start. 0 (default) or >= workers: all. Runtime::setParallelism changes it later.
  int parallelism = 0;
  ParallelismSource parallelismSource = ParallelismSource::Fixed;
  // Follow the cgroup (cgroup_watch.h): every cgroupPollMs a monitor thread re-reads the CPU
  // limit (cgroup v2 cpu.max or v1 cfs quota, walking up, as readParallelism) and the process's
  // CPUs, and sets the limit to min(that, workers). 0 (default): off, the limit stays.
  uint32_t cgroupPollMs = 0;
  std::string cgroupFsroot;  // where the cgroup files are read ("" the live system; a test tree)
  // Called on the watch thread after each change it made (must not block; not called for the
  // first read, made by the constructor).
  std::function<void(const ParallelismChange&)> onParallelism;

  // A virtual topology for testing NUMA logic on any machine: nodes x workersPerNode Ps on nodes
  // 0..nodes-1, not pinned, distances 10 + 10*|i-j| (so node order by distance is well defined).
  static RuntimeOptions virtualTopology(int nodes, int workersPerNode);
};

// Where a spawn from inside a task goes (ignored for submissions from outside threads).
enum class SpawnHint {
  Next,    // runnext: run it next on this P (Go's default for `go` statements), guarded
  Tail,    // the back of this P's LRQ
  Shared,  // not this P's LRQ: its node's HWSQ (hierarchical) or the GRQ, waking an idle P --
           // for a task this P cannot run now (external mode: a JS worker at its concurrency limit)
};

// External mode (RuntimeOptions::externalWorkers): what one runSome() call may do.
struct RunLimits {
  size_t budget = 64;        // run at most this many tasks, then return RunStatus::Budget
  bool localOnly = false;    // only this P's inbox, runnext and LRQ: no shared queues, no steals,
                             // and return RunStatus::Limited instead of parking when they are empty
  uint64_t spinNs = 0;       // before parking, keep looking for work this long (busy, no syscalls)
  const bool* stop = nullptr;  // checked after each task: return RunStatus::Stopped when true
};
enum class RunStatus {
  Parked,    // nothing to do: the P is parked; wakeExternal(p) will say when to call again
  Budget,    // ran `budget` tasks; there may be more: call again soon (after the event loop turn)
  Limited,   // localOnly and the local queues are empty (the P is not parked, nobody will wake it
             // for shared work: call again without localOnly when it can take more)
  Stopped,   // *stop became true
  Stopping,  // the runtime is closing/destroyed: detach
};
struct RunResult {
  size_t ran = 0;
  RunStatus status = RunStatus::Parked;
};

class Runtime {
 public:
  // Validates the options (throws std::invalid_argument / HwsqRangeError with nothing started),
  // starts the workers (and sysmon) and returns when every worker has run onWorkerStart.
  explicit Runtime(RuntimeOptions options);
  ~Runtime();  // destroy() if neither close() nor destroy() ran
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Submits a caller-owned task (see task.h for ownership). From a worker of this runtime the
  // task goes to that P (hint) or its affinity node; from any other thread to the node's HWSQ
  // (affinity) or the GRQ. Returns false, without taking the task, once close()/destroy() began
  // (spawns from this runtime's own tasks are still accepted while close() drains, and refused
  // once destroy() began).
  // Throws HwsqRangeError for an affinity node this runtime has no P on.
  bool submit(Task* t, SpawnHint hint = SpawnHint::Next);
  // Submits n tasks as one batch (one lock / one ring claim per destination). All or nothing:
  // returns n, or 0 when closed.
  size_t submitBatch(Task* const* tasks, size_t n, SpawnHint hint = SpawnHint::Tail);
  // Submits to one P's inbox: it runs on that P and is never stolen.
  bool submitToWorker(int worker, Task* t);
  // Allocates a pooled task (freed by the runtime after it ran or was dropped) and submits it.
  bool spawn(TaskFn fn, void* arg, int node = -1, TaskFn done = nullptr, void* doneArg = nullptr,
             TaskFn cancel = nullptr, SpawnHint hint = SpawnHint::Next);

  // Light tasks (task.h: TaskOps): ops->run(args[i]) for each i < n, carried in the run queues'
  // slots themselves (no Task object, no allocation), for fan-outs of small tasks. ops must stay
  // valid until every task ran or was dropped (static storage). ops->done(args[i]), if set, right
  // after run (as Task::done), or ops->doneMany(arg, k) for runs of tasks with one arg (task.h);
  // ops->cancel(args[i]), if set, when destroy() drops one. node: affinity of them all
  // (negative: none). hint as submitBatch's, except that Next acts as Tail (runnext holds one full
  // Task). All or nothing: returns n, or 0 once closed (see submit). Throws std::invalid_argument
  // for a null ops or ops->run, both done and doneMany, or n > kLightBatchMax; HwsqRangeError for a node this runtime has
  // no P on; std::bad_alloc (the timed ones are full Tasks) -- each with nothing queued.
  static constexpr size_t kLightBatchMax = 256;
  size_t spawnLight(const TaskOps* ops, void* const* args, size_t n, int node = -1, SpawnHint hint = SpawnHint::Tail);
  // Blocks until every task submitted before the call (and everything those spawn) has
  // completed. Other threads may keep submitting; then it waits for those too.
  // Must not be called from this runtime's workers (throws std::logic_error).
  void waitIdle();
  // Refuses new outside submissions, waits until every submitted task (including tasks spawned
  // by tasks meanwhile) has completed, stops and joins every thread. Idempotent.
  void close();
  // Stops now: workers finish the task they are running (spawns from it are refused), every
  // queued task -- inboxes, runnext, LRQs, HWSQ rings and spill lists, the GRQ -- is dropped
  // exactly once: its cancel(doneArg) is called on the calling thread (an exception from it is
  // ignored) and it is counted in stats().dropped. Every thread is joined. Always returns
  // (external mode: once every P is detached or reclaimed). Idempotent; also finishes a close().
  void destroy();
  bool isClosed() const;   // close() or destroy() began
  bool isStopped() const;  // threads are joined

  // A snapshot of the counters, depths and merged histograms, taken without stopping anything
  // (microseconds for a few dozen Ps). Works before and after close.
  RuntimeStats stats() const;

  // The parallelism limit (limit.cpp, Go's GOMAXPROCS without thread churn): Ps above it park
  // after the task they are running, give their queued work away, and take nothing but their
  // inbox until it rises again. Clamped to 1..workerCount(); which Ps stay active is spread
  // over the nodes in proportion to their Ps, deterministically. Any thread, any time (a no-op
  // once stopped, apart from the value read back).
  // nodeWeights (one per node of the runtime, in nodeCount() order; empty: the nodes' P counts)
  // spread the active Ps over the nodes (limit.cpp); else ERR_HWSQ_INVALID_OPTION.
  void setParallelism(int limit, ParallelismSource source = ParallelismSource::Fixed, const std::vector<int>& nodeWeights = {});
  int parallelism() const;     // the current limit
  int activeWorkers() const;   // Ps not parked by the limit (== parallelism())
  bool isWorkerActive(int worker) const;

  int workerCount() const;
  int nodeCount() const;
  const RuntimeOptions& options() const;
  int workerNode(int worker) const;  // OS node id of a P

  // ---- external-worker mode (RuntimeOptions::externalWorkers) ----
  // The calling thread becomes P `worker`: pins itself (RuntimeOptions::pin/pinThread), runs
  // onWorkerStart, and from now on Runtime::current() is this runtime on it and its submits are
  // local spawns. A P may be re-attached by a new thread after detach()/reclaim() (a restarted
  // JS worker): its queued tasks (inbox, runnext, LRQ) are still there. Throws std::logic_error
  // when not in external mode, the P is attached, the thread is already a P, or the runtime stopped.
  void attach(int worker);
  // On the attached thread: runs ready tasks of this P (inbox -> runnext -> LRQ -> HWSQ -> GRQ
  // -> steal, exactly as a thread-backed P) until a limit says stop or nothing is runnable.
  RunResult runSome(const RunLimits& limits = RunLimits());
  // On the attached thread: it stops being the P (onWorkerStop runs). Idempotent per thread.
  void detach();
  // From another thread, for a P whose attached thread exited without detach() (a JS worker
  // that died): the caller guarantees that thread has finished (joined), so nothing else touches
  // the P's owner state. Leaves the P detached, its queued tasks in place (other Ps may steal
  // them meanwhile; an idle P is woken if there are any). No-op when the P is not attached.
  void reclaim(int worker);
  bool isAttached(int worker) const;

  // The runtime / P index of the calling thread when it is one of the workers (nullptr / -1 otherwise).
  static Runtime* current();
  static int currentWorker();
  // From inside a running task, when what its waiters see is done (just before it publishes its
  // result): the P stops counting as inside a task, so a waiter that submits the next task at
  // once does not find the node saturated and let another node's P take it. No-op elsewhere.
  static void taskEnding();

  struct Impl;

 private:
  void startSysmon();
  std::unique_ptr<Impl> impl_;
};

}  // namespace hwsq::sched
