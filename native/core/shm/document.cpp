// Encoding and decoding of the stats document (layout.h gives the blocks, docs/shm-layout.md
// the whole format). The decoder trusts nothing: every count is checked against the words that
// are left before anything is read or allocated, so a truncated, hostile or garbled document
// is a CorruptDocument, never a crash or an unbounded allocation.
#include "shm/document.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "sched/histogram.h"
#include "topology.h"

namespace hwsq::shm {

using sched::HistogramLayout;
using sched::HistogramSnapshot;
using sched::NodeStats;
using sched::RuntimeStats;
using sched::WorkerStats;

namespace {

// ------------------------------------------------------------------ encoding

class Encoder {
 public:
  explicit Encoder(std::vector<uint64_t>& out) : w_(out) {}
  void word(uint64_t v) { w_.push_back(v); }
  void fields(const uint64_t* f, size_t n) {
    word(n);
    w_.insert(w_.end(), f, f + n);
  }
  void string(const std::optional<std::string>& s) {
    if (!s) return word(kAbsent);
    const size_t n = std::min<size_t>(s->size(), kMaxStringBytes);
    word(n);
    const size_t at = w_.size();
    w_.resize(at + (n + 7) / 8, 0);
    if (n) std::memcpy(&w_[at], s->data(), n);
  }
  size_t beginRecord() {
    word(0);
    return w_.size() - 1;
  }
  void endRecord(size_t at) { w_[at] = w_.size() - at; }
  size_t size() const { return w_.size(); }
  void truncate(size_t n) { w_.resize(n); }

