// Spawn+complete of N native no-op tasks (default 10^6), in ns/task, side by side with oneTBB
// task_group (when built with TBB: HWSQ_HAVE_TBB) and Go goroutines (when `go` is on PATH:
// runs bench/go/spawn.go), all in one run on the same machine. Then what stats cost:
//   stats cost     default options (stats on, 1 task in 2^timingSampleShift timed) against
//                  `stats: false`, full timing (shift 0) and default options again (a control),
//                  in interleaved rounds (each round builds and times a runtime of every
//                  setting, in an order drawn at random per round), on the no-op spawn path
//                  (inside; inside on one P, by wall clock and by that P's thread CPU time;
//                  external batches of 256) and on 10 us tasks; the per-round ratios' median
//                  (the goal) with its 95% interval and spread, the control's, and best/best
//   fidelity_*     the latency histogram's p50/p99 with sampling against full timing on the
//                  very same tasks (bursts of 1000 no-op tasks): every task's latency is kept,
//                  the default's sampler then picks its subset, as the runtime would
//   bench_spawn [--tasks=N] [--reps=R] [--workers=W] [--no-go] [--json] [--stats-only] [--only=FIGURE] [--warmup=N]
// --only runs one figure of the first table (e.g. hwsq_inside_tail) and nothing else: for counting
// instructions per task under `valgrind --tool=callgrind`, which no load on the machine can move,
// and for `hwsq bench spawn`'s rounds that pair oneTBB with hwsq (with --json: one JSON line).
// --warmup: tasks of the first table's untimed warm-up (default N/10); the paired rounds warm up
// with all N, so that one timed repetition does not pay for first-touching its memory.
// Every figure is the median of R repetitions (best also reported); runtimes/arenas are created
// and warmed before timing; the timed region is submit-all + wait-until-all-completed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <memory>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "args.h"
#include "sched/clock.h"
#include "sched/native_tasks.h"
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
  double cpuMedian = -1;  // the process's CPU time (every thread, spinning included) per task, median; < 0: not measured (Go)
};

// CPU time of the whole process, every thread: a figure that other load on the machine moves far
// less than wall-clock time (a descheduled thread uses none).
double processCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

struct Args {
  uint64_t tasks = 1'000'000;
  int reps = 5;
  int workers = 0;
  bool json = false;
  bool go = true;
  bool statsOnly = false;
  std::string only;  // --only: the one figure to run
  uint64_t warmup = 0;  // --warmup: tasks of the untimed warm-up of measure(); 0: tasks / 10
};

std::string cpuJson(const Figure& f) {
  if (f.cpuMedian < 0) return "null";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", f.cpuMedian);
  return b;
}

Figure measure(const Args& a, const std::function<void(uint64_t)>& body) {
  body(a.warmup ? a.warmup : a.tasks / 10);  // warm-up (pool, arena, page faults)
  std::vector<double> xs, cpu;
  for (int r = 0; r < a.reps; ++r) {
    const double c0 = processCpuNs();
    auto t0 = Clock::now();
    body(a.tasks);
    xs.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(a.tasks));
    cpu.push_back((processCpuNs() - c0) / static_cast<double>(a.tasks));
  }
  std::sort(xs.begin(), xs.end());
  std::sort(cpu.begin(), cpu.end());
  return {xs[xs.size() / 2], xs[0], cpu[cpu.size() / 2]};
}

void noop(void*) {}
const TaskOps kNoopOps{noop, nullptr, nullptr};
void* const kNullArgs[Runtime::kLightBatchMax] = {};  // the no-op tasks' args

// n light no-op tasks (Runtime::spawnLight), in batches of up to `batch` (the addon's
// submitLightBatch: spawnNative({count}), hwsq bench spawn's in-process loop).
void spawnLightNoops(Runtime& rt, uint64_t n, size_t batch, SpawnHint hint = SpawnHint::Tail) {
  for (uint64_t i = 0; i < n; i += batch) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(batch, n - i));
    rt.spawnLight(&kNoopOps, kNullArgs, k, -1, hint);
  }
}

