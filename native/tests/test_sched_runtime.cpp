// Runtime tests: submission paths, the no-lost-wake-up protocol, steal order and affinity on a
// virtual topology (asserted on counters, not timing), close/destroy, sysmon, stats.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

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
using Clock = std::chrono::steady_clock;

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
  for (int workers : {1, 2, 4}) {
    Runtime rt(plain(workers));
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
// The steal-order probe: tasks record (executing P, origin P) in a log.
struct Log {
  std::mutex mu;
  std::vector<std::pair<int, int>> entries;
};
struct Probe {
  Log* log;
  int origin;
};
void probeFn(void* a) {
  auto* p = static_cast<Probe*>(a);
  std::lock_guard<std::mutex> lk(p->log->mu);
  p->log->entries.push_back({Runtime::currentWorker(), p->origin});
}
struct GateArgs {
  Runtime* rt;
  Gate* gate;
  std::vector<Probe>* probes;  // spawned to this P's LRQ (Tail) before blocking
  std::atomic<int>* ready;
  int waitReady;               // > 0: a P that only waits for the others to be ready, then returns
};
std::atomic<int> started{0};
void gateFn(void* a) {
  auto* g = static_cast<GateArgs*>(a);
  // Every P is inside its gate before anyone queues probes: no P can be out stealing early.
  started.fetch_add(1);
  while (started.load() < 6) std::this_thread::yield();
  if (g->waitReady > 0) {
    while (g->ready->load() < g->waitReady) std::this_thread::yield();
    return;
  }
  for (auto& pr : *g->probes) {
    auto* t = allocTask();
    t->fn = probeFn;
    t->arg = &pr;
    g->rt->submit(t, SpawnHint::Tail);
  }
  g->ready->fetch_add(1);
  while (!g->gate->open.load() && !g->rt->isClosed()) std::this_thread::yield();
}
}  // namespace order

TEST_CASE("runtime: steal order on a virtual topology: same node before remote, nearest first") {
  // 3 nodes x 2 Ps, distances 10/20/30 (virtualTopology). P0 is the only free P. P1 (node 0),
  // P2 (node 1) and P4 (node 2) are blocked with 40 tasks each in their LRQs; P3 and P5 are
  // blocked with nothing queued. P0 must take all of P1's tasks before any of node 1's, and
  // node 1's before node 2's.
  RuntimeOptions o = RuntimeOptions::virtualTopology(3, 2);
  o.sysmon = false;
  Runtime rt(o);
  CHECK_EQ(rt.workerNode(1), 0);
  CHECK_EQ(rt.workerNode(2), 1);
  CHECK_EQ(rt.workerNode(4), 2);
  order::Log log;
  order::started = 0;
  Gate gate;
  std::atomic<int> ready{0};
  std::vector<order::Probe> probes[6];
  for (int p : {1, 2, 4})
    for (int i = 0; i < 40; ++i) probes[p].push_back({&log, p});
  std::vector<order::GateArgs> args;
  for (int p = 0; p < 6; ++p) args.push_back({&rt, &gate, &probes[p], &ready, p == 0 ? 5 : 0});
  std::vector<Task> gates(6);
  for (int p = 0; p < 6; ++p) {
    gates[p] = Task(order::gateFn, &args[p]);
    rt.submitToWorker(p, &gates[p]);
  }
  CHECK(eventually([&] {
    std::lock_guard<std::mutex> lk(log.mu);
    return log.entries.size() == 120;
  }));
  gate.open = true;
  rt.close();
  // Order of origins as P0 ran them.
  std::vector<int> seq;
  for (auto& e : log.entries) {
    CHECK_EQ(e.first, 0);  // only P0 was free
    seq.push_back(e.second);
  }
  int rank[6] = {0, 0, 1, 0, 2, 0};
  bool sorted = true;
  for (size_t i = 1; i < seq.size(); ++i) sorted &= rank[seq[i - 1]] <= rank[seq[i]];
  CHECK(sorted);
  auto s = rt.stats();
  CHECK_EQ(s.workers[0].stealsSameNodeTasks, 40u);
  CHECK_EQ(s.workers[0].stealsRemoteTasks, 80u);
  CHECK(s.workers[0].stealsSameNode >= 1u);
  CHECK(s.workers[0].stealsRemote >= 2u);
  for (int p = 1; p < 6; ++p) CHECK_EQ(s.workers[p].stealsSameNodeTasks + s.workers[p].stealsRemoteTasks, 0u);
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
void block(void* a) {
  auto* g = static_cast<Gate*>(a);
  g->entered.fetch_add(1);
  while (!g->open.load()) std::this_thread::yield();
}
}  // namespace affinity

