#include "native_tasks.h"

#include <atomic>

#include "../errors.h"
#include "clock.h"

namespace hwsq::sched {

namespace {
constexpr size_t kLine = 64;
constexpr size_t kWordsPerLine = kLine / sizeof(uint64_t);

inline uint64_t* lineWord(void* buffer, size_t line) { return static_cast<uint64_t*>(buffer) + line * kWordsPerLine; }
inline const uint64_t* lineWord(const void* buffer, size_t line) { return static_cast<const uint64_t*>(buffer) + line * kWordsPerLine; }

// Keeps the compiler from deleting a computation whose result is otherwise unused.
inline void keep(uint64_t v) { asm volatile("" : : "r"(v) : "memory"); }

void noopFn(void*) {}
void spinFn(void* a) { spinFor(static_cast<NativeTaskArgs*>(a)->spinNs); }
void touchFn(void* a) {
  auto* p = static_cast<NativeTaskArgs*>(a);
  uint64_t r = touchBuffer(p->buffer, p->bytes);
  if (p->sink) __atomic_fetch_add(p->sink, r, __ATOMIC_RELAXED);
}
void chaseFn(void* a) {
  auto* p = static_cast<NativeTaskArgs*>(a);
  uint64_t r = chaseBuffer(p->buffer, p->bytes, p->steps);
  if (p->sink) __atomic_fetch_add(p->sink, r, __ATOMIC_RELAXED);
}
}  // namespace

const char* nativeKindName(NativeKind k) {
  switch (k) {
    case NativeKind::Noop: return "noop";
    case NativeKind::Spin: return "spin";
    case NativeKind::Touch: return "touch";
    case NativeKind::Chase: return "chase";
  }
  return "?";
}

NativeKind parseNativeKind(const std::string& name) {
  if (name == "noop") return NativeKind::Noop;
  if (name == "spin") return NativeKind::Spin;
  if (name == "touch") return NativeKind::Touch;
  if (name == "chase") return NativeKind::Chase;
  throw HwsqRangeError("ERR_HWSQ_UNKNOWN_TASK_KIND", "unknown native task kind '" + name + "' (noop | spin | touch | chase)");
}

TaskFn nativeTaskFn(NativeKind k) {
  switch (k) {
    case NativeKind::Noop: return &noopFn;
    case NativeKind::Spin: return &spinFn;
    case NativeKind::Touch: return &touchFn;
    case NativeKind::Chase: return &chaseFn;
  }
  return &noopFn;
}

void runNativeTask(void* arg) { nativeTaskFn(static_cast<NativeTaskArgs*>(arg)->kind)(arg); }

void spinFor(uint64_t ns) {
  if (ns == 0) return;
  const uint64_t start = nowTicks();
  const uint64_t span = nsToTicks(ns);
  while (nowTicks() - start < span) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
}

uint64_t touchBuffer(void* buffer, size_t bytes) {
  if (!buffer) return 0;
  const size_t lines = bytes / kLine;
  uint64_t sum = 0;
  for (size_t i = 0; i < lines; ++i) {
    uint64_t* w = lineWord(buffer, i);
    uint64_t v = __atomic_load_n(w, __ATOMIC_RELAXED);  // read...
    __atomic_store_n(w, v + 1, __ATOMIC_RELAXED);       // ...and write (not an RMW: racing touches may lose +1s, by design)
    sum += v;
  }
  keep(sum);
  return sum;
}

uint64_t chaseBuffer(const void* buffer, size_t bytes, uint64_t steps) {
  const size_t lines = bytes / kLine;
  if (!buffer || lines == 0) return 0;
  uint64_t idx = 0;
  for (uint64_t s = 0; s < steps; ++s) {
    idx = __atomic_load_n(lineWord(buffer, idx), __ATOMIC_RELAXED);
    if (idx >= lines) idx = 0;  // a buffer that was not prepared (or was touched) stays in bounds
  }
  keep(idx);
  return idx;
}

void prepareChase(void* buffer, size_t bytes, uint64_t seed) {
  const size_t lines = bytes / kLine;
  if (!buffer || lines == 0) return;
  for (size_t i = 0; i < lines; ++i) *lineWord(buffer, i) = i;
  uint64_t x = seed | 1;
  auto rnd = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  // Sattolo: a uniformly random cyclic permutation (a single cycle through every line).
  for (size_t i = lines - 1; i > 0; --i) {
    size_t j = static_cast<size_t>(rnd() % i);
    uint64_t a = *lineWord(buffer, i);
    *lineWord(buffer, i) = *lineWord(buffer, j);
    *lineWord(buffer, j) = a;
  }
}

}  // namespace hwsq::sched
