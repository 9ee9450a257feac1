// LRQ: the per-P local run queue. A bounded ring of 256 tasks (TaskRef: a light task inline or
// a full Task's pointer) with one producer (the owning P) and many consumers (the owner and
// thieves), plus a one-task `runnext` slot (a full Task: one word, exchanged atomically) for the
// task the running task just spawned. The shape is Go's runq (runqput/runqget/runqgrab/
// runqsteal in runtime/proc.go); the difference is that C++ has no benign races, so slots are
// relaxed atomics (a slot is two of them: ops and arg), which makes the thieves' speculative copy
// well-defined; a copy torn between two owner writes is discarded like any other stale copy.
//
// Indices are free-running uint32 counters (wrap-around is harmless: only differences are used,
// and they never exceed kCapacity).
//   head: next slot to consume. Consumers (owner pop, thieves) advance it only by CAS.
//   tail: next slot to fill. Written only by the owner.
// Invariant: 0 <= tail - head <= kCapacity, as seen by the owner (head only grows).
//
// Why a thief's copy is correct: it loads head (acquire) then tail (acquire), copies slots
// [head, head+n) with relaxed loads, and commits with CAS(head, head+n) (release). The owner
// overwrites slot i+kCapacity only after it has observed head > i (acquire load of head in
// push), i.e. after some consumer's successful CAS moved head past i. If the thief's CAS
// succeeds, head was still at its value, so no slot in its range was reused (the values it read
// are the ones published by the owner's release store of tail); if any was reused, head moved
// and the CAS fails, and the copied values are discarded.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "../invariant.h"
#include "task.h"

namespace hwsq::sched {

class LocalQueue {
 public:
  static constexpr uint32_t kCapacity = 256;
  static constexpr uint32_t kMask = kCapacity - 1;

  LocalQueue() = default;
  LocalQueue(const LocalQueue&) = delete;
  LocalQueue& operator=(const LocalQueue&) = delete;

  // ---- owner only ----

  // Appends t to the ring. Returns false when the ring is full (the caller overflows).
  bool pushBack(TaskRef t) {
    uint32_t h = head_.load(std::memory_order_acquire);  // sync with consumers' CAS: their reads of old slots are done
    uint32_t tl = tail_.load(std::memory_order_relaxed);  // own variable
    HWSQ_ASSERT(tl - h <= kCapacity, "LRQ: more than capacity between head and tail");
    if (tl - h >= kCapacity) return false;
    slots_[tl & kMask].store(t);
    tail_.store(tl + 1, std::memory_order_release);       // publish the slot to consumers
    return true;
  }

  // Appends up to n tasks; returns how many fit (a prefix of ts).
  uint32_t pushBackBatch(const TaskRef* ts, uint32_t n) {
    uint32_t h = head_.load(std::memory_order_acquire);
    uint32_t tl = tail_.load(std::memory_order_relaxed);
    HWSQ_ASSERT(tl - h <= kCapacity, "LRQ: more than capacity between head and tail");
    uint32_t room = kCapacity - (tl - h);
    if (n > room) n = room;
    // Two contiguous runs of slots at most (the ring wraps once): no index masking per task.
    const uint32_t start = tl & kMask;
    const uint32_t first = n < kCapacity - start ? n : kCapacity - start;
    for (uint32_t i = 0; i < first; ++i) slots_[start + i].store(ts[i]);
    for (uint32_t i = first; i < n; ++i) slots_[i - first].store(ts[i]);
    tail_.store(tl + n, std::memory_order_release);
    return n;
  }

  // When the ring is full: takes the older half of it (plus nothing else) into out[] with one
  // CAS, like Go's runqputslow, so the caller can move it to the node/global queue in one batch.
  // Returns the count (kCapacity/2), or 0 if thieves emptied part of the ring meanwhile (retry
  // pushBack then).
  uint32_t grabHalfForOverflow(TaskRef* out) {
    uint32_t h = head_.load(std::memory_order_acquire);
    uint32_t tl = tail_.load(std::memory_order_relaxed);
    uint32_t n = (tl - h) / 2;
    if (n != kCapacity / 2) return 0;  // not full any more
    const uint32_t start = h & kMask;
    const uint32_t first = n < kCapacity - start ? n : kCapacity - start;
    for (uint32_t i = 0; i < first; ++i) out[i] = slots_[start + i].load();
    for (uint32_t i = first; i < n; ++i) out[i] = slots_[i - first].load();
    // acq_rel: release commits our reads of the slots (see the file comment); on failure nothing
    // was taken.
    if (!head_.compare_exchange_strong(h, h + n, std::memory_order_acq_rel, std::memory_order_relaxed)) return 0;
    return n;
  }

  // Puts t in runnext; returns the task it displaced (nullptr if none), which the caller must
  // push to the back of the ring (Go's runqput(next=true)).
  Task* putRunnext(Task* t) {
    // exchange (not a plain store): a thief may concurrently CAS runnext to null; either it got
    // the old task or we did, never both.
    return runnext_.exchange(t, std::memory_order_acq_rel);
  }

  // Takes the runnext task, or nullptr.
  Task* takeRunnext() {
    if (runnext_.load(std::memory_order_relaxed) == nullptr) return nullptr;  // skip the RMW when empty
    return runnext_.exchange(nullptr, std::memory_order_acquire);
  }

