#include "parker.h"

#include "fence.h"

#include <chrono>
#include <thread>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

namespace hwsq::sched {

#ifdef __linux__
void futexWait(std::atomic<uint32_t>& addr, uint32_t expected, int64_t timeoutNs) {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex word layout");
  struct timespec ts;
  struct timespec* tsp = nullptr;
  if (timeoutNs >= 0) {
    ts.tv_sec = static_cast<time_t>(timeoutNs / 1000000000);
    ts.tv_nsec = static_cast<long>(timeoutNs % 1000000000);
    tsp = &ts;
  }
  // FUTEX_WAIT re-checks *addr == expected atomically with going to sleep in the kernel, which
  // is what makes check-then-sleep race-free. EINTR/EAGAIN/ETIMEDOUT all just return.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&addr), FUTEX_WAIT_PRIVATE, expected, tsp, nullptr, 0);
}
void futexWake(std::atomic<uint32_t>& addr, int count) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&addr), FUTEX_WAKE_PRIVATE, count < 0 ? INT32_MAX : count, nullptr, nullptr, 0);
}

void Parker::park(int64_t timeoutNs) {
  // Consume a pending token without sleeping.
  uint32_t s = kNotified;
  if (state_.compare_exchange_strong(s, kEmpty, std::memory_order_acquire, std::memory_order_relaxed)) return;
  // s == kEmpty here (only the owner sets kParked). Announce we are going to sleep.
  if (!state_.compare_exchange_strong(s, kParked, std::memory_order_acquire, std::memory_order_acquire)) {
    // unpark() slipped in between: s == kNotified, read with acquire. Consume it.
    state_.store(kEmpty, std::memory_order_relaxed);
    return;
  }
  // Sleep while the state is still kParked; unpark() changes it before waking us.
  futexWait(state_, kParked, timeoutNs);
  // Woken, timed out or spurious: go back to kEmpty either way; swap tells whether a token came.
  state_.exchange(kEmpty, std::memory_order_acquire);
}

void Parker::unpark() {
  if (state_.exchange(kNotified, std::memory_order_release) == kParked) futexWake(state_, 1);
}
#else
void futexWait(std::atomic<uint32_t>& addr, uint32_t expected, int64_t timeoutNs) {
  // Portable fallback: short sleeps (used only by WaitGroup/idle waits, which re-check).
  auto limit = timeoutNs >= 0 ? std::chrono::nanoseconds(timeoutNs) : std::chrono::nanoseconds(50000);
  if (limit > std::chrono::microseconds(50)) limit = std::chrono::microseconds(50);
  if (addr.load(std::memory_order_acquire) == expected) std::this_thread::sleep_for(limit);
}
void futexWake(std::atomic<uint32_t>&, int) {}

void Parker::park(int64_t timeoutNs) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!token_) {
    if (timeoutNs >= 0) cv_.wait_for(lk, std::chrono::nanoseconds(timeoutNs), [&] { return token_; });
    else cv_.wait(lk, [&] { return token_; });
  }
  token_ = false;
}
void Parker::unpark() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    token_ = true;
  }
  cv_.notify_one();
}
#endif

void WaitGroup::done(int64_t n) {
  // acq_rel: the waiter that sees zero (acquire) sees every completed task's effects.
  if (count_.fetch_sub(n, std::memory_order_acq_rel) == n) {
    epoch_.fetch_add(1, std::memory_order_release);
    // seq_cst pairs with the waiter's seq_cst increment of waiters_ + re-check of count_ in
    // wait(): either we see the waiter and wake it, or it sees count_ == 0 and does not sleep.
    storeLoadFence();
    if (waiters_.load(std::memory_order_relaxed) != 0) futexWake(epoch_, -1);
  }
}

void WaitGroup::wait() {
  for (int spin = 0; spin < 200; ++spin) {
    if (count_.load(std::memory_order_acquire) <= 0) return;
    std::this_thread::yield();
  }
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  for (;;) {
    uint32_t e = epoch_.load(std::memory_order_acquire);
    storeLoadFence();
    if (count_.load(std::memory_order_acquire) <= 0) break;
    futexWait(epoch_, e, 100 * 1000 * 1000);  // the epoch check inside the kernel closes the race
  }
  waiters_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace hwsq::sched
