// The bounded multi-producer multi-consumer ring of tasks (TaskRef), with batch push and pop, that
// holds a node's tasks in its HWSQ (hwsq.h; what does not fit goes to the HWSQ's spill list).
// It combines two known designs:
//  - ticketed range claims: a producer claims k consecutive positions with one CAS on tail,
//    a consumer claims k positions with one CAS on head, so a batch costs one contended RMW;
//  - Dmitry Vyukov's bounded MPMC queue's per-slot sequence numbers, which hand each slot from
//    its producer to its consumer (and back, one lap later) without locks.
//
// Positions are free-running uint64 counters (no wrap in practice). Slot s = pos & mask.
//   seq == pos            slot free for the producer of position pos
//   seq == pos + 1        slot holds the task of position pos (published)
//   seq == pos + capacity slot consumed, free for the producer of position pos + capacity
// Invariant: head <= tail (a consumer claims only positions below a tail it read), and
// tail - head <= capacity (a producer claims only positions below head + capacity).
//
// Why it is correct: a claimed position has exactly one owner (the CAS winner). A producer that
// claimed pos may find the slot still held by the consumer of pos - capacity (claimed, not yet
// released) and waits for seq == pos; a consumer that claimed pos may find its producer not yet
// done and waits for seq == pos + 1. The release store of seq after writing/reading the task and
// the acquire load before it give the happens-before for the task pointer, so the plain `task`
// field (two words) is never accessed concurrently. The waits are bounded by another thread's few
// instructions between its CAS and its seq store (like Vyukov's queue, it is not lock-free in
// the strict sense if that thread is descheduled right there; we spin, then yield).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <thread>

#include "../invariant.h"
#include "cpu_relax.h"
#include "task.h"

namespace hwsq::sched {

class MpmcRing {
 public:
  explicit MpmcRing(size_t capacity = 4096) {
    if (capacity < 2 || (capacity & (capacity - 1)) != 0) throw std::invalid_argument("MpmcRing capacity must be a power of two >= 2");
    cap_ = capacity;
    mask_ = capacity - 1;
    slots_.reset(new Slot[capacity]);
    for (size_t i = 0; i < capacity; ++i) slots_[i].seq.store(i, std::memory_order_relaxed);
  }
  MpmcRing(const MpmcRing&) = delete;
  MpmcRing& operator=(const MpmcRing&) = delete;

  size_t capacity() const { return cap_; }

  // Pushes a prefix of ts[0..n); returns how many were pushed (less than n when full).
  size_t pushBatch(const TaskRef* ts, size_t n) {
    if (n == 0) return 0;
    uint64_t pos = tail_.load(std::memory_order_relaxed);
    uint64_t h;
    size_t k;
    for (;;) {
      h = head_.load(std::memory_order_acquire);
      if (static_cast<int64_t>(pos - h) < 0) {  // our tail is older than head: reload
        pos = tail_.load(std::memory_order_relaxed);
        continue;
      }
      uint64_t used = pos - h;
      if (used >= cap_) {
        // Looks full. pos may be stale (other producers moved on, consumers too); confirm.
        uint64_t fresh = tail_.load(std::memory_order_relaxed);
        if (fresh == pos) return 0;
        pos = fresh;
        continue;
      }
      k = n < cap_ - used ? n : static_cast<size_t>(cap_ - used);
      // relaxed: the claim only needs atomicity; slot sequences carry the data ordering.
      if (tail_.compare_exchange_weak(pos, pos + k, std::memory_order_relaxed, std::memory_order_relaxed)) break;
    }
    // pos was the tail when we claimed, h a head from before (heads only grow).
    HWSQ_ASSERT(pos + k - h <= cap_, "MPMC ring: a producer claimed beyond capacity");
    for (size_t i = 0; i < k; ++i) {
      Slot& s = slots_[(pos + i) & mask_];
      waitFor(s.seq, pos + i, pos + i);  // previous lap's consumer has finished reading
      s.task = ts[i];
      s.seq.store(pos + i + 1, std::memory_order_release);  // publish to this position's consumer
    }
    return k;
  }
  bool push(TaskRef t) { return pushBatch(&t, 1) == 1; }

  // Pops up to max tasks (oldest first) into out; returns the count.
  size_t popBatch(TaskRef* out, size_t max) {
    if (max == 0) return 0;
    uint64_t pos = head_.load(std::memory_order_relaxed);
    uint64_t t;
    size_t k;
    for (;;) {
      t = tail_.load(std::memory_order_acquire);
      if (static_cast<int64_t>(t - pos) <= 0) {
        uint64_t fresh = head_.load(std::memory_order_relaxed);
        if (fresh == pos) return 0;  // empty
        pos = fresh;
        continue;
      }
      uint64_t avail = t - pos;
      k = max < avail ? max : static_cast<size_t>(avail);
      if (head_.compare_exchange_weak(pos, pos + k, std::memory_order_relaxed, std::memory_order_relaxed)) break;
    }
    // pos was the head when we claimed, t a tail from before (tails only grow): tail - head never
    // exceeds the capacity.
    HWSQ_ASSERT(t - pos <= cap_, "MPMC ring: more than capacity between head and tail");
    for (size_t i = 0; i < k; ++i) {
      Slot& s = slots_[(pos + i) & mask_];
      waitFor(s.seq, pos + i + 1, pos + i);  // this position's producer has published
      out[i] = s.task;
      s.seq.store(pos + i + cap_, std::memory_order_release);  // hand the slot to the next lap's producer
    }
    return k;
  }
  TaskRef pop() {
    TaskRef t;
    return popBatch(&t, 1) ? t : TaskRef{};
  }

  // Approximate depth (exact when quiescent).
  size_t size() const {
    uint64_t h = head_.load(std::memory_order_acquire);
    uint64_t t = tail_.load(std::memory_order_acquire);
    return static_cast<int64_t>(t - h) > 0 ? static_cast<size_t>(t - h) : 0;
  }

 private:
  struct Slot {
    std::atomic<uint64_t> seq{0};
    TaskRef task;  // guarded by seq (see the file comment)
  };

  // Waits for a slot's sequence to reach `want`. pos: the position claimed. While waiting, the
  // sequence is an earlier value of this slot -- free or published for an earlier lap
  // (pos - k * capacity, + 1: a producer or consumer of that lap is still at work, possibly
  // several laps back when threads are descheduled), or this lap's pos for a consumer --
  // never beyond want, which would mean two owners of one position.
  void waitFor(const std::atomic<uint64_t>& seq, uint64_t want, uint64_t pos) const {
    for (int spin = 0;; ++spin) {
      const uint64_t s = seq.load(std::memory_order_acquire);
      if (s == want) return;
      HWSQ_ASSERT(static_cast<int64_t>(want - s) > 0 && ((s - pos) & mask_) <= 1,
                  "MPMC ring: slot sequence out of its lap");
      (void)pos;
      if (spin < 64) cpuRelax();
      else std::this_thread::yield();
    }
  }

  alignas(64) std::atomic<uint64_t> head_{0};  // next position to consume; consumers CAS
  alignas(64) std::atomic<uint64_t> tail_{0};  // next position to fill; producers CAS
  alignas(64) size_t cap_ = 0;
  size_t mask_ = 0;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace hwsq::sched
