// Shutdown: destroy() drops every queued task exactly once -- inboxes, runnext slots, LRQs, HWSQ
// rings and spill lists, the GRQ, external-mode Ps -- runs each dropped task's cancel callback,
// counts it in stats().dropped and always returns; close() drains tasks spawned meanwhile. Each
// destroy/close runs under a hang detector (withWatchdog), since the bugs these tests pin down
// were hangs (a node's spill list was never drained, so destroy() spun forever).
#include <atomic>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "check.h"
#include "sched/scheduler.h"
#include "sched/task_pool.h"
#include "support.h"

using namespace hwsq::sched;
using hwsq_test::eventually;
using hwsq_test::withWatchdog;

namespace {

constexpr int kHangSeconds = 120;

RuntimeOptions plain(int workers) {
  RuntimeOptions o;
  for (int i = 0; i < workers; ++i) o.workers.push_back({0, {}});
  o.pin = false;
  return o;
}

// One task's fate: ran or cancelled, each at most once.
struct Slot {
  std::atomic<int> ran{0};
  std::atomic<int> cancelled{0};
};
void markRan(void* a) { static_cast<Slot*>(a)->ran.fetch_add(1); }
void markCancelled(void* a) { static_cast<Slot*>(a)->cancelled.fetch_add(1); }

// Caller-owned tasks, each with its own slot.
struct Ledger {
  std::vector<Slot> slots;
  std::vector<Task> tasks;
  explicit Ledger(size_t n, int node = -1) : slots(n), tasks(n) {
    for (size_t i = 0; i < n; ++i) {
      tasks[i] = Task(markRan, &slots[i], node);
      tasks[i].cancel = markCancelled;
      tasks[i].doneArg = &slots[i];
    }
  }
  Task* at(size_t i) { return &tasks[i]; }
};

// Over the tasks of some ledgers: how many were neither run nor cancelled (lost), run or
// cancelled more than once (twice), and cancelled.
struct Fates {
  size_t lost = 0, twice = 0;
  uint64_t cancelled = 0;
};
Fates fatesOf(std::initializer_list<const Ledger*> ledgers) {
  Fates f;
  for (const Ledger* l : ledgers)
    for (const Slot& s : l->slots) {
      const int n = s.ran.load() + s.cancelled.load();
      f.lost += n == 0;
      f.twice += n > 1;
      f.cancelled += static_cast<uint64_t>(s.cancelled.load());
    }
  return f;
}

// Holds its P until the runtime is closed.
struct Hold {
  Runtime* rt;
  std::atomic<int> entered{0};
};
void holdUntilClosed(void* a) {
  auto* h = static_cast<Hold*>(a);
  h->entered.fetch_add(1);
  while (!h->rt->isClosed()) std::this_thread::yield();
}

// Every submission ran, was refused or was dropped, exactly once.
void checkBalanced(const RuntimeStats& s) {
  CHECK_EQ(s.executed + s.rejected + s.dropped, s.spawned + s.externalSubmitted);
}

}  // namespace

TEST_CASE("destroy: affine tasks past the HWSQ ring (spill list) are dropped exactly once, destroy returns") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 1);
  o.hwsqCapacity = 8;
  Runtime rt(o);
  Hold hold{&rt};
  Task holds[2] = {Task(holdUntilClosed, &hold), Task(holdUntilClosed, &hold)};
  CHECK(rt.submitToWorker(0, &holds[0]));
  CHECK(rt.submitToWorker(1, &holds[1]));
  CHECK(eventually([&] { return hold.entered.load() == 2; }));
  Ledger l0(600, 0), l1(600, 1);
  std::vector<Task*> batch;
  for (size_t i = 0; i < 300; ++i) batch.push_back(l0.at(i));
  CHECK_EQ(rt.submitBatch(batch.data(), batch.size()), batch.size());  // one batch: ring + spill
  for (size_t i = 300; i < 600; ++i) CHECK(rt.submit(l0.at(i)));        // one at a time
  for (size_t i = 0; i < 600; ++i) CHECK(rt.submit(l1.at(i)));
  RuntimeStats before = rt.stats();
  CHECK_EQ(before.nodes[0].hwsqDepth, 600u);  // 8 in each ring, the rest in the spill lists
  CHECK_EQ(before.nodes[1].hwsqDepth, 600u);
  withWatchdog("destroy() with full spill lists", kHangSeconds, [&] { rt.destroy(); });
  CHECK(rt.isStopped());
  const Fates f = fatesOf({&l0, &l1});
  CHECK_EQ(f.lost, 0u);
  CHECK_EQ(f.twice, 0u);
  RuntimeStats s = rt.stats();
  CHECK_EQ(s.dropped, f.cancelled);
  CHECK(s.dropped > 0u);
  CHECK_EQ(s.nodes[0].hwsqDepth + s.nodes[1].hwsqDepth, 0u);
  checkBalanced(s);
}

