// Queue microbenchmarks, ns/op: LRQ push+pop (owner), steal-half, HWSQ push/pop single and
// batched, uncontended and under contention (threads pushing and popping at once), GRQ
// push/pop batch, and the cost of a stats() snapshot.
//   bench_sched_queues [--ops=N] [--threads=T] [--json]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "args.h"
#include "sched/clock.h"
#include "sched/global_queue.h"
#include "sched/local_queue.h"
#include "sched/mpmc_ring.h"
#include "sched/scheduler.h"

using namespace hwsq::sched;
using Clock = std::chrono::steady_clock;

namespace {

double nsSince(Clock::time_point t0, uint64_t ops) {
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(ops);
}

template <class F>
double best3(F f) {
  double b = 1e300;
  for (int i = 0; i < 3; ++i) b = std::min(b, f());
  return b;
}

std::vector<Task> gTasks(4096);

double lrqPushPop(uint64_t ops) {
  LocalQueue q;
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < ops; i += 128) {
    for (int k = 0; k < 128; ++k) q.pushBack(&gTasks[k]);
    for (int k = 0; k < 128; ++k) {
      TaskRef t = q.popFront();
      asm volatile("" : : "r"(t));
    }
  }
  return nsSince(t0, ops);  // per push+pop pair
}

double lrqRunnext(uint64_t ops) {
  LocalQueue q;
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < ops; ++i) {
    q.putRunnext(&gTasks[i & 1023]);
    Task* t = q.takeRunnext();
    asm volatile("" : : "r"(t));
  }
  return nsSince(t0, ops);
}

// One steal of half of a full ring (128 tasks) into an empty ring, single-threaded: the
// arithmetic + copy + CAS cost without contention. Reported per steal operation.
double stealHalf(uint64_t ops) {
  LocalQueue victim, thief;
  uint64_t steals = ops / 256;
  uint64_t ticks = 0;
  for (uint64_t i = 0; i < steals; ++i) {
    while (victim.pushBack(&gTasks[i & 1023])) {
    }
    uint32_t n;
    uint64_t t0 = nowTicks();
    TaskRef t = thief.stealHalfFrom(victim, false, &n);  // only the steal is timed
    ticks += nowTicks() - t0;
    asm volatile("" : : "r"(t));
    while (thief.popFront()) {
    }
    while (victim.popFront()) {
    }
  }
  return static_cast<double>(ticksToNs(ticks)) / static_cast<double>(steals);
}

// Owner pushes and pops while `thieves` threads keep stealing: ns per owner push+pop pair.
double lrqContended(uint64_t ops, int thieves) {
  LocalQueue q;
  std::atomic<bool> stop{false};
  std::vector<std::thread> th;
  for (int k = 0; k < thieves; ++k)
    th.emplace_back([&] {
      LocalQueue mine;
      while (!stop.load(std::memory_order_relaxed)) {
        uint32_t n;
        if (mine.stealHalfFrom(q, false, &n))
          while (mine.popFront()) {
          }
      }
    });
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < ops; i += 64) {
    for (int k = 0; k < 64; ++k) q.pushBack(&gTasks[k]);
    for (int k = 0; k < 64; ++k) q.popFront();
  }
  double r = nsSince(t0, ops);
  stop = true;
  for (auto& t : th) t.join();
  return r;
}

double hwsqSingle(uint64_t ops) {
  MpmcRing q(4096);
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < ops; i += 64) {
    for (int k = 0; k < 64; ++k) q.push(&gTasks[k]);
    for (int k = 0; k < 64; ++k) q.pop();
  }
  return nsSince(t0, ops);  // per push+pop pair
}

double hwsqBatch(uint64_t ops, size_t batch) {
  MpmcRing q(4096);
  std::vector<TaskRef> in(batch), out(batch);
  for (size_t i = 0; i < batch; ++i) in[i] = &gTasks[i];
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < ops; i += batch) {
    q.pushBatch(in.data(), batch);
    q.popBatch(out.data(), batch);
  }
  return nsSince(t0, ops);  // per task pushed+popped
}

// `threads` threads each push then pop (batch size b) on one HWSQ ring: ns per task per thread.
double hwsqContended(uint64_t ops, int threads, size_t b) {
  MpmcRing q(4096);
  std::atomic<int> ready{0};
  std::vector<double> res(threads);
  std::vector<std::thread> th;
  for (int k = 0; k < threads; ++k)
    th.emplace_back([&, k] {
      std::vector<TaskRef> in(b), out(b);
      for (size_t i = 0; i < b; ++i) in[i] = &gTasks[(k * 64 + i) & 4095];
      ready.fetch_add(1);
      while (ready.load() < threads) {
      }
      auto t0 = Clock::now();
      for (uint64_t i = 0; i < ops; i += b) {
        size_t p = q.pushBatch(in.data(), b);
        size_t got = 0;
        while (got < p) got += q.popBatch(out.data(), p - got);
      }
      res[k] = nsSince(t0, ops);
    });
  for (auto& t : th) t.join();
  double sum = 0;
  for (double r : res) sum += r;
  return sum / threads;
}