TEST_CASE("runtime: tasks with affinity to node k run on node k's Ps (node 0 blocked)") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 2);
  Runtime rt(o);
  Gate gate;
  Task blockers[2] = {Task(affinity::block, &gate), Task(affinity::block, &gate)};
  rt.submitToWorker(0, &blockers[0]);  // P0, P1 = node 0
  rt.submitToWorker(1, &blockers[1]);
  CHECK(eventually([&] { return gate.entered.load() == 2; }));
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
  // And with node 1 blocked, node-0 affinity tasks that arrive from node 1's tasks stay on node 0.
  gate.open = true;
  rt.waitIdle();
  auto s = rt.stats();
  CHECK(s.workers[2].hwsqPops + s.workers[3].hwsqPops > 0u);
  CHECK_EQ(s.nodes[1].hwsqDepth, 0u);
  rt.close();
}

TEST_CASE("runtime: affine tasks beyond the HWSQ ring spill per node, never to the GRQ") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 1);  // P0 on node 0, P1 on node 1
  o.hwsqCapacity = 8;
  Runtime rt(o);
  Gate g0, g1;
  Task blockers[2] = {Task(affinity::block, &g0), Task(affinity::block, &g1)};
  rt.submitToWorker(0, &blockers[0]);
  rt.submitToWorker(1, &blockers[1]);
  CHECK(eventually([&] { return g0.entered.load() == 1 && g1.entered.load() == 1; }));
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
  g1.open = true;  // node 1 free again (node 0 still blocked): its P drains ring and spill
  CHECK(eventually([&] { return ctx.ran.load() == 100u; }));
  CHECK_EQ(ctx.onWrongNode.load(), 0u);
  CHECK_EQ(rt.stats().nodes[1].hwsqDepth, 0u);
  g0.open = true;
  rt.close();
}

TEST_CASE("runtime: a saturated node's ring and spill are stolen by other nodes' Ps") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 1);
  o.hwsqCapacity = 8;
  Runtime rt(o);
  Gate g1;
  Task blocker(affinity::block, &g1);
  rt.submitToWorker(1, &blocker);  // node 1's only P is inside a task: node 1 is saturated
  CHECK(eventually([&] { return g1.entered.load() == 1; }));
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
  g1.open = true;
  rt.close();
}

namespace ending {
void endThenBlock(void* a) {
  Runtime::taskEnding();  // what a task does just before publishing its result
  affinity::block(a);
}
}  // namespace ending

TEST_CASE("runtime: after taskEnding() a P no longer makes its node look saturated") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 1);
  Runtime rt(o);
  Gate g;
  Task blocker(ending::endThenBlock, &g);
  rt.submitToWorker(1, &blocker);
  CHECK(eventually([&] { return g.entered.load() == 1; }));
  affinity::Ctx ctx;
  ctx.node = 1;
  ctx.rt = &rt;
  Task t(affinity::fn, &ctx, 1);
  CHECK(rt.submit(&t));  // affinity to node 1, whose only P is finishing a task
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_EQ(ctx.ran.load(), 0u);  // P0 did not take it: node 1 is not saturated
  g.open = true;
  CHECK(eventually([&] { return ctx.ran.load() == 1u; }));
  CHECK_EQ(ctx.onWrongNode.load(), 0u);
  CHECK_EQ(rt.stats().workers[0].stealsRemoteTasks, 0u);
  rt.close();
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
}  // namespace drop

