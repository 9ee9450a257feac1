// Unit tests of the scheduler's building blocks: LRQ, HWSQ (its MPMC ring, and the ring with
// its spill list), GRQ, inbox, histogram, parker.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#include "check.h"
#include "sched/global_queue.h"
#include "sched/histogram.h"
#include "sched/stats.h"
#include "sched/hwsq.h"
#include "sched/inbox.h"
#include "sched/local_queue.h"
#include "sched/mpmc_ring.h"
#include "sched/parker.h"
#include "sched/task_pool.h"

using namespace hwsq::sched;

namespace {
std::vector<Task> makeTasks(size_t n) {
  std::vector<Task> v(n);
  for (size_t i = 0; i < n; ++i) v[i].arg = reinterpret_cast<void*>(i);
  return v;
}
size_t id(const Task* t) { return reinterpret_cast<size_t>(t->arg); }
// Light refs in the concurrent tests: which of two ops a ref carries follows from its id (its
// arg), so a slot read torn between two writes (one word of each) is caught.
const TaskOps kIdOps[2] = {};
TaskRef refOf(std::vector<Task>& ts, size_t i) {
  return i % 3 == 1 ? TaskRef::light(&kIdOps[i & 1], reinterpret_cast<void*>(i)) : TaskRef::full(&ts[i]);
}
size_t id(TaskRef t) {
  if (!t.isLight()) return id(t.task());
  const size_t i = reinterpret_cast<size_t>(t.arg);
  return t.ops == &kIdOps[i & 1] ? i : 0;  // torn: counted against task 0, which is then seen twice
}
}  // namespace

// ---------------------------------------------------------------- LRQ

TEST_CASE("lrq: FIFO, full at 256, empty") {
  LocalQueue q;
  auto ts = makeTasks(300);
  CHECK(q.popFront() == nullptr);
  for (size_t i = 0; i < LocalQueue::kCapacity; ++i) CHECK(q.pushBack(&ts[i]));
  CHECK_EQ(q.size(), 256u);
  CHECK(!q.pushBack(&ts[256]));  // full
  for (size_t i = 0; i < LocalQueue::kCapacity; ++i) {
    TaskRef t = q.popFront();
    CHECK(t != nullptr);
    if (t) CHECK_EQ(id(t), i);
  }
  CHECK(q.popFront() == nullptr);
  CHECK_EQ(q.size(), 0u);
}

TEST_CASE("lrq: wrap-around over many laps") {
  LocalQueue q;
  auto ts = makeTasks(10000);
  size_t next = 0, expect = 0;
  // Keep between 100 and 200 tasks queued while the indices go round ~39 times.
  while (next < ts.size()) {
    while (q.size() < 200 && next < ts.size()) CHECK(q.pushBack(&ts[next++]));
    while (q.size() > 100) {
      TaskRef t = q.popFront();
      CHECK_EQ(id(t), expect);
      ++expect;
    }
  }
  while (TaskRef t = q.popFront()) CHECK_EQ(id(t), expect++);
  CHECK_EQ(expect, ts.size());
}

TEST_CASE("lrq: runnext displaces to the caller, thieves take it only when asked") {
  LocalQueue q;
  auto ts = makeTasks(3);
  CHECK(q.putRunnext(&ts[0]) == nullptr);
  CHECK(q.putRunnext(&ts[1]) == &ts[0]);  // displaced, caller pushes it back
  CHECK(q.hasRunnext());
  CHECK(q.hasWork());
  LocalQueue thief;
  uint32_t n = 99;
  CHECK(thief.stealHalfFrom(q, false, &n) == nullptr);
  CHECK_EQ(n, 0u);
  CHECK(thief.stealHalfFrom(q, true, &n) == &ts[1]);
  CHECK_EQ(n, 1u);
  CHECK(!q.hasRunnext());
  CHECK(q.takeRunnext() == nullptr);
  q.putRunnext(&ts[2]);
  CHECK(q.takeRunnext() == &ts[2]);
  CHECK(q.takeRunnext() == nullptr);
}