namespace everywhere {
struct Ctx {
  Runtime* rt;
  Ledger* runnext;   // one per P
  Ledger* tail;      // kTail per P: fills the LRQ, overflows to the own node's HWSQ (ring + spill)
  Ledger* remote;    // kRemote per P: affinity to the other node (its HWSQ)
  std::atomic<int> arrived{0};
  std::atomic<int> entered{0};
};
constexpr size_t kTail = 700, kRemote = 50;
void spawnThenHold(void* a) {
  auto* c = static_cast<Ctx*>(a);
  const int p = Runtime::currentWorker();
  // Both Ps inside a task before either spawns: no idle P can steal what the test places.
  c->arrived.fetch_add(1);
  while (c->arrived.load() < 2) std::this_thread::yield();
  for (size_t i = 0; i < kTail; ++i) c->rt->submit(c->tail->at(p * kTail + i), SpawnHint::Tail);
  for (size_t i = 0; i < kRemote; ++i) c->rt->submit(c->remote->at(p * kRemote + i), SpawnHint::Tail);
  c->rt->submit(c->runnext->at(p), SpawnHint::Next);
  c->entered.fetch_add(1);
  while (!c->rt->isClosed()) std::this_thread::yield();
}
}  // namespace everywhere

TEST_CASE("destroy: inbox, runnext, LRQ, HWSQ ring and spill list, GRQ: each task dropped exactly once") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 1);
  o.hwsqCapacity = 8;
  o.sysmon = false;  // nothing may move tasks between queues behind the test's back
  Runtime rt(o);
  Ledger runnext(2), tail(2 * everywhere::kTail), inbox(20), grq(300), node0(100, 0), node1(100, 1);
  Ledger remote(2 * everywhere::kRemote);
  for (size_t p = 0; p < 2; ++p)
    for (size_t i = 0; i < everywhere::kRemote; ++i) remote.tasks[p * everywhere::kRemote + i].node = p == 0 ? 1 : 0;
  everywhere::Ctx ctx{&rt, &runnext, &tail, &remote};
  Task spawners[2] = {Task(everywhere::spawnThenHold, &ctx), Task(everywhere::spawnThenHold, &ctx)};
  CHECK(rt.submitToWorker(0, &spawners[0]));
  CHECK(rt.submitToWorker(1, &spawners[1]));
  CHECK(eventually([&] { return ctx.entered.load() == 2; }));
  for (size_t i = 0; i < 20; ++i) CHECK(rt.submitToWorker(static_cast<int>(i % 2), inbox.at(i)));
  for (size_t i = 0; i < 300; ++i) CHECK(rt.submit(grq.at(i)));
  for (size_t i = 0; i < 100; ++i) CHECK(rt.submit(node0.at(i)));
  for (size_t i = 0; i < 100; ++i) CHECK(rt.submit(node1.at(i)));
  RuntimeStats before = rt.stats();
  for (int p = 0; p < 2; ++p) CHECK(before.workers[p].lrqDepth > 100u);  // ring and runnext
  for (int n = 0; n < 2; ++n) CHECK(before.nodes[n].hwsqDepth > 8u);     // past the ring
  CHECK_EQ(before.grqDepth, 300u);
  withWatchdog("destroy() with every queue holding tasks", kHangSeconds, [&] { rt.destroy(); });
  const Fates f = fatesOf({&runnext, &tail, &remote, &inbox, &grq, &node0, &node1});
  CHECK_EQ(f.lost, 0u);
  CHECK_EQ(f.twice, 0u);
  RuntimeStats s = rt.stats();
  CHECK_EQ(s.dropped, f.cancelled);
  CHECK(s.dropped > 0u);
  for (auto& w : s.workers) CHECK_EQ(w.lrqDepth, 0u);
  for (auto& n : s.nodes) CHECK_EQ(n.hwsqDepth, 0u);
  CHECK_EQ(s.grqDepth, 0u);
  checkBalanced(s);
}

