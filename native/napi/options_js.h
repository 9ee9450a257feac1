// The one options builder of both runtimes: the scheduler config that lib/core/validation.ts
// checked (schedulerConfig: workers, placement, pin, confineToCaller, policy, stats,
// timingSampleShift, sysmon, hogThresholdNs, virtualNodes, virtualWorkersPerNode, numaNode,
// cgroupPollMs, cgroupFsroot) -> the core's RuntimeOptions; and the one way back (workerPlacementToJs). NativeRuntime (runtime_binding.cpp) and the JS runtime
// (js_binding.cpp) both call it, so the same option means the same thing in both.
#pragma once
#include <napi.h>

#include <memory>

#include "sched/scheduler.h"

namespace hwsq::napi {

class ParallelismEvents;

// Throws the core's typed errors (unknown node, CPU not allowed, unknown pin mode...).
// workers 'auto' with cgroupPollMs > 0 follows the cgroup (parallelism_js.h): a P per allowed CPU,
// the watch on; then, when `events` is given and config.onParallelism is a function, *events gets
// the 'parallelism' event's carrier (wired into o.onParallelism), which the caller releases once
// the core has stopped, or at once if the core's constructor throws.
hwsq::sched::RuntimeOptions schedulerOptionsFromJs(const Napi::Object& config, std::shared_ptr<ParallelismEvents>* events = nullptr);

// P p of a built runtime as both runtimes show it to JS: { worker, node, cpus } (cpus [] when
// the Ps are not pinned). NativeRuntime.topology().workers, Runtime.workers and a worker's attach().
Napi::Object workerPlacementToJs(Napi::Env env, const hwsq::sched::RuntimeOptions& options, size_t p);

}  // namespace hwsq::napi