 private:
  std::vector<uint64_t>& w_;
};

uint64_t doubleBits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}
double bitsDouble(uint64_t u) {
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
}

void encodeHistogram(Encoder& e, const HistogramSnapshot& h) {
  uint64_t f[HistogramFieldCount] = {};
  f[UnitNsBits] = doubleBits(h.unitNs);
  f[HistCount] = h.count;
  f[HistSum] = h.sum;
  f[HistMax] = h.max;
  f[LayoutBuckets] = HistogramLayout::kBuckets;
  f[LayoutSubBits] = HistogramLayout::kSubBits;
  e.fields(f, HistogramFieldCount);
  uint64_t rows = 0;
  for (uint64_t c : h.counts) rows += c != 0;
  e.word(rows);
  e.word(2);
  for (size_t i = 0; i < h.counts.size(); ++i) {
    if (!h.counts[i]) continue;
    e.word(i);
    e.word(h.counts[i]);
  }
}

void encodeRuntime(Encoder& e, const RuntimeSnapshot& r) {
  const RuntimeStats& s = r.stats;
  const size_t at = e.beginRecord();
  uint64_t f[RuntimeFieldCount] = {};
  f[RuntimeId] = r.id;
  f[Kind] = static_cast<uint64_t>(r.kind);
  const auto bit = [](bool on, RuntimeFlag f) { return on ? static_cast<uint64_t>(f) : uint64_t{0}; };
  f[Flags] = bit(s.statsEnabled, FlagStatsEnabled) | bit(r.pinned, FlagPinned) | bit(r.closed, FlagClosed) | bit(r.tasks.has_value(), FlagJsTasks) |
             bit(r.parallelism.has_value(), FlagParallelism);
  f[Policy] = r.flat ? 1 : 0;
  f[CreatedAtNs] = r.createdAtNs;
  f[ElapsedNs] = r.elapsedNs;
  f[HogThresholdNs] = r.hogThresholdNs;
  f[GlobalQueueDepth] = s.grqDepth;
  f[ExternalSubmitted] = s.externalSubmitted;
  f[Rejected] = s.rejected;
  f[Dropped] = s.dropped;
  f[Spawned] = s.spawned;
  f[Executed] = s.executed;
  f[Spinning] = static_cast<uint64_t>(std::max(0, s.spinning));
  f[Idle] = static_cast<uint64_t>(std::max(0, s.idle));
  f[SysmonHogs] = s.sysmon.hogs;
  f[SysmonLongestHogNs] = s.sysmon.longestHogNs;
  f[SysmonLongestHogWorker] = static_cast<uint64_t>(static_cast<int64_t>(s.sysmon.longestHogWorker));
  f[SysmonStuckWorkers] = s.sysmon.stuckWorkers;
  f[SysmonRounds] = s.sysmon.rounds;
  f[SysmonCurrentDelayUs] = s.sysmon.currentDelayUs;
  if (r.tasks) {
    f[TasksLive] = r.tasks->live;
    f[TasksQueued] = r.tasks->queued;
    f[TasksCompleted] = r.tasks->completed;
    f[TasksFailed] = r.tasks->failed;
    f[TasksWorkerExited] = r.tasks->workerExited;
    f[TasksCancelled] = r.tasks->cancelled;
    f[TasksDeferred] = r.tasks->deferred;
  }
  if (r.parallelism) {
    f[ActiveWorkers] = r.parallelism->activeWorkers;
    f[Parallelism] = r.parallelism->parallelism;
    f[ParallelismSourceField] = static_cast<uint64_t>(r.parallelism->source);
    f[ParallelismChanges] = r.parallelism->changes;
  }
  e.fields(f, RuntimeFieldCount);

  e.word(s.nodes.size());
  e.word(NodeFieldCount);
  for (const NodeStats& n : s.nodes) {
    uint64_t row[NodeFieldCount] = {};
    row[NodeId] = static_cast<uint64_t>(static_cast<int64_t>(n.node));
    row[NodeWorkers] = static_cast<uint64_t>(std::max(0, n.workers));
    row[NodeQueueDepth] = n.hwsqDepth;
    row[NodeQueueCapacity] = n.hwsqCapacity;
    row[NodePrefetches] = n.prefetches;
    row[NodePrefetchTasks] = n.prefetchTasks;
    for (uint64_t v : row) e.word(v);
  }

  e.word(s.workers.size());
  e.word(WorkerFieldCount);
  for (const WorkerStats& w : s.workers) {
    uint64_t row[WorkerFieldCount] = {};
    row[WorkerIndex] = static_cast<uint64_t>(std::max(0, w.worker));
    row[WorkerNode] = static_cast<uint64_t>(static_cast<int64_t>(w.node));
    row[WorkerSpawned] = w.spawned;
    row[WorkerExecuted] = w.executed;
    row[WorkerLocalPushes] = w.localPushes;
    row[WorkerRunnextHits] = w.runnextHits;
    row[WorkerHwsqPushes] = w.hwsqPushes;
    row[WorkerHwsqPops] = w.hwsqPops;
    row[WorkerGrqPops] = w.grqPops;
    row[WorkerInboxPops] = w.inboxPops;
    row[WorkerStealsSameNode] = w.stealsSameNode;
    row[WorkerStealsSameNodeTasks] = w.stealsSameNodeTasks;
    row[WorkerStealsRemote] = w.stealsRemote;
    row[WorkerStealsRemoteTasks] = w.stealsRemoteTasks;
    row[WorkerFailedSteals] = w.failedSteals;
    row[WorkerOverflows] = w.overflows;
    row[WorkerOverflowTasks] = w.overflowTasks;
    row[WorkerParks] = w.parks;
    row[WorkerWakeups] = w.wakeups;
    row[WorkerSpinningNs] = w.spinningNs;
    row[WorkerBusyNs] = w.busyNs;
    row[WorkerHogs] = w.hogs;
    row[WorkerQueueDepth] = w.lrqDepth;
    row[WorkerFlags] = (w.parked ? 1 : 0) | (w.active ? 0 : 2);
    row[WorkerRunningForNs] = w.runningForNs;
    for (uint64_t v : row) e.word(v);
  }

  e.word(s.workers.size());
  for (size_t i = 0; i < s.workers.size(); ++i) e.string(i < r.workerCpus.size() ? formatCpuList(r.workerCpus[i]) : std::string());
  encodeHistogram(e, s.latency);
  encodeHistogram(e, s.runTime);
  e.endRecord(at);
}

// ------------------------------------------------------------------ decoding

// Words [begin, end) of the document, read front to back.
class Cursor {
 public:
  Cursor(const uint64_t* words, size_t begin, size_t end) : w_(words), i_(begin), end_(end) {}

