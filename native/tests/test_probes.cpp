// The measuring loops of `hwsq bench memory` and the workload of `hwsq bench compare`
// (native/core/probes): correctness of the chase cycle and the read loop, sane results, prompt
// cancellation, and the per-task record of the placement workload. No timing assertions.
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <set>
#include <thread>
#include <vector>

#include "check.h"
#include "probes/memory_probe.h"
#include "probes/placement_probe.h"

using namespace hwsq::probes;

namespace {

struct Mapping {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Mapping(size_t n) : bytes(n) {
    p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) p = nullptr;
    else std::memset(p, 0, n);
  }
  ~Mapping() {
    if (p) munmap(p, bytes);
  }
  unsigned char* data() const { return static_cast<unsigned char*>(p); }
};

bool finitePositive(double v) { return std::isfinite(v) && v > 0; }

LatencyOptions latencyOn(const Mapping& m, uint64_t durationNs, int samples) {
  LatencyOptions o;
  o.buffer = m.p;
  o.bytes = m.bytes;
  o.durationNs = durationNs;
  o.samples = samples;
  return o;
}

BandwidthOptions bandwidthOn(const Mapping& m, std::vector<int> cpus, uint64_t durationNs, int samples) {
  BandwidthOptions o;
  o.buffer = m.p;
  o.bytes = m.bytes;
  o.cpus = std::move(cpus);
  o.durationNs = durationNs;
  o.samples = samples;
  return o;
}

}  // namespace

TEST_CASE("preparePointerChase makes one cycle through every line") {
  Mapping m(1 << 20);
  CHECK(m.p != nullptr);
  const size_t lines = preparePointerChase(m.p, m.bytes, 42);
  CHECK_EQ(lines, m.bytes / 64);
  std::set<uintptr_t> seen;
  const void* p = m.p;
  for (size_t i = 0; i < lines; ++i) {
    const auto a = reinterpret_cast<uintptr_t>(p);
    CHECK(a >= reinterpret_cast<uintptr_t>(m.p) && a < reinterpret_cast<uintptr_t>(m.p) + m.bytes);
    CHECK_EQ(a % 64, uintptr_t(0));
    seen.insert(a);
    p = *static_cast<const void* const*>(p);
  }
  CHECK_EQ(seen.size(), lines);     // every line once...
  CHECK(p == m.p);                  // ...and back to the start: a single cycle
  CHECK_THROWS(preparePointerChase(m.p, 64, 1));
}

TEST_CASE("measureLatency gives one positive figure per sample") {
  Mapping m(4 << 20);
  preparePointerChase(m.p, m.bytes, 7);
  LatencyOptions o = latencyOn(m, 5'000'000, 3);
  LatencyResult r = measureLatency(o);
  CHECK(!r.cancelled);
  CHECK_EQ(r.nsPerLoad.size(), size_t(3));
  for (double v : r.nsPerLoad) CHECK(finitePositive(v));
  for (uint64_t n : r.loads) CHECK(n > 0);
  CHECK(r.cpu >= 0);
  o.cpu = 0;  // pinned (CPU 0 exists everywhere)
  CHECK_EQ(measureLatency(o).cpu, 0);
  o.cpu = 1 << 20;
  CHECK_THROWS(measureLatency(o));  // not a CPU: the pin fails and the error comes back
}

TEST_CASE("sumWords reads every word") {
  std::vector<uint64_t> v(1024);
  std::iota(v.begin(), v.end(), 1);
  CHECK_EQ(sumWords(v.data(), v.size() * 8), uint64_t(1024) * 1025 / 2);
  CHECK_EQ(sumWords(v.data(), 64), uint64_t(36));
}

TEST_CASE("measureBandwidth runs one reader per CPU entry") {
  Mapping m(8 << 20);
  BandwidthOptions o = bandwidthOn(m, {-1, -1, -1}, 5'000'000, 2);
  BandwidthResult r = measureBandwidth(o);
  CHECK_EQ(r.threads, 3);
  CHECK_EQ(r.bytesPerSec.size(), size_t(2));
  for (size_t i = 0; i < r.bytesPerSec.size(); ++i) {
    CHECK(finitePositive(r.bytesPerSec[i]));
    CHECK(r.bytesRead[i] > 0);
    CHECK_EQ(r.bytesRead[i] % kLineBytes, size_t(0));  // whole lines, summed over the readers
    CHECK(r.seconds[i] > 0);
    CHECK(std::abs(r.bytesPerSec[i] - r.bytesRead[i] / r.seconds[i]) <= 1e-9 * r.bytesPerSec[i]);  // the rate is bytes over time
  }
  o.cpus = {};
  CHECK_THROWS(measureBandwidth(o));
}

// Keeps cancelling until stop is set: whenever the probe started, a cancel comes after it.
// (A probe only sees cancels after its start, so one cancel after a guessed sleep could miss.)
struct Canceller {
  std::atomic<bool> stop{false};
  std::thread th{[this] {
    while (!stop.load()) {
      ProbeCancel::cancelAll();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // pacing only
    }
  }};
  ~Canceller() {
    stop = true;
    th.join();
  }
};

