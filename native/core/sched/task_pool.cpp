#include "task_pool.h"

#include <cstring>
#include <mutex>
#include <new>
#include <vector>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace hwsq::sched {

namespace {

#if defined(__x86_64__)
// CPUID 0x80000001 ECX bit 8 (PRFCHW): PREFETCHW exists (AMD since family 10h, Intel since
// Broadwell). Elsewhere its opcode is not promised to be a no-op, so it runs only where present.
bool cpuHasPrefetchw() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_max(0x80000000u, nullptr) < 0x80000001u) return false;
  __cpuid(0x80000001u, a, b, c, d);
  return (c & (1u << 8)) != 0;
}
const bool kHasPrefetchw = cpuHasPrefetchw();
#endif

// A hint that the line of t is about to be written whole: fetch it exclusive, so that the
// stores do not wait for other cores' copies to be invalidated one miss at a time (its last
// writer or reader was usually the P that ran it). Without PREFETCHW a read prefetch at least
// brings it close; arm64's is PRFM PSTL1KEEP.
inline void prefetchForWrite(const Task* t) {
#if defined(__x86_64__)
  if (kHasPrefetchw) asm volatile("prefetchw (%0)" : : "r"(t));
  else __builtin_prefetch(t, 0, 3);
#else
  __builtin_prefetch(t, 1, 3);
#endif
}

constexpr size_t kBatch = 256;  // tasks moved between a thread cache and the depot at once
constexpr size_t kSlab = kBatch;  // tasks allocated from the system at once

// Free tasks are kept as arrays of pointers ("magazines"), never as a list threaded through the
// tasks: a free task's memory is usually cold (last written by another core), and chasing a
// `next` pointer through it would serialize one cache miss per allocation.
struct Magazine {
  size_t n = 0;
  Task* items[kBatch];
};

// The depot is deliberately leaked (never destroyed): thread caches of threads that exit after
// static destruction still return their tasks to it. Everything stays reachable from here, so
// LeakSanitizer does not report it.
struct Depot {
  std::mutex mu;
  std::vector<Magazine*> full;   // non-empty magazines
  std::vector<Magazine*> spare;  // empty magazine objects for reuse
  std::vector<Task*> slabs;      // every slab ever allocated (keeps them reachable)
  size_t tasks = 0;

  void put(Task* const* src, size_t n) {
    std::lock_guard<std::mutex> lk(mu);
    Magazine* m;
    if (!spare.empty()) {
      m = spare.back();
      spare.pop_back();
    } else {
      m = new Magazine();
    }
    std::memcpy(m->items, src, n * sizeof(Task*));
    m->n = n;
    full.push_back(m);
    tasks += n;
  }
  // Fills dst with up to kBatch free tasks (a magazine, or a fresh slab); returns the count.
  size_t get(Task** dst) {
    {
      std::lock_guard<std::mutex> lk(mu);
      if (!full.empty()) {
        Magazine* m = full.back();
        full.pop_back();
        size_t n = m->n;
        std::memcpy(dst, m->items, n * sizeof(Task*));
        spare.push_back(m);
        tasks -= n;
        return n;
      }
    }
    Task* slab = new Task[kSlab];  // 64-byte aligned by Task's alignas
    for (size_t i = 0; i < kSlab; ++i) dst[i] = &slab[i];
    std::lock_guard<std::mutex> lk(mu);
    slabs.push_back(slab);
    return kSlab;
  }
};

Depot& depot() {
  static Depot* d = new Depot();
  return *d;
}

#if !defined(__SANITIZE_ADDRESS__)
// Per-thread cache: up to 2*kBatch free task pointers, newest last.
struct Cache {
  Task* items[2 * kBatch];
  size_t n = 0;
};

// The calling thread's cache lives on the heap and only a pointer is thread-local: the addon's
// whole TLS must stay small for glibc to place it in its static TLS surplus when Node dlopens
// it; a 4 KiB thread_local made every access from the addon a call into the dynamic-TLS path
// (__tls_get_addr / _dl_tlsdesc_dynamic), a few percent of a no-op task. The pointer and the
// "gone" flag are trivially destructible, so they stay readable by thread-exit destructors that
// run after CacheReturn's (a store to a member inside its own destructor could be dropped as dead).
thread_local Cache* tlCachePtr = nullptr;
thread_local bool tlCacheGone = false;  // thread exit: its tasks went back to the depot
struct CacheReturn {
  bool armed = false;
  ~CacheReturn() {
    if (Cache* c = tlCachePtr) {
      for (size_t i = 0; i < c->n; i += kBatch) depot().put(c->items + i, c->n - i < kBatch ? c->n - i : kBatch);
      delete c;
    }
    tlCachePtr = nullptr;
    tlCacheGone = true;
  }
};
thread_local CacheReturn tlCacheReturn;

