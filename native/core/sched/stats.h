// Scheduler statistics (Runtime::stats() in stats.cpp sums them). Per-P counters are written only by their P with relaxed load+store
// pairs (no read-modify-write, no lock prefix on the hot path) and read by any thread with
// relaxed loads; Runtime::stats() sums them into the snapshot structs below without stopping
// anything (the snapshot is "consistent enough": each counter is exact at some instant during
// the read). `spawned` and `executed` are always maintained (close()/waitIdle() use them);
// everything else only when RuntimeOptions::stats is on. The counters are exact whatever the
// timing sampling (TimingSampler): only the clock reads and histogram records are sampled.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "histogram.h"

namespace hwsq::sched {

// A counter with one writer thread.
class Counter {
 public:
  void add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  // Release variant: everything the writer did before is visible to a reader that loads with
  // acquire and sees the new value (used for `executed`, see Runtime::drained()).
  void addRelease(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_release); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }
  uint64_t getAcquire() const { return v_.load(std::memory_order_acquire); }
 private:
  std::atomic<uint64_t> v_{0};
};

// Owned by one P (P::c). Field meanings are those of WorkerStats. On cache lines of their own
// (alignas, and P puts what other threads write elsewhere): the owner's stores never contend
// with a thief's or a waker's, only a stats() reader ever pulls the lines away.
struct alignas(64) PCounters {
  Counter spawned, executed, localPushes, runnextHits, hwsqPushes, hwsqPops, grqPops, inboxPops;
  Counter stealsSameNode, stealsSameNodeTasks, stealsRemote, stealsRemoteTasks, failedSteals;
  Counter overflows, overflowTasks, prefetches, prefetchTasks, parks, wakeups;
  Counter spinningTicks;
};

// Picks the tasks whose latency and run time are timed (RuntimeOptions::timingSampleShift):
// 1 in 2^shift on average, at random gaps uniform in [2^(shift-1), 3 * 2^(shift-1)] (mean
// 2^shift), not every 2^shift-th task, so that a periodic workload cannot alias with the
// sampling (Go picks its tracked goroutines at random too, gTrackingPeriod); gaps no shorter
// than half the mean keep the count's variance low (a twelfth of the mean's square per gap,
// against a third with gaps from 1). Whether a task is picked does not depend on its latency,
// so the sampled histograms have the same distribution as the full ones, and their counts
// times 2^shift are unbiased estimates of the full counts (stats.cpp scales them). One owner
// thread per sampler (a P's spawns, or one outside thread's submits): plain fields, no atomics.
//
// The common case is one countdown (skip), the same code whatever the setting: shift 0 re-arms
// the next task at once, and a sampler of a runtime with stats off is armed never to pick
// (kOff), so that a spawn with stats on costs no branch more than one with stats off.
class TimingSampler {
 public:
  static constexpr int kOff = -1;  // next(kOff): no task is picked any more (stats off)

  explicit TimingSampler(uint64_t seed = 0x9E3779B97F4A7C15ull, bool on = true) : left_(on ? 1 : kNever), rng_(seed | 1) {}
  // How many of the next n tasks are not timed before one that is (n: none of them), skipped
  // over at once; when less than n, the task after them is timed: next() returns true for it.
  uint64_t skip(uint64_t n) {
    if (left_ > n) {
      left_ -= n;
      return n;
    }
    const uint64_t k = left_ - 1;
    left_ = 1;
    return k;
  }
  // True when the next task is to be timed; then re-armed for 1 task in 2^shift (0: every
  // task, kOff: none).
  bool next(int shift) {
    if (--left_ != 0) return false;
    left_ = gap(shift);
    return true;
  }

 private:
  // 2^62 tasks: centuries at a task per nanosecond. Were it ever reached, the task picked is
  // timed by nobody: runTask records only with stats on.
  static constexpr uint64_t kNever = uint64_t{1} << 62;
  uint64_t gap(int shift) {
    if (shift == 0) return 1;
    if (shift < 0) return kNever;
    rng_ ^= rng_ >> 12;  // xorshift64*
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    const uint64_t r = (rng_ * 0x2545F4914F6CDD1Dull) >> 32;  // 32 random bits
    const uint64_t half = uint64_t{1} << (shift - 1);
    return half + ((r * (2 * half + 1)) >> 32);  // half..3*half
  }

