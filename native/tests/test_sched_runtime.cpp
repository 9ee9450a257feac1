// Runtime tests: submission paths, the no-lost-wake-up protocol, steal order and affinity on a
// virtual topology (asserted on counters, not timing), close/destroy, sysmon, stats.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "affinity.h"
#include "check.h"
#include "support.h"
#include "errors.h"
#include "sched/clock.h"
#include "sched/native_tasks.h"
#include "sched/parker.h"
#include "sched/placement.h"
#include "sched/scheduler.h"
#include "sched/task_pool.h"

using namespace hwsq::sched;

namespace {

RuntimeOptions plain(int workers) {
  RuntimeOptions o;
  for (int i = 0; i < workers; ++i) o.workers.push_back({0, {}});
  o.pin = false;
  return o;
}

using hwsq_test::eventually;

// Release: a submitter that sees the count may reuse the Task (the runtime's reads of it happen before fn).
void bump(void* a) { static_cast<std::atomic<uint64_t>*>(a)->fetch_add(1, std::memory_order_acq_rel); }

struct Gate {
  std::atomic<bool> open{false};
  std::atomic<int> entered{0};
};

}  // namespace

TEST_CASE("runtime: outside submits run, waitIdle waits, close joins") {
  Runtime rt(plain(2));
  std::atomic<uint64_t> n{0};
  std::vector<Task> ts(1000);
  for (auto& t : ts) {
    t.fn = bump;
    t.arg = &n;
    CHECK(rt.submit(&t));
  }
  rt.waitIdle();
  CHECK_EQ(n.load(), 1000u);
  std::vector<Task*> ptrs;
  for (auto& t : ts) ptrs.push_back(&t);
  CHECK_EQ(rt.submitBatch(ptrs.data(), ptrs.size()), 1000u);
  rt.close();
  CHECK_EQ(n.load(), 2000u);
  CHECK(rt.isStopped());
  CHECK(!rt.submit(&ts[0]));  // closed: refused, not taken
  auto s = rt.stats();
  CHECK_EQ(s.executed, 2000u);
  CHECK_EQ(s.externalSubmitted, 2001u);
  CHECK_EQ(s.rejected, 1u);
}

namespace tree {
struct Ctx {
  Runtime* rt;
  std::atomic<uint64_t> ran{0};
};
struct Node {
  Ctx* ctx;
  int depth;
};
void fn(void* a) {
  auto* n = static_cast<Node*>(a);
  n->ctx->ran.fetch_add(1, std::memory_order_relaxed);
  if (n->depth > 0) {
    for (int i = 0; i < 2; ++i) {
      auto* child = new Node{n->ctx, n->depth - 1};
      n->ctx->rt->spawn(fn, child, -1, nullptr, nullptr, nullptr, i ? SpawnHint::Next : SpawnHint::Tail);
    }
  }
  delete n;
}
}  // namespace tree

TEST_CASE("runtime: close drains tasks spawned by tasks") {
  Runtime rt(plain(2));
  tree::Ctx ctx{&rt};
  rt.spawn(tree::fn, new tree::Node{&ctx, 14});  // 2^15 - 1 tasks
  rt.close();
  CHECK_EQ(ctx.ran.load(), (1u << 15) - 1);
  auto s = rt.stats();
  CHECK_EQ(s.executed, (1u << 15) - 1);
  CHECK_EQ(s.spawned, (1u << 15) - 2);
}

