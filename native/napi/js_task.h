// A JS task (JsTask): its record, its states and who owns it in each, and every transition
// (js_task.cpp). Part of the JS-task runtime: js_runtime.h (the runtime), js_endpoint.h (the JS
// threads), js_binding.cpp (the N-API surface), wire.h (the bytes that cross).
//
// A JS task is an ordinary core Task whose fn (trampoline) calls the worker's JS dispatcher with
// the task's serialized arguments, so queues, stealing, stats, histograms and sysmon apply
// unchanged. Its life:
//   created (newTask, from its origin's io scratch) -> Queued, owned by the core's queues;
//   Queued -> Running: a P's trampoline won the CAS; owned by that worker's endpoint (its
//     in-flight list, and `awaiting` while an async task is pending);
//   Queued -> Cancelled: an abort (cancelTask) won the CAS; still queued, the P that takes it
//     frees it without running it;
//   Running -> Queued: dispatched to a worker that could not start it (requeue);
//   Running -> Done: its result, error or exit is on its way to the origin endpoint's completion
//     queue (completeWith, reportExited -> deliver), which frees it once JS has read it.
// The core drops a queued task on destroy (droppedTask): freed.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "sched/scheduler.h"
#include "sched/task.h"
#include "wire.h"

namespace hwsq::js {

struct Endpoint;
struct JsRuntime;

// JsTask::state: Queued -> Running (a P took it) -> Done (its result or exit is on its way to
// the origin); Queued -> Cancelled (aborted before it ran); Running -> Queued (requeue).
enum : uint32_t { kQueued = 0, kRunning = 1, kCancelled = 2, kDone = 3 };
constexpr uint32_t kMagic = 0x68777371;  // "hwsq"

// Bytes with a small inline buffer: most payloads (a few numbers / short strings) need no malloc.
class Bytes {
 public:
  Bytes() = default;
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;
  ~Bytes() {
    if (ptr_ != inline_) std::free(ptr_);
  }
  void assign(const uint8_t* src, size_t n) {
    if (n > cap_) {
      void* p = std::malloc(n);
      if (!p) throw std::bad_alloc();
      if (ptr_ != inline_) std::free(ptr_);
      ptr_ = static_cast<uint8_t*>(p);
      cap_ = n;
    }
    if (n) std::memcpy(ptr_, src, n);
    len_ = n;
  }
  const uint8_t* data() const { return ptr_; }
  size_t size() const { return len_; }

 private:
  uint8_t inline_[48];
  uint8_t* ptr_ = inline_;
  size_t len_ = 0;
  size_t cap_ = sizeof(inline_);
};

struct JsTask {
  hwsq::sched::Task task;
  uint32_t magic = kMagic;
  // state decides the race between a P taking the task and an abort (cancelTask): acq_rel CAS
  // on both sides. execWorker, the P running it, is written before the CAS to Running, so an
  // abort whose CAS fails on Running sees it.
  std::atomic<uint32_t> state{kQueued};
  std::atomic<int32_t> execWorker{-1};
  uint32_t fnIndex = 0;
  uint32_t flags = 0;
  int32_t code = hwsq::wire::kCodeOk;
  double seq = 0;  // the origin's promise id
  uint64_t serial = 0;  // unique in its runtime: tells it from a later task at the same address
  JsRuntime* rt = nullptr;
  std::shared_ptr<Endpoint> origin;
  JsTask* prev = nullptr;  // in-flight list of the executing P / completion queue (next only)
  JsTask* next = nullptr;
  Bytes data;  // arguments, then the result or error
};

// A task's handle in JS: its address as a double.
inline double handleOf(JsTask* t) { return static_cast<double>(reinterpret_cast<uintptr_t>(t)); }
// The handle of a task the caller's own bookkeeping says is alive (cancel from its origin).
JsTask* taskOf(double h);

// Creation and submission (from the spawning thread). newTask: a Queued task of rt holding a copy
// of data, counted live (and queued, for a root). submitTask: false when the runtime is closed
// (the task is freed). readBatch: the count spawn-batch records of origin's io scratch as tasks
// (none on a bad record: it throws). submitBatch: all or none; -> how many were queued.
JsTask* newTask(JsRuntime* rt, const std::shared_ptr<Endpoint>& origin, uint32_t fnIndex, double seq, uint32_t flags,
                int node, const uint8_t* data, size_t len);
bool submitTask(JsRuntime* rt, JsTask* t);
std::vector<JsTask*> readBatch(JsRuntime* rt, const std::shared_ptr<Endpoint>& origin, uint32_t count, uint32_t extraFlags);
size_t submitBatch(JsRuntime* rt, std::vector<JsTask*>& tasks, hwsq::sched::SpawnHint hint);

// Running -> Done on ep, the worker running t: r as the dispatcher returns it, the result's
// bytes in ep's io scratch unless given.
void completeWith(Endpoint* ep, JsTask* t, int r, const uint8_t* bytes = nullptr, size_t cap = 0);
// Aborts a task (from its origin's thread): wire.h kCancelRemoved, kCancelFinished, or the P it runs on.
int cancelTask(JsRuntime* rt, JsTask* t);
// A worker's tasks in flight when it goes away: their origins learn they exited.
void reportExited(Endpoint* ep);

}  // namespace hwsq::js