  uint64_t left_;  // tasks until the next timed one (1: the next is timed)
  uint64_t rng_;
};

struct WorkerStats {
  int worker = 0;
  int node = -1;                   // OS node id of the P's placement
  uint64_t spawned = 0;            // tasks submitted while running on this P (from its tasks)
  uint64_t executed = 0;           // tasks run to completion on this P (fn and done returned)
  uint64_t localPushes = 0;        // spawns that went to this P's LRQ ring or runnext
  uint64_t runnextHits = 0;        // tasks taken from runnext
  uint64_t hwsqPushes = 0;         // tasks this P pushed to a HWSQ (overflow, affinity, prefetch)
  uint64_t hwsqPops = 0;           // tasks this P took from its own node's HWSQ
  uint64_t grqPops = 0;            // tasks this P took from the GRQ
  uint64_t inboxPops = 0;          // tasks taken from this P's inbox (submitToWorker)
  uint64_t stealsSameNode = 0;     // successful steal operations from Ps of the same node
  uint64_t stealsSameNodeTasks = 0;
  uint64_t stealsRemote = 0;       // successful steal operations from other nodes' Ps or HWSQs
  uint64_t stealsRemoteTasks = 0;
  uint64_t failedSteals = 0;       // probes of a victim that yielded nothing
  uint64_t overflows = 0;          // LRQ overflows (half the ring moved out in one batch)
  uint64_t overflowTasks = 0;
  uint64_t parks = 0;              // times this P parked
  uint64_t wakeups = 0;            // times this P was woken by another thread
  uint64_t spinningNs = 0;         // time spent spinning (looking for work to steal)
  uint64_t busyNs = 0;             // time spent running tasks
  uint64_t hogs = 0;               // tasks that ran > hog threshold on this P (sysmon)
  uint32_t lrqDepth = 0;           // current LRQ depth (ring + runnext)
  bool parked = false;             // in the idle list right now
  bool active = true;              // not parked by the parallelism limit (limit.cpp)
  uint64_t runningForNs = 0;       // how long the current task has been running, 0 when none (sysmon's view)
};

struct NodeStats {
  int node = -1;                   // OS node id
  int workers = 0;                 // Ps on this node
  uint64_t hwsqDepth = 0;          // current HWSQ depth (0 with the flat policy)
  uint64_t hwsqCapacity = 0;
  uint64_t prefetches = 0;         // GRQ -> HWSQ prefetch operations by this node's Ps
  uint64_t prefetchTasks = 0;
};

struct SysmonStats {
  uint64_t hogs = 0;               // tasks seen running longer than the threshold
  uint64_t longestHogNs = 0;       // longest such run seen (sampled: accurate to the sysmon period)
  int longestHogWorker = -1;
  uint64_t stuckWorkers = 0;       // Ps inside one task longer than the threshold right now
  uint64_t rounds = 0;             // sysmon wake-ups so far
  uint64_t currentDelayUs = 0;     // its current sleep
};

struct RuntimeStats {
  std::vector<WorkerStats> workers;
  std::vector<NodeStats> nodes;
  uint64_t grqDepth = 0;
  uint64_t externalSubmitted = 0;  // tasks submitted from threads outside this runtime's Ps
  uint64_t rejected = 0;           // submissions refused because the runtime was closed
  uint64_t dropped = 0;            // tasks dropped by destroy() (their cancel callback ran)
  uint64_t spawned = 0;            // sum over workers
  uint64_t executed = 0;           // sum over workers
  int spinning = 0;                // Ps spinning right now
  int idle = 0;                    // Ps parked (in the idle list) right now
  bool statsEnabled = true;
  int parallelism = 0;             // the parallelism limit (limit.cpp)
  int activeWorkers = 0;           // Ps not parked by it
  std::string parallelismSource;   // what set it: parallelismSourceName() of scheduler.h
  uint64_t parallelismChanges = 0; // times the limit changed after the start
  HistogramSnapshot latency;       // submit -> start, all Ps merged (stats on only)
  HistogramSnapshot runTime;       // start -> end of fn, all Ps merged (stats on only)
  SysmonStats sysmon;
};

}  // namespace hwsq::sched
