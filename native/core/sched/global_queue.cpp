#include "global_queue.h"

#include <algorithm>
#include <cstring>

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
  Chunk* c = head_;
  while (c) {
    Chunk* n = c->next;
    delete c;
    c = n;
  }
  while (spares_) {
    Chunk* n = spares_->next;
    delete spares_;
    spares_ = n;
  }
}

GlobalQueue::Chunk* GlobalQueue::newChunkLocked() {
  Chunk* c = spares_;
  if (c) {
    spares_ = c->next;
    --spareCount_;
  } else {
    c = new Chunk();
  }
  c->next = nullptr;
  return c;
}

void GlobalQueue::retireChunkLocked(Chunk* c) {
  if (spareCount_ >= kMaxSpareChunks) {
    delete c;
    return;
  }
  c->next = spares_;
  spares_ = c;
  ++spareCount_;
}

void GlobalQueue::pushBatch(const TaskRef* ts, size_t n) {
  if (n == 0) return;
  std::unique_lock<std::mutex> lk = lock();
  if (!tail_) {
    head_ = tail_ = newChunkLocked();
    headIdx_ = tailIdx_ = 0;
  }
  while (n > 0) {
    if (tailIdx_ == Chunk::kItems) {
      Chunk* c = newChunkLocked();
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
}

size_t GlobalQueue::popLocked(TaskRef* out, size_t n) {
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
      retireChunkLocked(old);
    }
  }
  count_ -= n;
  if (count_ == 0 && head_) headIdx_ = tailIdx_ = 0, head_ = tail_;  // reuse the chunk from its start
  size_.store(count_, std::memory_order_release);
  return n;
}

size_t GlobalQueue::popBatch(TaskRef* out, size_t max) {
  if (max == 0 || empty()) return 0;
  std::unique_lock<std::mutex> lk = lock();
  return popLocked(out, max);
}

size_t GlobalQueue::popShare(TaskRef* out, size_t nprocs, size_t max) {
  if (max == 0 || empty()) return 0;
  std::unique_lock<std::mutex> lk = lock();
  size_t n = count_ / (nprocs ? nprocs : 1) + 1;
  return popLocked(out, std::min(n, max));
}

}  // namespace hwsq::sched