TEST_CASE("lrq: steal-half arithmetic") {
  auto ts = makeTasks(256);
  for (uint32_t have : {1u, 2u, 3u, 4u, 7u, 128u, 255u, 256u}) {
    LocalQueue victim, thief;
    for (uint32_t i = 0; i < have; ++i) CHECK(victim.pushBack(&ts[i]));
    uint32_t n = 0;
    TaskRef t = thief.stealHalfFrom(victim, false, &n);
    uint32_t want = have - have / 2;  // half, rounded up
    CHECK_EQ(n, want);
    // The thief runs the last stolen task and keeps the others, oldest first.
    CHECK(t == &ts[want - 1]);
    CHECK_EQ(thief.size(), want - 1);
    CHECK_EQ(victim.size(), have - want);
    for (uint32_t i = 0; i + 1 < want; ++i) CHECK(thief.popFront() == &ts[i]);
    for (uint32_t i = want; i < have; ++i) CHECK(victim.popFront() == &ts[i]);
  }
}

TEST_CASE("lrq: overflow grabs the older half in one batch") {
  LocalQueue q;
  auto ts = makeTasks(256);
  TaskRef out[256];
  for (size_t i = 0; i < 200; ++i) q.pushBack(&ts[i]);
  CHECK_EQ(q.grabHalfForOverflow(out), 0u);  // not full
  for (size_t i = 200; i < 256; ++i) q.pushBack(&ts[i]);
  CHECK_EQ(q.grabHalfForOverflow(out), 128u);
  for (size_t i = 0; i < 128; ++i) CHECK(out[i] == &ts[i]);
  CHECK_EQ(q.size(), 128u);
  CHECK(q.popFront() == &ts[128]);
}

TEST_CASE("lrq: batch push stops at capacity") {
  LocalQueue q;
  auto ts = makeTasks(300);
  std::vector<TaskRef> ptrs;
  for (auto& t : ts) ptrs.push_back(&t);
  CHECK_EQ(q.pushBackBatch(ptrs.data(), 100), 100u);
  CHECK_EQ(q.pushBackBatch(ptrs.data() + 100, 200), 156u);
  CHECK_EQ(q.size(), 256u);
}

TEST_CASE("lrq: concurrent owner push/pop vs thieves, every task exactly once") {
  const size_t kTasks = 400000;
  auto ts = makeTasks(kTasks);
  std::vector<std::atomic<uint32_t>> seen(kTasks);
  LocalQueue owner;
  std::atomic<bool> done{false};
  std::atomic<size_t> taken{0};
  auto take = [&](TaskRef t) {
    seen[id(t)].fetch_add(1, std::memory_order_relaxed);
    taken.fetch_add(1, std::memory_order_relaxed);
  };
  std::vector<std::thread> thieves;
  for (int k = 0; k < 2; ++k)
    thieves.emplace_back([&, k] {
      LocalQueue mine;
      while (!done.load(std::memory_order_acquire)) {
        uint32_t n;
        if (TaskRef t = mine.stealHalfFrom(owner, (k & 1) != 0, &n)) {
          take(t);
          while (TaskRef u = mine.popFront()) take(u);
        } else {
          std::this_thread::yield();
        }
      }
    });
  for (size_t i = 0; i < kTasks; ++i) {
    if (i % 3 == 0) {
      if (TaskRef old = owner.putRunnext(&ts[i]))
        while (!owner.pushBack(old))
          if (TaskRef t = owner.popFront()) take(t);
    } else {
      while (!owner.pushBack(refOf(ts, i)))
        if (TaskRef t = owner.popFront()) take(t);
    }
    if (i % 5 == 0)
      if (TaskRef t = owner.popFront()) take(t);
  }
  for (;;) {
    if (TaskRef t = owner.takeRunnext()) take(t);
    else if (TaskRef t = owner.popFront()) take(t);
    else break;
  }
  done.store(true, std::memory_order_release);
  for (auto& th : thieves) th.join();
  CHECK_EQ(taken.load(), kTasks);
  size_t bad = 0;
  for (auto& s : seen) bad += s.load() != 1;
  CHECK_EQ(bad, 0u);
}