TEST_CASE("runtime: no lost wake-up: one task submitted while every P parks, many times") {
  // With idle spinning too: short windows, so that Ps alternate between spinning and parking.
  for (uint64_t spinNs : {uint64_t{0}, uint64_t{2'000}})
  for (int workers : {1, 2, 4}) {
    RuntimeOptions o = plain(workers);
    o.idleSpinNs = spinNs;
    Runtime rt(o);
    std::atomic<uint64_t> n{0};
    Task t(bump, &n);
    bool ok = true;
    for (int i = 0; i < 3000 && ok; ++i) {
      // Alternate between "all parked" and "submit right after the previous task ran, while the
      // Ps are on their way to park" -- the window the protocol closes.
      if (i % 3 == 0) ok = eventually([&] { return rt.stats().idle == workers; });
      if (!ok) break;
      rt.submit(&t);
      ok = eventually([&] { return n.load(std::memory_order_acquire) == static_cast<uint64_t>(i + 1); });
    }
    CHECK(ok);
    rt.close();
  }
}

namespace {
struct SleepCounts {
  uint64_t parks = 0, wakeups = 0;
};
SleepCounts sleepCounts(Runtime& rt) {
  SleepCounts c;
  for (const auto& w : rt.stats().workers) {
    c.parks += w.parks;
    c.wakeups += w.wakeups;
  }
  return c;
}
}  // namespace

TEST_CASE("idle spin: a P that ran dry keeps looking instead of parking; close() does not wait for it") {
  // One task at a time from outside, the runtime empty in between. Without spinning, the P that
  // ran it parks after each and the next submit wakes it. With a (long) window, the P that ran
  // dry spins holding the one spinner slot and takes the next task itself, and nobody wakes a
  // replacement when no work is left: no park, no wake-up. Except in a round whose submit lands
  // while that P, between its task and its next search, is not yet spinning again (a slow
  // build, a descheduled thread): then the other P is woken, may take the slot, and one of the
  // two parks. Hence a margin: at most a round in two, where no spinning costs one each.
  constexpr int kRounds = 50;
  for (uint64_t spinNs : {uint64_t{0}, uint64_t{30'000'000'000}}) {
    RuntimeOptions o = plain(2);
    o.idleSpinNs = spinNs;
    Runtime rt(o);
    std::atomic<uint64_t> n{0};
    Task t(bump, &n);
    CHECK(rt.submit(&t));
    CHECK(eventually([&] { return n.load() == 1; }));
    // Settled: no spin, both parked; spin, one parked and one spinning (at most half the Ps).
    CHECK(eventually([&] { return rt.stats().idle == (spinNs ? 1 : 2); }));
    const SleepCounts before = sleepCounts(rt);
    for (int i = 0; i < kRounds; ++i) {
      if (!spinNs) CHECK(eventually([&] { return rt.stats().idle == 2; }));
      CHECK(rt.submit(&t));
      CHECK(eventually([&] { return n.load(std::memory_order_acquire) == static_cast<uint64_t>(i + 2); }));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const SleepCounts after = sleepCounts(rt);
    if (spinNs) {
      CHECK(after.parks - before.parks < static_cast<uint64_t>(kRounds / 2));
      CHECK(after.wakeups - before.wakeups < static_cast<uint64_t>(kRounds / 2));
    } else {
      CHECK(after.parks - before.parks >= static_cast<uint64_t>(kRounds));
      CHECK(after.wakeups - before.wakeups >= static_cast<uint64_t>(kRounds));
    }
    // A spinner stops at once: close() must not wait out its 30 s window.
    const auto t0 = std::chrono::steady_clock::now();
    rt.close();
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
    CHECK_EQ(n.load(), static_cast<uint64_t>(kRounds + 1));
  }
}

TEST_CASE("runtime: no lost wake-up with affinity (HWSQ) and inbox submissions") {
  Runtime rt(RuntimeOptions::virtualTopology(2, 1));
  std::atomic<uint64_t> n{0};
  Task t(bump, &n);
  bool ok = true;
  for (int i = 0; i < 2000 && ok; ++i) {
    if (i % 3 == 0) ok = eventually([&] { return rt.stats().idle == 2; });
    t.node = (i & 1);
    if (i % 4 == 3) rt.submitToWorker(i & 1, &t);
    else rt.submit(&t);
    ok = ok && eventually([&] { return n.load(std::memory_order_acquire) == static_cast<uint64_t>(i + 1); });
  }
  CHECK(ok);
  rt.close();
}

namespace order {
// A latch that blocked tasks wait on without burning a CPU (the test machine is shared):
// arrive() counts, waitCount(n) blocks until n arrived, release()/wait() open and pass the gate.
struct Latch {
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  bool open = false;
  void arrive() {
    std::lock_guard<std::mutex> lk(mu);
    ++arrived;
    cv.notify_all();
  }
  void waitCount(int n) {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return arrived >= n; });
  }
  void release() {
    std::lock_guard<std::mutex> lk(mu);
    open = true;
    cv.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return open; });
  }
};

// Probes record (executing P, origin P, node of the CPU it ran on) in a log.
struct Log {
  std::mutex mu;
  struct Entry {
    int worker, origin, cpuNode;
  };
  std::vector<Entry> entries;
  size_t size() {
    std::lock_guard<std::mutex> lk(mu);
    return entries.size();
  }
};
struct Probe {
  Log* log;
  int origin;
  bool where = false;  // also record getcpu's node (pinned runtimes on real nodes)
};
void probeFn(void* a) {
  auto* p = static_cast<Probe*>(a);
  int cpuNode = p->where ? hwsq::currentLocation().node : -1;
  std::lock_guard<std::mutex> lk(p->log->mu);
  p->log->entries.push_back({Runtime::currentWorker(), p->origin, cpuNode});
}

// One scenario: every P enters a gate task (its inbox); once all are inside, each victim queues
// its `lrq` probes in its own LRQ (and its `next` ones in its runnext slot) and blocks; the
// thief's gate returns when every victim has queued, so the thief alone finds work -- by
// stealing -- and every victim holds queued work when it starts looking.
struct Scene {
  Runtime* rt;
  int thief;
  Latch entered, queued, release;
  std::vector<std::vector<Probe>> lrq, next;  // per P
};
struct GateArgs {
  Scene* sc;
  int p;
};
void gateFn(void* a) {
  auto* g = static_cast<GateArgs*>(a);
  Scene& sc = *g->sc;
  const int n = sc.rt->workerCount();
  sc.entered.arrive();
  sc.entered.waitCount(n);  // no P is out looking for work while probes are queued
  if (g->p == sc.thief) {
    sc.queued.waitCount(n - 1);
    return;
  }
  for (auto& pr : sc.lrq[g->p]) sc.rt->spawn(probeFn, &pr, -1, nullptr, nullptr, nullptr, SpawnHint::Tail);
  for (auto& pr : sc.next[g->p]) sc.rt->spawn(probeFn, &pr, -1, nullptr, nullptr, nullptr, SpawnHint::Next);
  sc.queued.arrive();
  sc.release.wait();
}

// Steals a thief needs to empty a ring of k tasks when each steal takes half, rounded up.
uint64_t halvingSteals(uint64_t k) {
  uint64_t steals = 0;
  while (k) {
    k -= k - k / 2;
    ++steals;
  }
  return steals;
}

// Runs the scenario for one thief on a fresh runtime; returns the origins in the order the thief
// ran them and checks what holds for any policy: only the thief ran probes, each exactly once,
// only the thief stole, and it took half of a ring per steal.
struct Outcome {
  std::vector<int> origins;
  RuntimeStats stats;
  std::vector<int> cpuNodes;
};
Outcome runThief(const RuntimeOptions& o, int thief, int perVictim, bool where = false) {
  Runtime rt(o);
  const int n = rt.workerCount();
  Log log;
  Scene sc;
  sc.rt = &rt;
  sc.thief = thief;
  sc.lrq.resize(n);
  sc.next.resize(n);
  for (int p = 0; p < n; ++p)
    if (p != thief)
      for (int i = 0; i < perVictim; ++i) sc.lrq[p].push_back({&log, p, where});
  std::vector<GateArgs> args;
  for (int p = 0; p < n; ++p) args.push_back({&sc, p});
  std::vector<Task> gates(n);
  for (int p = 0; p < n; ++p) {
    gates[p] = Task(gateFn, &args[p]);
    rt.submitToWorker(p, &gates[p]);
  }
  const size_t total = static_cast<size_t>(n - 1) * perVictim;
  CHECK(eventually([&] { return log.size() == total; }));  // the thief alone drains every victim
  Outcome out;
  out.stats = rt.stats();  // before release: nobody but the thief has run or stolen anything
  sc.release.release();
  rt.close();
  std::vector<int> perOrigin(n, 0);
  for (auto& e : log.entries) {
    CHECK_EQ(e.worker, thief);
    out.origins.push_back(e.origin);
    out.cpuNodes.push_back(e.cpuNode);
    if (e.origin >= 0 && e.origin < n) ++perOrigin[e.origin];
  }
  for (int p = 0; p < n; ++p) CHECK_EQ(perOrigin[p], p == thief ? 0 : perVictim);
  for (auto& w : out.stats.workers)
    if (w.worker != thief) CHECK_EQ(w.stealsSameNode + w.stealsRemote, 0u);
  const WorkerStats& t = out.stats.workers[thief];
  CHECK_EQ(t.stealsSameNodeTasks + t.stealsRemoteTasks, static_cast<uint64_t>(total));
  CHECK_EQ(t.stealsSameNode + t.stealsRemote, static_cast<uint64_t>(n - 1) * halvingSteals(perVictim));
  return out;
}

// The expected order, written out by hand per topology: tier[thief][victim] = 0 for the thief's
// own node, then 1, 2, ... by increasing SLIT distance from the thief's node (equal distances
// share a tier). A thief must never take from a victim after one of a higher tier.
void checkTiers(const RuntimeOptions& o, const std::vector<std::vector<int>>& tier, const char* label) {
  const int n = static_cast<int>(o.workers.size());
  const int kPerVictim = 12;  // halving: 6, 3, 2, 1
  for (int thief = 0; thief < n; ++thief) {
    Outcome out = runThief(o, thief, kPerVictim);
    bool sorted = true;
    for (size_t i = 1; i < out.origins.size(); ++i) sorted &= tier[thief][out.origins[i - 1]] <= tier[thief][out.origins[i]];
    if (!sorted) {
      std::fprintf(stderr, "  %s: thief P%d took victims in the order", label, thief);
      for (size_t i = 0; i < out.origins.size(); ++i)
        if (i == 0 || out.origins[i] != out.origins[i - 1]) std::fprintf(stderr, " P%d", out.origins[i]);
      std::fprintf(stderr, "\n");
    }
    CHECK(sorted);
    uint64_t same = 0;
    for (int p = 0; p < n; ++p)
      if (p != thief && tier[thief][p] == 0) same += kPerVictim;
    const WorkerStats& t = out.stats.workers[thief];
    CHECK_EQ(t.stealsSameNodeTasks, same);
    CHECK_EQ(t.stealsRemoteTasks, static_cast<uint64_t>(n - 1) * kPerVictim - same);
  }
}

RuntimeOptions custom(std::vector<int> workerNodes, std::vector<int> nodeIds, std::vector<std::vector<int>> distances) {
  RuntimeOptions o;
  for (int node : workerNodes) o.workers.push_back({node, {}});
  o.nodeIds = std::move(nodeIds);
  o.distances = std::move(distances);
  o.pin = false;
  return o;
}
}  // namespace order

TEST_CASE("steal order, every P the thief: virtual line of 3 nodes x 2 Ps") {
  // virtualTopology: distances 10 + 10 * |i - j|; node 1 has both others at 20 (one tier).
  // P0,P1 node 0; P2,P3 node 1; P4,P5 node 2.
  const std::vector<std::vector<int>> tier = {
      {0, 0, 1, 1, 2, 2}, {0, 0, 1, 1, 2, 2},  // node 0: node 1 (20), node 2 (30)
      {1, 1, 0, 0, 1, 1}, {1, 1, 0, 0, 1, 1},  // node 1: nodes 0 and 2 (20)
      {2, 2, 1, 1, 0, 0}, {2, 2, 1, 1, 0, 0},  // node 2: node 1 (20), node 0 (30)
  };
  order::checkTiers(RuntimeOptions::virtualTopology(3, 2), tier, "3x2 line");
}

TEST_CASE("steal order, every P the thief: asymmetric 4-node SLIT where distance order is not index order") {
  // Rows are the thief's node. Node 3 is nearest to node 0; node 0 is nearest to node 2, while
  // node 2 is the farthest from node 0 (asymmetric); node 3 sees 2 < 1 < 0 by one unit each.
  // The same SLIT as the 'asymmetric' QEMU guest (test/vm/vm.mjs).
  const std::vector<std::vector<int>> d = {
      {10, 30, 40, 15},
      {25, 10, 35, 45},
      {12, 50, 10, 33},
      {23, 22, 21, 10},
  };
  const std::vector<std::vector<int>> tier = {
      {0, 2, 3, 1},  // node 0: 3 (15), 1 (30), 2 (40)
      {1, 0, 2, 3},  // node 1: 0 (25), 2 (35), 3 (45)
      {1, 3, 0, 2},  // node 2: 0 (12), 3 (33), 1 (50)
      {3, 2, 1, 0},  // node 3: 2 (21), 1 (22), 0 (23)
  };
  order::checkTiers(order::custom({0, 1, 2, 3}, {0, 1, 2, 3}, d), tier, "asymmetric 4x1");
}

TEST_CASE("steal order, every P the thief: sparse node ids, Ps listed out of node order, a tie") {
  // Nodes 0, 8, 252 (POWER-like ids); P0 node 252, P1 node 8, P2 node 0, P3 node 8, P4 node 252.
  const std::vector<std::vector<int>> d = {
      // to:  0   8  252
      {10, 30, 20},  // from 0
      {20, 10, 40},  // from 8
      {25, 25, 10},  // from 252: nodes 0 and 8 tie
  };
  const std::vector<std::vector<int>> tier = {
      // victims: P0(252) P1(8) P2(0) P3(8) P4(252)
      {0, 1, 1, 1, 0},  // P0 on 252: P4 same; 0 and 8 at 25
      {2, 0, 1, 0, 2},  // P1 on 8: P3 same; 0 (20); 252 (40)
      {1, 2, 0, 2, 1},  // P2 on 0: 252 (20); 8 (30)
      {2, 0, 1, 0, 2},  // P3 on 8
      {0, 1, 1, 1, 0},  // P4 on 252
  };
  order::checkTiers(order::custom({252, 8, 0, 8, 252}, {0, 8, 252}, d), tier, "sparse ids");
}

TEST_CASE("steal order, every P the thief: a node without Ps shifts indices, not distances") {
  // nodeIds 0..3 with no P on node 1 (memory only): distances stay those of the OS ids.
  const std::vector<std::vector<int>> d = {
      {10, 12, 40, 20},
      {12, 10, 12, 12},
      {40, 12, 10, 30},
      {20, 12, 30, 10},
  };
  const std::vector<std::vector<int>> tier = {
      // victims: P0(node 0) P1(node 2) P2(node 3)
      {0, 2, 1},  // node 0: 3 (20), 2 (40)
      {2, 0, 1},  // node 2: 3 (30), 0 (40)
      {1, 2, 0},  // node 3: 0 (20), 2 (30)
  };
  order::checkTiers(order::custom({0, 2, 3}, {0, 1, 2, 3}, d), tier, "memory-only node 1");
}

TEST_CASE("steal order: a sibling's runnext task is taken before any remote work") {
  // P1 (the thief's node) holds only a runnext task, which thieves may take on the last pass
  // only; P2 and P3 (node 1) hold ring work. Node 0 still has work, so the thief must not go
  // remote before it has taken P1's task.
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 2);
  for (int round = 0; round < 3; ++round) {
    order::Log log;
    order::Scene sc;
    Runtime rt(o);
    sc.rt = &rt;
    sc.thief = 0;
    sc.lrq.resize(4);
    sc.next.resize(4);
    sc.next[1].push_back({&log, 1});
    for (int p : {2, 3})
      for (int i = 0; i < 4; ++i) sc.lrq[p].push_back({&log, p});
    std::vector<order::GateArgs> args;
    for (int p = 0; p < 4; ++p) args.push_back({&sc, p});
    std::vector<Task> gates(4);
    for (int p = 0; p < 4; ++p) {
      gates[p] = Task(order::gateFn, &args[p]);
      rt.submitToWorker(p, &gates[p]);
    }
    CHECK(eventually([&] { return log.size() == 9; }));
    sc.release.release();
    rt.close();
    CHECK_EQ(log.entries.size(), 9u);
    if (!log.entries.empty()) CHECK_EQ(log.entries[0].origin, 1);
    for (auto& e : log.entries) CHECK_EQ(e.worker, 0);
  }
}

TEST_CASE("steal order on this machine's topology: pinned Ps, SLIT distances, tasks on their node's CPUs") {
  // Where the kernel has several nodes (the QEMU guests run this binary: test/multinode.vm.test.ts),
  // the same scenario with the real placement: Ps pinned to their node, distances from sysfs.
  // HWSQ_EXPECT_NODES=<n> (online nodes) makes fewer nodes a failure instead of a one-node run.
  hwsq::Topology topo = hwsq::readTopology("/");
  RuntimeOptions o = optionsFromTopology(topo, 0, PinMode::Node);
  std::vector<int> nodesWithPs;
  for (auto& w : o.workers)
    if (std::find(nodesWithPs.begin(), nodesWithPs.end(), w.node) == nodesWithPs.end()) nodesWithPs.push_back(w.node);
  if (const int expected = hwsq_test::expectedNodes()) CHECK_EQ(static_cast<int>(topo.nodes.size()), expected);
  std::printf("  %zu node(s) with Ps, %zu Ps\n", nodesWithPs.size(), o.workers.size());
  // The expected tiers straight from sysfs' distance rows (independent of optionsFromTopology).
  auto sysDistance = [](int from, int to) {
    std::vector<int> row;
    std::stringstream ss(hwsq_test::readText("/sys/devices/system/node/node" + std::to_string(from) + "/distance"));
    for (int v; ss >> v;) row.push_back(v);
    std::vector<int> ids = hwsq_test::parseIds(hwsq_test::readText("/sys/devices/system/node/online"));
    size_t idx = std::find(ids.begin(), ids.end(), to) - ids.begin();
    return idx < row.size() ? row[idx] : (from == to ? 10 : 20);
  };
  const int n = static_cast<int>(o.workers.size());
  if (n < 2) return;  // nobody to steal from
  std::vector<std::vector<int>> tier(n, std::vector<int>(n, 0));
  for (int t = 0; t < n; ++t) {
    std::vector<int> ds;
    for (int v = 0; v < n; ++v)
      if (o.workers[v].node != o.workers[t].node) ds.push_back(sysDistance(o.workers[t].node, o.workers[v].node));
    std::sort(ds.begin(), ds.end());
    ds.erase(std::unique(ds.begin(), ds.end()), ds.end());
    for (int v = 0; v < n; ++v)
      if (o.workers[v].node != o.workers[t].node)
        tier[t][v] = 1 + static_cast<int>(std::find(ds.begin(), ds.end(), sysDistance(o.workers[t].node, o.workers[v].node)) - ds.begin());
  }
  for (int thief = 0; thief < n; ++thief) {
    order::Outcome out = order::runThief(o, thief, 6, true);
    bool sorted = true;
    for (size_t i = 1; i < out.origins.size(); ++i) sorted &= tier[thief][out.origins[i - 1]] <= tier[thief][out.origins[i]];
    CHECK(sorted);
    for (int node : out.cpuNodes) CHECK_EQ(node, o.workers[thief].node);  // getcpu: the thief runs on its node
  }
}

TEST_CASE("runtime: flat policy steals node-blind and sends affine tasks to the GRQ") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 2);
  o.policy = StealPolicy::Flat;
  Runtime rt(o);
  std::atomic<uint64_t> n{0};
  std::vector<Task> ts(5000);
  for (size_t i = 0; i < ts.size(); ++i) {
    ts[i] = Task(bump, &n, static_cast<int>(i & 1));
    rt.submit(&ts[i]);
  }
  rt.close();
  CHECK_EQ(n.load(), 5000u);
  auto s = rt.stats();
  uint64_t grq = 0, hw = 0;
  for (auto& w : s.workers) {
    grq += w.grqPops;
    hw += w.hwsqPops + w.hwsqPushes;
  }
  CHECK_EQ(grq, 5000u);
  CHECK_EQ(hw, 0u);
  CHECK_EQ(s.nodes[0].hwsqCapacity, 0u);  // no HWSQs
}