double grqBatch(uint64_t ops, size_t b) {
  GlobalQueue q;
  std::vector<TaskRef> in(b), out(b);
  for (size_t i = 0; i < b; ++i) in[i] = &gTasks[i];
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < ops; i += b) {
    q.pushBatch(in.data(), b);
    q.popBatch(out.data(), b);
  }
  return nsSince(t0, ops);
}

void bumpTask(void* a) { static_cast<std::atomic<uint64_t>*>(a)->fetch_add(1, std::memory_order_relaxed); }

// busy: while an outside thread keeps the Ps running tiny tasks (the goal: about as cheap as idle).
double statsSnapshotUs(int workers, bool busy = false) {
  RuntimeOptions o = RuntimeOptions::virtualTopology(2, std::max(1, workers / 2));
  o.sysmon = false;
  std::atomic<uint64_t> ran{0};
  Runtime rt(o);
  std::atomic<bool> stop{false};
  std::thread feeder;
  if (busy)
    feeder = std::thread([&] {
      while (!stop.load()) {
        for (int i = 0; i < 100; ++i) rt.spawn(bumpTask, &ran);
        std::this_thread::yield();
      }
    });
  (void)rt.stats();
  const int n = 2000;
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto s = rt.stats();
    asm volatile("" : : "r"(&s));
  }
  double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
  stop = true;
  if (feeder.joinable()) feeder.join();
  rt.close();
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t ops = 20'000'000;
  int threads = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    uint64_t v = 0;
    if (s == "--json") json = true;
    else if (s.rfind("--ops=", 0) == 0 && parseCount(s.c_str() + 6, 1, 10'000'000'000ull, &ops)) ops = std::max<uint64_t>(100000, ops);
    else if (s.rfind("--threads=", 0) == 0 && parseCount(s.c_str() + 10, 1, 1024, &v)) threads = std::max(2, static_cast<int>(v));
    else {
      std::fprintf(stderr, "usage: %s [--ops=N] [--threads=T] [--json]\n", argv[0]);
      return 2;
    }
  }
  std::vector<std::pair<std::string, double>> r;
  auto add = [&](const std::string& k, double v) {
    r.push_back({k, v});
    if (!json) std::printf("%-42s %8.2f\n", k.c_str(), v);
    std::fflush(stdout);
  };
  if (!json) std::printf("ns per op (best of 3), %llu ops, %d threads for contended rows\n", (unsigned long long)ops, threads);
  add("lrq_push_pop_ns", best3([&] { return lrqPushPop(ops); }));
  add("lrq_runnext_put_take_ns", best3([&] { return lrqRunnext(ops); }));
  add("lrq_steal_half_ns_per_steal_128", best3([&] { return stealHalf(ops); }));
  add("lrq_push_pop_with_1_thief_ns", best3([&] { return lrqContended(ops / 4, 1); }));
  add("hwsq_push_pop_single_ns", best3([&] { return hwsqSingle(ops); }));
  add("hwsq_push_pop_batch32_ns_per_task", best3([&] { return hwsqBatch(ops, 32); }));
  add("hwsq_push_pop_batch128_ns_per_task", best3([&] { return hwsqBatch(ops, 128); }));
  add("hwsq_contended_single_ns", best3([&] { return hwsqContended(ops / 8, threads, 1); }));
  add("hwsq_contended_batch32_ns_per_task", best3([&] { return hwsqContended(ops / 4, threads, 32); }));
  add("grq_push_pop_batch128_ns_per_task", best3([&] { return grqBatch(ops, 128); }));
  add("stats_snapshot_us_4_workers", statsSnapshotUs(4));
  add("stats_snapshot_us_64_workers", statsSnapshotUs(64));
  const double idle4 = statsSnapshotUs(4), busy4 = statsSnapshotUs(4, true);
  add("stats_snapshot_us_4_workers_busy", busy4);
  add("stats_snapshot_busy_vs_idle_ratio", busy4 / idle4);  // goal: <= 3 (tests no longer time it)
  if (json) {
    std::printf("{\"bench\":\"sched_queues\",\"ops\":%llu,\"threads\":%d,\"results\":{", (unsigned long long)ops, threads);
    for (size_t i = 0; i < r.size(); ++i) std::printf("%s\"%s\":%.3f", i ? "," : "", r[i].first.c_str(), r[i].second);
    std::printf("}}\n");
  }
  return 0;
}