// ---------------------------------------------------------------- HWSQ

TEST_CASE("hwsq ring: capacity, full, partial batch push, FIFO batch pop") {
  CHECK_THROWS(MpmcRing(3));
  MpmcRing q(16);
  auto ts = makeTasks(40);
  std::vector<TaskRef> p;
  for (auto& t : ts) p.push_back(&t);
  TaskRef out[40];
  CHECK_EQ(q.popBatch(out, 4), 0u);
  CHECK_EQ(q.pushBatch(p.data(), 10), 10u);
  CHECK_EQ(q.pushBatch(p.data() + 10, 10), 6u);  // only 6 fit
  CHECK_EQ(q.size(), 16u);
  CHECK(!q.push(p[16]));
  CHECK_EQ(q.popBatch(out, 5), 5u);
  for (size_t i = 0; i < 5; ++i) CHECK(out[i] == p[i]);
  CHECK_EQ(q.popBatch(out, 100), 11u);
  for (size_t i = 0; i < 11; ++i) CHECK(out[i] == p[5 + i]);
  CHECK(q.pop() == nullptr);
}

TEST_CASE("hwsq ring: wrap-around over many laps") {
  MpmcRing q(8);
  auto ts = makeTasks(1000);
  size_t in = 0, outN = 0;
  TaskRef out[8];
  while (outN < ts.size()) {
    std::vector<TaskRef> batch;
    for (size_t k = 0; k < 5 && in < ts.size(); ++k) batch.push_back(&ts[in++]);
    size_t pushed = q.pushBatch(batch.data(), batch.size());
    in -= batch.size() - pushed;
    size_t n = q.popBatch(out, 3);
    for (size_t i = 0; i < n; ++i) CHECK_EQ(id(out[i]), outN + i);
    outN += n;
  }
  CHECK_EQ(q.size(), 0u);
}

// kProducers threads push kPer tasks each in batches of 1..9 through push(batch, n) -> pushed
// (retrying what was refused), kConsumers pop through pop(out, max, round) -> n; every task must
// come out exactly once.
template <class Push, class Pop>
void exactlyOnceMpmc(size_t kPer, Push push, Pop pop) {
  const int kProducers = 2, kConsumers = 2;
  auto ts = makeTasks(kPer * kProducers);
  std::vector<std::atomic<uint32_t>> seen(ts.size());
  std::atomic<size_t> consumed{0};
  std::vector<std::thread> th;
  for (int p = 0; p < kProducers; ++p)
    th.emplace_back([&, p] {
      TaskRef batch[9];
      for (size_t i = p * kPer, end = (p + 1) * kPer; i < end;) {
        size_t n = std::min<size_t>(1 + i % 9, end - i);
        for (size_t k = 0; k < n; ++k) batch[k] = refOf(ts, i + k);
        size_t k = push(batch, n);
        i += k;
        if (k == 0) std::this_thread::yield();
      }
    });
  for (int c = 0; c < kConsumers; ++c)
    th.emplace_back([&, c] {
      TaskRef out[32];
      for (uint32_t round = 0; consumed.load(std::memory_order_relaxed) < ts.size(); ++round) {
        size_t n = pop(out, 1 + (c * 7 + round) % 32, round);
        for (size_t k = 0; k < n; ++k) seen[id(out[k])].fetch_add(1, std::memory_order_relaxed);
        consumed.fetch_add(n, std::memory_order_relaxed);
        if (n == 0) std::this_thread::yield();
      }
    });
  for (auto& t : th) t.join();
  size_t bad = 0;
  for (auto& s : seen) bad += s.load() != 1;
  CHECK_EQ(bad, 0u);
}