namespace affinity {
struct Ctx {
  std::atomic<uint64_t> ran{0};
  std::atomic<uint64_t> onWrongNode{0};
  int node;
  Runtime* rt;
};
void fn(void* a) {
  auto* c = static_cast<Ctx*>(a);
  if (c->rt->workerNode(Runtime::currentWorker()) != c->node) c->onWrongNode.fetch_add(1);
  c->ran.fetch_add(1);
}
// Blocks its P (inside a task) until the latch opens.
void block(void* a) {
  auto* l = static_cast<order::Latch*>(a);
  l->arrive();
  l->wait();
}
// From a P of node 1: spawns `count` tasks with affinity to node 0, then stays inside its task
// until all of them ran (so node 1's Ps cannot run them). Both spawners are inside their task
// before either spawns: an idle node-1 P could otherwise take node 0's work while node 0 is
// saturated, as it may.
struct SpawnHome {
  Runtime* rt;
  Ctx* ctx;
  std::vector<Task>* tasks;
  size_t first, count;
  order::Latch* inside;
};
void spawnHomeThenWait(void* a) {
  auto* h = static_cast<SpawnHome*>(a);
  h->inside->arrive();
  h->inside->waitCount(2);
  for (size_t i = h->first; i < h->first + h->count; ++i) h->rt->submit(&(*h->tasks)[i]);
  while (h->ctx->ran.load() < h->tasks->size()) std::this_thread::yield();
}
}  // namespace affinity

TEST_CASE("runtime: affine tasks go through their node's HWSQ, also when spawned on another node") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 2);  // P0, P1 node 0; P2, P3 node 1
  Runtime rt(o);
  // Node 0 blocked: 20000 node-1 tasks from outside are all taken from HWSQ[1] by node 1's Ps.
  order::Latch node0;
  Task blockers[2] = {Task(affinity::block, &node0), Task(affinity::block, &node0)};
  rt.submitToWorker(0, &blockers[0]);
  rt.submitToWorker(1, &blockers[1]);
  node0.waitCount(2);
  affinity::Ctx ctx;
  ctx.node = 1;
  ctx.rt = &rt;
  std::vector<Task> ts(20000);
  for (auto& t : ts) {
    t = Task(affinity::fn, &ctx, 1);
    rt.submit(&t);
  }
  CHECK(eventually([&] { return ctx.ran.load() == ts.size(); }));
  CHECK_EQ(ctx.onWrongNode.load(), 0u);
  auto s = rt.stats();
  CHECK_EQ(s.workers[2].hwsqPops + s.workers[3].hwsqPops, 20000u);
  CHECK_EQ(s.workers[2].grqPops + s.workers[3].grqPops, 0u);
  node0.release();
  rt.waitIdle();
  // Node 1 blocked in tasks that spawn 2 x 500 tasks with affinity to node 0: a spawn for
  // another node goes to that node's HWSQ (not the spawning P's LRQ), so node 0's Ps pop all of
  // them there and steal none from node 1.
  affinity::Ctx home;
  home.node = 0;
  home.rt = &rt;
  std::vector<Task> homeTasks(1000);
  for (auto& t : homeTasks) t = Task(affinity::fn, &home, 0);
  order::Latch inside;
  affinity::SpawnHome halves[2] = {{&rt, &home, &homeTasks, 0, 500, &inside}, {&rt, &home, &homeTasks, 500, 500, &inside}};
  Task spawners[2] = {Task(affinity::spawnHomeThenWait, &halves[0]), Task(affinity::spawnHomeThenWait, &halves[1])};
  const auto before = rt.stats();
  rt.submitToWorker(2, &spawners[0]);
  rt.submitToWorker(3, &spawners[1]);
  rt.waitIdle();
  CHECK_EQ(home.ran.load(), 1000u);
  CHECK_EQ(home.onWrongNode.load(), 0u);
  s = rt.stats();
  auto d = [&](int p, uint64_t WorkerStats::*f) { return s.workers[p].*f - before.workers[p].*f; };
  CHECK_EQ(d(2, &WorkerStats::hwsqPushes) + d(3, &WorkerStats::hwsqPushes), 1000u);
  CHECK_EQ(d(0, &WorkerStats::hwsqPops) + d(1, &WorkerStats::hwsqPops), 1000u);
  CHECK_EQ(d(0, &WorkerStats::stealsRemoteTasks) + d(1, &WorkerStats::stealsRemoteTasks), 0u);
  CHECK_EQ(s.nodes[0].hwsqDepth + s.nodes[1].hwsqDepth, 0u);
  rt.close();
}

TEST_CASE("runtime: affine tasks beyond the HWSQ ring spill per node, never to the GRQ") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 1);  // P0 on node 0, P1 on node 1
  o.hwsqCapacity = 8;
  Runtime rt(o);
  order::Latch g0, g1;
  Task blockers[2] = {Task(affinity::block, &g0), Task(affinity::block, &g1)};
  rt.submitToWorker(0, &blockers[0]);
  rt.submitToWorker(1, &blockers[1]);
  g0.waitCount(1);
  g1.waitCount(1);
  affinity::Ctx ctx;
  ctx.node = 1;
  ctx.rt = &rt;
  std::vector<Task> ts(100);
  for (auto& t : ts) t = Task(affinity::fn, &ctx, 1);
  std::vector<Task*> ptrs;
  for (auto& t : ts) ptrs.push_back(&t);
  CHECK_EQ(rt.submitBatch(ptrs.data(), 60), 60u);               // one batch: 8 in the ring, 52 spill
  for (size_t i = 60; i < ts.size(); ++i) CHECK(rt.submit(&ts[i]));  // one at a time into the spill
  auto s = rt.stats();
  CHECK_EQ(s.nodes[1].hwsqDepth, 100u);  // ring + spill, all still node 1's
  CHECK_EQ(s.grqDepth, 0u);
  CHECK_EQ(s.nodes[1].hwsqCapacity, 8u);
  g1.release();  // node 1 free again (node 0 still blocked): its P drains ring and spill
  CHECK(eventually([&] { return ctx.ran.load() == 100u; }));
  CHECK_EQ(ctx.onWrongNode.load(), 0u);
  CHECK_EQ(rt.stats().nodes[1].hwsqDepth, 0u);
  g0.release();
  rt.close();
}

TEST_CASE("runtime: a saturated node's ring and spill are stolen by other nodes' Ps") {
  // Without sysmon: the submit to a saturated node must itself wake an idle P elsewhere.
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 1);
  o.hwsqCapacity = 8;
  o.sysmon = false;
  Runtime rt(o);
  order::Latch g1;
  Task blocker(affinity::block, &g1);
  rt.submitToWorker(1, &blocker);  // node 1's only P is inside a task: node 1 is saturated
  g1.waitCount(1);
  // P0 asleep (past its last re-check): only a wake from the submits below can get it going.
  CHECK(eventually([&] {
    auto w = rt.stats().workers[0];
    return w.parked && w.parks > 0;
  }));
  affinity::Ctx ctx;
  ctx.node = 0;  // counts runs off node 0: all of them should be on P0 (node 0)
  ctx.rt = &rt;
  std::vector<Task> ts(100);
  for (auto& t : ts) {
    t = Task(affinity::fn, &ctx, 1);  // affinity to node 1
    CHECK(rt.submit(&t));
  }
  CHECK(eventually([&] { return ctx.ran.load() == 100u; }));  // while P1 is still blocked
  CHECK_EQ(ctx.onWrongNode.load(), 0u);
  CHECK_EQ(rt.stats().workers[0].stealsRemoteTasks, 100u);
  g1.release();
  rt.close();
}

namespace ending {
void endThenBlock(void* a) {
  Runtime::taskEnding();  // what a task does just before publishing its result
  affinity::block(a);
}
}  // namespace ending

TEST_CASE("runtime: a thief leaves a node's queued work alone while the node is not saturated") {
  // P1 (node 1) is inside a task that called taskEnding(): node 1 is not saturated. A task with
  // affinity to node 1 waits in HWSQ[1]. P0 (node 0) is then let go with nothing of its own: it
  // looks everywhere it may take from (stealing included) and parks -- without taking it.
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 1);
  Runtime rt(o);
  order::Latch g0, g1;
  Task b0(affinity::block, &g0), b1(ending::endThenBlock, &g1);
  rt.submitToWorker(0, &b0);
  rt.submitToWorker(1, &b1);
  g0.waitCount(1);
  g1.waitCount(1);
  affinity::Ctx ctx;
  ctx.node = 1;
  ctx.rt = &rt;
  Task t(affinity::fn, &ctx, 1);
  CHECK(rt.submit(&t));
  const uint64_t parks = rt.stats().workers[0].parks;
  g0.release();
  CHECK(eventually([&] { return rt.stats().workers[0].parks > parks; }));  // P0 searched and parked
  auto s = rt.stats();
  CHECK_EQ(ctx.ran.load(), 0u);
  CHECK_EQ(s.nodes[1].hwsqDepth, 1u);
  CHECK_EQ(s.workers[0].stealsRemoteTasks, 0u);
  CHECK(s.workers[0].failedSteals > 0u);  // it did look at P1 as a victim
  g1.release();  // P1 finishes its task and takes its node's work
  CHECK(eventually([&] { return ctx.ran.load() == 1u; }));
  CHECK_EQ(ctx.onWrongNode.load(), 0u);
  CHECK_EQ(rt.stats().workers[0].stealsRemoteTasks, 0u);
  rt.close();
}

