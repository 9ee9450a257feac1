// Built-in native task kinds, for probes and benchmarks (callable from JS through the N-API
// layer): noop, spin(ns), touch(buffer), chase(buffer, steps). A NativeTaskArgs is the task's
// `arg`; one args object may be shared by a whole batch (the kinds only read it, and buffers
// are accessed with relaxed atomic loads/stores, so concurrent tasks on one buffer are not a
// data race).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "task.h"

namespace hwsq::sched {

enum class NativeKind : uint32_t { Noop = 0, Spin = 1, Touch = 2, Chase = 3 };

const char* nativeKindName(NativeKind k);
NativeKind parseNativeKind(const std::string& name);  // throws HwsqRangeError ERR_HWSQ_UNKNOWN_TASK_KIND

struct NativeTaskArgs {
  NativeKind kind = NativeKind::Noop;
  uint64_t spinNs = 0;        // Spin: busy-wait this long
  void* buffer = nullptr;     // Touch/Chase: the buffer (Chase: prepared by prepareChase)
  size_t bytes = 0;
  uint64_t steps = 0;         // Chase: dependent loads per task
  // Written by the kinds with relaxed atomic adds only when non-null (benchmarks pass null).
  uint64_t* sink = nullptr;
};

// TaskFn for every kind: arg is a NativeTaskArgs*.
void runNativeTask(void* arg);
// The task function of one kind (so a Task can skip the dispatch switch).
TaskFn nativeTaskFn(NativeKind k);

// The kinds as plain functions (also used directly by tests/benches).
void spinFor(uint64_t ns);
uint64_t touchBuffer(void* buffer, size_t bytes);               // +1 to the first word of every cache line
uint64_t chaseBuffer(const void* buffer, size_t bytes, uint64_t steps);  // returns the final index
// Fills buffer with a single random cycle over its cache lines (Sattolo's algorithm), one
// uint64 line index in the first word of each line, so chase visits every line before repeating.
void prepareChase(void* buffer, size_t bytes, uint64_t seed);

}  // namespace hwsq::sched
