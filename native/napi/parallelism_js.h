// N-API side of following the cgroup (core: sched/cgroup_watch.h, sched/limit.cpp), shared by
// both runtimes: the config keys that turn the watch on, and the 'parallelism' event carried
// from the core's watch thread to the JS thread that made the runtime.
#pragma once
#include <napi.h>

#include <memory>
#include <mutex>

#include "sched/scheduler.h"

namespace hwsq::napi {

// A thread-safe function to the JS callback `onParallelism({ previous, current, source })`,
// unref'd: it never keeps the event loop alive. post() is for any thread; release() for the JS
// thread once the core has stopped (the watch is stopped first, so nothing posts afterwards).
// Environment teardown finalizes it; later posts and releases are no-ops.
class ParallelismEvents {
 public:
  // nullptr when fn is not a function (no listener wanted).
  static std::shared_ptr<ParallelismEvents> create(Napi::Env env, Napi::Value fn);
  void post(const hwsq::sched::ParallelismChange& c);
  void release();

 private:
  std::mutex mu_;
  bool live_ = false;  // guarded by mu_: the tsfn may be called (not released, not finalized)
  Napi::ThreadSafeFunction tsfn_;
};

// From the runtime config (lib/): `cgroupPollMs` (> 0: follow the cgroup, workers 'auto' only)
// and `cgroupFsroot` (where its files are read; lib passes HWSQ_FSROOT). Sets o.cgroupPollMs,
// o.cgroupFsroot and, with events, o.onParallelism. Returns the poll period (0: off).
uint32_t followCgroup(const Napi::Object& config, hwsq::sched::RuntimeOptions& o, const std::shared_ptr<ParallelismEvents>& events);

}  // namespace hwsq::napi