  size_t pos() const { return i_; }
  size_t left() const { return end_ - i_; }

  uint64_t word(const char* what) {
    if (i_ >= end_) throw CorruptDocument(std::string("the document ends inside ") + what);
    return w_[i_++];
  }

  // A fields block into out[0..known): fields beyond the block are 0 (absent), fields beyond
  // `known` are skipped. Returns how many the block had.
  uint64_t fields(uint64_t* out, size_t known, const char* what) {
    const uint64_t n = word(what);
    if (n > left()) throw CorruptDocument(std::string(what) + ": " + std::to_string(n) + " fields, " + std::to_string(left()) + " words left");
    std::fill(out, out + known, 0);
    for (uint64_t k = 0; k < n && k < known; ++k) out[k] = w_[i_ + k];
    i_ += n;
    return n;
  }

  // A table block: rows of `cols` words starting at the returned offset.
  struct Table {
    uint64_t rows = 0, cols = 0;
    const uint64_t* data = nullptr;
    uint64_t at(uint64_t row, uint64_t col) const { return col < cols ? data[row * cols + col] : 0; }
  };
  Table table(const char* what, uint64_t maxRows) {
    Table t;
    t.rows = word(what);
    t.cols = word(what);
    if (t.rows > maxRows) throw CorruptDocument(std::string(what) + ": " + std::to_string(t.rows) + " rows (at most " + std::to_string(maxRows) + ")");
    if (t.cols > kMaxColumns) throw CorruptDocument(std::string(what) + ": " + std::to_string(t.cols) + " columns");
    if (t.rows * t.cols > left()) throw CorruptDocument(std::string(what) + ": the table runs past its record");
    t.data = w_ + i_;
    i_ += t.rows * t.cols;
    return t;
  }

  std::optional<std::string> string(const char* what) {
    const uint64_t n = word(what);
    if (n == kAbsent) return std::nullopt;
    if (n > kMaxStringBytes) throw CorruptDocument(std::string(what) + ": a string of " + std::to_string(n) + " bytes");
    const uint64_t words = (n + 7) / 8;
    if (words > left()) throw CorruptDocument(std::string(what) + ": a string runs past its record");
    std::string s(reinterpret_cast<const char*>(w_ + i_), n);
    i_ += words;
    return s;
  }

  // A record: a cursor over its words (after the size word); this cursor moves past it.
  Cursor record(const char* what) {
    const size_t start = i_;
    const uint64_t total = word(what);
    if (total < 1 || total - 1 > left()) throw CorruptDocument(std::string(what) + ": a record of " + std::to_string(total) + " words, " + std::to_string(left()) + " left");
    i_ = start + total;
    return Cursor(w_, start + 1, start + total);
  }

