// Spawn+complete of N native no-op tasks (default 10^6), in ns/task, side by side with oneTBB
// task_group (when built with TBB: HWSQ_HAVE_TBB) and Go goroutines (when `go` is on PATH:
// runs bench/go/spawn.go), all in one run on the same machine. Also the cost of stats on/off.
//   bench_spawn [--tasks=N] [--reps=R] [--workers=W] [--no-go] [--json]
// Every figure is the median of R repetitions (best also reported); runtimes/arenas are created
// and warmed before timing; the timed region is submit-all + wait-until-all-completed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "sched/parker.h"
#include "sched/scheduler.h"
#include "sched/task_pool.h"

#ifdef HWSQ_HAVE_TBB
#include <tbb/global_control.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>
#include <tbb/version.h>
#endif

using namespace hwsq::sched;
using Clock = std::chrono::steady_clock;

namespace {

struct Figure {
  double median = 0, best = 0;
};

struct Args {
  uint64_t tasks = 1'000'000;
  int reps = 5;
  int workers = 0;
  bool json = false;
  bool go = true;
};

Figure measure(const Args& a, const std::function<void(uint64_t)>& body) {
  body(a.tasks / 10);  // warm-up (pool, arena, page faults)
  std::vector<double> xs;
  for (int r = 0; r < a.reps; ++r) {
    auto t0 = Clock::now();
    body(a.tasks);
    xs.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(a.tasks));
  }
  std::sort(xs.begin(), xs.end());
  return {xs[xs.size() / 2], xs[0]};
}

void noop(void*) {}

int gSampleShift = 0;  // timingSampleShift for the "stats on" runtimes of one row

RuntimeOptions opts(int workers, bool stats, StealPolicy policy = StealPolicy::Hierarchical) {
  RuntimeOptions o;
  o.timingSampleShift = gSampleShift;
  for (int i = 0; i < workers; ++i) o.workers.push_back({0, {}});
  o.pin = false;
  o.stats = stats;
  o.policy = policy;
  return o;
}

// Outside thread, one submit per task, caller-owned tasks (no allocation in the loop).
Figure hwsqExternalSingle(const Args& a, bool stats) {
  Runtime rt(opts(a.workers, stats));
  std::vector<Task> ts(a.tasks);
  for (auto& t : ts) t.fn = noop;
  auto f = measure(a, [&](uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) rt.submit(&ts[i]);
    rt.waitIdle();
  });
  rt.close();
  return f;
}

// Outside thread, one spawn per task with a pooled (runtime-allocated) task.
Figure hwsqExternalSpawn(const Args& a) {
  Runtime rt(opts(a.workers, true));
  auto f = measure(a, [&](uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) rt.spawn(noop, nullptr);
    rt.waitIdle();
  });
  rt.close();
  return f;
}

// Outside thread, batches of `batch` pooled tasks (the JS layer's spawnNative({count}) path).
Figure hwsqExternalBatch(const Args& a, bool stats, size_t batch, bool waitGroup) {
  Runtime rt(opts(a.workers, stats));
  WaitGroup wg;
  auto doneFn = [](void* p) { static_cast<WaitGroup*>(p)->done(); };
  std::vector<Task*> buf(batch);
  auto f = measure(a, [&](uint64_t n) {
    if (waitGroup) wg.add(static_cast<int64_t>(n));
    for (uint64_t i = 0; i < n; i += batch) {
      size_t k = static_cast<size_t>(std::min<uint64_t>(batch, n - i));
      for (size_t j = 0; j < k; ++j) {
        Task* t = allocTask();
        t->fn = noop;
        if (waitGroup) {
          t->done = doneFn;
          t->doneArg = &wg;
        }
        buf[j] = t;
      }
      rt.submitBatch(buf.data(), k);
    }
    if (waitGroup) wg.wait();
    else rt.waitIdle();
  });
  rt.close();
  return f;
}

