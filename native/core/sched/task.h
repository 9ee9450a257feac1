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
#include <type_traits>

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

// A light task (Runtime::spawnLight): what a pooled Task carries when its callbacks all take the
// same argument, its affinity was honoured at submit and it has no timestamp, kept in the queue
// slot itself (TaskRef) instead of a 64-byte Task. The pointer names the behaviour, shared by
// every task of a kind.
using TaskDoneManyFn = void (*)(void* arg, uint64_t n);

struct TaskOps {
  TaskFn run = nullptr;     // required: run(arg)
  TaskFn done = nullptr;    // optional: done(arg) right after run, as Task::done
  TaskFn cancel = nullptr;  // optional: cancel(arg) if destroy() drops the task
  // Optional, instead of done: completions coalesced per P. A P that runs k tasks of these ops
  // and this arg in a row calls doneMany(arg, k) once (k <= kMaxCoalescedDone), before it runs
  // any other task and before it looks for work beyond its own queues, parks or stops; the
  // tasks count as executed then. For fan-outs whose completion is one shared counter: one
  // atomic update per run of tasks instead of one per task (a cache line that both cores
  // write at every task costs more than a no-op task).
  TaskDoneManyFn doneMany = nullptr;
};
constexpr uint64_t kMaxCoalescedDone = 256;

// What every run queue slot holds, 16 bytes: a light task inline ({ops, arg}), or a full Task
// ({nullptr, Task*}). Queued tasks are read once, by the P that runs them: carrying fn and arg in
// the slot spares that P a miss on a line the spawning core wrote (and the pool the line's trip
// back), which for a no-op task is most of its cost once thousands are queued.
struct TaskRef {
  // No default member initializers: arrays of TaskRef (batch scratch, GRQ chunks) stay
  // uninitialized until written, as the pointer arrays they replace did. TaskRef{} is empty.
  const TaskOps* ops;
  void* arg;

  TaskRef() = default;
  TaskRef(Task* t) : ops(nullptr), arg(t) {}  // NOLINT(google-explicit-constructor): every Task* is a (full) TaskRef
  TaskRef(const TaskOps* o, void* a) : ops(o), arg(a) {}
  static TaskRef full(Task* t) { return TaskRef(t); }
  static TaskRef light(const TaskOps* o, void* a) { return TaskRef(o, a); }
  friend bool operator==(TaskRef a, TaskRef b) { return a.ops == b.ops && a.arg == b.arg; }
  friend bool operator!=(TaskRef a, TaskRef b) { return !(a == b); }
  // The full Task, or nullptr for a light task (or an empty ref).
  Task* task() const { return ops ? nullptr : static_cast<Task*>(arg); }
  bool isLight() const { return ops != nullptr; }
  explicit operator bool() const { return ops != nullptr || arg != nullptr; }
};
static_assert(sizeof(TaskRef) == 16, "TaskRef is two words");
static_assert(std::is_trivially_copyable<TaskRef>::value, "queues move TaskRefs with memcpy");

enum TaskFlags : uint32_t {
  kTaskPooled = 1u << 0,      // allocated by allocTask; freed by the runtime after it ran / was dropped
  kTaskLight = 1u << 1,       // a timed light task carried by a full Task: doneArg is its TaskOps
};

// The TaskOps of a light task (inline, or a timed one carried by a full Task); nullptr for a
// full task.
inline const TaskOps* lightOpsOf(TaskRef ref) {
  const Task* const t = ref.task();
  if (!t) return ref.ops;
  return (t->flags & kTaskLight) ? static_cast<const TaskOps*>(t->doneArg) : nullptr;
}

}  // namespace hwsq::sched