TEST_CASE("runtime: destroy drops queued tasks through their cancel callback") {
  Runtime rt(plain(2));
  Gate gate;
  drop::Blocker b{&rt, &gate};
  Task blockers[2] = {Task(drop::blockUntilClosed, &b), Task(drop::blockUntilClosed, &b)};
  rt.submitToWorker(0, &blockers[0]);
  rt.submitToWorker(1, &blockers[1]);
  CHECK(eventually([&] { return gate.entered.load() == 2; }));
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

namespace hog {
struct Ctx {
  Runtime* rt;
  std::atomic<bool> seen{false};
};
// Runs until sysmon has seen it stuck for over 10 ms (a loaded machine may not schedule sysmon
// within any fixed time), at most 20 s.
void spinUntilSeen(void* a) {
  auto* c = static_cast<Ctx*>(a);
  const auto until = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < until) {
    const auto s = c->rt->stats();
    if (s.workers[0].runningForNs >= 10'000'000 && s.sysmon.stuckWorkers == 1) {
      c->seen = true;
      return;
    }
    spinFor(100'000);
  }
}
}  // namespace hog

TEST_CASE("sysmon: a task running > 10 ms is reported as a hog with its P") {
  Runtime rt(plain(1));
  hog::Ctx ctx{&rt};
  rt.spawn(hog::spinUntilSeen, &ctx);
  rt.waitIdle();
  CHECK(ctx.seen.load());  // sysmon saw it running for 10 ms and counted the P as stuck
  auto s = rt.stats();
  CHECK_EQ(s.sysmon.hogs, 1u);
  CHECK_EQ(s.workers[0].hogs, 1u);
  CHECK_EQ(s.sysmon.longestHogWorker, 0);
  CHECK(s.sysmon.longestHogNs >= 10'000'000u);
  CHECK(s.sysmon.rounds > 0u);
  rt.close();
  CHECK_EQ(rt.stats().sysmon.hogs, 1u);
}

TEST_CASE("stats: counters, depths, histograms; stats off keeps drain working") {
  for (bool on : {true, false}) {
    RuntimeOptions o = RuntimeOptions::virtualTopology(2, 1);
    o.stats = on;
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

TEST_CASE("stats: timingSampleShift times 1 task in 2^k") {
  RuntimeOptions o = plain(2);
  o.timingSampleShift = 4;
  Runtime rt(o);
  tree::Ctx ctx{&rt};
  rt.spawn(tree::fn, new tree::Node{&ctx, 13});  // 2^14 - 1 tasks, spawned from tasks
  rt.waitIdle();
  auto s = rt.stats();
  CHECK_EQ(s.executed, (1u << 14) - 1);
  CHECK(s.runTime.count >= s.executed / 16 - 64 && s.runTime.count <= s.executed / 16 + 64);
  CHECK(s.latency.count > 0u && s.latency.count <= s.runTime.count);
  rt.close();
  RuntimeOptions bad = plain(1);
  bad.timingSampleShift = 40;
  CHECK_THROWS(Runtime(bad));
}

TEST_CASE("stats: snapshot is cheap while workers run") {
  std::atomic<uint64_t> n{0};  // outlives the runtime: queued tasks bump it until close()
  Runtime rt(plain(2));
  std::atomic<bool> stop{false};
  std::thread feeder([&] {
    while (!stop.load()) {
      for (int i = 0; i < 100; ++i) rt.spawn(bump, &n);
      std::this_thread::yield();
    }
  });
  auto t0 = Clock::now();
  for (int i = 0; i < 200; ++i) (void)rt.stats();
  double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / 200;
  stop = true;
  feeder.join();
  rt.close();
  std::printf("  stats() snapshot: %.1f us\n", us);
  CHECK(us < 5000);  // generous (sanitizers); the bench reports the real figure
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
