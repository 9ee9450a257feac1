// Allocation of runtime-owned tasks (Runtime::spawn, the JS layer's batches) without malloc on
// the hot path. Tasks are usually allocated on one thread (the submitter) and freed on another
// (a P's), so each thread keeps a small free list and trades whole batches with a global
// depot under a mutex -- the transfer-cache shape of tcmalloc, reduced to one size class.
#pragma once
#include <cstddef>

#include "task.h"

namespace hwsq::sched {

// Returns a default-initialized Task with flags = kTaskPooled. Throws std::bad_alloc.
Task* allocTask();
// Fills out[0..n) with n pooled copies of proto (flags = kTaskPooled), with one thread-cache
// access for all (the batch paths). All or nothing: throws std::bad_alloc having allocated none.
void allocTasks(Task** out, size_t n, const Task& proto);
// Returns a pooled task to the calling thread's cache. Only for tasks from allocTask.
void freeTask(Task* t);

// Pool figures for tests: tasks held in the global depot, slabs ever allocated.
struct TaskPoolInfo { size_t depotTasks; size_t slabs; };
TaskPoolInfo taskPoolInfo();

}  // namespace hwsq::sched
