// Parking a thread (a thread-backed P's, sysmon's): a one-token binary semaphore (the protocol of Rust's std futex
// parker). unpark() leaves a token if the thread is not parked, so a wake that races ahead of
// park() is never lost: park() consumes the token and returns at once. park() may also return
// spuriously; callers re-check their condition.
// Linux: a futex on the state word. Elsewhere: a mutex + condition variable.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace hwsq::sched {

// Thin futex wrappers on a 32-bit atomic (Linux); portable fallbacks poll/sleep briefly.
// futexWait returns when *addr != expected, on a wake, on timeout (timeoutNs < 0: none) or spuriously.
void futexWait(std::atomic<uint32_t>& addr, uint32_t expected, int64_t timeoutNs = -1);
void futexWake(std::atomic<uint32_t>& addr, int count);  // count < 0: all

class Parker {
 public:
  // Blocks until a token is available (consuming it), the timeout elapses (timeoutNs >= 0),
  // or spuriously. Owner thread only.
  void park(int64_t timeoutNs = -1);
  // Makes a token available and wakes the owner if it is parked. Any thread.
  void unpark();

 private:
#ifdef __linux__
  // kEmpty: no token, not parked. kNotified: token available. kParked: owner is (about to be)
  // asleep in futexWait. Transitions: owner kEmpty->kParked (park), kNotified->kEmpty
  // (consume); any thread: *->kNotified (unpark; futex wake only when it replaced kParked).
  // acquire on consume / release on unpark: what the unparker wrote before unpark() is visible
  // to the owner after park() returns because of it.
  static constexpr uint32_t kEmpty = 0, kNotified = 1, kParked = 2;
  std::atomic<uint32_t> state_{kEmpty};
#else
  std::mutex mu_;
  std::condition_variable cv_;
  bool token_ = false;  // guarded by mu_
#endif
};

// Counts outstanding work and lets threads wait for zero (Go's sync.WaitGroup): add() before
// submitting, done() from the tasks' done callback, wait() anywhere. One atomic RMW per done().
class WaitGroup {
 public:
  void add(int64_t n = 1) { count_.fetch_add(n, std::memory_order_relaxed); }
  void done(int64_t n = 1);
  void wait();
  int64_t pending() const { return count_.load(std::memory_order_acquire); }

 private:
  std::atomic<int64_t> count_{0};
  std::atomic<uint32_t> epoch_{0};    // bumped when count_ reaches zero; futex word for waiters
  std::atomic<uint32_t> waiters_{0};  // skip the futex syscall when nobody waits
};

}  // namespace hwsq::sched
