// The one options builder of both runtimes: the scheduler config that lib/core/validation.ts
// checked (schedulerConfig: workers, placement, pin, confineToCaller, policy, stats,
// timingSampleShift, sysmon, hogThresholdNs, virtualNodes, virtualWorkersPerNode, numaNode) ->
// the core's RuntimeOptions; and the one way back (workerPlacementToJs). NativeRuntime (runtime_binding.cpp) and the JS runtime
// (js_binding.cpp) both call it, so the same option means the same thing in both.
#pragma once
#include <napi.h>

#include "sched/scheduler.h"

namespace hwsq::napi {

// Throws the core's typed errors (unknown node, CPU not allowed, unknown pin mode...).
hwsq::sched::RuntimeOptions schedulerOptionsFromJs(const Napi::Object& config);

// P p of a built runtime as both runtimes show it to JS: { worker, node, cpus } (cpus [] when
// the Ps are not pinned). NativeRuntime.topology().workers, Runtime.workers and a worker's attach().
Napi::Object workerPlacementToJs(Napi::Env env, const hwsq::sched::RuntimeOptions& options, size_t p);

}  // namespace hwsq::napi
