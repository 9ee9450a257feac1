// HWSQ: the per-NUMA-node run queue (hierarchical work-stealing queue, one per node with Ps).
// It owns both places a node's tasks wait in:
//  - a bounded lock-free MPMC ring (mpmc_ring.h): the fast path, batch claims;
//  - a spill list: an unbounded mutex-protected FIFO (the GRQ's chunked list type) for what does
//    not fit in the ring, so affine tasks never fall back to the node-blind GRQ.
// Everything that takes from a node takes from both (pop), and destroy() empties both (drain):
// the ring and the spill list are one queue, not two structures kept in step by callers.
//
// Order: FIFO within the ring and within the spill list; between them, ring first (tasks go to
// the spill list only while the ring is full), except pop(spillFirst) on fairness ticks so the
// spill list cannot starve behind a ring that keeps refilling.
#pragma once
#include <cstddef>

#include "global_queue.h"
#include "mpmc_ring.h"
#include "task.h"

namespace hwsq::sched {

class Hwsq {
 public:
  explicit Hwsq(size_t ringCapacity) : ring_(ringCapacity) {}
  Hwsq(const Hwsq&) = delete;
  Hwsq& operator=(const Hwsq&) = delete;

  // Takes all n tasks: the ring first, the rest to the spill list.
  void push(const TaskRef* ts, size_t n) {
    const size_t k = ring_.pushBatch(ts, n);
    if (k < n) spill_.pushBatch(ts + k, n - k);
  }
  // Takes what fits in the ring only (GRQ prefetch: work with no affinity is not worth a spill);
  // returns how many.
  size_t pushRing(const TaskRef* ts, size_t n) { return ring_.pushBatch(ts, n); }

  // Pops up to max tasks into out, oldest first from one of the two places (see the file comment);
  // returns the count.
  size_t pop(TaskRef* out, size_t max, bool spillFirst = false) {
    size_t n = spillFirst ? spill_.popBatch(out, max) : 0;
    if (n == 0) n = ring_.popBatch(out, max);
    if (n == 0 && !spillFirst) n = spill_.popBatch(out, max);
    return n;
  }

  // Hands every queued task to drop(TaskRef), ring and spill list; returns how many. For destroy(),
  // after the Ps are gone; tasks pushed concurrently may or may not be seen (callers loop until
  // their counts balance).
  template <class F>
  size_t drain(F&& drop) {
    TaskRef batch[256];
    size_t total = 0;
    for (;;) {
      size_t n = ring_.popBatch(batch, 256);
      if (n == 0) n = spill_.popBatch(batch, 256);
      if (n == 0) return total;
      for (size_t i = 0; i < n; ++i) drop(batch[i]);
      total += n;
    }
  }

  // Tasks queued, ring and spill list (approximate while racing, exact when quiescent).
  size_t size() const { return ring_.size() + spill_.size(); }
  bool empty() const { return size() == 0; }
  size_t ringCapacity() const { return ring_.capacity(); }
  size_t ringRoom() const {
    const size_t used = ring_.size();
    return used < ring_.capacity() ? ring_.capacity() - used : 0;
  }

 private:
  MpmcRing ring_;
  GlobalQueue spill_;
};

}  // namespace hwsq::sched
