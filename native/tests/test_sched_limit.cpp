// The parallelism limit (sched/limit.cpp) and the cgroup watch (sched/cgroup_watch.*): which Ps
// stay active, limited Ps take no shared work and strand none, every task runs exactly once
// while the limit moves, no lost wake-up when it rises, and the watch following a cgroup tree
// rewritten during the run (HWSQ_FSROOT-style fixture root). Asserted on counters and events.
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "check.h"
#include "sched/cgroup_watch.h"
#include "sched/scheduler.h"
#include "support.h"

using namespace hwsq::sched;
using hwsq_test::eventually;

namespace {

struct Run {
  std::atomic<int> runs{0};
  std::atomic<int> worker{-1};
};

void record(void* a) {
  auto* r = static_cast<Run*>(a);
  r->worker.store(Runtime::currentWorker(), std::memory_order_relaxed);
  r->runs.fetch_add(1, std::memory_order_acq_rel);
}

// A root task that spawns `kids` children into its own LRQ (work a P must give away when it is
// limited) and records itself.
struct Tree {
  Runtime* rt = nullptr;
  Run self;
  std::vector<Run> kids;
  std::vector<Task> kidTasks;
  Task task;
};
void treeRoot(void* a) {
  auto* t = static_cast<Tree*>(a);
  for (size_t i = 0; i < t->kids.size(); ++i) {
    t->kidTasks[i] = Task(record, &t->kids[i]);
    t->rt->submit(&t->kidTasks[i], i % 2 ? SpawnHint::Tail : SpawnHint::Next);
  }
  record(&t->self);
}

}  // namespace

TEST_CASE("limit: active Ps are spread over nodes in proportion, deterministically") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 3);  // Ps 0-2 on node 0, 3-5 on node 1
  o.sysmon = false;
  Runtime rt(o);
  CHECK_EQ(rt.parallelism(), 6);
  CHECK_EQ(rt.activeWorkers(), 6);
  auto active = [&] {
    std::vector<int> a;
    for (int w = 0; w < rt.workerCount(); ++w)
      if (rt.isWorkerActive(w)) a.push_back(w);
    return a;
  };
  rt.setParallelism(4);
  CHECK(active() == std::vector<int>({0, 1, 3, 4}));
  rt.setParallelism(1);
  CHECK(active() == std::vector<int>({0}));
  rt.setParallelism(2);
  CHECK(active() == std::vector<int>({0, 3}));
  rt.setParallelism(0);  // clamped to 1
  CHECK_EQ(rt.parallelism(), 1);
  rt.setParallelism(100);  // clamped to the Ps
  CHECK_EQ(rt.parallelism(), 6);
  CHECK_EQ(rt.stats().activeWorkers, 6);
  CHECK(rt.stats().parallelismSource == "fixed");
  rt.close();

  // Node weights (the cgroup watch: CPUs each node still has) instead of P counts.
  RuntimeOptions w = RuntimeOptions::virtualTopology(2, 2);
  w.sysmon = false;
  Runtime rw(w);
  rw.setParallelism(2, ParallelismSource::Cpuset, {0, 4});  // node 0 lost its CPUs
  CHECK(!rw.isWorkerActive(0) && !rw.isWorkerActive(1) && rw.isWorkerActive(2) && rw.isWorkerActive(3));
  rw.setParallelism(3, ParallelismSource::Cpuset, {1, 4});  // 3 * 1/5 -> 0 (+1 largest remainder), 3 * 4/5 -> 2
  CHECK(rw.isWorkerActive(0) && !rw.isWorkerActive(1) && rw.isWorkerActive(2) && rw.isWorkerActive(3));
  rw.setParallelism(3, ParallelismSource::Cpuset, {0, 8});  // node 1 gets 3 but has 2 Ps: the excess goes to node 0
  CHECK_EQ(rw.activeWorkers(), 3);
  CHECK(rw.isWorkerActive(0) && rw.isWorkerActive(2) && rw.isWorkerActive(3));
  CHECK(hwsq_test::rangeCode([&] { rw.setParallelism(2, ParallelismSource::Fixed, {1}); }) == "ERR_HWSQ_INVALID_OPTION");
  rw.close();

  RuntimeOptions s = RuntimeOptions::virtualTopology(3, 1);
  s.parallelism = 2;  // at start
  Runtime rs(s);
  CHECK_EQ(rs.activeWorkers(), 2);
  CHECK(rs.isWorkerActive(0) && rs.isWorkerActive(1) && !rs.isWorkerActive(2));
  rs.close();
}

