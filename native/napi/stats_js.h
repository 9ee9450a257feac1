// The scheduler's statistics as plain JS objects (mirrored by the TS type SchedulerStats in
// lib/core/stats.ts). Shared by every glue file that exposes a hwsq::sched::Runtime (the native-task
// runtime in runtime_binding.cpp, the JS-task runtime), which may add fields of their own.
// Units: counts, nanoseconds (`...Ns`), microseconds (`...Us`). Histograms carry quantiles and
// their non-empty buckets, so exporters (Prometheus) can rebuild cumulative `le` buckets.
#pragma once
#include <napi.h>

#include "sched/histogram.h"
#include "sched/stats.h"

namespace hwsq::napi {

// { count, sumNs, meanNs, p50Ns, p90Ns, p99Ns, maxNs, buckets: { lowerNs[], upperNs[], counts[] } }
// (buckets: non-empty only, ascending; [lowerNs, upperNs) in ns, counts not cumulative).
Napi::Object histogramToJs(Napi::Env env, const hwsq::sched::HistogramSnapshot& h);

Napi::Object workerStatsToJs(Napi::Env env, const hwsq::sched::WorkerStats& w);

// Per node: the core's NodeStats plus sums of its Ps' counters (executed, steals, busyNs...).
Napi::Object nodeStatsToJs(Napi::Env env, const hwsq::sched::NodeStats& n, const hwsq::sched::RuntimeStats& s);

// The whole snapshot: { workers[], nodes[], globals..., latency, runTime, sysmon }.
Napi::Object statsToJs(Napi::Env env, const hwsq::sched::RuntimeStats& s);

}  // namespace hwsq::napi