 private:
  const uint64_t* w_;
  size_t i_;
  size_t end_;
};

int intIn(uint64_t v, int64_t lo, int64_t hi, const char* what) {
  const int64_t s = static_cast<int64_t>(v);
  if (s < lo || s > hi) throw CorruptDocument(std::string(what) + " out of range: " + std::to_string(s));
  return static_cast<int>(s);
}

HistogramSnapshot decodeHistogram(Cursor& c, const char* what) {
  uint64_t f[HistogramFieldCount];
  c.fields(f, HistogramFieldCount, what);
  if (f[LayoutBuckets] != HistogramLayout::kBuckets || f[LayoutSubBits] != static_cast<uint64_t>(HistogramLayout::kSubBits)) {
    throw CorruptDocument(std::string(what) + ": a histogram layout of " + std::to_string(f[LayoutBuckets]) + " buckets, " + std::to_string(f[LayoutSubBits]) +
                          " sub-bucket bits (this reader knows " + std::to_string(HistogramLayout::kBuckets) + ", " + std::to_string(HistogramLayout::kSubBits) + ")");
  }
  HistogramSnapshot h;
  h.unitNs = bitsDouble(f[UnitNsBits]);
  if (!(std::isfinite(h.unitNs) && h.unitNs > 0 && h.unitNs < 1e9)) throw CorruptDocument(std::string(what) + ": a unit that is not a duration");
  h.count = f[HistCount];
  h.sum = f[HistSum];
  h.max = f[HistMax];
  Cursor::Table t = c.table(what, HistogramLayout::kBuckets);
  if (t.rows && t.cols < 2) throw CorruptDocument(std::string(what) + ": bucket rows of " + std::to_string(t.cols) + " words");
  uint64_t last = 0;
  for (uint64_t r = 0; r < t.rows; ++r) {
    const uint64_t idx = t.at(r, 0);
    if (idx >= HistogramLayout::kBuckets || (r > 0 && idx <= last)) throw CorruptDocument(std::string(what) + ": bucket indexes not ascending within the layout");
    h.counts[idx] = t.at(r, 1);
    last = idx;
  }
  return h;
}

}  // namespace

ParallelismSource parallelismSourceOf(const std::string& name) {
  if (name == "fixed") return ParallelismSource::Fixed;
  if (name == "cgroup2") return ParallelismSource::Cgroup2;
  if (name == "cgroup1") return ParallelismSource::Cgroup1;
  if (name == "cpuset") return ParallelismSource::Cpuset;
  return ParallelismSource::Unknown;
}

const char* parallelismSourceName(ParallelismSource s) {
  switch (s) {
    case ParallelismSource::Cgroup2: return "cgroup2";
    case ParallelismSource::Cgroup1: return "cgroup1";
    case ParallelismSource::Cpuset: return "cpuset";
    case ParallelismSource::Fixed:
    case ParallelismSource::Unknown: break;
  }
  return "fixed";
}

