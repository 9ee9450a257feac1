// External-worker mode (RuntimeOptions::externalWorkers): Ps driven by threads the embedder owns
// (the JS layer's worker isolates), which attach, call runSome from their "event loop" and are
// woken through wakeExternal. Here each event loop is simulated by a thread that parks on a
// Parker between runSome calls; wakeExternal unparks it (the JS layer: uv_async_send).
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "check.h"
#include "sched/parker.h"
#include "sched/scheduler.h"

using namespace hwsq::sched;
using hwsq_test::eventually;

namespace {

// A set of simulated event loops, one per P.
struct Loops {
  std::vector<std::unique_ptr<Parker>> wakes;
  std::vector<std::thread> threads;
  std::atomic<uint64_t> wakeCalls{0};
  std::atomic<bool> quit{false};

  explicit Loops(int n) {
    for (int i = 0; i < n; ++i) wakes.emplace_back(new Parker());
  }
  RuntimeOptions options(RuntimeOptions o) {
    o.externalWorkers = true;
    o.wakeExternal = [this](int p) {
      wakeCalls.fetch_add(1, std::memory_order_relaxed);
      wakes[p]->unpark();
    };
    return o;
  }
  // The loop of P p: attach, run until parked (then sleep until woken), detach on Stopping.
  void start(Runtime& rt, int p, RunLimits lim = RunLimits()) {
    threads.emplace_back([this, &rt, p, lim] {
      rt.attach(p);
      for (;;) {
        RunResult r = rt.runSome(lim);
        if (r.status == RunStatus::Stopping || quit.load()) break;
        if (r.status == RunStatus::Parked) wakes[p]->park(50'000'000);  // 50 ms safety timeout
      }
      rt.detach();
    });
  }
  void startAll(Runtime& rt, RunLimits lim = RunLimits()) {
    for (int p = 0; p < rt.workerCount(); ++p) start(rt, p, lim);
  }
  void join() {
    for (auto& t : threads) t.join();
    threads.clear();
  }
};

RuntimeOptions plain(int workers) {
  RuntimeOptions o;
  for (int i = 0; i < workers; ++i) o.workers.push_back({0, {}});
  o.pin = false;
  return o;
}

void bump(void* a) { static_cast<std::atomic<uint64_t>*>(a)->fetch_add(1, std::memory_order_acq_rel); }

namespace tree {
struct Ctx {
  Runtime* rt;
  std::atomic<uint64_t> leaves{0};
  std::atomic<int> wrongRuntime{0};
  std::atomic<uint32_t> ranOn{0};  // bit per P
};
struct Node {
  Ctx* ctx;
  int depth;
};
void run(void* a) {
  Node* n = static_cast<Node*>(a);
  Ctx* c = n->ctx;
  if (Runtime::current() != c->rt || Runtime::currentWorker() < 0) c->wrongRuntime.fetch_add(1);
  c->ranOn.fetch_or(1u << Runtime::currentWorker());
  if (n->depth == 0) {
    // Leaves hold their P (yielding the CPU, at most 2 s) until every P has run part of the
    // tree: on a loaded 2-CPU machine the OS may otherwise finish the tree before a third
    // thread gets a time slice. Only stealing can bring work to the other Ps.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (c->ranOn.load() != 7u && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    c->leaves.fetch_add(1);
  } else {
    for (int k = 0; k < 2; ++k) {
      auto* child = new Node{c, n->depth - 1};
      c->rt->spawn(run, child, -1, [](void* d) { delete static_cast<Node*>(d); }, child);
    }
  }
}
}  // namespace tree

}  // namespace

TEST_CASE("external: attached threads run outside submissions and nested spawns, steal, park") {
  Loops loops(3);
  Runtime rt(loops.options(plain(3)));
  CHECK(!rt.isAttached(0));
  loops.startAll(rt);
  CHECK(eventually([&] { return rt.isAttached(0) && rt.isAttached(1) && rt.isAttached(2); }));
  std::atomic<uint64_t> n{0};
  std::vector<Task> ts(2000);
  for (auto& t : ts) {
    t.fn = bump;
    t.arg = &n;
    CHECK(rt.submit(&t));
  }
  CHECK(eventually([&] { return n.load() == 2000; }));
  tree::Ctx ctx{&rt};
  // The root's done frees it; children free their Node in done too (passed as doneArg).
  auto* root = new tree::Node{&ctx, 12};
  CHECK(rt.spawn(tree::run, root, -1, [](void* d) { delete static_cast<tree::Node*>(d); }, root));
  CHECK(eventually([&] { return ctx.leaves.load() == 4096; }));
  CHECK_EQ(ctx.wrongRuntime.load(), 0);
  CHECK(eventually([&] { return rt.stats().idle == 3; }));  // everyone parks again
  auto s = rt.stats();
  uint64_t steals = 0;
  for (auto& w : s.workers) steals += w.stealsSameNode;
  CHECK(steals > 0);
  CHECK_EQ(ctx.ranOn.load(), 7u);  // every P ran part of the tree
  CHECK(loops.wakeCalls.load() > 0);
  rt.close();  // runSome returns Stopping; the loops detach; close waits for that
  loops.join();
  CHECK(rt.isStopped());
  CHECK(!rt.isAttached(1));
}

