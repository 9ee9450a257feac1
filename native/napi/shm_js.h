// N-API side of the shared-memory stats file (native/core/shm): registering a runtime with the
// process's publisher from its config, and reading another process's file.
#pragma once
#include <napi.h>

#include <functional>

#include "sched/scheduler.h"
#include "shm/publisher.h"

namespace hwsq::napi {

// Publishes rt when the runtime config (lib/) carries `shm: { dir, intervalMs, strings }`
// (absent or false: publishing is off). Never throws: publishing must not fail a runtime (a
// thread that cannot start leaves it unpublished; file trouble is in status().error).
hwsq::shm::Registration publishIfEnabled(const Napi::Object& config, const hwsq::sched::Runtime& rt, hwsq::shm::RuntimeKind kind,
                                         std::function<hwsq::shm::JsTaskCounts()> jsTasks = {});

// exports.shm = { read(path, pid) -> the file as JS values, status() -> the publisher's state }.
void registerShm(Napi::Env env, Napi::Object exports);

}  // namespace hwsq::napi
