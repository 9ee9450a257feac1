// Per-P inbox for tasks that must run on one particular P and are never stolen (tasks bound to
// a P's JS isolate, test probes). Producers: any thread; consumer: the owning P only.
// A Treiber stack with "pop everything" on the consumer side: push is one CAS, the consumer
// swaps the whole stack out (no ABA: nodes are never popped one by one from the shared head)
// and reverses it into a private FIFO list, so tasks run in submission order.
#pragma once
#include <atomic>
#include <cstdint>

#include "../invariant.h"
#include "task.h"

namespace hwsq::sched {

class Inbox {
 public:
  // Any thread. Returns true if the inbox was empty (the caller may want to wake the owner).
  bool push(Task* t) {
#if HWSQ_ASSERTS_ENABLED
    depth_.fetch_add(1, std::memory_order_relaxed);  // before the push: pop may see it at once
#endif
    Task* old = head_.load(std::memory_order_relaxed);
    do {
      t->next = old;
      // release: publishes t's fields (and t->next) to the consumer's acquire exchange.
    } while (!head_.compare_exchange_weak(old, t, std::memory_order_release, std::memory_order_relaxed));
    return old == nullptr;
  }

  // Owner only: the oldest pending task, or nullptr.
  Task* pop() {
    if (!local_) {
      if (head_.load(std::memory_order_relaxed) == nullptr) return nullptr;
      Task* lifo = head_.exchange(nullptr, std::memory_order_acquire);
      Task* fifo = nullptr;
      while (lifo) {
        Task* n = lifo->next;
        lifo->next = fifo;
        fifo = lifo;
        lifo = n;
      }
      local_ = fifo;
    }
    Task* t = local_;
    local_ = t->next;
    t->next = nullptr;
#if HWSQ_ASSERTS_ENABLED
    HWSQ_ASSERT(depth_.fetch_sub(1, std::memory_order_relaxed) >= 1, "inbox: more pops than pushes");
#endif
    return t;
  }

  // Owner: exact. Other threads: whether a push is visible (used by the park re-check).
  bool ownerHasWork() const { return local_ != nullptr || head_.load(std::memory_order_acquire) != nullptr; }
  bool sharedNonEmpty() const { return head_.load(std::memory_order_acquire) != nullptr; }

 private:
  alignas(64) std::atomic<Task*> head_{nullptr};  // shared LIFO stack
  Task* local_ = nullptr;                          // owner-private FIFO remainder
#if HWSQ_ASSERTS_ENABLED
  std::atomic<int64_t> depth_{0};                  // pushed - popped (assert builds only)
#endif
};

}  // namespace hwsq::sched
