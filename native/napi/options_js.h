// The one options builder of both runtimes: the scheduler config that lib/core/validation.ts
// checked (schedulerConfig: workers, placement, pin, confineToCaller, policy, stats,
// timingSampleShift, sysmon, hogThresholdNs, virtualNodes, virtualWorkersPerNode, numaNode) ->
// the core's RuntimeOptions. NativeRuntime (runtime_binding.cpp) and the JS runtime
// (js_runtime.cpp) both call it, so the same option means the same thing in both.
#pragma once
#include <napi.h>

#include "sched/scheduler.h"

namespace hwsq::napi {

// Throws the core's typed errors (unknown node, CPU not allowed, unknown pin mode...).
hwsq::sched::RuntimeOptions schedulerOptionsFromJs(const Napi::Object& config);

}  // namespace hwsq::napi
