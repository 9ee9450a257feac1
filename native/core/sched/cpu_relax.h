// The spin-wait hint for busy-wait loops: lets the sibling hyperthread run and saves power
// while a loop waits for another core's store.
#pragma once

namespace hwsq::sched {

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace hwsq::sched