TEST_CASE("hwsq ring: MPMC stress with batches, every task exactly once") {
  MpmcRing q(256);
  exactlyOnceMpmc(
      200000, [&](TaskRef const* b, size_t n) { return q.pushBatch(b, n); },
      [&](TaskRef* out, size_t max, uint32_t) { return q.popBatch(out, max); });
  CHECK_EQ(q.size(), 0u);
}

TEST_CASE("hwsq: one queue: the ring, then the spill list; pop and drain take from both") {
  Hwsq q(8);
  auto ts = makeTasks(100);
  std::vector<TaskRef> p;
  for (auto& t : ts) p.push_back(&t);
  q.push(p.data(), 30);                       // 8 in the ring, 22 spilled
  for (size_t i = 30; i < 40; ++i) q.push(&p[i], 1);
  CHECK_EQ(q.size(), 40u);
  CHECK_EQ(q.ringCapacity(), 8u);
  CHECK_EQ(q.ringRoom(), 0u);
  CHECK_EQ(q.pushRing(&p[40], 1), 0u);       // the ring alone is full
  TaskRef out[64];
  CHECK_EQ(q.pop(out, 64), 8u);               // ring first: the 8 oldest
  for (size_t i = 0; i < 8; ++i) CHECK_EQ(id(out[i]), i);
  CHECK_EQ(q.pop(out, 5), 5u);                // then the spill list, FIFO
  for (size_t i = 0; i < 5; ++i) CHECK_EQ(id(out[i]), 8 + i);
  CHECK_EQ(q.pushRing(&p[40], 2), 2u);
  CHECK_EQ(q.pop(out, 3, /*spillFirst=*/true), 3u);  // fairness: the spill list first
  for (size_t i = 0; i < 3; ++i) CHECK_EQ(id(out[i]), 13 + i);
  CHECK_EQ(q.size(), 40u - 16u + 2u);
  std::vector<size_t> dropped;
  CHECK_EQ(q.drain([&](TaskRef t) { dropped.push_back(id(t)); }), 26u);
  CHECK_EQ(q.size(), 0u);
  CHECK(q.empty());
  std::sort(dropped.begin(), dropped.end());
  for (size_t i = 0; i < 24; ++i) CHECK_EQ(dropped[i], 16 + i);  // the rest of 0..39
  CHECK_EQ(dropped[24], 40u);
  CHECK_EQ(dropped[25], 41u);
  CHECK_EQ(q.pop(out, 64), 0u);
}

TEST_CASE("hwsq: producers past the ring and consumers, every task exactly once (ring + spill)") {
  Hwsq q(64);
  exactlyOnceMpmc(
      100000,
      [&](TaskRef const* b, size_t n) {
        q.push(b, n);  // never refuses: what the ring cannot take is spilled
        return n;
      },
      [&](TaskRef* out, size_t max, uint32_t round) { return q.pop(out, max, round % 61 == 0); });
  CHECK_EQ(q.size(), 0u);
}

// ---------------------------------------------------------------- GRQ

TEST_CASE("grq: FIFO across chunks, batch pops, fair share") {
  GlobalQueue q;
  auto ts = makeTasks(2000);
  std::vector<TaskRef> p;
  for (auto& t : ts) p.push_back(&t);
  CHECK(q.empty());
  q.pushBatch(p.data(), 700);
  for (size_t i = 700; i < 2000; ++i) q.push(p[i]);
  CHECK_EQ(q.size(), 2000u);
  std::vector<TaskRef> out(2000);
  // share for one of 4 consumers: 2000/4 + 1 = 501, capped at 128
  CHECK_EQ(q.popShare(out.data(), 4, 128), 128u);
  CHECK_EQ(q.popShare(out.data() + 128, 4, 10000), static_cast<size_t>((2000 - 128) / 4 + 1));
  size_t got = 128 + (2000 - 128) / 4 + 1;
  got += q.popBatch(out.data() + got, 5000);
  CHECK_EQ(got, 2000u);
  for (size_t i = 0; i < 2000; ++i) CHECK(out[i] == p[i]);
  CHECK(q.empty());
  CHECK_EQ(q.popBatch(out.data(), 1), 0u);
  q.push(p[0]);  // reusable after draining
  CHECK_EQ(q.popBatch(out.data(), 4), 1u);
}