// Inside: one task spawns all N (pooled) tasks from a worker, like a parallel loop's spawner.
struct InsideCtx {
  Runtime* rt;
  uint64_t n;
  SpawnHint hint;
};
void spawner(void* p) {
  auto* c = static_cast<InsideCtx*>(p);
  for (uint64_t i = 0; i < c->n; ++i) c->rt->spawn(noop, nullptr, -1, nullptr, nullptr, nullptr, c->hint);
}
Figure hwsqInside(const Args& a, bool stats, SpawnHint hint, StealPolicy policy = StealPolicy::Hierarchical) {
  Runtime rt(opts(a.workers, stats, policy));
  auto f = measure(a, [&](uint64_t n) {
    InsideCtx c{&rt, n, hint};
    Task root(spawner, &c);
    rt.submit(&root);
    rt.waitIdle();
  });
  rt.close();
  return f;
}

#ifdef HWSQ_HAVE_TBB
Figure tbbExternal(const Args& a) {
  tbb::task_arena arena(a.workers);
  Figure f;
  arena.execute([&] {
    f = measure(a, [&](uint64_t n) {
      tbb::task_group tg;
      for (uint64_t i = 0; i < n; ++i) tg.run([] {});
      tg.wait();
    });
  });
  return f;
}
Figure tbbInside(const Args& a) {
  tbb::task_arena arena(a.workers);
  Figure f;
  arena.execute([&] {
    f = measure(a, [&](uint64_t n) {
      tbb::task_group tg;
      tg.run([&] {
        for (uint64_t i = 0; i < n; ++i) tg.run([] {});
      });
      tg.wait();
    });
  });
  return f;
}
#endif

// Runs the Go program; fills figures from its JSON. Returns false when Go is unavailable.
bool runGo(const Args& a, std::map<std::string, Figure>& out, std::string& version) {
  std::string src = __FILE__;
  src = src.substr(0, src.rfind('/')) + "/../go/spawn.go";
  if (std::system("command -v go >/dev/null 2>&1") != 0) return false;
  std::string cmd = "cd /tmp && HOME=${HOME:-/tmp} GOCACHE=${GOCACHE:-/tmp/hwsq-gocache} GOFLAGS=-mod=mod go run '" + src +
                    "' -json -n " + std::to_string(a.tasks) + " -reps " + std::to_string(a.reps) + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return false;
  std::string text;
  char buf[512];
  while (size_t k = fread(buf, 1, sizeof buf, p)) text.append(buf, k);
  if (pclose(p) != 0) return false;
  auto num = [&](const char* key) {
    auto pos = text.find(std::string("\"") + key + "\":");
    return pos == std::string::npos ? -1.0 : std::atof(text.c_str() + pos + std::strlen(key) + 3);
  };
  if (num("external_ns_per_task") < 0) return false;
  out["go_external"] = {num("external_ns_per_task"), num("external_best_ns_per_task")};
  out["go_inside"] = {num("inside_ns_per_task"), num("inside_best_ns_per_task")};
  auto v = text.find("\"go_version\":\"");
  if (v != std::string::npos) version = text.substr(v + 14, text.find('"', v + 14) - v - 14);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  a.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--json") a.json = true;
    else if (s == "--no-go") a.go = false;
    else if (s.rfind("--tasks=", 0) == 0) a.tasks = std::strtoull(s.c_str() + 8, nullptr, 10);
    else if (s.rfind("--reps=", 0) == 0) a.reps = std::max(1, std::atoi(s.c_str() + 7));
    else if (s.rfind("--workers=", 0) == 0) a.workers = std::max(1, std::atoi(s.c_str() + 10));
    else {
      std::fprintf(stderr, "usage: %s [--tasks=N] [--reps=R] [--workers=W] [--no-go] [--json]\n", argv[0]);
      return 2;
    }
  }
  if (a.tasks < 1000) a.tasks = 1000;

  std::vector<std::pair<std::string, Figure>> rows;
  auto add = [&](const std::string& name, Figure f) {
    rows.push_back({name, f});
    if (!a.json) std::printf("%-34s %8.1f ns/task (best %.1f)\n", name.c_str(), f.median, f.best);
    std::fflush(stdout);
  };
  if (!a.json) std::printf("spawn+complete of %llu no-op tasks, %d workers, median of %d\n", (unsigned long long)a.tasks, a.workers, a.reps);
  add("hwsq_external_batch256", hwsqExternalBatch(a, true, 256, false));
  add("hwsq_external_batch256_stats_off", hwsqExternalBatch(a, false, 256, false));
  add("hwsq_external_batch256_waitgroup", hwsqExternalBatch(a, true, 256, true));
  add("hwsq_external_single", hwsqExternalSingle(a, true));
  add("hwsq_external_single_stats_off", hwsqExternalSingle(a, false));
  add("hwsq_external_spawn_pooled", hwsqExternalSpawn(a));
  add("hwsq_inside_tail", hwsqInside(a, true, SpawnHint::Tail));
  add("hwsq_inside_tail_stats_off", hwsqInside(a, false, SpawnHint::Tail));
  gSampleShift = 4;
  add("hwsq_inside_tail_stats_sampled16", hwsqInside(a, true, SpawnHint::Tail));
  add("hwsq_external_batch256_stats_sampled16", hwsqExternalBatch(a, true, 256, false));
  gSampleShift = 0;
  add("hwsq_inside_next", hwsqInside(a, true, SpawnHint::Next));
  add("hwsq_inside_tail_flat", hwsqInside(a, true, SpawnHint::Tail, StealPolicy::Flat));
  std::string tbbVersion, goVersion;