TEST_CASE("limit: under limit 1 only the active P takes shared work; inbox tasks still run; rising wakes the others") {
  for (auto policy : {StealPolicy::Hierarchical, StealPolicy::Flat}) {
    RuntimeOptions o = RuntimeOptions::virtualTopology(2, 2);
    o.policy = policy;
    Runtime rt(o);
    CHECK(eventually([&] { return rt.stats().idle == 4; }));
    rt.setParallelism(1);  // P0 only
    const int n = 2000;
    std::vector<Run> runs(n);
    std::vector<Task> tasks(n);
    for (int i = 0; i < n; ++i) {
      tasks[i] = Task(record, &runs[i]);
      tasks[i].node = policy == StealPolicy::Hierarchical ? i % 2 : -1;  // node 1 has no active P
      CHECK(rt.submit(&tasks[i]));
    }
    // Inbox of a limited P: for that P alone, so it runs there.
    Run inbox;
    Task ti(record, &inbox);
    CHECK(rt.submitToWorker(3, &ti));
    rt.waitIdle();
    int elsewhere = 0;
    for (auto& r : runs) {
      CHECK_EQ(r.runs.load(), 1);
      if (r.worker.load() != 0) ++elsewhere;
    }
    CHECK_EQ(elsewhere, 0);
    CHECK_EQ(inbox.worker.load(), 3);
    CHECK_EQ(rt.stats().activeWorkers, 1);

    // The limit rises: every P is woken and takes work. Each task holds its P until all four
    // have entered (bounded, so a lost wake-up fails instead of hanging).
    rt.setParallelism(4);
    std::atomic<int> entered{0};
    std::atomic<int> mask{0};
    struct Meet {
      std::atomic<int>* entered;
      std::atomic<int>* mask;
    } meet{&entered, &mask};
    auto fn = [](void* a) {
      auto* m = static_cast<Meet*>(a);
      m->mask->fetch_or(1 << Runtime::currentWorker());
      m->entered->fetch_add(1);
      eventually([&] { return m->mask->load() == 0xF; }, 20000);
    };
    std::vector<Task> meets(4, Task(fn, &meet));
    for (auto& t : meets) CHECK(rt.submit(&t));
    rt.waitIdle();
    CHECK_EQ(mask.load(), 0xF);
    rt.close();
  }
}

TEST_CASE("limit: falls and rises while tasks queue and spawn: every task runs exactly once") {
  const int rounds = 40;
  for (auto policy : {StealPolicy::Hierarchical, StealPolicy::Flat}) {
    RuntimeOptions o = RuntimeOptions::virtualTopology(2, 3);
    o.policy = policy;
    Runtime rt(o);
    std::atomic<bool> stop{false};
    std::thread mover([&] {
      std::mt19937 rng(7);
      while (!stop.load()) {
        rt.setParallelism(1 + static_cast<int>(rng() % 6));
        std::this_thread::yield();
      }
    });
    bool ok = true;
    for (int r = 0; r < rounds && ok; ++r) {
      std::vector<std::unique_ptr<Tree>> trees(64);
      for (size_t i = 0; i < trees.size(); ++i) {
        trees[i].reset(new Tree);
        Tree& t = *trees[i];
        t.rt = &rt;
        t.kids = std::vector<Run>(40);
        t.kidTasks.resize(40);
        t.task = Task(treeRoot, &t);
        t.task.node = policy == StealPolicy::Hierarchical && i % 3 ? static_cast<int>(i % 2) : -1;
        CHECK(rt.submit(&t.task));
      }
      rt.waitIdle();
      for (auto& t : trees) {
        ok = ok && t->self.runs.load() == 1;
        for (auto& k : t->kids) ok = ok && k.runs.load() == 1;
      }
    }
    CHECK(ok);
    stop.store(true);
    mover.join();
    rt.setParallelism(1);
    auto s = rt.stats();
    CHECK_EQ(s.executed, s.spawned + s.externalSubmitted);
    rt.close();
  }
}