TEST_CASE("grq: concurrent producers and consumers") {
  GlobalQueue q;
  const size_t kPer = 100000;
  auto ts = makeTasks(kPer * 2);
  std::vector<std::atomic<uint32_t>> seen(ts.size());
  std::atomic<size_t> consumed{0};
  std::vector<std::thread> th;
  for (int p = 0; p < 2; ++p)
    th.emplace_back([&, p] {
      for (size_t i = p * kPer; i < (p + 1) * kPer; i += 4) {
        TaskRef b[4] = {refOf(ts, i), refOf(ts, i + 1), refOf(ts, i + 2), refOf(ts, i + 3)};
        if (i % 8 == 0) q.pushBatch(b, 4);
        else for (TaskRef t : b) q.push(t);
      }
    });
  for (int c = 0; c < 2; ++c)
    th.emplace_back([&] {
      TaskRef out[64];
      while (consumed.load() < ts.size()) {
        size_t n = q.popShare(out, 2, 64);
        for (size_t k = 0; k < n; ++k) seen[id(out[k])].fetch_add(1);
        consumed.fetch_add(n);
        if (!n) std::this_thread::yield();
      }
    });
  for (auto& t : th) t.join();
  size_t bad = 0;
  for (auto& s : seen) bad += s.load() != 1;
  CHECK_EQ(bad, 0u);
}

// ---------------------------------------------------------------- inbox

TEST_CASE("inbox: every task exactly once, FIFO per producer, under concurrent pushes") {
  Inbox in;
  const size_t kPer = 50000;
  auto ts = makeTasks(kPer * 2);
  std::atomic<int> producersDone{0};
  std::thread a([&] { for (size_t i = 0; i < kPer; ++i) in.push(&ts[i]); producersDone.fetch_add(1, std::memory_order_release); });
  std::thread b([&] { for (size_t i = kPer; i < 2 * kPer; ++i) in.push(&ts[i]); producersDone.fetch_add(1, std::memory_order_release); });
  std::vector<int> seen(2 * kPer, 0);
  size_t got = 0, lastA = 0, lastB = kPer;
  bool orderOk = true;
  // Pops until the producers are done and the inbox is empty: a lost task is a count below, not
  // a hang; a duplicate is a count above.
  for (;;) {
    const bool finished = producersDone.load(std::memory_order_acquire) == 2;
    TaskRef t = in.pop();
    if (!t) {
      if (finished) break;
      std::this_thread::yield();
      continue;
    }
    size_t i = id(t);
    if (i >= seen.size()) { orderOk = false; continue; }
    ++seen[i];
    if (i < kPer) { orderOk &= i >= lastA; lastA = i; }
    else { orderOk &= i >= lastB; lastB = i; }
    ++got;
  }
  a.join();
  b.join();
  CHECK_EQ(got, 2 * kPer);
  size_t bad = 0;
  for (int c : seen) bad += c != 1;
  CHECK_EQ(bad, size_t(0));
  CHECK(orderOk);
  CHECK(!in.ownerHasWork());
}

// ---------------------------------------------------------------- histogram

