// Stress: every task runs exactly once. Several outside producers submit roots (singly, in
// batches, light batches, with and without affinity, to inboxes) while tasks spawn children
// (runnext and tail, full Tasks and light ones, some with affinity to the other node, enough to
// overflow LRQs); every P steals, so light and full tasks share every queue.
// Size: HWSQ_STRESS_TASKS (default 10^7; 10^6 under ThreadSanitizer, about 1.2 us/task there).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "check.h"
#include "sched/scheduler.h"
#include "sched/task_pool.h"

using namespace hwsq::sched;

namespace {

// 10^7 in every build, TSAN included (about 30 s there on a 2-CPU machine).
constexpr uint64_t kDefaultTasks = 10'000'000;

uint64_t stressTasks() {
  if (const char* e = std::getenv("HWSQ_STRESS_TASKS")) {
    uint64_t v = std::strtoull(e, nullptr, 10);
    if (v >= 1000) return v;
  }
  return kDefaultTasks;
}

// Ids: [0, external) are submitted by the producers; a task with id i spawns the ids
// external + i*kFan + j (j < kFan) that are < total, so every id is created exactly once.
constexpr uint64_t kFan = 3;

struct Shared {
  Runtime* rt = nullptr;
  uint64_t total = 0;
  uint64_t external = 0;
  int nodes = 1;
  std::unique_ptr<std::atomic<uint8_t>[]> runs;
  std::atomic<uint64_t> lightQueued{0}, lightReported{0};  // light tasks, and their coalesced completions
};
Shared g;

void taskFn(void* arg);
// One arg per task: the coalesced runs (doneMany) are short here, which is what stresses them.
const TaskOps kLightOps{taskFn, nullptr, nullptr, [](void*, uint64_t n) { g.lightReported.fetch_add(n, std::memory_order_relaxed); }};

void taskFn(void* arg) {
  const uint64_t id = reinterpret_cast<uint64_t>(arg);
  g.runs[id].fetch_add(1, std::memory_order_relaxed);
  const uint64_t first = g.external + id * kFan;
  for (uint64_t j = 0; j < kFan && first + j < g.total; ++j) {
    const uint64_t c = first + j;
    if (c % 3 == 2) {  // light: in the queue slots themselves
      void* const a = reinterpret_cast<void*>(c);
      const int node = g.nodes > 1 && c % 17 == 2 ? static_cast<int>(c % g.nodes) : -1;
      g.lightQueued.fetch_add(1, std::memory_order_relaxed);
      g.rt->spawnLight(&kLightOps, &a, 1, node, (c & 4) ? SpawnHint::Shared : SpawnHint::Tail);
      continue;
    }
    Task* t = allocTask();
    t->fn = taskFn;
    t->arg = reinterpret_cast<void*>(c);
    if (g.nodes > 1 && c % 17 == 0) t->node = static_cast<int>(c % g.nodes);
    g.rt->submit(t, (c & 1) ? SpawnHint::Next : SpawnHint::Tail);
  }
}

// Steal phase: a root pinned to P p fills p's LRQ with leaves and blocks until they all ran, so
// every leaf runs on another P that stole it. Repeated until every P has stolen (bounded).
struct StealPhase {
  Runtime* rt;
  std::atomic<uint64_t> leavesRun{0};
  std::vector<std::atomic<uint8_t>> leafRuns;
  explicit StealPhase(size_t n) : leafRuns(n) {}
  uint64_t next = 0;  // written by the root only (one root at a time)
};
StealPhase* gPhase = nullptr;
void leafFn(void* arg) {
  gPhase->leafRuns[reinterpret_cast<uint64_t>(arg)].fetch_add(1, std::memory_order_relaxed);
  gPhase->leavesRun.fetch_add(1, std::memory_order_release);
}
constexpr uint64_t kLeaves = 200;
void phaseRoot(void*) {
  uint64_t first = gPhase->next;
  gPhase->next += kLeaves;
  for (uint64_t i = 0; i < kLeaves; ++i) gPhase->rt->spawn(leafFn, reinterpret_cast<void*>(first + i), -1, nullptr, nullptr, nullptr, SpawnHint::Tail);
  while (gPhase->leavesRun.load(std::memory_order_acquire) < first + kLeaves) std::this_thread::yield();
}

// Returns how many tasks it ran (roots and leaves).
uint64_t stealPhase(Runtime& rt) {
  const int nw = rt.workerCount();
  const int kRounds = 50;
  StealPhase ph(static_cast<size_t>(kRounds) * nw * kLeaves);
  ph.rt = &rt;
  gPhase = &ph;
  Task root(phaseRoot, nullptr);
  uint64_t roots = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (int p = 0; p < nw; ++p) {
      uint64_t before = ph.leavesRun.load();
      rt.submitToWorker(p, &root);
      ++roots;
      while (ph.leavesRun.load() < before + kLeaves) std::this_thread::yield();
      rt.waitIdle();
    }
    auto s = rt.stats();
    bool all = true;
    for (auto& w : s.workers) all &= w.stealsSameNode + w.stealsRemote > 0;
    if (all) break;
  }
  uint64_t bad = 0;
  for (uint64_t i = 0; i < ph.next; ++i) bad += ph.leafRuns[i].load() != 1;
  CHECK_EQ(bad, 0u);
  CHECK_EQ(ph.leavesRun.load(), ph.next);
  gPhase = nullptr;
  return roots + ph.next;
}