// nullptr once the thread's cache was given back (a task allocated or freed by a later
// thread-exit destructor) or when there is no memory for one: the caller uses the depot.
Cache* threadCache() {
  Cache* c = tlCachePtr;
  if (__builtin_expect(c == nullptr, 0) && !tlCacheGone) {
    c = new (std::nothrow) Cache();
    if (c) {
      tlCacheReturn.armed = true;  // registers its thread-exit destructor
      tlCachePtr = c;
    }
  }
  return c;
}
#endif

// allocTasks without a thread cache: all or nothing.
void allocTasksOneByOne(Task** out, size_t n, const Task& proto) {
  size_t i = 0;
  try {
    for (; i < n; ++i) {
      out[i] = allocTask();
      *out[i] = proto;
      out[i]->flags = kTaskPooled;
    }
  } catch (...) {
    while (i > 0) freeTask(out[--i]);
    throw;
  }
}

}  // namespace

#if defined(__SANITIZE_ADDRESS__)
// Under AddressSanitizer every task is a separate heap object, so a use after free of a pooled
// task is reported instead of being hidden by reuse.
Task* allocTask() {
  Task* t = new Task();
  t->flags = kTaskPooled;
  return t;
}
void freeTask(Task* t) { delete t; }
void allocTasks(Task** out, size_t n, const Task& proto) { allocTasksOneByOne(out, n, proto); }
#else
Task* allocTask() {
  Cache* cp = threadCache();
  if (__builtin_expect(cp == nullptr, 0)) {  // no cache (see threadCache)
    Task* got[kBatch];
    const size_t n = depot().get(got);
    if (n > 1) depot().put(got + 1, n - 1);
    *got[0] = Task();
    got[0]->flags = kTaskPooled;
    return got[0];
  }
  Cache& c = *cp;
  if (c.n == 0) c.n = depot().get(c.items);
  Task* t = c.items[--c.n];
  // Get a later task's line on its way, so that its stores overlap with the work in between.
  if (c.n >= kTaskPrefetchDistance) prefetchForWrite(c.items[c.n - kTaskPrefetchDistance]);
  *t = Task();  // stores to a possibly cold line; no dependent load on it
  t->flags = kTaskPooled;
  return t;
}

void allocTasks(Task** out, size_t n, const Task& proto) {
  Cache* cp = threadCache();
  if (__builtin_expect(cp == nullptr, 0)) {
    allocTasksOneByOne(out, n, proto);
    return;
  }
  Cache& c = *cp;
  for (size_t i = 0; i < n; ++i) {
    if (c.n == 0) {
      try {
        c.n = depot().get(c.items);
      } catch (...) {
        while (i > 0) freeTask(out[--i]);
        throw;
      }
    }
    Task* t = c.items[--c.n];
    if (c.n >= kTaskPrefetchDistance) prefetchForWrite(c.items[c.n - kTaskPrefetchDistance]);
    *t = proto;
    t->flags = kTaskPooled;
    out[i] = t;
  }
}

namespace {
// freeTask's rare cases, out of line so that its common case needs no stack frame: the thread's
// first free (the cache is created), a full cache, no cache.
[[gnu::noinline]] void freeTaskSlow(Task* t) {
  Cache* cp = threadCache();
  if (__builtin_expect(cp == nullptr, 0)) {
    depot().put(&t, 1);
    return;
  }
  Cache& c = *cp;
  if (c.n == 2 * kBatch) {
    // Give the older half away; keep the newest (warmest) tasks here.
    depot().put(c.items, kBatch);
    std::memmove(c.items, c.items + kBatch, kBatch * sizeof(Task*));
    c.n = kBatch;
  }
  c.items[c.n++] = t;
}
}  // namespace

void freeTask(Task* t) {
  Cache* c = tlCachePtr;
  if (__builtin_expect(c != nullptr && c->n < 2 * kBatch, 1)) {
    c->items[c->n++] = t;
    return;
  }
  freeTaskSlow(t);
}
#endif

TaskPoolInfo taskPoolInfo() {
  Depot& d = depot();
  std::lock_guard<std::mutex> lk(d.mu);
  return TaskPoolInfo{d.tasks, d.slabs.size()};
}

}  // namespace hwsq::sched