  // Pops the oldest ring task (FIFO), or an empty ref. A CAS, because thieves race for the same head.
  TaskRef popFront() {
    uint32_t h = head_.load(std::memory_order_acquire);
    for (;;) {
      uint32_t tl = tail_.load(std::memory_order_relaxed);  // own variable
      if (tl == h) return TaskRef{};
      TaskRef t = slots_[h & kMask].load();
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel, std::memory_order_acquire)) return t;
      // h reloaded by the failed CAS
    }
  }

  // Steals about half of victim's ring into this (the thief's own, EMPTY) ring, like Go's
  // runqsteal: the stolen tasks are written to our slots, one of them is returned to be run
  // now and the rest are published by one release store of our tail. If the victim's ring is
  // empty and stealRunnext, takes the victim's runnext instead. Returns the task to run (nullptr
  // if nothing was stolen) and the number stolen in *count.
  TaskRef stealHalfFrom(LocalQueue& victim, bool stealRunnext, uint32_t* count) {
    uint32_t tl = tail_.load(std::memory_order_relaxed);
    // Only into an empty ring: grabInto writes from our tail on without checking for room, and
    // nobody else can take from an empty ring meanwhile (so head == tail stays true).
    HWSQ_ASSERT(head_.load(std::memory_order_acquire) == tl, "LRQ: steal into a non-empty ring");
    HWSQ_ASSERT(&victim != this, "LRQ: steal from itself");
    uint32_t n = victim.grabInto(slots_, tl, stealRunnext);
    *count = n;
    if (n == 0) return TaskRef{};
    HWSQ_ASSERT(n <= kCapacity / 2, "LRQ: a steal took more than half a ring");
    --n;
    TaskRef t = slots_[(tl + n) & kMask].load();
    if (n != 0) tail_.store(tl + n, std::memory_order_release);
    return t;
  }

  // [owner] The task `ahead` slots past the next to pop, for a prefetch hint only: it may be
  // stale (past the tail, taken by a thief, or torn between two writes) and must never be
  // dereferenced.
  TaskRef peekAhead(uint32_t ahead) const {
    return slots_[(head_.load(std::memory_order_relaxed) + ahead) & kMask].load();
  }

  // ---- any thread (approximate when racing) ----
  uint32_t size() const {
    uint32_t h = head_.load(std::memory_order_acquire);
    uint32_t tl = tail_.load(std::memory_order_acquire);
    uint32_t n = tl - h;
    return n > kCapacity ? 0 : n;  // inconsistent pair (tail read long after head): report 0
  }
  bool hasRunnext() const { return runnext_.load(std::memory_order_acquire) != nullptr; }
  bool hasWork() const { return size() != 0 || hasRunnext(); }

 private:
  // Go's runqgrab: copies half (rounded up) of the ring into dst[dstTail...] and commits with a
  // CAS on head. Called by a thief with its own (empty) ring as dst.
  struct Slot;
  uint32_t grabInto(Slot* dst, uint32_t dstTail, bool stealRunnext) {
    for (;;) {
      uint32_t h = head_.load(std::memory_order_acquire);   // sync with other consumers
      uint32_t tl = tail_.load(std::memory_order_acquire);  // sync with the producer: slots < tl are published
      uint32_t n = tl - h;
      n = n - n / 2;
      if (n == 0) {
        if (!stealRunnext) return 0;
        Task* next = runnext_.load(std::memory_order_acquire);
        if (next == nullptr) return 0;
        if (!runnext_.compare_exchange_strong(next, nullptr, std::memory_order_acq_rel, std::memory_order_relaxed))
          continue;  // the owner took it (or replaced it): look again
        dst[dstTail & kMask].store(TaskRef::full(next));
        return 1;
      }
      if (n > kCapacity / 2) continue;  // h and tl read at different times, inconsistent: retry
      for (uint32_t i = 0; i < n; ++i)
        dst[(dstTail + i) & kMask].store(slots_[(h + i) & kMask].load());
      // release: commits the consume (our slot reads happen-before the owner's reuse of them).
      if (head_.compare_exchange_strong(h, h + n, std::memory_order_acq_rel, std::memory_order_relaxed)) return n;
    }
  }

  alignas(64) std::atomic<uint32_t> head_{0};     // consumers: CAS
  alignas(64) std::atomic<uint32_t> tail_{0};     // owner: store-release
  alignas(64) std::atomic<Task*> runnext_{nullptr};  // owner: exchange; thieves: CAS to null
  // One queued task: two relaxed atomics, ordered by head_/tail_ as the file comment says.
  struct Slot {
    std::atomic<const TaskOps*> ops{nullptr};
    std::atomic<void*> arg{nullptr};
    void store(TaskRef t) {
      ops.store(t.ops, std::memory_order_relaxed);
      arg.store(t.arg, std::memory_order_relaxed);
    }
    TaskRef load() const {
      return TaskRef{ops.load(std::memory_order_relaxed), arg.load(std::memory_order_relaxed)};
    }
  };
  alignas(64) Slot slots_[kCapacity];
};

}  // namespace hwsq::sched