TEST_CASE("histogram: bucket bounds and bounded relative error") {
  using L = HistogramLayout;
  for (uint64_t v = 0; v < 32; ++v) CHECK_EQ(L::bucketOf(v), static_cast<size_t>(v));
  uint64_t samples[] = {32, 33, 63, 64, 65, 100, 1000, 12345, 1ull << 20, (1ull << 20) + 12345, 987654321, 1ull << 40, (1ull << 47) + 5};
  for (uint64_t v : samples) {
    size_t b = L::bucketOf(v);
    CHECK(L::bucketLow(b) <= v);
    CHECK(v <= L::bucketHigh(b));
    double width = static_cast<double>(L::bucketHigh(b) - L::bucketLow(b) + 1);
    CHECK(width / static_cast<double>(L::bucketLow(b)) <= 1.0 / 32 + 1e-12);
  }
  CHECK_EQ(L::bucketOf(UINT64_MAX), L::kBuckets - 1);
  // Buckets are contiguous and increasing.
  for (size_t b = 0; b + 1 < L::kBuckets; ++b) CHECK_EQ(L::bucketHigh(b) + 1, L::bucketLow(b + 1));
}

TEST_CASE("histogram: quantiles and merge") {
  TimingHistograms a, b;
  for (uint64_t v = 1; v <= 10000; ++v) (v % 2 ? a : b).record(v, 3 * v);
  HistogramSnapshot s;
  a.mergeInto(TimingHistograms::kLatency, s);
  b.mergeInto(TimingHistograms::kLatency, s);
  CHECK_EQ(s.count, 10000u);
  CHECK_EQ(s.max, 10000u);
  CHECK_EQ(s.sum, 10000u * 10001u / 2);
  // The run-time histogram is the other one: its own buckets, sum and max.
  HistogramSnapshot r;
  a.mergeInto(TimingHistograms::kRunTime, r);
  b.mergeInto(TimingHistograms::kRunTime, r);
  CHECK_EQ(r.count, 10000u);
  CHECK_EQ(r.max, 30000u);
  CHECK_EQ(r.sum, 3u * 10000u * 10001u / 2);
  CHECK_EQ(a.sum(TimingHistograms::kRunTime) + b.sum(TimingHistograms::kRunTime), r.sum);
  CHECK(std::fabs(r.quantileNs(0.5) - 15000) / 15000 < 0.035);
  // A run recorded without a latency counts in the run-time histogram only.
  a.recordRun(7);
  CHECK_EQ(a.count(TimingHistograms::kRunTime), 5001u);
  CHECK_EQ(a.count(TimingHistograms::kLatency), 5000u);
  for (double q : {0.5, 0.9, 0.99}) {
    double got = s.quantileNs(q), want = q * 10000;
    CHECK(std::fabs(got - want) / want < 0.035);
  }
  CHECK(s.quantileNs(1.0) == 10000.0);
  HistogramSnapshot t;
  t.merge(s);
  t.merge(s);
  CHECK_EQ(t.count, 20000u);
  CHECK(std::fabs(t.quantileNs(0.5) - s.quantileNs(0.5)) < 1e-9);
}

TEST_CASE("timing sampler: 1 in 2^k on average, spread over every phase of a periodic stream") {
  // Picks must not alias with a period of the workload: with tasks alternating kinds in a cycle
  // of 8, every kind gets about 1/8 of the picks (a plain every-8th counter gives one kind all).
  for (int shift : {1, 3, 6}) {
    TimingSampler s(12345);
    const uint64_t n = 1u << 20;
    uint64_t picks = 0, byPhase[8] = {};
    for (uint64_t i = 0; i < n; ++i)
      if (s.next(shift)) {
        ++picks;
        ++byPhase[i % 8];
      }
    const double expect = static_cast<double>(n >> shift);
    CHECK(std::fabs(static_cast<double>(picks) / expect - 1) < 0.02);
    for (uint64_t c : byPhase) CHECK(std::fabs(static_cast<double>(c) / (static_cast<double>(picks) / 8) - 1) < 0.15);
  }
  TimingSampler all;
  for (int i = 0; i < 100; ++i) CHECK(all.next(0));
}

