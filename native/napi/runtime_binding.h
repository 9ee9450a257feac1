// N-API surface of the scheduler core for native tasks (lib/native-runtime/native-runtime.ts): the
// NativeRuntime class (create / spawn native task kinds / stats / topology / idle / close /
// destroy), prepareChase and benchSpawn (the C++ spawn loop, in-process, for `hwsq bench spawn`).
#pragma once
#include <napi.h>

namespace hwsq::napi {

// Adds NativeRuntime, prepareChase and benchSpawn to exports.
void initNativeRuntime(Napi::Env env, Napi::Object exports);

}  // namespace hwsq::napi