namespace {

RuntimeSnapshot decodeRuntime(Cursor rec) {
  RuntimeSnapshot r;
  RuntimeStats& s = r.stats;
  uint64_t f[RuntimeFieldCount];
  rec.fields(f, RuntimeFieldCount, "runtime fields");
  r.id = f[RuntimeId];
  if (f[Kind] != static_cast<uint64_t>(RuntimeKind::Native) && f[Kind] != static_cast<uint64_t>(RuntimeKind::Js)) {
    throw CorruptDocument("runtime kind " + std::to_string(f[Kind]));
  }
  r.kind = static_cast<RuntimeKind>(f[Kind]);
  s.statsEnabled = (f[Flags] & FlagStatsEnabled) != 0;
  r.pinned = (f[Flags] & FlagPinned) != 0;
  r.closed = (f[Flags] & FlagClosed) != 0;
  if (f[Policy] > 1) throw CorruptDocument("steal policy " + std::to_string(f[Policy]));
  r.flat = f[Policy] == 1;
  r.createdAtNs = f[CreatedAtNs];
  r.elapsedNs = f[ElapsedNs];
  r.hogThresholdNs = f[HogThresholdNs];
  s.grqDepth = f[GlobalQueueDepth];
  s.externalSubmitted = f[ExternalSubmitted];
  s.rejected = f[Rejected];
  s.dropped = f[Dropped];
  s.spawned = f[Spawned];
  s.executed = f[Executed];
  s.spinning = intIn(f[Spinning], 0, 1 << 16, "spinning workers");
  s.idle = intIn(f[Idle], 0, 1 << 16, "idle workers");
  s.sysmon.hogs = f[SysmonHogs];
  s.sysmon.longestHogNs = f[SysmonLongestHogNs];
  s.sysmon.longestHogWorker = intIn(f[SysmonLongestHogWorker], -1, 1 << 16, "longest hog worker");
  s.sysmon.stuckWorkers = f[SysmonStuckWorkers];
  s.sysmon.rounds = f[SysmonRounds];
  s.sysmon.currentDelayUs = f[SysmonCurrentDelayUs];
  if (f[Flags] & FlagJsTasks) {
    r.tasks = JsTaskCounts{f[TasksLive], f[TasksQueued], f[TasksCompleted], f[TasksFailed], f[TasksWorkerExited], f[TasksCancelled], f[TasksDeferred]};
  }
  if (f[Flags] & FlagParallelism) {
    if (f[ParallelismSourceField] > static_cast<uint64_t>(ParallelismSource::Cpuset)) throw CorruptDocument("parallelism source " + std::to_string(f[ParallelismSourceField]));
    r.parallelism = ParallelismInfo{f[ActiveWorkers], f[Parallelism], static_cast<ParallelismSource>(f[ParallelismSourceField]), f[ParallelismChanges]};
  }

  Cursor::Table nodes = rec.table("node table", kMaxNodes);
  s.nodes.resize(nodes.rows);
  for (uint64_t i = 0; i < nodes.rows; ++i) {
    NodeStats& n = s.nodes[i];
    n.node = intIn(nodes.at(i, NodeId), 0, kMaxNodes - 1, "node id");
    n.workers = intIn(nodes.at(i, NodeWorkers), 0, 1 << 16, "workers of a node");
    n.hwsqDepth = nodes.at(i, NodeQueueDepth);
    n.hwsqCapacity = nodes.at(i, NodeQueueCapacity);
    n.prefetches = nodes.at(i, NodePrefetches);
    n.prefetchTasks = nodes.at(i, NodePrefetchTasks);
  }

  Cursor::Table workers = rec.table("worker table", 4096);
  s.workers.resize(workers.rows);
  for (uint64_t i = 0; i < workers.rows; ++i) {
    WorkerStats& w = s.workers[i];
    auto at = [&](WorkerField k) { return workers.at(i, k); };
    w.worker = intIn(at(WorkerIndex), 0, 4095, "worker index");
    w.node = intIn(at(WorkerNode), -1, kMaxNodes - 1, "worker node");
    w.spawned = at(WorkerSpawned);
    w.executed = at(WorkerExecuted);
    w.localPushes = at(WorkerLocalPushes);
    w.runnextHits = at(WorkerRunnextHits);
    w.hwsqPushes = at(WorkerHwsqPushes);
    w.hwsqPops = at(WorkerHwsqPops);
    w.grqPops = at(WorkerGrqPops);
    w.inboxPops = at(WorkerInboxPops);
    w.stealsSameNode = at(WorkerStealsSameNode);
    w.stealsSameNodeTasks = at(WorkerStealsSameNodeTasks);
    w.stealsRemote = at(WorkerStealsRemote);
    w.stealsRemoteTasks = at(WorkerStealsRemoteTasks);
    w.failedSteals = at(WorkerFailedSteals);
    w.overflows = at(WorkerOverflows);
    w.overflowTasks = at(WorkerOverflowTasks);
    w.parks = at(WorkerParks);
    w.wakeups = at(WorkerWakeups);
    w.spinningNs = at(WorkerSpinningNs);
    w.busyNs = at(WorkerBusyNs);
    w.hogs = at(WorkerHogs);
    w.lrqDepth = static_cast<uint32_t>(std::min<uint64_t>(at(WorkerQueueDepth), UINT32_MAX));
    w.parked = (at(WorkerFlags) & 1) != 0;
    w.active = (at(WorkerFlags) & 2) == 0;
    w.runningForNs = at(WorkerRunningForNs);
  }

  const uint64_t cpuLists = rec.word("worker cpus");
  if (cpuLists != workers.rows) throw CorruptDocument(std::to_string(cpuLists) + " cpu lists for " + std::to_string(workers.rows) + " workers");
  r.workerCpus.resize(workers.rows);
  for (uint64_t i = 0; i < workers.rows; ++i) {
    std::optional<std::string> list = rec.string("worker cpus");
    if (!list) continue;
    try {
      r.workerCpus[i] = parseCpuList(*list);
    } catch (const std::exception& e) {
      throw CorruptDocument("the cpu list of worker " + std::to_string(i) + ": " + e.what());
    }
  }
  s.latency = decodeHistogram(rec, "latency histogram");
  s.runTime = decodeHistogram(rec, "run-time histogram");
  // A writer before minor 1 set no parallelism: every P took work, a fixed number.
  const ParallelismInfo par = r.parallelism.value_or(ParallelismInfo{workers.rows, workers.rows, ParallelismSource::Fixed, 0});
  s.activeWorkers = intIn(par.activeWorkers, 0, 1 << 16, "active workers");
  s.parallelism = intIn(par.parallelism, 0, 1 << 16, "parallelism");
  s.parallelismSource = parallelismSourceName(par.source);
  s.parallelismChanges = par.changes;
  return r;  // blocks of a later minor, if any, are skipped with the record
}

}  // namespace