void runStress(RuntimeOptions opts, uint64_t total, int producers, const char* label) {
  g.total = total;
  g.lightQueued = 0;
  g.lightReported = 0;
  g.external = total / 8;
  g.nodes = static_cast<int>(opts.nodeIds.size() ? opts.nodeIds.size() : 1);
  g.runs.reset(new std::atomic<uint8_t>[total]);
  for (uint64_t i = 0; i < total; ++i) g.runs[i].store(0, std::memory_order_relaxed);
  auto t0 = std::chrono::steady_clock::now();
  Runtime rt(opts);
  g.rt = &rt;
  const int nw = rt.workerCount();
  std::vector<std::thread> th;
  for (int p = 0; p < producers; ++p)
    th.emplace_back([&, p] {
      std::vector<Task*> batch;
      std::vector<void*> light;
      for (uint64_t id = p; id < g.external; id += producers) {
        if (id % 7 == 3) {
          light.push_back(reinterpret_cast<void*>(id));
          if (light.size() == 100) {
            g.lightQueued.fetch_add(light.size(), std::memory_order_relaxed);
            rt.spawnLight(&kLightOps, light.data(), light.size());
            light.clear();
          }
          continue;
        }
        Task* t = allocTask();
        t->fn = taskFn;
        t->arg = reinterpret_cast<void*>(id);
        if (g.nodes > 1 && id % 5 == 0) t->node = static_cast<int>(id % g.nodes);
        switch (id % 4) {
          case 0: batch.push_back(t); if (batch.size() == 64) { rt.submitBatch(batch.data(), batch.size()); batch.clear(); } break;
          case 1: rt.submitToWorker(static_cast<int>(id % nw), t); break;
          default: rt.submit(t); break;
        }
      }
      if (!batch.empty()) rt.submitBatch(batch.data(), batch.size());
      if (!light.empty()) {
        g.lightQueued.fetch_add(light.size(), std::memory_order_relaxed);
        rt.spawnLight(&kLightOps, light.data(), light.size());
      }
    });
  for (auto& t : th) t.join();
  rt.waitIdle();
  const uint64_t phaseTasks = stealPhase(rt);
  rt.close();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t bad = 0, firstBad = UINT64_MAX;
  for (uint64_t i = 0; i < total; ++i)
    if (g.runs[i].load(std::memory_order_relaxed) != 1) {
      ++bad;
      if (firstBad == UINT64_MAX) firstBad = i;
    }
  auto s = rt.stats();
  std::printf("  %s: %llu tasks in %.2f s (%.0f ns/task), %d Ps, bad=%llu\n", label, (unsigned long long)total, secs,
              secs * 1e9 / total, nw, (unsigned long long)bad);
  for (auto& w : s.workers)
    std::printf("    P%d node %d: executed %llu steals same %llu/%llu remote %llu/%llu overflows %llu parks %llu\n", w.worker, w.node,
                (unsigned long long)w.executed, (unsigned long long)w.stealsSameNode, (unsigned long long)w.stealsSameNodeTasks,
                (unsigned long long)w.stealsRemote, (unsigned long long)w.stealsRemoteTasks, (unsigned long long)w.overflows,
                (unsigned long long)w.parks);
  CHECK_EQ(bad, 0u);
  if (bad) std::printf("  first bad id %llu ran %d times\n", (unsigned long long)firstBad, (int)g.runs[firstBad].load());
  CHECK_EQ(s.executed, total + phaseTasks);  // each id once, plus the steal phase's roots and leaves
  CHECK_EQ(s.spawned + s.externalSubmitted, s.executed);
  CHECK_EQ(s.dropped, 0u);
  CHECK(g.lightQueued.load() > 0u);
  CHECK_EQ(g.lightReported.load(), g.lightQueued.load());  // every light task's completion, once
  uint64_t overflows = 0;
  for (auto& w : s.workers) {
    CHECK(w.stealsSameNode + w.stealsRemote > 0u);  // every P stole
    overflows += w.overflows;
  }
  CHECK(overflows > 0u);
  g.rt = nullptr;
  g.runs.reset();
}

}  // namespace

TEST_CASE("stress: exactly once, hierarchical, 2 virtual nodes x 2 Ps, 3 producers") {
  runStress(RuntimeOptions::virtualTopology(2, 2), stressTasks(), 3, "hierarchical");
}

TEST_CASE("stress: exactly once, flat, 4 Ps, 2 producers") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, 2);
  o.policy = StealPolicy::Flat;
  runStress(o, std::max<uint64_t>(stressTasks() / 4, 1000), 2, "flat");
}

TEST_CASE("stress: exactly once, stats off, 3 nodes x 1 P") {
  RuntimeOptions o = RuntimeOptions::virtualTopology(3, 1);
  o.stats = false;
  o.sysmon = false;
  g.total = 0;
  // With stats off the steal counters are not maintained: check exactly-once only.
  const uint64_t total = std::max<uint64_t>(stressTasks() / 4, 1000);
  g.total = total;
  g.lightQueued = 0;
  g.lightReported = 0;
  g.external = total / 8;
  g.nodes = 3;
  g.runs.reset(new std::atomic<uint8_t>[total]);
  for (uint64_t i = 0; i < total; ++i) g.runs[i].store(0);
  Runtime rt(o);
  g.rt = &rt;
  std::thread prod([&] {
    for (uint64_t id = 0; id < g.external; ++id) {
      Task* t = allocTask();
      t->fn = taskFn;
      t->arg = reinterpret_cast<void*>(id);
      t->node = static_cast<int>(id % 4) - 1;  // -1, 0, 1, 2
      rt.submit(t);
    }
  });
  prod.join();
  rt.close();
  uint64_t bad = 0;
  for (uint64_t i = 0; i < total; ++i) bad += g.runs[i].load() != 1;
  CHECK_EQ(bad, 0u);
  CHECK_EQ(rt.stats().executed, total);
  CHECK_EQ(g.lightReported.load(), g.lightQueued.load());
  g.rt = nullptr;
  g.runs.reset();
}

TEST_MAIN()
