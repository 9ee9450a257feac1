#include "memory_probe.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "../affinity.h"
#include "../errors.h"

#ifdef __linux__
#include <sys/mman.h>
#include <cerrno>
#endif

namespace hwsq::probes {

namespace {

using Clock = std::chrono::steady_clock;

inline uint64_t elapsedNs(Clock::time_point a, Clock::time_point b) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
}

// Keeps the compiler from deleting a computation whose result is otherwise unused.
template <class T>
inline void keep(T v) {
  asm volatile("" : : "r"(v) : "memory");
}

// splitmix64: a small, well-mixed generator for the shuffle (reproducible from the seed).
struct SplitMix {
  uint64_t x;
  uint64_t next() {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

// Runs fn on a new thread pinned to cpu (-1: not pinned) and rethrows what it threw.
template <class F>
void runPinned(int cpu, F&& fn) {
  std::exception_ptr error;
  std::thread t([&] {
    try {
      if (cpu >= 0) setThreadAffinity({cpu});
      fn();
    } catch (...) {
      error = std::current_exception();
    }
  });
  nameThread(t, "hwsq-probe");
  t.join();
  if (error) std::rethrow_exception(error);
}

// `n` dependent loads from p (n a multiple of 16). The loop body is the whole measurement: each
// load's address is the value of the previous one.
const void* chaseLoads(const void* p, uint64_t n) {
#define HWSQ_HOP p = *static_cast<const void* const*>(p)
  for (uint64_t i = 0; i < n; i += 16) {
    HWSQ_HOP; HWSQ_HOP; HWSQ_HOP; HWSQ_HOP; HWSQ_HOP; HWSQ_HOP; HWSQ_HOP; HWSQ_HOP;
    HWSQ_HOP; HWSQ_HOP; HWSQ_HOP; HWSQ_HOP; HWSQ_HOP; HWSQ_HOP; HWSQ_HOP; HWSQ_HOP;
  }
#undef HWSQ_HOP
  return p;
}

constexpr uint64_t kLoadsPerCheck = 4096;  // loads between clock reads / cancel checks
constexpr size_t kReadChunk = 64 * 1024;   // bytes a reader reads between stop checks

}  // namespace

// ------------------------------------------------------------------ huge pages

HugePageAdvice adviseHugePages(void* buffer, size_t bytes) {
  HugePageAdvice out;
  const uintptr_t start = reinterpret_cast<uintptr_t>(buffer);
  const uintptr_t aligned = (start + kHugePageBytes - 1) & ~(uintptr_t(kHugePageBytes) - 1);
  if (aligned >= start + bytes) return out;
  out.alignedOffset = aligned - start;
  out.alignedBytes = ((start + bytes - aligned) / kHugePageBytes) * kHugePageBytes;
  if (out.alignedBytes == 0) return out;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  void* a = reinterpret_cast<void*>(aligned);
  out.advised = ::madvise(a, out.alignedBytes, MADV_HUGEPAGE) == 0;
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25  // Linux 6.1+
#endif
  if (out.advised) {
    if (::madvise(a, out.alignedBytes, MADV_COLLAPSE) == 0) out.collapsed = true;
    else out.collapseErrno = errno;
  }
#endif
  return out;
}

long long hugePageBytes(const void* buffer, size_t bytes) {
#ifdef __linux__
  std::ifstream in("/proc/self/smaps");
  if (!in) return -1;
  const unsigned long long lo = reinterpret_cast<uintptr_t>(buffer), hi = lo + bytes;
  unsigned long long vlo = 0, vhi = 0;
  bool overlap = false;
  long long total = 0;
  std::string line;
  while (std::getline(in, line)) {
    unsigned long long a = 0, b = 0;
    // A mapping header is "start-end perms offset dev inode path"; attribute lines ("Rss:",
    // "AnonHugePages:") never parse as two hex numbers joined by '-'.
    if (std::sscanf(line.c_str(), "%llx-%llx ", &a, &b) == 2) {
      vlo = a;
      vhi = b;
      overlap = vlo < hi && lo < vhi;
      continue;
    }
    if (overlap && line.rfind("AnonHugePages:", 0) == 0) {
      const long long kb = std::atoll(line.c_str() + std::strlen("AnonHugePages:"));
      const unsigned long long clip = std::min(hi, vhi) - std::max(lo, vlo);
      total += std::min<long long>(kb * 1024, static_cast<long long>(clip));
    }
  }
  return total;
#else
  (void)buffer;
  (void)bytes;
  return -1;
#endif
}

// ------------------------------------------------------------------ latency

size_t preparePointerChase(void* buffer, size_t bytes, uint64_t seed) {
  const size_t lines = bytes / kLineBytes;
  if (!buffer || lines < 2) throw std::invalid_argument("pointer chase needs a buffer of at least two 64-byte lines");
  auto* base = static_cast<unsigned char*>(buffer);
  auto word = [base](size_t line) { return reinterpret_cast<uint64_t*>(base + line * kLineBytes); };
  for (size_t i = 0; i < lines; ++i) *word(i) = i;
  // Sattolo: swapping each slot with a strictly earlier one yields one cycle through all lines.
  SplitMix rng{seed};
  for (size_t i = lines - 1; i > 0; --i) {
    const size_t j = static_cast<size_t>(rng.next() % i);
    std::swap(*word(i), *word(j));
  }
  // Line i -> the address of line next(i).
  for (size_t i = 0; i < lines; ++i) {
    const uint64_t next = *word(i);
    void* target = base + next * kLineBytes;
    std::memcpy(word(i), &target, sizeof target);
  }
  return lines;
}

LatencyResult measureLatency(const LatencyOptions& o) {
  const size_t lines = o.bytes / kLineBytes;
  if (!o.buffer || lines < 2) throw std::invalid_argument("latency probe needs a prepared buffer of at least two lines");
  if (o.samples < 1) throw std::invalid_argument("samples must be at least 1");
  const uint64_t started = ProbeCancel::generation();
  LatencyResult r;
  runPinned(o.cpu, [&] {
    const void* p = o.buffer;
    // Warm-up: one lap faults in the TLB entries and settles the caches and the clock speed.
    uint64_t warm = o.warmupLoads ? o.warmupLoads : lines;
    warm = (warm + 15) & ~uint64_t(15);
    for (uint64_t done = 0; done < warm && !ProbeCancel::cancelled(started); done += kLoadsPerCheck) {
      p = chaseLoads(p, std::min(kLoadsPerCheck, warm - done));
    }
    for (int s = 0; s < o.samples; ++s) {
      if (ProbeCancel::cancelled(started)) {
        r.cancelled = true;
        break;
      }
      uint64_t loads = 0;
      const auto t0 = Clock::now();
      uint64_t ns = 0;
      bool stopped = false;
      do {
        p = chaseLoads(p, kLoadsPerCheck);
        loads += kLoadsPerCheck;
        ns = elapsedNs(t0, Clock::now());
        if ((loads & (kLoadsPerCheck * 16 - 1)) == 0 && ProbeCancel::cancelled(started)) stopped = true;
      } while (ns < o.durationNs && !stopped);
      if (stopped) {
        r.cancelled = true;
        break;
      }
      r.nsPerLoad.push_back(static_cast<double>(ns) / static_cast<double>(loads));
      r.loads.push_back(loads);
    }
    keep(p);
    try {
      CpuLocation loc = currentLocation();
      r.cpu = loc.cpu;
      r.cpuNode = loc.node;
    } catch (const std::exception&) {
      // getcpu unavailable (non-Linux): the location stays unknown (-1).
    }
  });
  return r;
}

// ------------------------------------------------------------------ bandwidth

uint64_t sumWords(const void* p, size_t bytes) {
  const auto* w = static_cast<const uint64_t*>(p);
  const size_t n = bytes / sizeof(uint64_t);
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    a0 += w[i];
    a1 += w[i + 1];
    a2 += w[i + 2];
    a3 += w[i + 3];
    a4 += w[i + 4];
    a5 += w[i + 5];
    a6 += w[i + 6];
    a7 += w[i + 7];
  }
  return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

namespace {

// The phases the coordinator drives the readers through; readers wait on the condition variable
// between samples (no spinning: the coordinator may share a CPU with them).
struct BandwidthShared {
  std::mutex mu;
  std::condition_variable cv;
  int phase = -2;         // -2: not started, 0: warm-up, k >= 1: sample k, -1: exit
  int arrived = 0;        // readers done with the current phase
  std::atomic<bool> stop{false};
  std::vector<uint64_t> bytes;
  std::vector<Clock::time_point> begin, end;
  std::exception_ptr error;
};

void readerLoop(BandwidthShared& sh, int index, int cpu, const unsigned char* slice, size_t sliceBytes, uint64_t warmupNs) {
  try {
    if (cpu >= 0) setThreadAffinity({cpu});
  } catch (...) {
    std::lock_guard<std::mutex> lock(sh.mu);
    if (!sh.error) sh.error = std::current_exception();
  }
  int seen = -2;
  uint64_t sink = 0;
  for (;;) {
    int phase;
    {
      std::unique_lock<std::mutex> lock(sh.mu);
      sh.cv.wait(lock, [&] { return sh.phase != seen; });
      phase = seen = sh.phase;
    }
    if (phase < 0) break;
    uint64_t bytes = 0;
    const auto t0 = Clock::now();
    size_t off = 0;
    const bool warmup = phase == 0;
    for (;;) {
      const size_t n = std::min(kReadChunk, sliceBytes - off);
      sink += sumWords(slice + off, n);
      bytes += n;
      off += n;
      if (off >= sliceBytes) {
        off = 0;
        if (warmup && warmupNs == 0) break;  // warm-up: one pass
      }
      if (warmup && warmupNs && elapsedNs(t0, Clock::now()) >= warmupNs) break;
      if (!warmup && sh.stop.load(std::memory_order_relaxed)) break;
    }
    const auto t1 = Clock::now();
    {
      std::lock_guard<std::mutex> lock(sh.mu);
      sh.bytes[index] = bytes;
      sh.begin[index] = t0;
      sh.end[index] = t1;
      ++sh.arrived;
    }
    sh.cv.notify_all();
  }
  keep(sink);
}

}  // namespace

BandwidthResult measureBandwidth(const BandwidthOptions& o) {
  const int threads = static_cast<int>(o.cpus.size());
  if (!o.buffer || threads < 1) throw std::invalid_argument("bandwidth probe needs a buffer and at least one CPU");
  if (o.samples < 1) throw std::invalid_argument("samples must be at least 1");
  const size_t slice = (o.bytes / threads) & ~(kLineBytes - 1);
  if (slice < kLineBytes) throw std::invalid_argument("buffer too small for one line per reader thread");
  const uint64_t started = ProbeCancel::generation();
  BandwidthShared sh;
  sh.bytes.assign(threads, 0);
  sh.begin.assign(threads, Clock::time_point());
  sh.end.assign(threads, Clock::time_point());
  std::vector<std::thread> pool;
  pool.reserve(threads);
  const auto* base = static_cast<const unsigned char*>(o.buffer);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back(readerLoop, std::ref(sh), t, o.cpus[t], base + size_t(t) * slice, slice, o.warmupNs);
    nameThread(pool.back(), "hwsq-probe");
  }
  // Runs one phase: start it, (for samples) let it run durationNs, stop it, wait for every reader.
  auto runPhase = [&](int phase, bool timed) {
    {
      std::lock_guard<std::mutex> lock(sh.mu);
      sh.arrived = 0;
      sh.stop.store(false, std::memory_order_relaxed);
      sh.phase = phase;
    }
    sh.cv.notify_all();
    if (timed) {
      const auto t0 = Clock::now();
      while (elapsedNs(t0, Clock::now()) < o.durationNs && !ProbeCancel::cancelled(started)) {
        const uint64_t left = o.durationNs - std::min(o.durationNs, elapsedNs(t0, Clock::now()));
        std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<uint64_t>(left, 5'000'000)));
      }
      sh.stop.store(true, std::memory_order_relaxed);
    }
    std::unique_lock<std::mutex> lock(sh.mu);
    sh.cv.wait(lock, [&] { return sh.arrived == threads; });
  };
  BandwidthResult r;
  r.threads = threads;
  runPhase(0, false);
  for (int s = 1; s <= o.samples && !sh.error; ++s) {
    if (ProbeCancel::cancelled(started)) {
      r.cancelled = true;
      break;
    }
    runPhase(s, true);
    if (ProbeCancel::cancelled(started)) {  // a sample cut short is not a sample
      r.cancelled = true;
      break;
    }
    uint64_t total = 0;
    Clock::time_point first = sh.begin[0], last = sh.end[0];
    for (int t = 0; t < threads; ++t) {
      total += sh.bytes[t];
      first = std::min(first, sh.begin[t]);
      last = std::max(last, sh.end[t]);
    }
    const double secs = static_cast<double>(elapsedNs(first, last)) / 1e9;
    r.bytesRead.push_back(total);
    r.seconds.push_back(secs);
    r.bytesPerSec.push_back(secs > 0 ? static_cast<double>(total) / secs : 0);
  }
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    sh.phase = -1;
  }
  sh.cv.notify_all();
  for (auto& t : pool) t.join();
  if (sh.error) std::rethrow_exception(sh.error);
  return r;
}

}  // namespace hwsq::probes
