// Memory probes in the style of Intel MLC's latency and bandwidth matrices: the measuring loops
// only. The caller (lib/bench/memory.ts through native/napi/probes.cpp) allocates the buffer on
// the memory node (allocOnNodes), verifies its pages (queryPageNodes) and picks the CPUs; these
// functions pin their own std::threads to those CPUs with hwsq::setThreadAffinity, so the
// calling thread's affinity is never changed.
//
//   latency:   one thread, a dependent load chain (each load's address is the previous load's
//              value) through a random cycle over every cache line of the buffer: random page,
//              random line within it, so neither the prefetchers nor a stride predictor help.
//              Result: nanoseconds per load (load-to-use, idle: nothing else runs).
//   bandwidth: one thread per CPU, each streaming reads over its own slice of the buffer (eight
//              independent accumulators per line), all started together behind a barrier.
//              Result: bytes read per second by all threads together.
//
// Every measurement is `samples` timed runs of about `durationNs` each after a warm-up; the
// clock is std::chrono::steady_clock (CLOCK_MONOTONIC). A cancel check (a generation counter,
// see ProbeCancel) is polled every few thousand loads, so a probe stops within microseconds.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace hwsq::probes {

// Cancellation shared by every probe: cancelAll() bumps the generation; a probe that started
// under an older generation stops at its next check and reports cancelled = true.
class ProbeCancel {
 public:
  static uint64_t generation() { return gen().load(std::memory_order_acquire); }
  static void cancelAll() { gen().fetch_add(1, std::memory_order_acq_rel); }
  static bool cancelled(uint64_t startedAt) { return generation() != startedAt; }

 private:
  static std::atomic<uint64_t>& gen() {
    static std::atomic<uint64_t> g{0};
    return g;
  }
};

// Huge pages for a buffer already mapped (and placed): madvise(MADV_HUGEPAGE) on its 2 MiB-
// aligned part, then MADV_COLLAPSE (Linux 6.1+) so the pages are huge now, not whenever
// khugepaged gets to them. Best effort: what happened is reported, nothing throws.
struct HugePageAdvice {
  size_t alignedOffset = 0;   // first 2 MiB boundary inside the buffer (bytes from its start)
  size_t alignedBytes = 0;    // whole 2 MiB pages from there
  bool advised = false;       // MADV_HUGEPAGE accepted
  bool collapsed = false;     // MADV_COLLAPSE succeeded
  int collapseErrno = 0;      // its errno when it failed (EINVAL: kernel too old or THP off)
};
constexpr size_t kHugePageBytes = size_t(2) << 20;
HugePageAdvice adviseHugePages(void* buffer, size_t bytes);
// Bytes of [buffer, buffer + bytes) backed by transparent huge pages, from /proc/self/smaps
// (AnonHugePages of the mappings overlapping the range, clipped to it). -1 when unreadable.
long long hugePageBytes(const void* buffer, size_t bytes);

constexpr size_t kLineBytes = 64;

// Writes a single random cycle through every 64-byte line of [buffer, buffer + bytes): the first
// word of each line holds the address of the next line to load (Sattolo's algorithm: one cycle,
// uniformly random). Returns the number of lines (bytes / 64). The content of the buffer is
// overwritten; the cycle stays valid as long as the buffer is not moved or written.
size_t preparePointerChase(void* buffer, size_t bytes, uint64_t seed);

struct LatencyOptions {
  const void* buffer = nullptr;  // prepared with preparePointerChase
  size_t bytes = 0;
  int cpu = -1;                  // the measuring thread is pinned here (-1: not pinned)
  uint64_t durationNs = 100'000'000;
  int samples = 5;
  uint64_t warmupLoads = 0;      // loads before the first sample (0: one full lap of the cycle)
};

struct LatencyResult {
  std::vector<double> nsPerLoad;  // one per sample
  std::vector<uint64_t> loads;    // loads in each sample
  int cpu = -1;                   // where the thread was (getcpu) after measuring
  int cpuNode = -1;
  bool cancelled = false;         // stopped early: the samples so far are complete ones
};

// Throws what hwsq::setThreadAffinity throws (from the measuring thread) and
// std::invalid_argument for an empty / unprepared buffer.
LatencyResult measureLatency(const LatencyOptions& options);

struct BandwidthOptions {
  const void* buffer = nullptr;
  size_t bytes = 0;
  std::vector<int> cpus;         // one reader thread per entry, pinned to it (-1: not pinned)
  uint64_t durationNs = 100'000'000;
  int samples = 5;
  uint64_t warmupNs = 0;         // reading before the first sample (0: one pass per thread)
};

struct BandwidthResult {
  std::vector<double> bytesPerSec;   // one per sample, all threads together
  std::vector<uint64_t> bytesRead;   // per sample
  std::vector<double> seconds;       // per sample: first thread's start to last thread's stop
  int threads = 0;
  bool cancelled = false;
};

BandwidthResult measureBandwidth(const BandwidthOptions& options);

// The read loop itself, exposed for tests: sums the 64-bit words of [p, p + bytes) (bytes a
// multiple of 64) with eight independent accumulators.
uint64_t sumWords(const void* p, size_t bytes);

}  // namespace hwsq::probes