std::vector<uint64_t> encodeDocument(const Document& doc) {
  std::vector<uint64_t> out;
  Encoder e(out);
  const size_t at = e.beginRecord();
  uint64_t f[ProcessFieldCount] = {};
  f[PublishedAtNs] = doc.process.publishedAtNs;
  f[UptimeNs] = doc.process.uptimeNs;
  f[IntervalNs] = doc.process.intervalNs;
  e.fields(f, ProcessFieldCount);
  const size_t countAt = at + 2 + RuntimeCount;  // [size][n][fields...]
  const size_t flagsAt = at + 2 + ProcessFlags;
  e.word(ProcessStringCount);
  for (const auto& s : doc.process.strings) e.string(s);
  e.endRecord(at);

  constexpr size_t kMaxWords = kMaxDocumentBytes / 8;
  uint64_t written = 0;
  for (const RuntimeSnapshot& r : doc.runtimes) {
    const size_t before = e.size();
    if (written < kMaxRuntimes) encodeRuntime(e, r);
    if (written >= kMaxRuntimes || e.size() > kMaxWords) {
      e.truncate(before);
      out[flagsAt] |= 1;
      break;
    }
    ++written;
  }
  out[countAt] = written;
  if (doc.process.truncated) out[flagsAt] |= 1;
  return out;
}

Document decodeDocument(const uint64_t* words, size_t count) {
  if (count > kMaxDocumentBytes / 8) throw CorruptDocument("a document of " + std::to_string(count * 8) + " bytes");
  Cursor c(words, 0, count);
  Document doc;
  {
    Cursor rec = c.record("the process record");
    uint64_t f[ProcessFieldCount];
    rec.fields(f, ProcessFieldCount, "process fields");
    doc.process.publishedAtNs = f[PublishedAtNs];
    doc.process.uptimeNs = f[UptimeNs];
    doc.process.intervalNs = f[IntervalNs];
    doc.process.truncated = (f[ProcessFlags] & 1) != 0;
    if (f[RuntimeCount] > kMaxRuntimes) throw CorruptDocument(std::to_string(f[RuntimeCount]) + " runtimes");
    const uint64_t strings = rec.word("process strings");
    if (strings > rec.left()) throw CorruptDocument("process strings: " + std::to_string(strings) + " strings");
    for (uint64_t i = 0; i < strings; ++i) {
      std::optional<std::string> s = rec.string("process strings");
      if (i < ProcessStringCount) doc.process.strings[i] = std::move(s);
    }
    doc.runtimes.reserve(f[RuntimeCount]);
    for (uint64_t i = 0; i < f[RuntimeCount]; ++i) doc.runtimes.push_back(decodeRuntime(c.record("a runtime record")));
  }
  return doc;
}

}  // namespace hwsq::shm
