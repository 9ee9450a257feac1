// A full StoreLoad barrier, the "seq_cst fence" of the no-lost-wake-up protocol (idle.cpp).
// On x86-64 a locked read-modify-write of a stack word is a full barrier and is cheaper than
// mfence (the Linux kernel's smp_mb does the same); the "memory" clobber makes it a compiler
// barrier too. Elsewhere it is std::atomic_thread_fence(seq_cst). (ThreadSanitizer does not
// model fences either way; the protocol's data hand-offs all go through acquire/release
// operations that it does see.)
#pragma once
#include <atomic>

namespace hwsq::sched {

inline void storeLoadFence() {
#if defined(__x86_64__)
  asm volatile("lock; orl $0, (%%rsp)" ::: "memory", "cc");
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace hwsq::sched
