// Module init only: each part of the addon registers its own N-API surface.
//   numa_js.cpp        the NUMA layer (lib/numa/)
//   runtime_binding.cpp NativeRuntime (lib/native-runtime/)
//   js_binding.cpp     the JS-task runtime (lib/runtime/; its parts: js_runtime.h), binding.wire (wire.h)
//   probes.cpp         memory and placement probes (hwsq bench)
//   shm_js.cpp         the shared-memory stats file (lib/shm/)
#include <napi.h>

#include "numa_js.h"
#include "runtime_binding.h"
#include "shm_js.h"

namespace hwsq::js {
void registerJsRuntime(Napi::Env env, Napi::Object exports);  // js_binding.cpp
void registerProbes(Napi::Env env, Napi::Object exports);     // probes.cpp
}  // namespace hwsq::js

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  hwsq::napi::registerNuma(env, exports);
  hwsq::napi::initNativeRuntime(env, exports);
  hwsq::js::registerJsRuntime(env, exports);
  hwsq::js::registerProbes(env, exports);
  hwsq::napi::registerShm(env, exports);
  exports.Set("platform", Napi::String::New(env,
#ifdef __linux__
                                            "linux"
#else
                                            "other"
#endif
                                            ));
  return exports;
}

}  // namespace

NODE_API_MODULE(hwsq, Init)