TEST_CASE("timing sampler: off never picks, whatever skip or next; re-armed by the shift given") {
  TimingSampler off(99, false);
  for (int i = 0; i < 1000000; ++i) CHECK(!off.next(8));
  CHECK(off.skip(1u << 30) == 1u << 30);
  // An armed sampler switched off by its pick (next(kOff)) picks nothing after it.
  TimingSampler s(99);
  CHECK(s.skip(10) == 0);
  CHECK(s.next(TimingSampler::kOff));
  CHECK(s.skip(uint64_t{1} << 40) == uint64_t{1} << 40);
  for (int i = 0; i < 1000; ++i) CHECK(!s.next(0));
  // Re-armed by the shift it is given: a long gap, then every task.
  TimingSampler r(5);
  CHECK(r.next(20));  // the first task is picked, then a gap of 2^19 at least
  CHECK(r.skip(1000) == 1000);
  CHECK(r.skip(uint64_t{1} << 20) < uint64_t{1} << 20);
  CHECK(r.next(0));
  CHECK(r.skip(1000) == 0);  // shift 0: every task
}

TEST_CASE("timing sampler: skip(n) picks exactly the tasks next() would, gaps skipped at once") {
  for (int shift : {0, 1, 4, 7}) {
    TimingSampler one(777), batched(777);
    std::vector<uint64_t> a, b;
    uint64_t pos = 0;
    uint64_t batchSize = 1;
    while (pos < 200000) {
      batchSize = batchSize * 7 % 601 + 1;  // batches of 1..601 tasks, in a scrambled order
      for (uint64_t i = 0; i < batchSize; ++i)
        if (one.next(shift)) a.push_back(pos + i);
      uint64_t i = 0;
      while (i < batchSize) {
        const uint64_t gap = batched.skip(batchSize - i);
        CHECK(gap <= batchSize - i);
        i += gap;
        if (i == batchSize) break;
        CHECK(batched.next(shift));  // skip stopped before a timed task
        b.push_back(pos + i++);
      }
      pos += batchSize;
    }
    CHECK(a.size() > (shift == 0 ? 199999u : (200000u >> shift) / 2));
    CHECK(a == b);
  }
}

TEST_CASE("histogram: scale multiplies counts and sum, keeps quantiles") {
  TimingHistograms h;
  for (uint64_t v = 1; v <= 1000; ++v) h.recordRun(v);
  HistogramSnapshot s;
  h.mergeInto(TimingHistograms::kRunTime, s);
  const double p50 = s.quantileNs(0.5), p99 = s.quantileNs(0.99);
  s.scale(8);
  CHECK_EQ(s.count, 8000u);
  CHECK_EQ(s.sum, 8u * 500500u);
  uint64_t total = 0;
  for (uint64_t c : s.counts) total += c;
  CHECK_EQ(total, s.count);
  CHECK(s.quantileNs(0.5) == p50);
  CHECK(s.quantileNs(0.99) == p99);
  CHECK_EQ(s.max, 1000u);
}

TEST_CASE("histogram: concurrent reader sees monotone counts") {
  TimingHistograms h;
  std::atomic<bool> stop{false};
  bool monotone = true;
  std::thread r([&] {
    uint64_t last = 0;
    while (!stop.load()) {
      HistogramSnapshot s;
      h.mergeInto(TimingHistograms::kLatency, s);
      monotone &= s.count >= last;
      last = s.count;
    }
  });
  for (uint64_t i = 0; i < 200000; ++i) h.record(i & 4095, i & 255);
  stop = true;
  r.join();
  CHECK(monotone);
  CHECK_EQ(h.count(TimingHistograms::kLatency), 200000u);
  CHECK_EQ(h.count(TimingHistograms::kRunTime), 200000u);
}

// ---------------------------------------------------------------- parker, wait group, pool

