// Endpoint plumbing of the JS-task runtime (js_endpoint.cpp): how the core and the JS threads
// reach each other. Threads that spawn (the main thread, and workers for nested spawns) and
// threads that run tasks (worker_threads Workers, each attached to one P) are "endpoints"
// (lib/runtime/endpoint.ts is the JS side; the endpoint a task was spawned from is its origin).
//
// Each endpoint's event loop is driven through one uv_async handle: the core's wakeExternal(p)
// and every completion/abort addressed to that thread do uv_async_send; the callback
// (processEndpoint) delivers aborts and completions to JS, then, on a worker, calls
// Runtime::runSome on the thread (drive). Each endpoint has a completion queue (mutex +
// intrusive list; one uv_async_send when it goes non-empty) drained in batches into its `in`
// scratch buffer, which JS reads with one call per batch. The main thread may instead poll its
// queue for a while after a submit (a uv_idle handle, spinForResults).
// A worker that dies: its env cleanup hook (on its own thread) reports its in-flight tasks as
// exited to their origins and detaches the P; the P's queued tasks stay in its queues.
#pragma once
#include <napi.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_set>
#include <utility>
#include <vector>

#include "js_task.h"

namespace hwsq::js {

// The endpoint of the worker thread running this code (nullptr on other threads).
extern thread_local Endpoint* tlEndpoint;

// A JS thread that spawns tasks (the main thread) or runs them (a worker: also spawns nested ones).
struct Endpoint {
  JsRuntime* rt = nullptr;
  int worker = -1;  // P index; -1: the main thread
  double threadId = -1;  // worker: its worker_threads threadId (workerExited names the thread that exited)
  napi_env env = nullptr;

  // Shared with other threads, under mu.
  std::mutex mu;
  bool alive = false;
  uv_async_t* async = nullptr;
  JsTask* doneHead = nullptr;
  JsTask* doneTail = nullptr;
  std::vector<std::pair<JsTask*, uint64_t>> aborts;  // (task, its serial) aborted while running here
  bool polling = false;  // the owner polls its queue (uv_idle): deliveries need no uv_async_send

  // Owner thread only.
  Napi::FunctionReference onCompletions, onAbort, dispatcher;
  Napi::ObjectReference inRef, ioRef, resource;
  napi_async_context asyncCtx = nullptr;
  uint8_t* in = nullptr;  // native -> JS: task arguments, completion records
  size_t inCap = 0;
  uint8_t* io = nullptr;  // JS -> native: spawn arguments, results
  size_t ioCap = 0;
  // Worker: one byte the dispatcher sets right before it calls the task's function; cleared
  // before each dispatch. When the dispatch call fails (the thread is dying), 0 means the task
  // never started.
  uint8_t* started = nullptr;
  Napi::ObjectReference startedRef;
  JsTask* inflight = nullptr;
  JsTask* dispatching = nullptr;          // the task whose function is running now (synchronously)
  std::unordered_set<JsTask*> awaiting;   // async tasks started here and not settled: complete() takes only these
  int activeRoots = 0;    // async root tasks started here and not settled
  bool dying = false;     // a JS call failed (termination): stop running tasks
  bool stopRun = false;   // RunLimits::stop
  bool attached = false;  // worker: attached to the core P
  napi_async_cleanup_hook_handle cleanupHook = nullptr;
  // Main thread: after a submit, poll for completions (a uv_idle handle keeps the event loop from
  // blocking in epoll) until spinUntil, so a quick task's result needs no thread wake-up.
  uv_idle_t* idle = nullptr;
  bool idling = false;
  uint64_t spinUntil = 0;
  std::shared_ptr<Endpoint> selfHold;  // keeps the endpoint until its uv handle is closed

  void signal() {
    std::lock_guard<std::mutex> lk(mu);
    if (alive && async) uv_async_send(async);
  }
  void inflightAdd(JsTask* t) {
    t->prev = nullptr;
    t->next = inflight;
    if (inflight) inflight->prev = t;
    inflight = t;
  }
  void inflightRemove(JsTask* t) {
    if (t->prev) t->prev->next = t->next;
    else inflight = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = t->next = nullptr;
  }
};

// The value of a persistent reference through the C API: nullptr when the env is going away.
// (Napi::Reference::Value() would throw, and these run from uv callbacks and inside core tasks,
// where no C++ exception may escape.)
napi_value refValue(napi_env env, napi_ref ref);

// Hands a finished task to its origin's completion queue (or frees it if the origin is gone).
// Any thread.
void deliver(JsTask* t);
// A JS call failed on ep's thread: this thread stops running tasks.
void jsCallFailed(Endpoint* ep);
// Writes ep's queued completions into its `in` scratch and hands them to JS (ep's thread).
bool drainCompletions(Endpoint* ep);
// Main thread, after a submit: poll for the result for spinNs before blocking.
void spinForResults(Endpoint* ep, uint64_t spinNs);

// Opening and closing, each on the endpoint's own thread. openMainEndpoint: the calling (main)
// thread becomes rt's origin endpoint for root tasks, its handle unref'd (refMainEndpoint).
// openWorkerEndpoint: the calling worker thread attaches to P p (pinning itself) and becomes its
// endpoint (in, io: its scratch buffers; started: the dispatcher's started byte, see
// Endpoint::started; each a Uint8Array, checked in the order attach() always has).
void openMainEndpoint(Napi::Env env, JsRuntime* rt, Napi::Function onCompletions, Napi::Uint8Array in, Napi::Uint8Array io);
void refMainEndpoint(JsRuntime* rt, bool ref);
void openWorkerEndpoint(Napi::Env env, const std::shared_ptr<JsRuntime>& rt, int p, double threadId, Napi::Function dispatcher,
                        Napi::Function onCompletions, Napi::Function onAbort, const Napi::Value& in, const Napi::Value& io,
                        const Napi::Value& started);
void closeEndpoint(Endpoint* ep);
// After the Worker of P p with worker_threads id threadId exited (its thread is joined), from
// the owner's thread: covers a thread that ended without its env cleanup, then reclaims the P.
// Nothing when P p belongs to another (live) worker by now.
void workerExited(JsRuntime* rt, int p, double threadId);

}  // namespace hwsq::js