namespace fanout {
struct Ctx {
  Runtime* rt;
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> ran{0};
  std::atomic<uint64_t> cancelled{0};
  std::atomic<bool> refused{false};
  std::atomic<bool> started{false};
};
constexpr uint64_t kMax = 4'000'000;  // a fan-out destroy() must not wait for
void child(void* a) { static_cast<Ctx*>(a)->ran.fetch_add(1, std::memory_order_relaxed); }
void childCancelled(void* a) { static_cast<Ctx*>(a)->cancelled.fetch_add(1, std::memory_order_relaxed); }
void root(void* a) {
  auto* c = static_cast<Ctx*>(a);
  for (uint64_t i = 0; i < kMax; ++i) {
    if (!c->rt->spawn(child, c, -1, nullptr, c, childCancelled, SpawnHint::Tail)) {
      c->refused.store(true);
      return;
    }
    c->accepted.fetch_add(1, std::memory_order_relaxed);
    if (i == 2000) c->started.store(true);
  }
}
}  // namespace fanout

TEST_CASE("destroy: a task fanning out while destroy() runs has its spawns refused; destroy returns") {
  Runtime rt(plain(2));
  fanout::Ctx ctx{&rt};
  Task rootTask(fanout::root, &ctx);
  CHECK(rt.submitToWorker(0, &rootTask));
  CHECK(eventually([&] { return ctx.started.load(); }, 60000));
  withWatchdog("destroy() during a fan-out", kHangSeconds, [&] { rt.destroy(); });
  CHECK(ctx.refused.load());  // the root learned that the runtime stopped taking its spawns
  CHECK(ctx.accepted.load() < fanout::kMax);
  CHECK_EQ(ctx.ran.load() + ctx.cancelled.load(), ctx.accepted.load());
  RuntimeStats s = rt.stats();
  CHECK_EQ(s.dropped, ctx.cancelled.load());
  checkBalanced(s);
}

namespace cb {
struct Ctx {
  Runtime* rt;
  std::atomic<int> submitRefused{0};
  std::atomic<int> cancelled{0};
};
void never(void*) {}
void resubmit(void* a) {  // a cancel callback that tries to requeue: refused (closed)
  auto* c = static_cast<Ctx*>(a);
  c->cancelled.fetch_add(1);
  if (!c->rt->spawn(never, nullptr)) c->submitRefused.fetch_add(1);
}
void throwing(void* a) {
  static_cast<Ctx*>(a)->cancelled.fetch_add(1);
  throw std::runtime_error("cancel callback failed");
}
}  // namespace cb

TEST_CASE("destroy: cancel callbacks that submit are refused; one that throws does not stop the drain") {
  // The whole life of the runtime under the watchdog: a drop that was never counted used to
  // hang the destructor's destroy() too.
  withWatchdog("destroy() with resubmitting / throwing cancel callbacks", kHangSeconds, [] {
    Runtime rt(plain(1));
    Hold hold{&rt};
    Task h(holdUntilClosed, &hold);
    CHECK(rt.submitToWorker(0, &h));
    CHECK(eventually([&] { return hold.entered.load() == 1; }));
    cb::Ctx ctx{&rt};
    for (int i = 0; i < 100; ++i)
      CHECK(rt.spawn(cb::never, nullptr, -1, nullptr, &ctx, i == 50 ? cb::throwing : cb::resubmit));
    rt.destroy();
    RuntimeStats s = rt.stats();
    CHECK_EQ(ctx.cancelled.load() + static_cast<int>(s.executed) - 1, 100);  // the holder ran too
    CHECK_EQ(s.dropped, static_cast<uint64_t>(ctx.cancelled.load()));
    CHECK_EQ(s.rejected, static_cast<uint64_t>(ctx.submitRefused.load()));
    CHECK_EQ(ctx.submitRefused.load(), ctx.cancelled.load() - 1);
    checkBalanced(s);
  });
}