TEST_CASE("parker: a token left before park is consumed at once; timeout returns") {
  Parker p;
  p.unpark();
  p.park();  // would hang (ctest's timeout fails it) if the token were lost
  p.park(2'000'000);  // no token: returns once the timeout elapses (a hang otherwise)
  // Cross-thread wake, many times: every unpark either wakes or leaves a token.
  std::atomic<int> phase{0};
  std::thread th([&] {
    for (int i = 0; i < 2000; ++i) {
      while (phase.load() != 2 * i + 1) p.park();
      phase.store(2 * i + 2);
    }
  });
  for (int i = 0; i < 2000; ++i) {
    phase.store(2 * i + 1);
    p.unpark();
    while (phase.load() != 2 * i + 2) std::this_thread::yield();
  }
  th.join();
  CHECK_EQ(phase.load(), 4000);
}

TEST_CASE("waitgroup: wait returns after all done") {
  WaitGroup wg;
  std::atomic<int> ran{0};
  wg.add(8);
  std::vector<std::thread> th;
  for (int i = 0; i < 8; ++i)
    th.emplace_back([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      ran.fetch_add(1);
      wg.done();
    });
  wg.wait();
  CHECK_EQ(ran.load(), 8);
  for (auto& t : th) t.join();
  wg.wait();  // zero: returns at once
}

TEST_CASE("task pool: alloc/free across threads") {
  std::vector<Task*> ts;
  for (int i = 0; i < 5000; ++i) {
    Task* t = allocTask();
    CHECK(t->flags == kTaskPooled);
    CHECK(t->fn == nullptr);
    ts.push_back(t);
  }
  std::thread other([&] { for (Task* t : ts) freeTask(t); });
  other.join();  // its cache goes back to the depot at thread exit
#if !defined(__SANITIZE_ADDRESS__)
  CHECK(taskPoolInfo().depotTasks >= 5000u);
#endif
  Task* again = allocTask();
  CHECK(again != nullptr);
  freeTask(again);
}

TEST_CASE("task pool: allocTasks hands out n distinct pooled copies of the prototype") {
  int arg = 0;
  Task proto([](void*) {}, &arg, 3);
  proto.done = [](void*) {};
  proto.doneArg = &arg;
  proto.submitTicks = 99;
  proto.flags = 0;
  std::vector<Task*> ts(1300);  // more than the thread cache holds: refills from the depot midway
  allocTasks(ts.data(), ts.size(), proto);
  std::vector<Task*> sorted(ts);
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
  size_t bad = 0;
  for (Task* t : ts)
    bad += t->fn != proto.fn || t->arg != &arg || t->node != 3 || t->done != proto.done || t->doneArg != &arg ||
           t->cancel != nullptr || t->submitTicks != 99 || t->flags != kTaskPooled || t->next != nullptr;
  CHECK_EQ(bad, 0u);
  for (Task* t : ts) freeTask(t);
}

namespace {
// A thread-exit destructor that runs after the thread's task cache was given back (thread_local
// destructors run in reverse order of construction: this one was constructed first).
struct LateUser {
  bool armed = false;
  std::atomic<int>* ok = nullptr;
  ~LateUser() {
    if (!armed) return;
    Task* t = allocTask();  // no cache any more: straight from the depot
    if (t && t->flags == kTaskPooled && t->fn == nullptr) ok->fetch_add(1);
    freeTask(t);            // and straight back to it
    ok->fetch_add(1);
  }
};
thread_local LateUser lateUser;
}  // namespace

TEST_CASE("task pool: a thread-exit destructor after the thread's cache went back still allocates and frees") {
  std::atomic<int> ok{0};
  std::thread th([&] {
    lateUser.armed = true;  // constructed before the cache below
    lateUser.ok = &ok;
    for (int i = 0; i < 600; ++i) freeTask(allocTask());  // the cache exists, holds tasks
  });
  th.join();
  CHECK_EQ(ok.load(), 2);
#if !defined(__SANITIZE_ADDRESS__)
  CHECK(taskPoolInfo().depotTasks > 0u);
#endif
}

TEST_MAIN()