namespace findorder {
struct Log {
  std::mutex mu;
  std::vector<int> kinds;  // 0: affine (HWSQ), 1: global (GRQ)
};
struct Item {
  Log* log;
  int kind;
};
void fn(void* a) {
  auto* it = static_cast<Item*>(a);
  std::lock_guard<std::mutex> lk(it->log->mu);
  it->log->kinds.push_back(it->kind);
}
}  // namespace findorder

TEST_CASE("find work: the node's HWSQ before the GRQ (one P, both queues filled while it is busy)") {
  // Global tasks are submitted first, so submission order would run them first. At most one may
  // run before the last node task: the 1-in-61 fairness check takes a single GRQ task.
  RuntimeOptions o = plain(1);
  o.sysmon = false;
  Runtime rt(o);
  order::Latch g;
  Task blocker(affinity::block, &g);
  rt.submitToWorker(0, &blocker);
  g.waitCount(1);
  findorder::Log log;
  findorder::Item affine{&log, 0}, global{&log, 1};
  std::vector<Task> ts;
  ts.reserve(20);
  for (int i = 0; i < 10; ++i) ts.emplace_back(findorder::fn, &global);
  for (int i = 0; i < 10; ++i) ts.emplace_back(findorder::fn, &affine, 0);
  for (auto& t : ts) CHECK(rt.submit(&t));
  CHECK_EQ(rt.stats().grqDepth, 10u);
  CHECK_EQ(rt.stats().nodes[0].hwsqDepth, 10u);
  g.release();
  rt.close();
  CHECK_EQ(log.kinds.size(), 20u);
  size_t lastAffine = 0;
  for (size_t i = 0; i < log.kinds.size(); ++i)
    if (log.kinds[i] == 0) lastAffine = i;
  int globalBefore = 0;
  for (size_t i = 0; i < lastAffine; ++i) globalBefore += log.kinds[i];
  CHECK(globalBefore <= 1);
}

namespace findorder {
// P0's gate: queues `local` tasks in its own LRQ (spawns), says so, and blocks until released.
struct Gate {
  Runtime* rt;
  std::vector<Task>* local;
  order::Latch* queued;
  order::Latch* release;
};
void spawnLocalThenBlock(void* a) {
  auto* g = static_cast<Gate*>(a);
  for (auto& t : *g->local) g->rt->spawn(t.fn, t.arg, -1, nullptr, nullptr, nullptr, SpawnHint::Tail);
  g->queued->arrive();
  g->release->wait();
}
// Index of the first entry of `kind`, and how many of the other kind ran before its last one.
size_t before(const std::vector<int>& kinds, int first, int last) {
  size_t lastAt = 0, n = 0;
  for (size_t i = 0; i < kinds.size(); ++i)
    if (kinds[i] == last) lastAt = i;
  for (size_t i = 0; i < lastAt; ++i) n += kinds[i] == first;
  return n;
}
}  // namespace findorder

TEST_CASE("find work: a P's own LRQ before its node's HWSQ") {
  // P0 queues 10 tasks in its LRQ while 20 affine tasks wait in HWSQ[0]; P1 (same node) stays
  // inside a task throughout, so P0 runs everything. Its LRQ first: at most one HWSQ task (a
  // 1-in-61 fairness pop) may run before its last local task. (HWSQ first would pop a batch of
  // its share every round while HWSQ[0] has work: several before any local task.)
  RuntimeOptions o = RuntimeOptions::virtualTopology(1, 2);
  o.sysmon = false;
  Runtime rt(o);
  findorder::Log log;
  findorder::Item local{&log, 1}, affine{&log, 0};
  std::vector<Task> localTasks(10, Task(findorder::fn, &local));
  order::Latch queued, release, g1;
  findorder::Gate gate{&rt, &localTasks, &queued, &release};
  Task gate0(findorder::spawnLocalThenBlock, &gate), block1(affinity::block, &g1);
  rt.submitToWorker(1, &block1);
  g1.waitCount(1);
  rt.submitToWorker(0, &gate0);
  queued.waitCount(1);
  std::vector<Task> affineTasks(20, Task(findorder::fn, &affine, 0));
  for (auto& t : affineTasks) CHECK(rt.submit(&t));
  CHECK_EQ(rt.stats().nodes[0].hwsqDepth, 20u);
  release.release();
  CHECK(eventually([&] {
    std::lock_guard<std::mutex> lk(log.mu);
    return log.kinds.size() == 30u;
  }));
  g1.release();
  rt.close();
  CHECK_EQ(log.kinds.size(), 30u);
  CHECK(findorder::before(log.kinds, 0, 1) <= 1u);  // HWSQ tasks before the last local one
}

TEST_CASE("find work: the GRQ before stealing from a sibling") {
  // P1 queues 10 tasks in its LRQ and stays inside its task; 10 tasks wait in the GRQ. P0 is
  // let go with nothing of its own: it takes the GRQ's work (and what it prefetched into
  // HWSQ[0]) before it steals P1's, so no stolen task runs before the last global one.
  RuntimeOptions o = RuntimeOptions::virtualTopology(1, 2);
  o.sysmon = false;
  Runtime rt(o);
  findorder::Log log;
  findorder::Item siblings{&log, 0}, global{&log, 1};
  std::vector<Task> siblingTasks(10, Task(findorder::fn, &siblings));
  order::Latch queued, release, g0;
  findorder::Gate gate{&rt, &siblingTasks, &queued, &release};
  Task gate1(findorder::spawnLocalThenBlock, &gate), block0(affinity::block, &g0);
  rt.submitToWorker(0, &block0);
  g0.waitCount(1);
  rt.submitToWorker(1, &gate1);
  queued.waitCount(1);
  std::vector<Task> globalTasks(10, Task(findorder::fn, &global));
  for (auto& t : globalTasks) CHECK(rt.submit(&t));
  CHECK_EQ(rt.stats().grqDepth, 10u);
  g0.release();
  CHECK(eventually([&] {
    std::lock_guard<std::mutex> lk(log.mu);
    return log.kinds.size() == 20u;
  }));
  const RuntimeStats s = rt.stats();
  release.release();
  rt.close();
  CHECK_EQ(log.kinds.size(), 20u);
  CHECK_EQ(findorder::before(log.kinds, 0, 1), 0u);  // stolen tasks before the last global one
  CHECK_EQ(s.workers[0].stealsSameNodeTasks, 10u);      // P0 did steal them, after
}

namespace fairness {
struct Ctx {
  Runtime* rt;
  std::atomic<uint64_t> chain{0};                // chain tasks run so far
  std::atomic<uint64_t> submittedAt{UINT64_MAX};  // chain count once both were queued
  std::atomic<uint64_t> globalAt{0}, nodeAt{0};  // chain count when each ran (0: not yet)
  static constexpr uint64_t kLimit = 20000;      // chain tasks after submittedAt before giving up
};
void chainFn(void* a) {
  auto* c = static_cast<Ctx*>(a);
  uint64_t n = c->chain.fetch_add(1) + 1;
  if (c->globalAt.load() && c->nodeAt.load()) return;
  uint64_t at = c->submittedAt.load();
  if (at != UINT64_MAX && n >= at + Ctx::kLimit) return;
  c->rt->spawn(chainFn, c, -1, nullptr, nullptr, nullptr, SpawnHint::Tail);  // the LRQ never runs dry
}
void globalFn(void* a) {
  auto* c = static_cast<Ctx*>(a);
  c->globalAt.store(c->chain.load() + 1);
}
void nodeFn(void* a) {
  auto* c = static_cast<Ctx*>(a);
  c->nodeAt.store(c->chain.load() + 1);
}
}  // namespace fairness

TEST_CASE("find work: a P whose LRQ never runs dry still takes GRQ and HWSQ work (1 in 61)") {
  RuntimeOptions o = plain(1);
  o.sysmon = false;
  Runtime rt(o);
  fairness::Ctx ctx;
  ctx.rt = &rt;
  rt.spawn(fairness::chainFn, &ctx);
  CHECK(eventually([&] { return ctx.chain.load() >= 10; }));  // the chain is running (and runs on)
  Task global(fairness::globalFn, &ctx), node(fairness::nodeFn, &ctx, 0);
  CHECK(rt.submit(&global));  // GRQ
  CHECK(rt.submit(&node));    // HWSQ[0]
  const uint64_t at = ctx.chain.load();  // at least the chain count when both were queued
  ctx.submittedAt.store(at);
  rt.close();
  CHECK(ctx.globalAt.load() > 0u);
  CHECK(ctx.nodeAt.load() > 0u);
  // Within two fairness rounds (61 scheduler ticks each) of being queued, not when the chain ends.
  CHECK(ctx.globalAt.load() <= at + 2 * 61 + 2);
  CHECK(ctx.nodeAt.load() <= at + 2 * 61 + 2);
  CHECK(ctx.chain.load() < at + fairness::Ctx::kLimit);
}

namespace depths {
// Records, each time it runs, the depth of this P's LRQ and of node 0's HWSQ and the GRQ.
struct Snap {
  uint64_t lrq, hwsq, grq, prefetchTasks;
};
struct Ctx {
  Runtime* rt;
  std::mutex mu;
  std::vector<Snap> snaps;
};
void record(void* a) {
  auto* c = static_cast<Ctx*>(a);
  auto s = c->rt->stats();
  std::lock_guard<std::mutex> lk(c->mu);
  c->snaps.push_back({s.workers[Runtime::currentWorker()].lrqDepth, s.nodes[0].hwsqDepth, s.grqDepth, s.nodes[0].prefetchTasks});
}
// One node with 2 Ps, both inside a task while `count` recording tasks (affinity `node`, -1:
// none) are submitted as one batch; then P0 alone is let go and runs them all.
RuntimeStats p0Alone(Ctx& ctx, size_t count, int node) {
  RuntimeOptions o = RuntimeOptions::virtualTopology(1, 2);
  o.sysmon = false;
  Runtime rt(o);
  ctx.rt = &rt;
  order::Latch g0, g1;
  Task b0(affinity::block, &g0), b1(affinity::block, &g1);
  rt.submitToWorker(0, &b0);
  rt.submitToWorker(1, &b1);
  g0.waitCount(1);
  g1.waitCount(1);
  std::vector<Task> ts(count, Task(record, &ctx, node));
  std::vector<Task*> ptrs;
  for (auto& t : ts) ptrs.push_back(&t);
  CHECK_EQ(rt.submitBatch(ptrs.data(), ptrs.size()), count);
  g0.release();
  CHECK(eventually([&] {
    std::lock_guard<std::mutex> lk(ctx.mu);
    return ctx.snaps.size() == count;
  }));
  g1.release();
  rt.close();
  ctx.rt = nullptr;
  return rt.stats();
}
}  // namespace depths