RuntimeOptions opts(int workers, bool stats, StealPolicy policy = StealPolicy::Hierarchical) {
  RuntimeOptions o;
  for (int i = 0; i < workers; ++i) o.workers.push_back({0, {}});
  o.pin = false;
  o.stats = stats;
  o.policy = policy;
  o.idleSpinNs = 50'000;  // NativeRuntime's default (idleSpinMicros 50)
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

// Outside thread, batches of `batch` tasks: light (the JS layer's spawnNative({count}) path), or
// pooled Tasks whose done counts a WaitGroup (waitGroup).
Figure hwsqExternalBatch(const Args& a, bool stats, size_t batch, bool waitGroup) {
  Runtime rt(opts(a.workers, stats));
  WaitGroup wg;
  auto doneFn = [](void* p) { static_cast<WaitGroup*>(p)->done(); };
  std::vector<Task*> buf(batch);
  auto f = measure(a, [&](uint64_t n) {
    if (!waitGroup) {
      spawnLightNoops(rt, n, batch);
      rt.waitIdle();
      return;
    }
    wg.add(static_cast<int64_t>(n));
    for (uint64_t i = 0; i < n; i += batch) {
      size_t k = static_cast<size_t>(std::min<uint64_t>(batch, n - i));
      for (size_t j = 0; j < k; ++j) {
        Task* t = allocTask();
        t->fn = noop;
        t->done = doneFn;
        t->doneArg = &wg;
        buf[j] = t;
      }
      rt.submitBatch(buf.data(), k);
    }
    wg.wait();
  });
  rt.close();
  return f;
}

// Inside: one task spawns all N tasks from a worker, one spawn each, like a parallel loop's
// spawner: light tasks (Tail), or pooled Tasks into runnext (Next).
struct InsideCtx {
  Runtime* rt;
  uint64_t n;
  SpawnHint hint;
};
void spawner(void* p) {
  auto* c = static_cast<InsideCtx*>(p);
  if (c->hint == SpawnHint::Next) {
    for (uint64_t i = 0; i < c->n; ++i) c->rt->spawn(noop, nullptr, -1, nullptr, nullptr, nullptr, c->hint);
    return;
  }
  spawnLightNoops(*c->rt, c->n, 1, c->hint);
}
// Inside, in batches of 256 light tasks (the addon's submitLightBatch: spawnNative inside, hwsq
// bench spawn's in-process loop).
void batchSpawner(void* p) {
  auto* c = static_cast<InsideCtx*>(p);
  spawnLightNoops(*c->rt, c->n, 256);
}
Figure hwsqInsideBatch(const Args& a) {
  Runtime rt(opts(a.workers, true));
  auto f = measure(a, [&](uint64_t n) {
    InsideCtx c{&rt, n, SpawnHint::Tail};
    Task root(batchSpawner, &c);
    rt.submit(&root);
    rt.waitIdle();
  });
  rt.close();
  return f;
}

Figure hwsqInsideOn(const Args& a, RuntimeOptions o, SpawnHint hint) {
  Runtime rt(std::move(o));
  auto f = measure(a, [&](uint64_t n) {
    InsideCtx c{&rt, n, hint};
    Task root(spawner, &c);
    rt.submit(&root);
    rt.waitIdle();
  });
  rt.close();
  return f;
}

Figure hwsqInside(const Args& a, bool stats, SpawnHint hint, StealPolicy policy = StealPolicy::Hierarchical) {
  return hwsqInsideOn(a, opts(a.workers, stats, policy), hint);
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

// ---- What stats cost, in interleaved rounds.

// One round's ratio moves by +-20% on a shared machine, and one runtime instance can be several
// percent faster than another of the same settings (where its memory landed): the stats cost is
// judged on the median of per-round ratios over many short rounds, each on fresh runtimes, and a
// control setting (default options again) shows the resolution in the same run. 40 rounds per
// repetition (200 at --reps 5): the median's interval narrows as 1/sqrt(rounds), and at 40 it
// spanned +-2..8% here, wider than the 3% it judges.
constexpr int kStatsRoundsPerRep = 40;
int statsRounds(const Args& a) { return kStatsRoundsPerRep * a.reps; }
constexpr uint64_t kStatsTasksPerRound = 50'000;
// Each runtime is timed over a few runs and its best kept: a run that other load preempted is
// slow, never fast, and so the best of a runtime's runs is its own speed; the runtimes' own
// differences are what the median over rounds then averages.
constexpr int kStatsRunsPerRuntime = 5;

const int kDefaultShift = RuntimeOptions{}.timingSampleShift;

struct Setting {
  const char* name;  // row suffix
  bool stats;
  int shift;
};
const Setting kSettings[] = {{"default", true, kDefaultShift}, {"stats_off", false, 0}, {"full_timing", true, 0}, {"control", true, kDefaultShift}};
constexpr size_t kNumSettings = sizeof kSettings / sizeof kSettings[0];

struct Spread {
  double median = 0, min = 0, max = 0;
  double ciLow = 0, ciHigh = 0;  // the median's 95% interval, distribution-free (order statistics)
};
Spread spreadOf(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  const double n = static_cast<double>(xs.size());
  const double half = 1.96 * std::sqrt(n) / 2;
  const size_t j = static_cast<size_t>(std::max(1.0, std::floor(n / 2 - half)));
  const size_t k = static_cast<size_t>(std::min(n, std::ceil(n / 2 + half + 1)));
  return {xs[xs.size() / 2], xs.front(), xs.back(), xs[j - 1], xs[k - 1]};
}

void spin10us(void*) { spinFor(10'000); }

// A body runs n tasks on a runtime and returns the nanoseconds it measured itself, or a negative
// number: then the round's wall-clock time is taken.
using Body = std::function<double(Runtime&, uint64_t)>;

// statsRounds rounds; each builds a runtime of every setting in turn, in an order drawn at random
// per round (a rotation would make each setting follow the same one every round, and what a
// runtime leaves behind -- the task pool full timing grew, freed memory -- moves the next one's
// figure), warms it up, times it once and closes it. Returns ns/task per setting per round.
std::vector<std::vector<double>> interleaved(const Args& a, uint64_t tasks, uint64_t warmup, int runs, const Body& body) {
  std::vector<std::vector<double>> ns(kNumSettings);
  std::mt19937 rng(12345);
  size_t order[kNumSettings];
  std::iota(order, order + kNumSettings, size_t{0});
  for (int r = 0; r < statsRounds(a); ++r) {
    std::shuffle(order, order + kNumSettings, rng);
    for (size_t i : order) {
      RuntimeOptions o = opts(a.workers, kSettings[i].stats);
      o.timingSampleShift = kSettings[i].shift;
      Runtime rt(std::move(o));
      body(rt, warmup);
      double best = 0;
      for (int k = 0; k < runs; ++k) {
        auto t0 = Clock::now();
        double own = body(rt, tasks);
        double total = own >= 0 ? own : std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
        best = k == 0 ? total : std::min(best, total);
      }
      ns[i].push_back(best / static_cast<double>(tasks));
      rt.close();
    }
  }
  return ns;
}

struct StatsCost {
  std::string shape;
  uint64_t tasks = 0;
  Spread ns[kNumSettings];
  Spread ratio;    // default / stats_off per round (paired within a round): the goal is on its median
  Spread control;  // control / default per round: the resolution (1 within its interval on a fair bench)
  double bestRatio = 0;  // the best default round / the best stats-off round, for reference
  double goal = 0;       // ratio.median at most this
};

StatsCost statsCost(const Args& a, const std::string& shape, uint64_t tasks, uint64_t warmup, int runs, double goal, const Body& body) {
  auto ns = interleaved(a, tasks, warmup, runs, body);
  StatsCost c;
  c.shape = shape;
  c.tasks = tasks;
  c.goal = goal;
  for (size_t i = 0; i < kNumSettings; ++i) c.ns[i] = spreadOf(ns[i]);
  std::vector<double> ratios, control;
  for (size_t r = 0; r < ns[0].size(); ++r) {
    ratios.push_back(ns[0][r] / ns[1][r]);
    control.push_back(ns[3][r] / ns[0][r]);
  }
  c.ratio = spreadOf(ratios);
  c.control = spreadOf(control);
  c.bestRatio = c.ns[0].min / c.ns[1].min;
  return c;
}

double insideBody(Runtime& rt, uint64_t n, TaskFn fn) {
  struct Ctx {
    Runtime* rt;
    uint64_t n;
    TaskOps ops;  // lives until waitIdle returns, past every task
  } c{&rt, n, TaskOps{fn, nullptr, nullptr}};
  Task root([](void* p) {
    auto* c = static_cast<Ctx*>(p);
    void* const arg = nullptr;
    for (uint64_t i = 0; i < c->n; ++i) c->rt->spawnLight(&c->ops, &arg, 1);
  }, &c);
  rt.submit(&root);
  rt.waitIdle();
  return -1;
}

// One P only: the CPU time of its thread (CLOCK_THREAD_CPUTIME_ID) from the root task's start to
// the end of the last task, which counts them. Time the thread spent descheduled -- other
// processes on a shared machine -- is not in it, unlike wall-clock time.
struct CpuCtx {
  Runtime* rt;
  uint64_t n, ran;
  timespec start, end;
};
CpuCtx* gCpu = nullptr;  // the one in flight (the body waits for it)
void countedNoop(void*) {
  if (++gCpu->ran == gCpu->n) clock_gettime(CLOCK_THREAD_CPUTIME_ID, &gCpu->end);
}
double insideCpuBody(Runtime& rt, uint64_t n) {
  CpuCtx c{&rt, n, 0, {}, {}};
  gCpu = &c;
  Task root([](void* p) {
    auto* c = static_cast<CpuCtx*>(p);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c->start);
    static const TaskOps ops{countedNoop, nullptr, nullptr};
    void* const arg = nullptr;
    for (uint64_t i = 0; i < c->n; ++i) c->rt->spawnLight(&ops, &arg, 1);
  }, &c);
  rt.submit(&root);
  rt.waitIdle();
  gCpu = nullptr;
  return static_cast<double>(c.end.tv_sec - c.start.tv_sec) * 1e9 + static_cast<double>(c.end.tv_nsec - c.start.tv_nsec);
}

double externalBatchBody(Runtime& rt, uint64_t n) {
  spawnLightNoops(rt, n, 256);
  rt.waitIdle();
  return -1;
}

// ---- Fidelity: sampled against full timing on the same tasks.

struct Probe {
  Task t;
  uint64_t latencyTicks = 0;
};
void probeFn(void* p) {
  auto* pr = static_cast<Probe*>(p);
  const uint64_t now = nowTicks();
  pr->latencyTicks = now > pr->t.submitTicks ? now - pr->t.submitTicks : 0;
}

struct Fidelity {
  uint64_t tasks = 0, sampled = 0;
  int shift = 0;
  // Exact quantiles of the raw latencies (every task / the sampled ones), so that the
  // comparison is not hidden by the histogram's 3% buckets.
  double fullP50 = 0, fullP99 = 0, sampledP50 = 0, sampledP99 = 0;
  double p50Err = 0, p99Err = 0;  // |sampled / full - 1|
  // The same through the histogram (bucket midpoints), as stats() reports them.
  double histFullP50 = 0, histFullP99 = 0, histSampledP50 = 0, histSampledP99 = 0;
  double runtimeP50 = 0, runtimeP99 = 0;  // the full-timing runtime's own histogram (a cross-check of the probe)
  // One draw of the sampler says little about a tail: 31 more draws (other seeds) over the same
  // tasks give the spread of the error, median and worst.
  int draws = 0;
  double p50ErrMedian = 0, p50ErrMax = 0, p99ErrMedian = 0, p99ErrMax = 0;
};

// Bursts of 1000 no-op tasks from this thread (the latency probe's shape) on a full-timing
// runtime; each task keeps its own submit -> start latency. The full histogram holds them all;
// the sampled one the tasks a TimingSampler of the default shift picks, in submission order
// (what an outside thread's sampler does in the runtime). Same tasks, same run: the difference
// is the sampling alone.
Fidelity fidelity(const Args& a, uint64_t tasks) {
  constexpr uint64_t kBurst = 1000;
  RuntimeOptions o = opts(a.workers, true);
  o.timingSampleShift = 0;
  Runtime rt(std::move(o));
  std::vector<Probe> probes(std::max<uint64_t>(kBurst, tasks / kBurst * kBurst));
  std::vector<Task*> ptrs(probes.size());
  for (size_t i = 0; i < probes.size(); ++i) {
    probes[i].t = Task(probeFn, &probes[i]);
    ptrs[i] = &probes[i].t;
  }
  for (size_t i = 0; i < probes.size(); i += kBurst) {
    rt.submitBatch(&ptrs[i], kBurst);
    rt.waitIdle();
  }
  const RuntimeStats st = rt.stats();
  rt.close();
  const double npt = nsPerTick();
  HistogramSnapshot full, sampled;
  full.unitNs = sampled.unitNs = npt;
  std::vector<uint64_t> all, picked;
  TimingSampler sampler;
  auto add = [](HistogramSnapshot& h, std::vector<uint64_t>& raw, uint64_t v) {
    h.counts[HistogramLayout::bucketOf(v)]++;
    h.count++;
    h.sum += v;
    h.max = std::max(h.max, v);
    raw.push_back(v);
  };
  for (const Probe& p : probes) {
    add(full, all, p.latencyTicks);
    if (sampler.next(kDefaultShift)) add(sampled, picked, p.latencyTicks);
  }
  auto exact = [npt](std::vector<uint64_t>& v, double q) {  // nearest rank
    if (v.empty()) return 0.0;
    size_t k = static_cast<size_t>(q * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return static_cast<double>(v[k]) * npt;
  };
  Fidelity f;
  f.tasks = full.count;
  f.sampled = sampled.count;
  f.shift = kDefaultShift;
  f.fullP50 = exact(all, 0.5);
  f.fullP99 = exact(all, 0.99);
  f.sampledP50 = exact(picked, 0.5);
  f.sampledP99 = exact(picked, 0.99);
  f.p50Err = f.fullP50 > 0 ? std::abs(f.sampledP50 / f.fullP50 - 1) : 0;
  f.p99Err = f.fullP99 > 0 ? std::abs(f.sampledP99 / f.fullP99 - 1) : 0;
  std::vector<double> e50{f.p50Err}, e99{f.p99Err};
  for (uint64_t seed = 1; seed <= 31; ++seed) {
    TimingSampler other(seed * 0x9E3779B97F4A7C15ull);
    std::vector<uint64_t> sub;
    for (const Probe& p : probes)
      if (other.next(kDefaultShift)) sub.push_back(p.latencyTicks);
    e50.push_back(f.fullP50 > 0 ? std::abs(exact(sub, 0.5) / f.fullP50 - 1) : 0);
    e99.push_back(f.fullP99 > 0 ? std::abs(exact(sub, 0.99) / f.fullP99 - 1) : 0);
  }
  std::sort(e50.begin(), e50.end());
  std::sort(e99.begin(), e99.end());
  f.draws = static_cast<int>(e50.size());
  f.p50ErrMedian = e50[e50.size() / 2];
  f.p50ErrMax = e50.back();
  f.p99ErrMedian = e99[e99.size() / 2];
  f.p99ErrMax = e99.back();
  f.histFullP50 = full.quantileNs(0.5);
  f.histFullP99 = full.quantileNs(0.99);
  f.histSampledP50 = sampled.quantileNs(0.5);
  f.histSampledP99 = sampled.quantileNs(0.99);
  f.runtimeP50 = st.latency.quantileNs(0.5);
  f.runtimeP99 = st.latency.quantileNs(0.99);
  return f;
}

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
  constexpr uint64_t kMaxTasks = 10'000'000'000ull;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    uint64_t v = 0;
    if (s == "--json") a.json = true;
    else if (s == "--no-go") a.go = false;
    else if (s == "--stats-only") a.statsOnly = true;
    else if (s.rfind("--only=", 0) == 0) a.only = s.substr(7);
    else if (s.rfind("--tasks=", 0) == 0 && parseCount(s.c_str() + 8, 1, kMaxTasks, &a.tasks)) {
    } else if (s.rfind("--reps=", 0) == 0 && parseCount(s.c_str() + 7, 1, 1000, &v)) a.reps = static_cast<int>(v);
    else if (s.rfind("--workers=", 0) == 0 && parseCount(s.c_str() + 10, 1, 1024, &v)) a.workers = static_cast<int>(v);
    else if (s.rfind("--warmup=", 0) == 0 && parseCount(s.c_str() + 9, 1, kMaxTasks, &a.warmup)) {
    } else {
      std::fprintf(stderr, "usage: %s [--tasks=N] [--reps=R] [--workers=W] [--no-go] [--json] [--stats-only] [--only=FIGURE] [--warmup=N]\n", argv[0]);
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
  std::string tbbVersion, goVersion;
  // --only: that figure alone (lazily: the others are not even set up).
  auto run = [&](const std::string& name, const std::function<Figure()>& figure) {
    if (a.only.empty() || a.only == name) add(name, figure());
  };
  if (!a.statsOnly) {
    // Default options throughout (stats on, timing sampled 1 in 2^kDefaultShift).
    run("hwsq_external_batch256", [&] { return hwsqExternalBatch(a, true, 256, false); });
    run("hwsq_external_batch256_stats_off", [&] { return hwsqExternalBatch(a, false, 256, false); });
    run("hwsq_external_batch256_waitgroup", [&] { return hwsqExternalBatch(a, true, 256, true); });
    run("hwsq_external_single", [&] { return hwsqExternalSingle(a, true); });
    run("hwsq_external_single_stats_off", [&] { return hwsqExternalSingle(a, false); });
    run("hwsq_external_spawn_pooled", [&] { return hwsqExternalSpawn(a); });
    run("hwsq_inside_tail", [&] { return hwsqInside(a, true, SpawnHint::Tail); });
    run("hwsq_inside_tail_stats_off", [&] { return hwsqInside(a, false, SpawnHint::Tail); });
    run("hwsq_inside_tail_full_timing", [&] {
      RuntimeOptions o = opts(a.workers, true);
      o.timingSampleShift = 0;
      return hwsqInsideOn(a, std::move(o), SpawnHint::Tail);
    });
    run("hwsq_inside_batch256", [&] { return hwsqInsideBatch(a); });
    run("hwsq_inside_next", [&] { return hwsqInside(a, true, SpawnHint::Next); });
    run("hwsq_inside_tail_flat", [&] { return hwsqInside(a, true, SpawnHint::Tail, StealPolicy::Flat); });
#ifdef HWSQ_HAVE_TBB
    tbbVersion = TBB_VERSION_STRING;
    run("tbb_task_group_external", [&] { return tbbExternal(a); });
    run("tbb_task_group_inside", [&] { return tbbInside(a); });
#endif
    std::map<std::string, Figure> goFigs;
    if (a.go && a.only.empty() && runGo(a, goFigs, goVersion))
      for (auto& [k, v] : goFigs) add(k, v);
  }

  if (!a.only.empty()) {
    if (rows.empty()) {
      std::fprintf(stderr, "%s: no figure named %s (--only takes a name of the first table)\n", argv[0], a.only.c_str());
      return 2;
    }
    if (a.json)
      std::printf("{\"bench\":\"spawn\",\"tasks\":%llu,\"workers\":%d,\"reps\":%d,\"results\":{\"%s\":{\"ns_per_task\":%.2f,\"best_ns_per_task\":%.2f,\"cpu_ns_per_task\":%s}}}\n",
                  (unsigned long long)a.tasks, a.workers, a.reps, rows[0].first.c_str(), rows[0].second.median, rows[0].second.best, cpuJson(rows[0].second).c_str());
    return 0;
  }

  // What stats cost: default options against stats off (and full timing), interleaved rounds.
  const uint64_t noopTasks = std::min(a.tasks, kStatsTasksPerRound);
  const uint64_t spinTasks = std::max<uint64_t>(1000, a.tasks / 200);
  std::vector<StatsCost> costs;
  costs.push_back(statsCost(a, "noop_inside", noopTasks, noopTasks, kStatsRunsPerRuntime, 1.03, [](Runtime& rt, uint64_t n) { return insideBody(rt, n, noop); }));
  // One P: spawn and run on one thread, no steals or spinning: the per-task cost of stats alone,
  // and the figure least moved by other load (a preempted round is slow, never fast).
  {
    Args one = a;
    one.workers = 1;
    costs.push_back(statsCost(one, "noop_inside_1worker", noopTasks, noopTasks, kStatsRunsPerRuntime, 1.03, [](Runtime& rt, uint64_t n) { return insideBody(rt, n, noop); }));
    costs.push_back(statsCost(one, "noop_inside_1worker_cpu", noopTasks, noopTasks, kStatsRunsPerRuntime, 1.03, insideCpuBody));
  }
  costs.push_back(statsCost(a, "noop_external_batch256", noopTasks, noopTasks, kStatsRunsPerRuntime, 1.03, externalBatchBody));
  // A warm-up of a few tasks and one run per runtime: they are all alike, 10 us each, and a
  // round's ratio moves by 1% at most.
  costs.push_back(statsCost(a, "spin10us_inside", spinTasks, 200, 1, 1.01, [](Runtime& rt, uint64_t n) { return insideBody(rt, n, spin10us); }));
  const Fidelity fid = fidelity(a, a.tasks);  // at 1 in 256, 10^6 tasks time ~3,900
  if (!a.json) {
    std::printf("stats cost: default options (timing 1 task in %d) vs stats: false vs full timing vs default again (control), %d interleaved rounds on fresh "
                "runtimes, ns/task median (min..max)\n",
                1 << kDefaultShift, statsRounds(a));
    for (const StatsCost& c : costs) {
      std::printf("  %-24s", c.shape.c_str());
      for (size_t i = 0; i < kNumSettings; ++i)
        std::printf("  %s %.1f (%.1f..%.1f)", kSettings[i].name, c.ns[i].median, c.ns[i].min, c.ns[i].max);
      std::printf("\n  %-24s  default/off per round %.3f [95%% interval %.3f, %.3f] (%.3f..%.3f), control/default %.3f [%.3f, %.3f], best/best %.3f; "
                  "goal median <= %.2f: %s\n",
                  "", c.ratio.median, c.ratio.ciLow, c.ratio.ciHigh, c.ratio.min, c.ratio.max, c.control.median, c.control.ciLow, c.control.ciHigh,
                  c.bestRatio, c.goal, c.ratio.median <= c.goal ? "met" : "NOT met");
    }
    std::printf("latency fidelity (%llu tasks in bursts of 1000, %llu timed by the 1-in-%d sampler), exact quantiles: p50 full %.0f ns, sampled %.0f ns "
                "(%.2f%% off); p99 full %.0f ns, sampled %.0f ns (%.2f%% off)\n"
                "  over %d draws of the sampler: p50 off by %.2f%% median, %.2f%% worst; p99 off by %.2f%% median, %.2f%% worst\n"
                "  through the histogram: p50 %.0f / %.0f ns, p99 %.0f / %.0f ns; the runtime's own (full) histogram p50 %.0f / p99 %.0f ns\n",
                (unsigned long long)fid.tasks, (unsigned long long)fid.sampled, 1 << fid.shift, fid.fullP50, fid.sampledP50, fid.p50Err * 100,
                fid.fullP99, fid.sampledP99, fid.p99Err * 100, fid.draws, fid.p50ErrMedian * 100, fid.p50ErrMax * 100, fid.p99ErrMedian * 100,
                fid.p99ErrMax * 100, fid.histFullP50, fid.histSampledP50, fid.histFullP99, fid.histSampledP99, fid.runtimeP50,
                fid.runtimeP99);
  }

  std::map<std::string, double> med;
  for (auto& [k, v] : rows) med[k] = v.median;
  std::vector<std::pair<std::string, double>> ratios;
  auto ratio = [&](const char* name, const char* num, const char* den) {
    if (med.count(num) && med.count(den) && med[den] > 0) ratios.push_back({name, med[num] / med[den]});
  };
  ratio("stats_cost_batch (on/off)", "hwsq_external_batch256", "hwsq_external_batch256_stats_off");
  ratio("stats_cost_inside (on/off)", "hwsq_inside_tail", "hwsq_inside_tail_stats_off");
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
      std::printf("%s\"%s\":{\"ns_per_task\":%.2f,\"best_ns_per_task\":%.2f,\"cpu_ns_per_task\":%s}", i ? "," : "", rows[i].first.c_str(),
                  rows[i].second.median, rows[i].second.best, cpuJson(rows[i].second).c_str());
    std::printf("},\"ratios\":{");
    for (size_t i = 0; i < ratios.size(); ++i) std::printf("%s\"%s\":%.3f", i ? "," : "", ratios[i].first.c_str(), ratios[i].second);
    std::printf("},\"default_timing_sample_shift\":%d,\"stats_cost\":{", kDefaultShift);
    auto spread = [](const Spread& x) {
      std::printf("{\"median\":%.4f,\"min\":%.4f,\"max\":%.4f,\"ciLow\":%.4f,\"ciHigh\":%.4f}", x.median, x.min, x.max, x.ciLow, x.ciHigh);
    };
    for (size_t k = 0; k < costs.size(); ++k) {
      const StatsCost& c = costs[k];
      std::printf("%s\"%s\":{\"tasks\":%llu,", k ? "," : "", c.shape.c_str(), (unsigned long long)c.tasks);
      for (size_t i = 0; i < kNumSettings; ++i) {
        std::printf("\"%s_ns_per_task\":", kSettings[i].name);
        spread(c.ns[i]);
        std::printf(",");
      }
      std::printf("\"ratio_default_over_off\":");
      spread(c.ratio);
      std::printf(",\"ratio_control_over_default\":");
      spread(c.control);
      std::printf(",\"best_ratio\":%.4f,\"goal_max_ratio\":%.2f,\"met\":%s}", c.bestRatio, c.goal, c.ratio.median <= c.goal ? "true" : "false");
    }
    std::printf("},\"fidelity\":{\"tasks\":%llu,\"sampled\":%llu,\"shift\":%d,\"full_p50_ns\":%.1f,\"full_p99_ns\":%.1f,\"sampled_p50_ns\":%.1f,"
                "\"sampled_p99_ns\":%.1f,\"p50_rel_err\":%.4f,\"p99_rel_err\":%.4f,\"hist_full_p50_ns\":%.1f,\"hist_full_p99_ns\":%.1f,"
                "\"hist_sampled_p50_ns\":%.1f,\"hist_sampled_p99_ns\":%.1f,\"runtime_p50_ns\":%.1f,\"runtime_p99_ns\":%.1f,\"draws\":%d,"
                "\"p50_rel_err_median\":%.4f,\"p50_rel_err_max\":%.4f,\"p99_rel_err_median\":%.4f,\"p99_rel_err_max\":%.4f}}\n",
                (unsigned long long)fid.tasks, (unsigned long long)fid.sampled, fid.shift, fid.fullP50, fid.fullP99, fid.sampledP50, fid.sampledP99,
                fid.p50Err, fid.p99Err, fid.histFullP50, fid.histFullP99, fid.histSampledP50, fid.histSampledP99, fid.runtimeP50, fid.runtimeP99,
                fid.draws, fid.p50ErrMedian, fid.p50ErrMax, fid.p99ErrMedian, fid.p99ErrMax);
  } else {
    for (auto& [k, v] : ratios) std::printf("ratio %-40s %.2f\n", k.c_str(), v);
  }
  return 0;
}