#ifdef HWSQ_HAVE_TBB
  tbbVersion = TBB_VERSION_STRING;
  add("tbb_task_group_external", tbbExternal(a));
  add("tbb_task_group_inside", tbbInside(a));
#endif
  std::map<std::string, Figure> goFigs;
  if (a.go && runGo(a, goFigs, goVersion))
    for (auto& [k, v] : goFigs) add(k, v);

  std::map<std::string, double> med;
  for (auto& [k, v] : rows) med[k] = v.median;
  std::vector<std::pair<std::string, double>> ratios;
  auto ratio = [&](const char* name, const char* num, const char* den) {
    if (med.count(num) && med.count(den) && med[den] > 0) ratios.push_back({name, med[num] / med[den]});
  };
  ratio("stats_cost_batch (on/off)", "hwsq_external_batch256", "hwsq_external_batch256_stats_off");
  ratio("stats_cost_inside (on/off)", "hwsq_inside_tail", "hwsq_inside_tail_stats_off");
  ratio("stats_cost_inside (sampled 1/16 / off)", "hwsq_inside_tail_stats_sampled16", "hwsq_inside_tail_stats_off");
  ratio("stats_cost_batch (sampled 1/16 / off)", "hwsq_external_batch256_stats_sampled16", "hwsq_external_batch256_stats_off");
  ratio("tbb_external / hwsq_external_batch256", "tbb_task_group_external", "hwsq_external_batch256");
  ratio("tbb_external / hwsq_external_single", "tbb_task_group_external", "hwsq_external_single");
  ratio("tbb_inside / hwsq_inside_tail", "tbb_task_group_inside", "hwsq_inside_tail");
  ratio("go_external / hwsq_external_batch256", "go_external", "hwsq_external_batch256");
  ratio("go_inside / hwsq_inside_tail", "go_inside", "hwsq_inside_tail");

  if (a.json) {
    std::printf("{\"bench\":\"spawn\",\"tasks\":%llu,\"workers\":%d,\"reps\":%d,\"cpus\":%u,\"tbb\":%s%s%s,\"go\":%s%s%s,\"results\":{",
                (unsigned long long)a.tasks, a.workers, a.reps, std::thread::hardware_concurrency(), tbbVersion.empty() ? "null" : "\"",
                tbbVersion.c_str(), tbbVersion.empty() ? "" : "\"", goVersion.empty() ? "null" : "\"", goVersion.c_str(),
                goVersion.empty() ? "" : "\"");
    for (size_t i = 0; i < rows.size(); ++i)
      std::printf("%s\"%s\":{\"ns_per_task\":%.2f,\"best_ns_per_task\":%.2f}", i ? "," : "", rows[i].first.c_str(), rows[i].second.median,
                  rows[i].second.best);
    std::printf("},\"ratios\":{");
    for (size_t i = 0; i < ratios.size(); ++i) std::printf("%s\"%s\":%.3f", i ? "," : "", ratios[i].first.c_str(), ratios[i].second);
    std::printf("}}\n");
  } else {
    for (auto& [k, v] : ratios) std::printf("ratio %-40s %.2f\n", k.c_str(), v);
  }
  return 0;
}