TEST_CASE("find work: a P takes about its share of its node's HWSQ as one batch") {
  // 20 tasks wait in HWSQ[0]; P0's pop takes its share (20 / 2 Ps + 1 = 11: one to run, 10
  // into its LRQ), not one task and not all of them.
  depths::Ctx ctx;
  auto s = depths::p0Alone(ctx, 20, 0);
  // The first pop (or the second, if the first was a 1-in-61 fairness pop of one task).
  uint64_t batch = 0;
  for (auto& sn : ctx.snaps) batch = std::max(batch, sn.lrq);
  CHECK(batch >= 9 && batch <= 10);
  CHECK_EQ(s.workers[0].hwsqPops, 20u);
}

TEST_CASE("overflow: a full LRQ moves its older half to its node's HWSQ (hierarchical) or the GRQ (flat)") {
  for (StealPolicy policy : {StealPolicy::Hierarchical, StealPolicy::Flat}) {
    RuntimeOptions o = plain(1);
    o.policy = policy;
    o.sysmon = false;
    Runtime rt(o);
    struct Spawner {
      Runtime* rt;
      std::atomic<uint64_t>* n;
      RuntimeStats after;
    };
    std::atomic<uint64_t> n{0};
    Spawner sp{&rt, &n, {}};
    Task root(
        [](void* a) {
          auto* s = static_cast<Spawner*>(a);
          for (int i = 0; i < 300; ++i) s->rt->spawn(bump, s->n, -1, nullptr, nullptr, nullptr, SpawnHint::Tail);
          s->after = s->rt->stats();  // still inside: nothing of the 300 ran yet
        },
        &sp);
    rt.submit(&root);
    rt.close();
    CHECK_EQ(n.load(), 300u);
    // 256 fill the ring; the 257th moves the older 128 plus itself (129) out; 43 more follow.
    const WorkerStats& w = sp.after.workers[0];
    CHECK_EQ(w.overflows, 1u);
    CHECK_EQ(w.overflowTasks, 129u);
    CHECK_EQ(w.lrqDepth, 171u);
    if (policy == StealPolicy::Hierarchical) {
      CHECK_EQ(sp.after.nodes[0].hwsqDepth, 129u);
      CHECK_EQ(sp.after.grqDepth, 0u);
    } else {
      CHECK_EQ(sp.after.grqDepth, 129u);
    }
  }
}

// Runs spawn(rt) inside a task on P0 of virtualTopology(2, 1), every task timed, while P1 is
// blocked; spawn must queue 400 tasks, 40 of them for node 1, and return how many it queued.
// Checks what that leaves, seen from inside the task: 360 for this node, of which 256 fill the
// ring, the 257th moves the older 128 plus itself out, 103 follow; and after waitIdle, that every
// task ran and was stamped (the blocker, the root, the 400).
static void checkSpawn400(size_t (*spawn)(Runtime&)) {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 1);  // P0 node 0, P1 node 1
  o.sysmon = false;
  o.timingSampleShift = 0;  // every task stamped at submit: the latency histogram counts them all
  Runtime rt(o);
  order::Latch p1Busy;
  Task blocker(affinity::block, &p1Busy);
  rt.submitToWorker(1, &blocker);  // P1 takes nothing while the batch is looked at
  p1Busy.waitCount(1);
  struct Spawner {
    Runtime* rt = nullptr;
    size_t (*spawn)(Runtime&) = nullptr;
    size_t taken = 0;
    RuntimeStats after;
    std::atomic<bool> looked{false};
  } sp;
  sp.rt = &rt;
  sp.spawn = spawn;
  Task root(
      [](void* a) {
        auto* s = static_cast<Spawner*>(a);
        s->taken = s->spawn(*s->rt);
        s->after = s->rt->stats();  // still inside, P1 blocked: nothing of the batch ran
        s->looked.store(true);
      },
      &sp);
  rt.submitToWorker(0, &root);
  CHECK(eventually([&] { return sp.looked.load(); }));
  p1Busy.release();
  rt.waitIdle();
  CHECK_EQ(sp.taken, 400u);
  const WorkerStats& w = sp.after.workers[0];
  CHECK_EQ(w.spawned, 400u);
  CHECK_EQ(w.localPushes, 360u);
  CHECK_EQ(w.runnextHits, 0u);
  CHECK_EQ(w.overflows, 1u);
  CHECK_EQ(w.overflowTasks, 129u);
  CHECK_EQ(w.lrqDepth, 231u);
  CHECK_EQ(w.hwsqPushes, 129u + 40u);
  CHECK_EQ(sp.after.nodes[0].hwsqDepth, 129u);
  CHECK_EQ(sp.after.nodes[1].hwsqDepth, 40u);
  auto s = rt.stats();
  CHECK_EQ(s.executed, 402u);
  CHECK_EQ(s.latency.count, s.executed);
  rt.close();
}

static std::atomic<uint64_t> batchRan{0};

TEST_CASE("batch spawn: submitBatch from a task queues like one spawn per task (counts, overflow, affinity, stamps)") {
  batchRan = 0;
  checkSpawn400([](Runtime& rt) {
    std::vector<Task*> batch(400);
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i] = allocTask();
      batch[i]->fn = [](void*) { batchRan.fetch_add(1); };
      if (i % 10 == 3) batch[i]->node = 1;  // 40 for the other node: its HWSQ, not this LRQ
    }
    return rt.submitBatch(batch.data(), batch.size());
  });
  CHECK_EQ(batchRan.load(), 400u);
}

TEST_CASE("find work: a P that takes from the GRQ prefetches its idle siblings' share into its HWSQ") {
  // 100 tasks without affinity in the GRQ; P0's GRQ pops bring part of it into HWSQ[0] for P1.
  depths::Ctx ctx;
  auto s = depths::p0Alone(ctx, 100, -1);
  CHECK(s.nodes[0].prefetches >= 1u);
  CHECK(s.nodes[0].prefetchTasks > 0u);
  // Every task left the GRQ once: popped by P0, or prefetched and popped from HWSQ[0].
  CHECK_EQ(s.workers[0].grqPops + s.nodes[0].prefetchTasks, 100u);
  CHECK_EQ(s.workers[0].hwsqPops, s.nodes[0].prefetchTasks);
  bool seenInHwsq = false;
  for (auto& sn : ctx.snaps) seenInHwsq |= sn.hwsq > 0 && sn.prefetchTasks > 0;
  CHECK(seenInHwsq);
}

TEST_CASE("steal order: within a remote tier, the Ps' LRQs before the node's HWSQ") {
  // P1 (node 1) is inside a task with 4 tasks in its LRQ; 4 more wait in HWSQ[1] (saturated).
  // P0 steals all of P1's LRQ before it takes from HWSQ[1].
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 1);
  o.sysmon = false;
  Runtime rt(o);
  order::Log log;
  order::Scene sc;
  sc.rt = &rt;
  sc.thief = 0;
  sc.lrq.resize(2);
  sc.next.resize(2);
  for (int i = 0; i < 4; ++i) sc.lrq[1].push_back({&log, 1});
  order::GateArgs args[2] = {{&sc, 0}, {&sc, 1}};
  // P0's gate waits until P1 has queued; the HWSQ tasks are submitted before it is let go.
  order::Latch hold0;
  Task holdP0(affinity::block, &hold0);
  rt.submitToWorker(0, &holdP0);
  hold0.waitCount(1);
  Task gate1(order::gateFn, &args[1]);
  sc.entered.arrive();  // P0 counts as entered: it is held in its own task
  rt.submitToWorker(1, &gate1);
  sc.queued.waitCount(1);
  std::vector<order::Probe> viaHwsq(4, order::Probe{&log, 100});
  std::vector<Task> ts;
  for (auto& pr : viaHwsq) ts.emplace_back(order::probeFn, &pr, 1);
  for (auto& t : ts) CHECK(rt.submit(&t));
  hold0.release();
  CHECK(eventually([&] { return log.size() == 8; }));
  sc.release.release();
  rt.close();
  std::vector<int> origins;
  for (auto& e : log.entries) {
    CHECK_EQ(e.worker, 0);
    origins.push_back(e.origin);
  }
  CHECK(origins == (std::vector<int>{1, 1, 1, 1, 100, 100, 100, 100}));
}

TEST_CASE("runtime: unknown affinity node and bad options throw, nothing started") {
  {
    Runtime rt(plain(1));
    Task t(bump, nullptr, 7);
    CHECK_THROWS(rt.submit(&t));
    CHECK_THROWS(rt.submitToWorker(3, &t));
    rt.close();
    CHECK_EQ(rt.stats().externalSubmitted, 0u);
  }
  CHECK_THROWS(Runtime(RuntimeOptions{}));
  {
    RuntimeOptions o = plain(2);
    o.nodeIds = {1};
    CHECK_THROWS(Runtime(o));  // workers on node 0, not in nodeIds
  }
  {
    RuntimeOptions o = RuntimeOptions::virtualTopology(2, 1);
    o.distances = {{10, 20}};
    CHECK_THROWS(Runtime(o));
  }
  {
    RuntimeOptions o = plain(1);
    o.hwsqCapacity = 1000;
    CHECK_THROWS(Runtime(o));
  }
  CHECK_THROWS(parseStealPolicy("greedy"));
  CHECK(parseStealPolicy("flat") == StealPolicy::Flat);
  try {
    RuntimeOptions o = plain(1);
    o.workers[0].node = -3;
    Runtime rt(o);
    CHECK(false);
  } catch (const hwsq::HwsqRangeError& e) {
    CHECK(e.code == "ERR_HWSQ_UNKNOWN_NODE");
  }
  // A failing worker start hook fails the constructor and joins the threads that did start.
  std::atomic<int> starts{0}, stops{0};
  RuntimeOptions o = plain(3);
  o.onWorkerStart = [&](int w) {
    starts.fetch_add(1);
    if (w == 2) throw std::runtime_error("no isolate");
  };
  o.onWorkerStop = [&](int) { stops.fetch_add(1); };
  CHECK_THROWS(Runtime(o));
  CHECK_EQ(starts.load(), 3);
  CHECK_EQ(stops.load(), 2);
}

TEST_CASE("runtime: pin hook gets each worker's CPUs") {
  RuntimeOptions o;
  o.workers = {{0, {0}}, {0, {1}}, {0, {}}};
  std::mutex mu;
  std::vector<std::pair<int, std::vector<int>>> calls;
  o.pinThread = [&](int w, const std::vector<int>& cpus) {
    std::lock_guard<std::mutex> lk(mu);
    calls.push_back({w, cpus});
  };
  Runtime rt(o);
  rt.close();
  std::sort(calls.begin(), calls.end());
  CHECK_EQ(calls.size(), 2u);
  if (calls.size() == 2) {
    CHECK(calls[0].first == 0 && calls[0].second == std::vector<int>{0});
    CHECK(calls[1].first == 1 && calls[1].second == std::vector<int>{1});
  }
}