namespace ext {
struct Ctx {
  Runtime* rt;
  Ledger* tail;
  Ledger* next;
};
void spawner(void* a) {
  auto* c = static_cast<Ctx*>(a);
  for (size_t i = 0; i < c->tail->tasks.size(); ++i) c->rt->submit(c->tail->at(i), SpawnHint::Tail);
  c->rt->submit(c->next->at(0), SpawnHint::Next);
}
}  // namespace ext

TEST_CASE("destroy: external mode: a detached P's LRQ, runnext and inbox and its node queue are dropped") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(1, 2);
  o.hwsqCapacity = 8;
  o.externalWorkers = true;
  o.wakeExternal = [](int) {};  // nobody drives the Ps after the spawner ran
  Runtime rt(o);
  Ledger tail(600), next(1), inbox(5), node0(100, 0);
  ext::Ctx ctx{&rt, &tail, &next};
  Task spawnerTask(ext::spawner, &ctx);
  CHECK(rt.submitToWorker(0, &spawnerTask));
  std::thread p0([&] {
    rt.attach(0);
    RunLimits one;
    one.budget = 1;
    one.localOnly = true;
    rt.runSome(one);  // the spawner only: LRQ full, overflow into the node's ring and spill list
    rt.detach();
  });
  p0.join();
  for (size_t i = 0; i < 5; ++i) CHECK(rt.submitToWorker(1, inbox.at(i)));
  for (size_t i = 0; i < 100; ++i) CHECK(rt.submit(node0.at(i)));
  RuntimeStats before = rt.stats();
  CHECK(before.workers[0].lrqDepth > 100u);
  CHECK(before.nodes[0].hwsqDepth > 8u);
  withWatchdog("destroy() of an external-mode runtime", kHangSeconds, [&] { rt.destroy(); });
  const Fates f = fatesOf({&tail, &next, &inbox, &node0});
  CHECK_EQ(f.lost, 0u);
  CHECK_EQ(f.twice, 0u);
  CHECK_EQ(f.cancelled, 600u + 1u + 5u + 100u);  // no P ran after the spawner
  RuntimeStats s = rt.stats();
  CHECK_EQ(s.dropped, f.cancelled);
  checkBalanced(s);
}

namespace hop {
struct Ctx {
  Runtime* rt;
  std::atomic<uint64_t> ran{0};
  std::atomic<uint64_t> cancelled{0};
};
void leaf(void* a) { static_cast<Ctx*>(a)->ran.fetch_add(1); }
void leafCancelled(void* a) { static_cast<Ctx*>(a)->cancelled.fetch_add(1); }
// Spawns 200 tasks with affinity to the other node: more than its ring holds.
void crossSpawn(void* a) {
  auto* c = static_cast<Ctx*>(a);
  const int other = c->rt->workerNode(Runtime::currentWorker()) == 0 ? 1 : 0;
  for (int i = 0; i < 200; ++i) c->rt->spawn(leaf, c, other, nullptr, c, leafCancelled);
  leaf(a);
}
}  // namespace hop

TEST_CASE("close: tasks spawned into other nodes' spill lists while close() drains all run") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 1);
  o.hwsqCapacity = 8;
  Runtime rt(o);
  hop::Ctx ctx{&rt};
  for (int i = 0; i < 50; ++i) CHECK(rt.spawn(hop::crossSpawn, &ctx, i % 2));
  withWatchdog("close() draining spill lists", kHangSeconds, [&] { rt.close(); });
  CHECK_EQ(ctx.ran.load(), 50u * 201u);
  CHECK_EQ(ctx.cancelled.load(), 0u);
  RuntimeStats s = rt.stats();
  CHECK_EQ(s.dropped, 0u);
  checkBalanced(s);
}

TEST_MAIN()