TEST_CASE("limit: external Ps above the limit park, shed their LRQ and resume when it rises") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(1, 2);
  o.externalWorkers = true;
  std::atomic<int> wakes[2] = {{0}, {0}};
  o.wakeExternal = [&](int p) { wakes[p].fetch_add(1); };
  Runtime rt(o);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int p = 0; p < 2; ++p)
    threads.emplace_back([&, p] {
      rt.attach(p);
      int seen = -1;
      while (!stop.load()) {
        const int w = wakes[p].load();
        if (w == seen) {
          std::this_thread::yield();
          continue;
        }
        seen = w;
        for (;;) {
          RunResult r = rt.runSome();
          if (r.status != RunStatus::Budget) break;
        }
      }
      rt.detach();
    });
  for (auto& w : wakes) w.fetch_add(1);  // first runSome
  rt.setParallelism(1);                  // P1 parked by the limit
  Tree t;
  t.rt = &rt;
  t.kids = std::vector<Run>(300);
  t.kidTasks.resize(300);
  t.task = Task(treeRoot, &t);
  CHECK(rt.submit(&t.task));
  rt.waitIdle();
  CHECK_EQ(t.self.runs.load(), 1);
  for (auto& k : t.kids) {
    CHECK_EQ(k.runs.load(), 1);
    CHECK_EQ(k.worker.load(), 0);
  }
  rt.setParallelism(2);
  CHECK(rt.isWorkerActive(1));
  std::vector<Run> more(500);
  std::vector<Task> mt(500);
  for (size_t i = 0; i < more.size(); ++i) {
    mt[i] = Task(record, &more[i]);
    CHECK(rt.submit(&mt[i]));
  }
  rt.waitIdle();
  for (auto& r : more) CHECK_EQ(r.runs.load(), 1);
  stop.store(true);
  for (auto& w : wakes) w.fetch_add(1);
  for (auto& th : threads) th.join();
  rt.close();
}

namespace {

// A cgroup v2 tree like test/fixtures/cgroup/v2-max, cpu.max rewritten by the test.
struct CgroupTree {
  hwsq_test::TempDir dir{"hwsq-cgwatch"};
  CgroupTree() {
    dir.write("proc/self/mountinfo",
              "26 23 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n");
    dir.write("proc/self/cgroup", "0::/kubepods/pod1\n");
    setCpuMax("max 100000\n");
  }
  // Written aside and renamed over: the watch polls concurrently and must never read a
  // half-written file (the kernel's cgroupfs writes are atomic).
  void setCpuMax(const std::string& v) const {
    dir.write("sys/fs/cgroup/kubepods/pod1/cpu.max.tmp", v);
    std::filesystem::rename(dir.path + "/sys/fs/cgroup/kubepods/pod1/cpu.max.tmp", dir.path + "/sys/fs/cgroup/kubepods/pod1/cpu.max");
  }
};

struct Events {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ParallelismChange> seen;
  void push(const ParallelismChange& c) {
    std::lock_guard<std::mutex> lk(mu);
    seen.push_back(c);
    cv.notify_all();
  }
  // The next event (bounded wait so that a missing one fails rather than hangs).
  bool next(size_t i, ParallelismChange* out) {
    std::unique_lock<std::mutex> lk(mu);
    if (!cv.wait_for(lk, std::chrono::seconds(20), [&] { return seen.size() > i; })) return false;
    *out = seen[i];
    return true;
  }
};

}  // namespace

// Hand-computed plans: two nodes, P0..P3 pinned one CPU each to 0..3 (P0, P1 node 0).
TEST_CASE("cgroup watch: planPins keeps allowed pins, spreads active Ps over their node's remaining CPUs") {
  using Plan = std::vector<std::vector<int>>;
  const Plan base = {{0}, {1}, {2}, {3}};
  const std::vector<int> nodeOf = {0, 0, 1, 1};
  // Everything allowed again (a cpuset grown back): every original pin.
  CHECK(planPins(base, nodeOf, {true, true, true, true}, {0, 1, 2, 3}) == base);
  // Node 1 only, P2 and P3 active (weights): they keep 2 and 3; the limited node-0 Ps, whose node
  // has nothing allowed, may run anywhere allowed.
  CHECK(planPins(base, nodeOf, {false, false, true, true}, {2, 3}) == (Plan{{2, 3}, {2, 3}, {2}, {3}}));
  // cpuset {1, 3}, one P per node active (the lowest-indexed): P0 takes CPU 1, which the
  // limited P1 keeps as its own but no active P holds; P2 takes 3; P3 keeps 3.
  CHECK(planPins(base, nodeOf, {true, false, true, false}, {1, 3}) == (Plan{{1}, {1}, {3}, {3}}));
  // Node 0 with four CPUs, four Ps; cpuset {2, 3}, P0 and P1 active: spread over 2 and 3, not both on 2.
  CHECK(planPins({{0}, {1}, {2}, {3}}, {0, 0, 0, 0}, {true, true, false, false}, {2, 3}) == (Plan{{2}, {3}, {2}, {3}}));
  // More active Ps without a CPU than free CPUs: round robin over the free ones.
  CHECK(planPins({{0}, {1}, {2}, {3}}, {0, 0, 0, 0}, {true, true, true, false}, {3}) == (Plan{{3}, {3}, {3}, {3}}));
  // A P pinned to its whole node: what of the node is left.
  CHECK(planPins({{0, 1}, {0, 1}, {2, 3}}, {0, 0, 1}, {true, true, true}, {1, 2}) == (Plan{{1}, {1}, {2}}));
  // Unpinned (every P on the runtime's CPUs): the allowed ones.
  CHECK(planPins({{0, 1, 2}, {0, 1, 2}}, {0, 0}, {true, true}, {1, 2}) == (Plan{{1, 2}, {1, 2}}));
  // Nothing allowed (cannot happen: the kernel keeps a cpuset non-empty): keep.
  CHECK(planPins(base, nodeOf, {true, true, true, true}, {}) == base);
}