TEST_CASE("cancelAll stops a running probe") {
  // Samples of 10 minutes each: without cancellation this test would not finish (ctest's
  // timeout fails it), so returning at all is the check; no clock is read.
  Mapping m(4 << 20);
  preparePointerChase(m.p, m.bytes, 3);
  LatencyOptions o = latencyOn(m, 600'000'000'000, 5);
  {
    Canceller c;
    LatencyResult r = measureLatency(o);
    CHECK(r.cancelled);
    CHECK(r.nsPerLoad.empty());
  }
  BandwidthOptions b = bandwidthOn(m, {-1, -1}, 600'000'000'000, 5);
  {
    Canceller c;
    BandwidthResult br = measureBandwidth(b);
    CHECK(br.cancelled);
    CHECK(br.bytesPerSec.empty());
  }
}

TEST_CASE("adviseHugePages covers the 2 MiB-aligned part and reports what happened") {
  Mapping m(8 << 20);
  HugePageAdvice a = adviseHugePages(m.p, m.bytes);
  CHECK(a.alignedBytes % kHugePageBytes == 0);
  CHECK(a.alignedBytes >= (6u << 20));  // 8 MiB holds at least three whole aligned 2 MiB pages
  CHECK((reinterpret_cast<uintptr_t>(m.data() + a.alignedOffset) % kHugePageBytes) == 0);
  CHECK(a.alignedOffset + a.alignedBytes <= m.bytes);
  CHECK(!a.collapsed || a.advised);
  const long long huge = hugePageBytes(m.p, m.bytes);
  CHECK(huge >= 0 && huge <= static_cast<long long>(m.bytes));
  if (a.collapsed) CHECK(huge > 0);
  CHECK_EQ(adviseHugePages(m.p, 4096).alignedBytes, size_t(0));
}

TEST_CASE("placement workload records every task, its CPU node and its memory") {
  for (auto policy : {hwsq::sched::StealPolicy::Hierarchical, hwsq::sched::StealPolicy::Flat}) {
    PlacementWorkloadOptions o;
    o.runtime = hwsq::sched::RuntimeOptions::virtualTopology(2, 2);
    o.runtime.policy = policy;
    o.runtime.sysmon = false;
    o.tasksPerNode = 3000;
    o.warmupTasksPerNode = 200;
    o.bytesPerTask = 4096;
    Mapping b0(1 << 20), b1(1 << 20);
    // Pretend placement: node 0's buffer on node 0, node 1's on node 1 except its last page.
    HomeBuffer h0{0, b0.data(), b0.bytes, 4096, std::vector<int>(256, 0)};
    HomeBuffer h1{1, b1.data(), b1.bytes, 4096, std::vector<int>(256, 1)};
    h1.pageNodes.back() = -2;  // "not present"
    o.buffers = {h0, h1};
    PlacementResult r = runPlacementWorkload(o);
    CHECK(!r.cancelled);
    CHECK_EQ(r.tasks, uint64_t(6000));
    CHECK(r.nodes.size() >= 2);
    uint64_t tasks = 0, bytes = 0;
    for (auto& row : r.tasksByCpuNodeAndHome) tasks += std::accumulate(row.begin(), row.end(), uint64_t(0));
    for (auto& row : r.bytesByCpuNodeAndMemory) bytes += std::accumulate(row.begin(), row.end(), uint64_t(0));
    CHECK_EQ(tasks, uint64_t(6000));
    // Node 1's last page is one slice of 256: those tasks' bytes are "unknown".
    const uint64_t unknownTasks = (3000 + 255) / 256;  // slices are used round-robin: 0..255, 0..
    CHECK(r.unknownMemoryBytes > 0);
    CHECK_EQ(bytes + r.unknownMemoryBytes, uint64_t(6000) * 4096);
    CHECK(r.unknownMemoryBytes <= unknownTasks * 4096);
    CHECK(r.remoteWhileOwnQueued <= r.remoteTasks);
    CHECK(r.remotePickups <= r.remoteTasks);
    CHECK(r.remotePickupsWhileOwnQueued <= r.remotePickups);
    CHECK(r.remotePickupsWhileOwnQueued <= r.remoteWhileOwnQueued);
    CHECK((r.remoteTasks == 0) == (r.remotePickups == 0));
    CHECK(r.remoteTasks <= r.tasks);
    // Every task (and the two roots) ran between the snapshots.
    CHECK_EQ(r.after.executed - r.before.executed, uint64_t(6002));
    CHECK(r.elapsedNs > 0);
    CHECK_EQ(r.workerNodes.size(), size_t(4));
  }
}

TEST_CASE("placement workload refuses buffers that do not match the Ps") {
  PlacementWorkloadOptions o;
  o.runtime = hwsq::sched::RuntimeOptions::virtualTopology(2, 1);
  o.runtime.sysmon = false;
  Mapping b0(1 << 16);
  o.buffers = {HomeBuffer{0, b0.data(), b0.bytes, 4096, std::vector<int>(16, 0)}};
  CHECK_THROWS(runPlacementWorkload(o));  // node 1 has Ps and no buffer
  o.buffers.push_back(HomeBuffer{1, b0.data(), 1024, 4096, {1}});
  CHECK_THROWS(runPlacementWorkload(o));  // smaller than one slice (16 KiB)
}

TEST_MAIN()
