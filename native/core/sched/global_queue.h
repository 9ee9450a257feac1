// GRQ: the runtime's global run queue. Unbounded FIFO of tasks (TaskRef) for tasks with no
// affinity, LRQ/HWSQ overflow and submissions from outside threads. A mutex around a list of
// fixed-size chunks of them: batches move with memcpy under the lock (no pointer chasing
// through task memory while holding it), and an atomic size lets empty checks skip the lock.
// Consumers take a bounded share, like Go's globrunqget: size/nprocs + 1, capped.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "task.h"

namespace hwsq::sched {

class GlobalQueue {
 public:
  GlobalQueue() = default;
  ~GlobalQueue();
  GlobalQueue(const GlobalQueue&) = delete;
  GlobalQueue& operator=(const GlobalQueue&) = delete;

  void push(TaskRef t) { pushBatch(&t, 1); }
  void pushBatch(const TaskRef* ts, size_t n);

  // Pops min(size, max) tasks, oldest first.
  size_t popBatch(TaskRef* out, size_t max);
  // Pops a fair share for one of nprocs consumers: min(size, size/nprocs + 1, max).
  size_t popShare(TaskRef* out, size_t nprocs, size_t max);

  // size_ is written under mu_ (release) and read without it (acquire) for cheap emptiness
  // checks; it is exact whenever no push/pop is in progress.
  size_t size() const { return size_.load(std::memory_order_acquire); }
  bool empty() const { return size() == 0; }

 private:
  struct Chunk {
    static constexpr size_t kItems = 255;  // 4 KiB chunks
    Chunk* next = nullptr;
    TaskRef items[kItems];
  };
  static constexpr int kLockSpins = 200;
  std::unique_lock<std::mutex> lock();
  size_t popLocked(TaskRef* out, size_t n, Chunk** toFree);
  Chunk* newChunkLocked(Chunk** fresh);
  void retireChunkLocked(Chunk* c, Chunk** toFree);
  static void freeChunks(Chunk* list);

  std::mutex mu_;
  Chunk* head_ = nullptr;    // chunk holding the oldest task (guarded by mu_)
  Chunk* tail_ = nullptr;    // chunk receiving pushes (guarded by mu_)
  size_t headIdx_ = 0;       // next item to pop in head_ (guarded by mu_)
  size_t tailIdx_ = 0;       // next free item in tail_ (guarded by mu_)
  // Emptied chunks kept for the next growth (guarded by mu_), up to kMaxSpareChunks: a queue
  // that fills and drains again (bursts) would otherwise take every chunk from malloc anew and
  // fault its pages in again. What malloc must provide (or take back) is allocated (freed)
  // outside the lock: a page fault in the critical section made the other Ps' spins run out
  // and sleep on the futex, and the queue convoyed.
  static constexpr size_t kMaxSpareChunks = 2048;  // 8 MiB, ~520k tasks
  Chunk* spares_ = nullptr;
  std::atomic<size_t> spareCount_{0};  // written under mu_; read without it as a hint
  size_t count_ = 0;         // exact size (guarded by mu_)
  alignas(64) std::atomic<size_t> size_{0};
};

}  // namespace hwsq::sched