namespace drop {
std::atomic<uint64_t> cancelled{0};
void cancelFn(void*) { cancelled.fetch_add(1); }
struct Blocker {
  Runtime* rt;
  Gate* gate;
};
void blockUntilClosed(void* a) {
  auto* b = static_cast<Blocker*>(a);
  b->gate->entered.fetch_add(1);
  while (!b->rt->isClosed()) std::this_thread::yield();
}
// Both Ps of a 2-P runtime held in blockUntilClosed: constructed once both are inside.
struct BothBlocked {
  Gate gate;
  Blocker blocker;
  Task tasks[2];
  explicit BothBlocked(Runtime& rt)
      : blocker{&rt, &gate}, tasks{Task(blockUntilClosed, &blocker), Task(blockUntilClosed, &blocker)} {
    rt.submitToWorker(0, &tasks[0]);
    rt.submitToWorker(1, &tasks[1]);
    CHECK(eventually([&] { return gate.entered.load() == 2; }));
  }
};
}  // namespace drop

TEST_CASE("runtime: destroy drops queued tasks through their cancel callback") {
  Runtime rt(plain(2));
  drop::BothBlocked blocked(rt);
  std::atomic<uint64_t> ran{0};
  const uint64_t kTasks = 3000;
  for (uint64_t i = 0; i < kTasks; ++i) rt.spawn(bump, &ran, -1, nullptr, nullptr, drop::cancelFn);
  drop::cancelled = 0;
  rt.destroy();
  CHECK(rt.isStopped());
  auto s = rt.stats();
  CHECK_EQ(ran.load() + drop::cancelled.load(), kTasks);
  CHECK_EQ(s.dropped, drop::cancelled.load());
  CHECK(s.dropped > 0u);
  rt.destroy();  // idempotent
  rt.close();
}

// ---------------------------------------------------------------- light tasks (spawnLight)

namespace light {
// Per-id run and done counts; done must come after run (TaskOps::done).
struct Log {
  std::vector<std::atomic<uint32_t>> runs, dones, cancels;
  std::atomic<uint64_t> doneBeforeRun{0};
  explicit Log(size_t n) : runs(n), dones(n), cancels(n) {}
  size_t badCounts(size_t from, size_t to, uint32_t want) const {
    size_t bad = 0;
    for (size_t i = from; i < to; ++i) bad += runs[i].load() != want || dones[i].load() != want;
    return bad;
  }
};
Log* gLog = nullptr;
void run(void* a) { gLog->runs[reinterpret_cast<size_t>(a)].fetch_add(1); }
void done(void* a) {
  const size_t i = reinterpret_cast<size_t>(a);
  if (gLog->runs[i].load() == 0) gLog->doneBeforeRun.fetch_add(1);
  gLog->dones[i].fetch_add(1);
}
void cancel(void* a) { gLog->cancels[reinterpret_cast<size_t>(a)].fetch_add(1); }
const TaskOps kOps{run, done, cancel};
std::vector<void*> ids(size_t from, size_t n) {
  std::vector<void*> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = reinterpret_cast<void*>(from + i);
  return v;
}
}  // namespace light

TEST_CASE("light tasks: spawnLight from a task queues like submitBatch (counts, overflow, affinity, stamps)") {
  light::Log log(400);
  light::gLog = &log;
  checkSpawn400([](Runtime& rt) {  // every light task timed: each becomes a stamped full Task
    auto first = light::ids(0, 256), second = light::ids(256, 104), remote = light::ids(360, 40);
    size_t taken = rt.spawnLight(&light::kOps, first.data(), first.size());
    taken += rt.spawnLight(&light::kOps, second.data(), second.size(), -1, SpawnHint::Next);  // Next acts as Tail
    return taken + rt.spawnLight(&light::kOps, remote.data(), remote.size(), 1);  // node 1's HWSQ, not this LRQ
  });
  CHECK_EQ(log.badCounts(0, 400, 1), 0u);
  CHECK_EQ(log.doneBeforeRun.load(), 0u);
  light::gLog = nullptr;
}

TEST_CASE("light tasks: from outside, exactly once on the right node; closed and bad input queue nothing") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 2);  // P0, P1 node 0; P2, P3 node 1
  o.timingSampleShift = 2;  // 1 in 4 light tasks become full Tasks: both kinds in every queue
  Runtime rt(o);
  const size_t kAny = 256 * 40, kNode1 = 256 * 4;
  light::Log log(kAny + kNode1);
  light::gLog = &log;
  for (size_t i = 0; i < kAny; i += 256) {
    auto a = light::ids(i, 256);
    CHECK_EQ(rt.spawnLight(&light::kOps, a.data(), a.size()), 256u);
  }
  rt.waitIdle();
  CHECK_EQ(log.badCounts(0, kAny, 1), 0u);
  // Node 0 blocked: node-1 light tasks are taken from HWSQ[1] by node 1's Ps only.
  order::Latch node0;
  Task blockers[2] = {Task(affinity::block, &node0), Task(affinity::block, &node0)};
  rt.submitToWorker(0, &blockers[0]);
  rt.submitToWorker(1, &blockers[1]);
  node0.waitCount(2);
  const auto before = rt.stats();
  for (size_t i = kAny; i < kAny + kNode1; i += 256) {
    auto a = light::ids(i, 256);
    CHECK_EQ(rt.spawnLight(&light::kOps, a.data(), a.size(), 1), 256u);
  }
  CHECK(eventually([&] { return log.badCounts(kAny, kAny + kNode1, 1) == 0; }));
  auto s = rt.stats();
  CHECK_EQ(s.workers[2].hwsqPops + s.workers[3].hwsqPops - before.workers[2].hwsqPops - before.workers[3].hwsqPops, kNode1);
  CHECK_EQ(s.workers[0].executed + s.workers[1].executed, before.workers[0].executed + before.workers[1].executed);
  node0.release();
  rt.waitIdle();
  CHECK_EQ(log.doneBeforeRun.load(), 0u);
  CHECK(s.latency.count > 0u);  // the sampled ones were timed
  // Bad input: typed errors, nothing queued or counted.
  s = rt.stats();
  auto a = light::ids(0, 257);
  const TaskOps noRun{nullptr, light::done, nullptr};
  bool invalid = false, range = false;
  try { rt.spawnLight(nullptr, a.data(), 1); } catch (const std::invalid_argument&) { invalid = true; }
  CHECK(invalid);
  invalid = false;
  try { rt.spawnLight(&noRun, a.data(), 1); } catch (const std::invalid_argument&) { invalid = true; }
  CHECK(invalid);
  invalid = false;
  try { rt.spawnLight(&light::kOps, a.data(), Runtime::kLightBatchMax + 1); } catch (const std::invalid_argument&) { invalid = true; }
  CHECK(invalid);
  try { rt.spawnLight(&light::kOps, a.data(), 1, 7); } catch (const hwsq::HwsqRangeError& e) { range = e.code == "ERR_HWSQ_UNKNOWN_NODE"; }
  CHECK(range);
  CHECK_EQ(rt.spawnLight(&light::kOps, a.data(), 0), 0u);
  auto after = rt.stats();
  CHECK_EQ(after.externalSubmitted, s.externalSubmitted);
  CHECK_EQ(after.rejected, s.rejected);
  CHECK_EQ(after.executed, s.executed);
  rt.close();
  // Closed: refused, counted as rejected, nothing run or cancelled.
  CHECK_EQ(rt.spawnLight(&light::kOps, a.data(), 100), 0u);
  CHECK_EQ(rt.stats().rejected, after.rejected + 100);
  CHECK_EQ(log.badCounts(0, 100, 1), 0u);
  size_t cancelled = 0;
  for (auto& c : log.cancels) cancelled += c.load();
  CHECK_EQ(cancelled, 0u);
  light::gLog = nullptr;
}

namespace coalesce {
// Two args, each its own tally of doneMany reports.
struct Tally {
  std::atomic<uint64_t> ran{0}, reported{0}, reports{0}, largest{0}, cancelled{0};
};
void run(void* a) { static_cast<Tally*>(a)->ran.fetch_add(1); }
void doneMany(void* a, uint64_t n) {
  auto* t = static_cast<Tally*>(a);
  t->reported.fetch_add(n);
  t->reports.fetch_add(1);
  uint64_t l = t->largest.load();
  while (n > l && !t->largest.compare_exchange_weak(l, n)) {
  }
}
void cancel(void* a) { static_cast<Tally*>(a)->cancelled.fetch_add(1); }
const TaskOps kOps{run, nullptr, cancel, doneMany};
}  // namespace coalesce

TEST_CASE("light tasks: doneMany reports runs of completions per P, every one before waitIdle returns") {
  for (int shift : {8, 1}) {  // 1: half of them timed, carried by full Tasks
    RuntimeOptions o = plain(2);
    o.timingSampleShift = shift;
    Runtime rt(o);
    coalesce::Tally a, b;
    const size_t kBatches = 40;
    for (size_t i = 0; i < kBatches; ++i) {
      std::vector<void*> args(256, (i % 4 == 3) ? static_cast<void*>(&b) : static_cast<void*>(&a));
      CHECK_EQ(rt.spawnLight(&coalesce::kOps, args.data(), args.size()), 256u);
    }
    rt.waitIdle();  // returns only once every run was reported: executed counts them then
    const uint64_t wantA = 256 * 30, wantB = 256 * 10;
    CHECK_EQ(a.ran.load(), wantA);
    CHECK_EQ(b.ran.load(), wantB);
    CHECK_EQ(a.reported.load(), wantA);
    CHECK_EQ(b.reported.load(), wantB);
    CHECK_EQ(rt.stats().executed, wantA + wantB);
    CHECK(a.largest.load() <= kMaxCoalescedDone);
    CHECK(a.largest.load() > 1u);                    // coalesced...
    CHECK(a.reports.load() * 8 <= a.reported.load());  // ...into runs of 8 or more on average
    // A single task: its P reports it when its queues run dry (no later task to end the run).
    coalesce::Tally one;
    void* arg = &one;
    CHECK_EQ(rt.spawnLight(&coalesce::kOps, &arg, 1), 1u);
    CHECK(eventually([&] { return one.reported.load() == 1; }));
    rt.waitIdle();
    CHECK_EQ(one.reports.load(), 1u);
    rt.close();
  }
  Runtime rt(plain(1));
  const TaskOps both{coalesce::run, light::done, nullptr, coalesce::doneMany};
  void* arg = nullptr;
  bool invalid = false;
  try { rt.spawnLight(&both, &arg, 1); } catch (const std::invalid_argument&) { invalid = true; }
  CHECK(invalid);
  CHECK_EQ(rt.stats().externalSubmitted, 0u);
  rt.close();
}

