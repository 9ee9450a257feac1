// A task (the "G" of the G-P-M model): a function pointer and its argument, an optional node
// affinity, optional completion and cancel callbacks, the submit timestamp for the latency
// histogram and an intrusive link. One cache line, so arrays of tasks never false-share.
//
// Ownership: the caller owns a Task it submits and must keep it alive until it has run (or
// been cancelled). The runtime copies what it needs out of the Task before calling fn and
// never touches it after fn returns -- except a pooled task (allocTask/Runtime::spawn), which the
// runtime frees after done. So fn or done may free or reuse a caller-owned task.
#pragma once
#include <cstdint>

namespace hwsq::sched {

using TaskFn = void (*)(void* arg);

struct alignas(64) Task {
  Task* next = nullptr;       // intrusive link (inbox stack, pool free lists); runtime-owned while queued
  TaskFn fn = nullptr;        // the work; required
  void* arg = nullptr;        // fn's argument
  TaskFn done = nullptr;      // optional: called as done(doneArg) on the P's thread right after fn
  TaskFn cancel = nullptr;    // optional: called as cancel(doneArg) if destroy() drops the task
  void* doneArg = nullptr;
  uint64_t submitTicks = 0;   // set by the runtime at submit when stats are on (0 = unknown)
  int32_t node = -1;          // affinity: OS NUMA node id, -1 = none
  uint32_t flags = 0;         // runtime-private (TaskFlags)

  Task() = default;
  Task(TaskFn f, void* a, int32_t nodeId = -1) : fn(f), arg(a), node(nodeId) {}
};
static_assert(sizeof(Task) == 64, "Task is one cache line");

// How many tasks ahead the task pool and the LRQ prefetch a task's line (enough misses in flight
// to cover a cross-core transfer at a few ns per task).
constexpr uint32_t kTaskPrefetchDistance = 8;

enum TaskFlags : uint32_t {
  kTaskPooled = 1u << 0,      // allocated by allocTask; freed by the runtime after it ran / was dropped
};

}  // namespace hwsq::sched
