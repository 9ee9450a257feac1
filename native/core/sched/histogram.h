// Log-linear histogram in the style of HdrHistogram: each power-of-two range [2^e, 2^(e+1)) is
// split into 2^kSubBits equal buckets, so any recorded value lies in a bucket whose width is at
// most 1/32 of its lower bound (relative error <= 3.2% with the bucket's low edge, <= 1.6% with
// its midpoint). Values below 32 are exact; values >= 2^48 go to the last bucket (and max).
//
// Concurrency: one writer (the owning P) records with relaxed load+store pairs -- no
// read-modify-write instructions, no lock -- and any thread may read concurrently with relaxed
// loads (each bucket is individually untorn; the snapshot is "consistent enough": counts may
// be off by the few records in flight). Snapshots are plain values and merge by adding buckets.
// The writer does the least it can (a bucket, the sum, the max); the total count and every
// quantile are the reader's work (mergeInto sums the buckets, HistogramSnapshot walks them).
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace hwsq::sched {

struct HistogramLayout {
  static constexpr int kSubBits = 5;
  static constexpr uint64_t kSub = 1u << kSubBits;
  static constexpr int kMaxExp = 47;
  static constexpr size_t kBuckets = static_cast<size_t>(kMaxExp - kSubBits + 2) * kSub;

  [[gnu::always_inline]] static size_t bucketOf(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    int e = 63 - __builtin_clzll(v);
    if (e > kMaxExp) return kBuckets - 1;
    return static_cast<size_t>(e - kSubBits + 1) * kSub + ((v >> (e - kSubBits)) & (kSub - 1));
  }
  static uint64_t bucketLow(size_t idx) {
    if (idx < kSub) return idx;
    size_t g = idx / kSub;
    int e = static_cast<int>(g) + kSubBits - 1;
    return (kSub + idx % kSub) << (e - kSubBits);
  }
  static uint64_t bucketHigh(size_t idx) {  // inclusive
    return idx + 1 < kBuckets ? bucketLow(idx + 1) - 1 : UINT64_MAX;
  }
};

// A plain (non-concurrent) histogram: the result of reading and merging.
struct HistogramSnapshot {
  std::vector<uint64_t> counts = std::vector<uint64_t>(HistogramLayout::kBuckets, 0);
  uint64_t count = 0;
  uint64_t sum = 0;    // in recorded units
  uint64_t max = 0;
  double unitNs = 1.0; // nanoseconds per recorded unit (ticks -> ns), applied by the accessors

  // Multiplies the counts and the sum by k: a histogram of 1 task in k (sampled timing) read as
  // an unbiased estimate of all of them. Quantiles, the mean and max are unchanged.
  void scale(uint64_t k) {
    if (k <= 1) return;
    for (auto& c : counts) c *= k;
    count *= k;
    sum *= k;
  }
  void merge(const HistogramSnapshot& o) {
    for (size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
    count += o.count;
    sum += o.sum;
    if (o.max > max) max = o.max;
  }
  // Value at quantile q in [0,1], in ns: the midpoint of the bucket holding it (clamped to max).
  double quantileNs(double q) const {
    if (count == 0) return 0;
    if (q <= 0) q = 0;
    if (q >= 1) return max * unitNs;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count - 1)) + 1;  // 1-based
    uint64_t seen = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
      seen += counts[i];
      if (seen >= rank) {
        double lo = static_cast<double>(HistogramLayout::bucketLow(i));
        double hi = static_cast<double>(HistogramLayout::bucketHigh(i));
        double mid = lo + (hi - lo) / 2;
        if (mid > static_cast<double>(max)) mid = static_cast<double>(max);
        return mid * unitNs;
      }
    }
    return max * unitNs;
  }
  double meanNs() const { return count ? static_cast<double>(sum) / count * unitNs : 0; }
  double maxNs() const { return max * unitNs; }
};

// The two histograms of one P's timed tasks: latency (submit -> start) and run time (start ->
// end of fn), laid out for their one writer. A timed task touches one line of totals (both sums
// and both maxima) and one bucket in each histogram: 3 lines, where two separate histograms and
// a busy-time counter took 5. Busy time needs no counter of its own: it is the run-time sum
// (stats.cpp scales it by the sampling rate).
class TimingHistograms {
 public:
  enum Which : int { kLatency = 0, kRunTime = 1 };

  TimingHistograms() {
    for (int w : {kLatency, kRunTime}) {
      totals_.sum[w].store(0, std::memory_order_relaxed);
      totals_.max[w].store(0, std::memory_order_relaxed);
    }
    for (auto& h : counts_)
      for (auto& c : h) c.store(0, std::memory_order_relaxed);
  }
  TimingHistograms(const TimingHistograms&) = delete;
  TimingHistograms& operator=(const TimingHistograms&) = delete;

  // Owner thread only: a task's latency and run time.
  [[gnu::always_inline]] void record(uint64_t latency, uint64_t run) {
    recordOne(kLatency, latency);
    recordOne(kRunTime, run);
  }
  // Owner thread only: the run time of a task whose submit was not stamped (latency unknown).
  [[gnu::always_inline]] void recordRun(uint64_t run) { recordOne(kRunTime, run); }

  // Any thread: adds one histogram into out (relaxed reads, see the file comment).
  void mergeInto(Which w, HistogramSnapshot& out) const {
    uint64_t n = 0;
    for (size_t i = 0; i < HistogramLayout::kBuckets; ++i) {
      uint64_t c = counts_[w][i].load(std::memory_order_relaxed);
      out.counts[i] += c;
      n += c;
    }
    out.count += n;  // the sum of the buckets we read, so quantiles are self-consistent
    out.sum += totals_.sum[w].load(std::memory_order_relaxed);
    uint64_t m = totals_.max[w].load(std::memory_order_relaxed);
    if (m > out.max) out.max = m;
  }
  // Any thread: the sum of one histogram's buckets (the writer keeps no separate total).
  uint64_t count(Which w) const {
    uint64_t n = 0;
    for (const auto& c : counts_[w]) n += c.load(std::memory_order_relaxed);
    return n;
  }
  // Any thread: the sum of the values recorded in one histogram.
  uint64_t sum(Which w) const { return totals_.sum[w].load(std::memory_order_relaxed); }

 private:
  // Inline, all of it (with w a constant): the P loop is large enough that the compiler called
  // these out of line otherwise, and a record took 40 instructions.
  [[gnu::always_inline]] void recordOne(Which w, uint64_t v) {
    bump(counts_[w][HistogramLayout::bucketOf(v)], 1);
    bump(totals_.sum[w], v);
    if (v > totals_.max[w].load(std::memory_order_relaxed)) totals_.max[w].store(v, std::memory_order_relaxed);
  }
  // Single-writer increment: a relaxed load and store, not an atomic RMW (no lock prefix).
  [[gnu::always_inline]] static void bump(std::atomic<uint64_t>& a, uint64_t d) {
    a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }
  struct alignas(64) Totals {
    std::atomic<uint64_t> sum[2];
    std::atomic<uint64_t> max[2];
  };
  Totals totals_;
  std::array<std::atomic<uint64_t>, HistogramLayout::kBuckets> counts_[2];
};

}  // namespace hwsq::sched