TEST_CASE("external: no lost wake-up when every P parks at the moment of a submit") {
  Loops loops(2);
  Runtime rt(loops.options(plain(2)));
  loops.startAll(rt);
  std::atomic<uint64_t> n{0};
  Task t(bump, &n);
  for (uint64_t i = 1; i <= 2000; ++i) {
    CHECK(rt.submit(&t));
    if (!eventually([&] { return n.load() == i; }, 5000)) {
      CHECK(false);
      break;
    }
  }
  rt.close();
  loops.join();
}

TEST_CASE("external: idle spin finds work without a wake; budget returns Budget") {
  Loops loops(1);
  Runtime rt(loops.options(plain(1)));
  std::atomic<uint64_t> n{0};
  std::vector<Task> ts(10, Task(bump, &n));
  for (auto& t : ts) rt.submit(&t);
  std::atomic<int> budgetSeen{0};
  std::thread th([&] {
    rt.attach(0);
    RunLimits lim;
    lim.budget = 4;
    RunResult r = rt.runSome(lim);
    if (r.status == RunStatus::Budget && r.ran == 4) budgetSeen.fetch_add(1);
    lim.budget = 64;
    r = rt.runSome(lim);
    if (r.status == RunStatus::Parked && r.ran == 6) budgetSeen.fetch_add(1);
    rt.detach();
  });
  th.join();
  CHECK_EQ(budgetSeen.load(), 2);
  CHECK_EQ(n.load(), 10u);
  rt.close();
}

TEST_CASE("external: localOnly leaves shared queues alone; Shared hint hands a task to another P") {
  Loops loops(2);
  Runtime rt(loops.options(plain(2)));
  std::atomic<uint64_t> n{0};
  std::atomic<int> ranOn1{0};
  Task outside(bump, &n);
  rt.submit(&outside);  // GRQ
  struct Hand {
    Runtime* rt;
    Task child;
    std::atomic<int>* ranOn1;
  };
  Hand hand{&rt, Task(), &ranOn1};
  hand.child.fn = [](void* a) {
    auto* h = static_cast<Hand*>(a);
    if (Runtime::currentWorker() == 1) h->ranOn1->fetch_add(1);
  };
  hand.child.arg = &hand;
  std::atomic<int> phase{0};
  std::thread p0([&] {
    rt.attach(0);
    RunLimits local;
    local.localOnly = true;
    RunResult r = rt.runSome(local);
    if (r.status == RunStatus::Limited && r.ran == 0) phase.fetch_add(1);  // the GRQ task was not taken
    // A task this P cannot run now goes to the shared queues: P1 takes it.
    Task spawner([](void* a) {
      auto* h = static_cast<Hand*>(a);
      h->rt->submit(&h->child, SpawnHint::Shared);
    }, &hand);
    rt.submitToWorker(0, &spawner);
    r = rt.runSome(local);  // runs the spawner from the inbox
    if (r.ran == 1) phase.fetch_add(1);
    while (phase.load() < 3) std::this_thread::yield();
    rt.detach();
  });
  CHECK(eventually([&] { return phase.load() == 2; }));
  CHECK_EQ(n.load(), 0u);
  loops.start(rt, 1);
  CHECK(eventually([&] { return n.load() == 1 && ranOn1.load() == 1; }));
  phase.store(3);
  p0.join();
  rt.close();
  loops.join();
}

TEST_CASE("external: a P whose thread died is reclaimed; its queued tasks survive and run") {
  Loops loops(2);
  Runtime rt(loops.options(plain(2)));
  std::atomic<uint64_t> n{0};
  std::vector<Task> children(50, Task(bump, &n));
  struct Spawner {
    Runtime* rt;
    std::vector<Task>* children;
  } sp{&rt, &children};
  Task parent([](void* a) {
    auto* s = static_cast<Spawner*>(a);
    for (auto& c : *s->children) s->rt->submit(&c, SpawnHint::Tail);  // into P0's LRQ
  }, &sp);
  rt.submitToWorker(0, &parent);
  std::thread dying([&] {
    rt.attach(0);
    RunLimits one;
    one.budget = 1;
    rt.runSome(one);  // runs the parent only, then "dies" without detach
  });
  dying.join();
  CHECK(rt.isAttached(0));
  CHECK_EQ(n.load(), 0u);
  rt.reclaim(0);
  CHECK(!rt.isAttached(0));
  loops.start(rt, 1);  // P1 steals what P0 left behind (its LRQ is still there)
  CHECK(eventually([&] { return n.load() == 50; }));
  CHECK(rt.stats().workers[1].stealsSameNode > 0);
  loops.start(rt, 0);  // the restarted P0 re-attaches to the same P
  CHECK(eventually([&] { return rt.isAttached(0); }));
  Task again(bump, &n);
  rt.submitToWorker(0, &again);
  CHECK(eventually([&] { return n.load() == 51; }));
  rt.close();
  loops.join();
}

TEST_CASE("external: attach misuse throws; destroy with attached loops waits for detach") {
  Loops loops(1);
  CHECK_THROWS(Runtime(plain(1)).attach(0));  // not external
  {
    RuntimeOptions o = plain(1);
    o.externalWorkers = true;  // no wake hook
    CHECK_THROWS(Runtime(o));
  }
  Runtime rt(loops.options(plain(1)));
  CHECK_THROWS(rt.attach(3));
  CHECK_THROWS(rt.runSome());  // not attached
  loops.startAll(rt);
  CHECK(eventually([&] { return rt.isAttached(0); }));
  CHECK_THROWS(rt.attach(0));  // already attached (by the loop thread)
  rt.destroy();
  loops.join();
  CHECK(rt.isStopped());
}

TEST_MAIN()