TEST_CASE("light tasks: destroy with coalesced completions: each task reported or cancelled, exactly once") {
  RuntimeOptions o = plain(2);
  o.timingSampleShift = 2;
  Runtime rt(o);
  coalesce::Tally t;
  // A P runs a few of them, then blocks inside a task until destroy(): its coalesced run must be
  // reported when it stops, the rest cancelled.
  struct Mid {
    Runtime* rt;
    std::atomic<int> entered{0};
  } mid{&rt};
  const TaskOps blockOps{[](void* m) {
                           auto* x = static_cast<Mid*>(m);
                           x->entered.fetch_add(1);
                           while (!x->rt->isClosed()) std::this_thread::yield();
                         },
                         nullptr, nullptr, nullptr};
  std::vector<void*> args(256, &t);
  for (int i = 0; i < 8; ++i) CHECK_EQ(rt.spawnLight(&coalesce::kOps, args.data(), args.size()), 256u);
  void* m = &mid;
  CHECK_EQ(rt.spawnLight(&blockOps, &m, 1), 1u);
  CHECK_EQ(rt.spawnLight(&blockOps, &m, 1), 1u);
  for (int i = 0; i < 8; ++i) CHECK_EQ(rt.spawnLight(&coalesce::kOps, args.data(), args.size()), 256u);
  CHECK(eventually([&] { return mid.entered.load() == 2; }));
  rt.destroy();
  CHECK_EQ(t.ran.load(), t.reported.load());
  CHECK_EQ(t.reported.load() + t.cancelled.load(), 256u * 16);
  CHECK(t.cancelled.load() > 0u);
  auto s = rt.stats();
  CHECK_EQ(s.executed, t.reported.load() + 2);
  CHECK_EQ(s.dropped, t.cancelled.load());
}

TEST_CASE("light tasks: destroy drops queued ones through ops->cancel, each exactly once") {
  RuntimeOptions o = plain(2);
  o.timingSampleShift = 3;  // some are full Tasks carrying ops->cancel
  Runtime rt(o);
  drop::BothBlocked blocked(rt);
  const size_t kTasks = 256 * 12;
  light::Log log(kTasks);
  light::gLog = &log;
  for (size_t i = 0; i < kTasks; i += 256) {
    auto a = light::ids(i, 256);
    CHECK_EQ(rt.spawnLight(&light::kOps, a.data(), a.size()), 256u);
  }
  rt.destroy();
  auto s = rt.stats();
  size_t bad = 0, cancelled = 0;
  for (size_t i = 0; i < kTasks; ++i) {
    const uint32_t r = log.runs[i].load(), c = log.cancels[i].load();
    bad += r + c != 1 || log.dones[i].load() != r;
    cancelled += c;
  }
  CHECK_EQ(bad, 0u);
  CHECK_EQ(s.dropped, cancelled);
  CHECK(cancelled > 0u);
  light::gLog = nullptr;
}

namespace cross {
struct Ctx {
  Runtime* other;
  std::atomic<uint64_t>* counter;
};
void hop(void* a) {
  auto* c = static_cast<Ctx*>(a);
  c->other->spawn(bump, c->counter);  // an outside submission for the other runtime
}
}  // namespace cross

TEST_CASE("runtime: several runtimes in one process, tasks submitting across") {
  Runtime a(plain(2)), b(plain(1));
  std::atomic<uint64_t> n{0};
  cross::Ctx ctx{&b, &n};
  for (int i = 0; i < 2000; ++i) a.spawn(cross::hop, &ctx);
  a.close();
  b.close();
  CHECK_EQ(n.load(), 2000u);
  CHECK_EQ(b.stats().externalSubmitted, 2000u);
}

namespace guard {
struct Ctx {
  Runtime* rt;
  std::atomic<bool> tailRan{false};
  int chain = 0;
};
void tailFn(void* a) { static_cast<Ctx*>(a)->tailRan = true; }
void chainFn(void* a) {
  auto* c = static_cast<Ctx*>(a);
  if (c->tailRan.load() || c->chain > 1000) return;
  ++c->chain;
  c->rt->spawn(chainFn, c, -1, nullptr, nullptr, nullptr, SpawnHint::Next);
}
void rootFn(void* a) {
  auto* c = static_cast<Ctx*>(a);
  c->rt->spawn(tailFn, c, -1, nullptr, nullptr, nullptr, SpawnHint::Tail);
  c->rt->spawn(chainFn, c, -1, nullptr, nullptr, nullptr, SpawnHint::Next);
}
}  // namespace guard

TEST_CASE("runtime: a runnext chain cannot starve the LRQ") {
  RuntimeOptions o = plain(1);
  Runtime rt(o);
  guard::Ctx ctx{&rt};
  rt.spawn(guard::rootFn, &ctx);
  rt.close();
  CHECK(ctx.tailRan.load());
  CHECK(ctx.chain <= 4);  // the ring task runs after at most 3 runnext hits
}

namespace inboxt {
struct Ctx {
  std::atomic<int> wrong{0};
  std::atomic<int> ran{0};
  int want;
};
void fn(void* a) {
  auto* c = static_cast<Ctx*>(a);
  if (Runtime::currentWorker() != c->want) c->wrong.fetch_add(1);
  c->ran.fetch_add(1);
}
}  // namespace inboxt

TEST_CASE("runtime: submitToWorker runs on that P only") {
  Runtime rt(plain(3));
  inboxt::Ctx ctx[3];
  for (int p = 0; p < 3; ++p) ctx[p].want = p;
  std::vector<Task> ts(3000);
  for (int i = 0; i < 3000; ++i) {
    ts[i] = Task(inboxt::fn, &ctx[i % 3]);
    rt.submitToWorker(i % 3, &ts[i]);
  }
  rt.close();
  for (auto& c : ctx) {
    CHECK_EQ(c.wrong.load(), 0);
    CHECK_EQ(c.ran.load(), 1000);
  }
  CHECK(Runtime::current() == nullptr);
  CHECK_EQ(Runtime::currentWorker(), -1);
}

namespace selfcall {
std::atomic<int> threw{0};
void fn(void* a) {
  auto* rt = static_cast<Runtime*>(a);
  try { rt->waitIdle(); } catch (const std::logic_error&) { threw.fetch_add(1); }
  try { rt->close(); } catch (const std::logic_error&) { threw.fetch_add(1); }
  if (Runtime::current() != rt) threw.store(-100);
}
}  // namespace selfcall

TEST_CASE("runtime: waitIdle/close from the runtime's own task throw") {
  Runtime rt(plain(1));
  rt.spawn(selfcall::fn, &rt);
  rt.close();
  CHECK_EQ(selfcall::threw.load(), 2);
}

TEST_CASE("sysmon: a task running past the threshold is reported as a hog with its P") {
  // The task stays inside until the test has seen it reported (no spin of a guessed length).
  RuntimeOptions o = plain(1);
  o.hogThresholdNs = 2'000'000;
  Runtime rt(o);
  order::Latch g;
  Task hog(affinity::block, &g);
  rt.submitToWorker(0, &hog);
  g.waitCount(1);
  CHECK(eventually([&] { return rt.stats().sysmon.stuckWorkers == 1u; }));
  auto during = rt.stats();
  CHECK(during.workers[0].runningForNs >= o.hogThresholdNs);
  CHECK_EQ(during.sysmon.hogs, 1u);
  g.release();
  rt.waitIdle();
  auto s = rt.stats();
  CHECK_EQ(s.sysmon.hogs, 1u);
  CHECK_EQ(s.workers[0].hogs, 1u);
  CHECK_EQ(s.sysmon.longestHogWorker, 0);
  CHECK(s.sysmon.longestHogNs >= o.hogThresholdNs);  // reported only past the threshold
  CHECK(s.sysmon.longestHogNs >= during.workers[0].runningForNs);  // the longest seen, not the first
  CHECK(s.sysmon.rounds > 0u);
  // Short tasks are no hogs.
  std::atomic<uint64_t> n{0};
  for (int i = 0; i < 100; ++i) rt.spawn(bump, &n);
  rt.close();
  CHECK_EQ(n.load(), 100u);
  CHECK_EQ(rt.stats().sysmon.hogs, 1u);
}

TEST_CASE("stats: counters, depths, histograms; stats off keeps drain working") {
  for (bool on : {true, false}) {
    RuntimeOptions o = RuntimeOptions::virtualTopology(2, 1);
    o.stats = on;
    o.timingSampleShift = 0;  // every task timed: exact histogram counts
    Runtime rt(o);
    tree::Ctx ctx{&rt};
    rt.spawn(tree::fn, new tree::Node{&ctx, 12});
    std::atomic<uint64_t> n{0};
    for (int i = 0; i < 1000; ++i) rt.spawn(bump, &n, i & 1);
    rt.waitIdle();
    auto s = rt.stats();
    const uint64_t total = (1u << 13) - 1 + 1000;
    CHECK_EQ(s.executed, total);
    CHECK_EQ(s.workers.size(), 2u);
    CHECK_EQ(s.nodes.size(), 2u);
    CHECK_EQ(s.grqDepth, 0u);
    CHECK(s.statsEnabled == on);
    if (on) {
      CHECK_EQ(s.latency.count, total);
      CHECK_EQ(s.runTime.count, total);
      CHECK(s.latency.quantileNs(0.5) > 0);
      CHECK(s.latency.quantileNs(0.99) >= s.latency.quantileNs(0.5));
      uint64_t local = 0, busy = 0;
      for (auto& w : s.workers) {
        local += w.localPushes;
        busy += w.busyNs;
      }
      CHECK_EQ(local, (1u << 13) - 2);
      CHECK(busy > 0u);
    } else {
      CHECK_EQ(s.latency.count, 0u);
      CHECK_EQ(s.workers[0].localPushes + s.workers[1].localPushes, 0u);
    }
    rt.close();
  }
}

TEST_CASE("stats: timingSampleShift times 1 task in 2^k; counts read back scaled, unbiased") {
  CHECK_EQ(RuntimeOptions{}.timingSampleShift, 8);  // the default: 1 in 256
  RuntimeOptions o = plain(2);
  o.timingSampleShift = 4;
  Runtime rt(o);
  tree::Ctx ctx{&rt};
  rt.spawn(tree::fn, new tree::Node{&ctx, 16});  // 2^17 - 1 tasks, spawned from tasks
  rt.waitIdle();
  auto s = rt.stats();
  CHECK_EQ(s.executed, (1u << 17) - 1);  // counters stay exact
  // The histograms hold about 1 task in 16, read back x16: estimates of every task's count
  // (the sampler's gaps are random, so within a few percent, not exact) and multiples of 16.
  const double n = static_cast<double>(s.executed);
  CHECK(std::fabs(static_cast<double>(s.runTime.count) / n - 1) < 0.05);
  CHECK(std::fabs(static_cast<double>(s.latency.count) / n - 1) < 0.05);
  CHECK_EQ(s.runTime.count % 16, 0u);
  uint64_t buckets = 0;
  for (uint64_t c : s.latency.counts) buckets += c;
  CHECK_EQ(buckets, s.latency.count);
  // Busy time is the timed runs' time scaled the same way: the run-time histogram's sum.
  double busyNs = 0;
  for (auto& w : s.workers) busyNs += static_cast<double>(w.busyNs);
  const double runNs = static_cast<double>(s.runTime.sum) * s.runTime.unitNs;
  CHECK(runNs > 0);
  CHECK(std::fabs(busyNs - runNs) <= 1e-9 * runNs + 2);  // each worker's figure truncated to whole ns
  rt.close();
  RuntimeOptions bad = plain(1);
  bad.timingSampleShift = 40;
  CHECK_THROWS(Runtime(bad));
}