TEST_CASE("cgroup watch: readCgroupLimit follows cpu.max, capped at the workers") {
  CgroupTree tree;
  CHECK_EQ(readCgroupLimit(tree.dir.path, {}, 4).limit, 4);
  CHECK(readCgroupLimit(tree.dir.path, {}, 4).source == ParallelismSource::Cpuset);
  tree.setCpuMax("150000 100000\n");
  CHECK_EQ(readCgroupLimit(tree.dir.path, {}, 4).limit, 2);  // ceil(1.5)
  CHECK(readCgroupLimit(tree.dir.path, {}, 4).source == ParallelismSource::Cgroup2);
  tree.setCpuMax("50000 100000\n");
  CHECK_EQ(readCgroupLimit(tree.dir.path, {}, 4).limit, 1);  // below one CPU: one
  tree.setCpuMax("900000 100000\n");
  CHECK_EQ(readCgroupLimit(tree.dir.path, {}, 4).limit, 4);
}

TEST_CASE("cgroup watch: a runtime follows cpu.max rewritten during a run, tasks keep running, none lost") {
  CgroupTree tree;
  tree.setCpuMax("200000 100000\n");
  Events ev;
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 2);
  o.cgroupPollMs = 5;
  o.cgroupFsroot = tree.dir.path;
  o.onParallelism = [&](const ParallelismChange& c) { ev.push(c); };
  Runtime rt(o);
  CHECK_EQ(rt.parallelism(), 2);  // the first reading, before the constructor returned
  CHECK(rt.stats().parallelismSource == "cgroup2");
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> submitted{0};
  std::vector<std::unique_ptr<Run>> all;
  std::mutex allMu;
  std::thread feeder([&] {
    while (!stop.load()) {
      auto r = std::make_unique<Run>();
      Run* raw = r.get();
      {
        std::lock_guard<std::mutex> lk(allMu);
        all.push_back(std::move(r));
      }
      if (!rt.spawn(record, raw)) break;
      submitted.fetch_add(1);
      if (submitted.load() % 64 == 0) std::this_thread::yield();
    }
  });
  ParallelismChange c;
  tree.setCpuMax("100000 100000\n");
  CHECK(ev.next(0, &c));
  CHECK_EQ(c.previous, 2);
  CHECK_EQ(c.current, 1);
  CHECK(c.source == ParallelismSource::Cgroup2);
  CHECK_EQ(rt.activeWorkers(), 1);
  tree.setCpuMax("max 100000\n");
  CHECK(ev.next(1, &c));
  CHECK_EQ(c.previous, 1);
  CHECK_EQ(c.current, 4);
  CHECK(c.source == ParallelismSource::Cpuset);
  CHECK_EQ(rt.stats().activeWorkers, 4);
  CHECK(rt.stats().parallelismSource == "cpuset");
  stop.store(true);
  feeder.join();
  rt.waitIdle();
  {
    std::lock_guard<std::mutex> lk(allMu);
    for (auto& r : all) CHECK(r->runs.load() <= 1);
    size_t ran = 0;
    for (auto& r : all) ran += r->runs.load() == 1;
    CHECK_EQ(ran, submitted.load());
  }
  rt.close();
  // No event after close: the watch is stopped first.
  const size_t after = ev.seen.size();
  tree.setCpuMax("100000 100000\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  CHECK_EQ(ev.seen.size(), after);
}

TEST_CASE("cgroup watch: off by default, a fixed limit stays") {
  CgroupTree tree;
  tree.setCpuMax("100000 100000\n");
  RuntimeOptions o = RuntimeOptions::virtualTopology(1, 2);
  o.cgroupFsroot = tree.dir.path;  // no cgroupPollMs: not read
  Runtime rt(o);
  CHECK_EQ(rt.parallelism(), 2);
  CHECK(rt.stats().parallelismSource == "fixed");
  rt.close();
}

TEST_MAIN()
