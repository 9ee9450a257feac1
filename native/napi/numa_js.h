// N-API surface of the NUMA layer (numa_js.cpp): topology, parallelism, affinity and pinning,
// memory policy, node-local allocation and page placement (lib/numa/).
#pragma once
#include <napi.h>

namespace hwsq::napi {

void registerNuma(Napi::Env env, Napi::Object exports);

}  // namespace hwsq::napi