TEST_CASE("stats: each runtime samples by its own setting, whichever thread submits") {
  // Samplers are per P (armed off with stats off) and per outside thread (shared by the
  // runtimes it submits to): a P of a stats-off runtime submitting to a full-timing one must
  // have every task timed there, and the other way round none; an outside thread alternating
  // between a full-timing and a sampling runtime must not leave the full-timing one's tasks
  // untimed by the other's gap.
  RuntimeOptions offOpts = plain(1), fullOpts = plain(1), sampledOpts = plain(1);
  offOpts.stats = false;
  fullOpts.timingSampleShift = 0;
  sampledOpts.timingSampleShift = 4;
  Runtime off(offOpts), full(fullOpts), sampled(sampledOpts);
  std::atomic<uint64_t> ran{0};
  static const TaskOps ops{bump, nullptr, nullptr};
  struct Ctx {
    Runtime* to;
    std::atomic<uint64_t>* ran;
  };
  constexpr uint64_t kEach = 3000;  // from a task: by submit, by submitBatch, by spawnLight
  auto fromTask = [](void* a) {
    auto* c = static_cast<Ctx*>(a);
    for (uint64_t i = 0; i < kEach; ++i) CHECK(c->to->spawn(bump, c->ran));
    std::vector<Task> ts(kEach, Task(bump, c->ran));
    std::vector<Task*> ptrs;
    for (Task& t : ts) ptrs.push_back(&t);
    CHECK_EQ(c->to->submitBatch(ptrs.data(), ptrs.size()), kEach);
    c->to->waitIdle();  // ts lives on this frame
    void* args[1] = {c->ran};
    for (uint64_t i = 0; i < kEach; ++i) CHECK_EQ(c->to->spawnLight(&ops, args, 1), 1u);
  };
  Ctx toFull{&full, &ran}, toOff{&off, &ran};
  Task a(fromTask, &toFull), b(fromTask, &toOff);
  CHECK(off.submit(&a));
  off.waitIdle();
  full.waitIdle();
  CHECK(full.submit(&b));
  full.waitIdle();
  off.waitIdle();
  CHECK_EQ(ran.load(), 6 * kEach);
  // full ran 3 * kEach tasks from off's P plus b itself, every one timed; off timed none.
  CHECK_EQ(full.stats().latency.count, 3 * kEach + 1);
  CHECK_EQ(off.stats().latency.count, 0u);
  // This thread, alternating: every full-timing task timed, about 1 in 16 of the others.
  const uint64_t before = full.stats().latency.count;
  constexpr uint64_t kRounds = 20000;
  for (uint64_t i = 0; i < kRounds; ++i) {
    void* args[1] = {&ran};
    CHECK_EQ(full.spawnLight(&ops, args, 1), 1u);
    CHECK_EQ(sampled.spawnLight(&ops, args, 1), 1u);
    CHECK(off.spawn(bump, &ran));
  }
  full.waitIdle();
  sampled.waitIdle();
  off.waitIdle();
  CHECK_EQ(full.stats().latency.count - before, kRounds);
  CHECK(std::fabs(static_cast<double>(sampled.stats().latency.count) / kRounds - 1) < 0.15);
  CHECK_EQ(off.stats().latency.count, 0u);
  off.close();
  full.close();
  sampled.close();
}

TEST_CASE("stats: snapshots taken while workers run are consistent and never go back") {
  // Its cost is a bench figure (bench/native/sched_queues.cpp: stats_snapshot_*), not a test.
  std::atomic<uint64_t> n{0};  // outlives the runtime: queued tasks bump it until close()
  Runtime rt(plain(2));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> fed{0};
  std::thread feeder([&] {
    while (!stop.load()) {
      for (int i = 0; i < 100; ++i) rt.spawn(bump, &n);
      fed.fetch_add(100);
      std::this_thread::yield();
    }
  });
  uint64_t lastExecuted = 0, lastSubmitted = 0;
  bool monotone = true, sumsAgree = true, bounded = true;
  for (int i = 0; i < 200; ++i) {
    auto s = rt.stats();
    uint64_t perWorker = 0;
    for (auto& w : s.workers) perWorker += w.executed;
    sumsAgree &= perWorker == s.executed;
    monotone &= s.executed >= lastExecuted && s.externalSubmitted >= lastSubmitted;
    bounded &= s.executed <= s.externalSubmitted;  // nothing runs before it was submitted
    lastExecuted = s.executed;
    lastSubmitted = s.externalSubmitted;
  }
  stop = true;
  feeder.join();
  rt.close();
  CHECK(sumsAgree);
  CHECK(monotone);
  CHECK(bounded);
  CHECK_EQ(rt.stats().executed, fed.load());
  CHECK_EQ(n.load(), fed.load());
}

TEST_CASE("native tasks: kinds, chase cycle, touch") {
  CHECK(parseNativeKind("spin") == NativeKind::Spin);
  CHECK_THROWS(parseNativeKind("sleep"));
  std::vector<uint64_t> buf(64 * 8);  // 64 lines
  prepareChase(buf.data(), buf.size() * 8, 42);
  // A single cycle: 64 steps from 0 visit every line and come back to 0.
  std::vector<bool> seen(64, false);
  uint64_t idx = 0;
  for (int s = 0; s < 64; ++s) {
    seen[idx] = true;
    idx = buf[idx * 8];
  }
  CHECK_EQ(idx, 0u);
  CHECK(std::all_of(seen.begin(), seen.end(), [](bool b) { return b; }));
  CHECK_EQ(chaseBuffer(buf.data(), buf.size() * 8, 64), 0u);
  std::vector<uint64_t> t(64 * 8, 0);
  touchBuffer(t.data(), t.size() * 8);
  touchBuffer(t.data(), t.size() * 8);
  CHECK_EQ(t[0], 2u);
  CHECK_EQ(t[8 * 63], 2u);
  CHECK_EQ(t[1], 0u);
  auto t0 = nowTicks();
  spinFor(2'000'000);
  CHECK(ticksToNs(nowTicks() - t0) >= 1'900'000u);
  // Conversions saturate rather than overflow (UB for a double at or past 2^64).
  CHECK_EQ(saturatingU64(0x1p64), UINT64_MAX);
  CHECK_EQ(saturatingU64(1e30), UINT64_MAX);
  CHECK_EQ(saturatingU64(0x1p63), uint64_t{1} << 63);
  CHECK_EQ(saturatingU64(-1.0), 0u);
  CHECK_EQ(saturatingU64(std::nan("")), 0u);
  CHECK_EQ(ticksToNs(0x1p70 / nsPerTick()), UINT64_MAX);
  // Through a runtime, one args object shared by a batch.
  Runtime rt(plain(2));
  uint64_t sink = 0;
  NativeTaskArgs args;
  args.kind = NativeKind::Chase;
  args.buffer = buf.data();
  args.bytes = buf.size() * 8;
  args.steps = 128;
  args.sink = &sink;
  for (int i = 0; i < 100; ++i) rt.spawn(runNativeTask, &args);
  NativeTaskArgs spin;
  spin.kind = NativeKind::Spin;
  spin.spinNs = 10000;
  for (int i = 0; i < 100; ++i) rt.spawn(nativeTaskFn(NativeKind::Spin), &spin);
  rt.close();
  CHECK_EQ(rt.stats().executed, 200u);
}

TEST_CASE("placement: proportional spread and options from a topology") {
  CHECK(spreadWorkers({4, 4}, 4) == (std::vector<int>{2, 2}));
  CHECK(spreadWorkers({6, 2}, 4) == (std::vector<int>{3, 1}));
  CHECK(spreadWorkers({7, 1}, 4) == (std::vector<int>{3, 1}));  // every node with CPUs gets a P
  CHECK(spreadWorkers({2, 0, 2}, 3) == (std::vector<int>{2, 0, 1}));
  hwsq::Topology topo;
  topo.nodes.resize(2);
  topo.nodes[0].id = 0;
  topo.nodes[0].cpus = {0, 1};
  topo.nodes[0].distances = {10, 21};
  topo.nodes[1].id = 1;
  topo.nodes[1].cpus = {2, 3};
  topo.nodes[1].distances = {21, 10};
  topo.allowedCpus = {0, 1, 2, 3};
  RuntimeOptions o = optionsFromTopology(topo, 0, PinMode::Cpu);
  CHECK_EQ(o.workers.size(), 4u);
  CHECK(o.workers[2].node == 1 && o.workers[2].cpus == std::vector<int>{2});
  CHECK(o.distances == (std::vector<std::vector<int>>{{10, 21}, {21, 10}}));
  o = optionsFromTopology(topo, 3, PinMode::Node);
  CHECK_EQ(o.workers.size(), 3u);
  CHECK(o.workers[0].cpus == (std::vector<int>{0, 1}));

  // Explicit placement: requests in order, default CPUs by pin mode, machine-wide distances.
  topo.nodes.resize(3);
  topo.nodes[2].id = 2;  // memory-only node
  topo.nodes[2].distances = {31, 31, 10};
  topo.nodes[0].distances = {10, 21, 31};
  topo.nodes[1].distances = {21, 10, 31};
  topo.allowedCpus = {0, 1, 3};  // CPU 2 outside our cpuset
  o = optionsFromPlacement(topo, {{1, {}}, {0, {1}}, {0, {}}, {0, {}}}, PinMode::Cpu);
  CHECK_EQ(o.workers.size(), 4u);
  CHECK(o.workers[0].node == 1 && o.workers[0].cpus == std::vector<int>{3});
  CHECK(o.workers[1].cpus == std::vector<int>{1});
  CHECK(o.workers[2].cpus == std::vector<int>{0});
  CHECK(o.workers[3].cpus == std::vector<int>{1});
  CHECK(o.nodeIds == (std::vector<int>{0, 1}));
  CHECK(o.distances == (std::vector<std::vector<int>>{{10, 21}, {21, 10}}));
  o = optionsFromPlacement(topo, {{0, {}}}, PinMode::Node);
  CHECK(o.workers[0].cpus == (std::vector<int>{0, 1}));
  CHECK_CODE(optionsFromPlacement(topo, {{7, {}}}, PinMode::Node), "ERR_HWSQ_UNKNOWN_NODE");
  CHECK_CODE(optionsFromPlacement(topo, {{2, {}}}, PinMode::Node), "ERR_HWSQ_NODE_HAS_NO_CPUS");
  CHECK_CODE(optionsFromPlacement(topo, {{1, {2}}}, PinMode::Node), "ERR_HWSQ_CPU_NOT_ALLOWED");
  topo.allowedCpus = {0, 1};
  CHECK_CODE(optionsFromPlacement(topo, {{1, {}}}, PinMode::Node), "ERR_HWSQ_NO_ALLOWED_CPUS");
}

TEST_MAIN()
