#include "global_queue.h"

#include <algorithm>
#include <cstring>

#include "../invariant.h"
#include "cpu_relax.h"

namespace hwsq::sched {

// Critical sections are a memcpy of a few hundred tasks (16 bytes each) at most: spin about that long before
// sleeping in the kernel (a futex wait plus its wake cost microseconds on a loaded machine, and
// the holder is usually running on another CPU).
std::unique_lock<std::mutex> GlobalQueue::lock() {
  for (int i = 0; i < kLockSpins; ++i) {
    if (mu_.try_lock()) return std::unique_lock<std::mutex>(mu_, std::adopt_lock);
    cpuRelax();
  }
  return std::unique_lock<std::mutex>(mu_);
}

GlobalQueue::~GlobalQueue() {
  freeChunks(head_);
  freeChunks(spares_);
}

void GlobalQueue::freeChunks(Chunk* list) {
  while (list) {
    Chunk* n = list->next;
    delete list;
    list = n;
  }
}

// A spare, else one of `fresh` (allocated by the caller before it locked: pushBatch makes sure
// there are enough).
GlobalQueue::Chunk* GlobalQueue::newChunkLocked(Chunk** fresh) {
  Chunk* c = spares_;
  if (c) {
    spares_ = c->next;
    spareCount_.store(spareCount_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  } else {
    c = *fresh;
    HWSQ_ASSERT(c != nullptr, "GRQ: a push ran out of the chunks it counted");
    *fresh = c->next;
  }
  c->next = nullptr;
  return c;
}

// Keeps c as a spare, or adds it to *toFree for the caller to delete once it unlocked.
void GlobalQueue::retireChunkLocked(Chunk* c, Chunk** toFree) {
  const size_t spares = spareCount_.load(std::memory_order_relaxed);
  if (spares >= kMaxSpareChunks) {
    c->next = *toFree;
    *toFree = c;
    return;
  }
  c->next = spares_;
  spares_ = c;
  spareCount_.store(spares + 1, std::memory_order_relaxed);
}

// All or nothing: the chunks it needs beyond the spares are allocated before locking (a
// std::bad_alloc leaves the queue as it was), and again if other pushes took the spares meanwhile.
void GlobalQueue::pushBatch(const TaskRef* ts, size_t n) {
  if (n == 0) return;
  Chunk* fresh = nullptr;
  size_t freshCount = 0;
  Chunk* toFree = nullptr;
  for (;;) {
    size_t missing = 0;
    {
      std::unique_lock<std::mutex> lk = lock();
      const size_t room = tail_ ? Chunk::kItems - tailIdx_ : 0;
      const size_t need = n > room ? (n - room + Chunk::kItems - 1) / Chunk::kItems : 0;
      const size_t have = spareCount_.load(std::memory_order_relaxed) + freshCount;
      if (need > have) {
        missing = need - have;
      } else {
        if (!tail_) {
          head_ = tail_ = newChunkLocked(&fresh);
          headIdx_ = tailIdx_ = 0;
        }
        while (n > 0) {
          if (tailIdx_ == Chunk::kItems) {
            Chunk* c = newChunkLocked(&fresh);
            tail_->next = c;
            tail_ = c;
            tailIdx_ = 0;
          }
          size_t k = std::min(n, Chunk::kItems - tailIdx_);
          std::memcpy(&tail_->items[tailIdx_], ts, k * sizeof(TaskRef));
          tailIdx_ += k;
          ts += k;
          n -= k;
          count_ += k;
        }
        size_.store(count_, std::memory_order_release);
        while (fresh) {  // unused: spares for the next push
          Chunk* c = fresh;
          fresh = c->next;
          retireChunkLocked(c, &toFree);
        }
      }
    }
    if (missing == 0) break;
    try {
      for (; missing > 0; --missing, ++freshCount) {
        Chunk* c = new Chunk;
        c->next = fresh;
        fresh = c;
      }
    } catch (...) {
      freeChunks(fresh);
      throw;
    }
  }
  freeChunks(toFree);
}

size_t GlobalQueue::popLocked(TaskRef* out, size_t n, Chunk** toFree) {
  n = std::min(n, count_);
  size_t done = 0;
  while (done < n) {
    size_t inChunk = (head_ == tail_ ? tailIdx_ : Chunk::kItems) - headIdx_;
    size_t k = std::min(n - done, inChunk);
    std::memcpy(out + done, &head_->items[headIdx_], k * sizeof(TaskRef));
    headIdx_ += k;
    done += k;
    if (headIdx_ == Chunk::kItems && head_ != tail_) {
      Chunk* old = head_;
      head_ = head_->next;
      headIdx_ = 0;
      retireChunkLocked(old, toFree);
    }
  }
  count_ -= n;
  if (count_ == 0 && head_) headIdx_ = tailIdx_ = 0, head_ = tail_;  // reuse the chunk from its start
  size_.store(count_, std::memory_order_release);
  return n;
}

size_t GlobalQueue::popBatch(TaskRef* out, size_t max) {
  if (max == 0 || empty()) return 0;
  Chunk* toFree = nullptr;
  size_t n;
  {
    std::unique_lock<std::mutex> lk = lock();
    n = popLocked(out, max, &toFree);
  }
  freeChunks(toFree);
  return n;
}

size_t GlobalQueue::popShare(TaskRef* out, size_t nprocs, size_t max) {
  if (max == 0 || empty()) return 0;
  Chunk* toFree = nullptr;
  size_t n;
  {
    std::unique_lock<std::mutex> lk = lock();
    n = popLocked(out, std::min(count_ / (nprocs ? nprocs : 1) + 1, max), &toFree);
  }
  freeChunks(toFree);
  return n;
}

}  // namespace hwsq::sched
