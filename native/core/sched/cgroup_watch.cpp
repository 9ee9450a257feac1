// The cgroup watch (cgroup_watch.h): one reading, the thread, and the runtime's use of both
// (Impl::startWatch / pollWatch).
#include "cgroup_watch.h"

#include <algorithm>
#include <chrono>
#include <iterator>

#include "../affinity.h"
#include "../parallelism.h"
#include "../topology.h"
#include "runtime_impl.h"

namespace hwsq::sched {

CgroupReading readCgroupLimit(const std::string& fsroot, const std::vector<int>& runtimeCpus, int workers) {
  CgroupReading r;
  int allowed = workers;
  if (!runtimeCpus.empty()) {
    const std::vector<int> now = processCpus();  // sorted
    std::set_intersection(runtimeCpus.begin(), runtimeCpus.end(), now.begin(), now.end(), std::back_inserter(r.allowed));
    allowed = static_cast<int>(r.allowed.size());
  }
  const Parallelism p = readParallelism(fsroot, std::max(1, allowed));
  r.limit = std::max(1, std::min(p.value, workers));
  r.source = p.source == "cgroup2" ? ParallelismSource::Cgroup2 : p.source == "cgroup1" ? ParallelismSource::Cgroup1 : ParallelismSource::Cpuset;
  return r;
}

namespace {
std::vector<int> intersect(const std::vector<int>& a, const std::vector<int>& sortedB) {
  std::vector<int> out;
  for (int c : a)
    if (std::binary_search(sortedB.begin(), sortedB.end(), c)) out.push_back(c);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}
}  // namespace

std::vector<std::vector<int>> planPins(const std::vector<std::vector<int>>& base, const std::vector<int>& nodeOf,
                                       const std::vector<bool>& active, const std::vector<int>& allowed) {
  const size_t n = base.size();
  if (allowed.empty()) return base;
  int nodes = 0;
  for (int v : nodeOf) nodes = std::max(nodes, v + 1);
  std::vector<std::vector<int>> nodeAllowed(static_cast<size_t>(nodes)), kept(static_cast<size_t>(nodes));
  std::vector<std::vector<int>> own(n), out(n);
  for (size_t i = 0; i < n; ++i) {
    own[i] = intersect(base[i], allowed);
    auto& na = nodeAllowed[static_cast<size_t>(nodeOf[i])];
    na.insert(na.end(), own[i].begin(), own[i].end());
    if (active[i] && !own[i].empty()) {
      auto& k = kept[static_cast<size_t>(nodeOf[i])];
      k.insert(k.end(), own[i].begin(), own[i].end());
    }
  }
  for (auto* v : {&nodeAllowed, &kept})
    for (auto& x : *v) {
      std::sort(x.begin(), x.end());
      x.erase(std::unique(x.begin(), x.end()), x.end());
    }
  std::vector<size_t> nextFree(static_cast<size_t>(nodes), 0);
  for (size_t i = 0; i < n; ++i) {
    const auto ni = static_cast<size_t>(nodeOf[i]);
    if (!own[i].empty()) {
      out[i] = own[i];
    } else if (nodeAllowed[ni].empty()) {
      out[i] = allowed;
    } else if (!active[i] || base[i].size() > 1) {
      out[i] = nodeAllowed[ni];
    } else {
      std::vector<int> freeCpus;
      std::set_difference(nodeAllowed[ni].begin(), nodeAllowed[ni].end(), kept[ni].begin(), kept[ni].end(), std::back_inserter(freeCpus));
      const std::vector<int>& pool = freeCpus.empty() ? nodeAllowed[ni] : freeCpus;
      out[i] = {pool[nextFree[ni]++ % pool.size()]};
    }
  }
  return out;
}

CgroupWatch::CgroupWatch(uint32_t periodMs, std::function<void()> poll) : periodMs_(periodMs), poll_(std::move(poll)) {
  thread_ = std::thread([this] { run(); });
  nameThread(thread_, "hwsq-cgroup");
}

CgroupWatch::~CgroupWatch() { stop(); }

void CgroupWatch::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void CgroupWatch::run() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    if (cv_.wait_for(lk, std::chrono::milliseconds(periodMs_), [this] { return stop_; })) return;
    lk.unlock();
    try {
      poll_();
    } catch (...) {  // a file that vanished mid-read: keep the limit, try again next period
    }
    lk.lock();
  }
}

// ------------------------------------------------------------------------------- the runtime's

namespace {
// The CPUs a runtime's Ps may run on: their own, else unpinnedCpus; empty when none (virtual).
std::vector<int> runtimeCpusOf(const RuntimeOptions& o) {
  std::vector<int> cpus = o.unpinnedCpus;
  if (o.pin)
    for (const auto& w : o.workers) cpus.insert(cpus.end(), w.cpus.begin(), w.cpus.end());
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}
}  // namespace

// [ctor] The first reading sets the limit before the constructor returns (no event for it).
void Runtime::Impl::startWatch() {
  if (opts.cgroupPollMs == 0) return;
  watchCpus = runtimeCpusOf(opts);
  watchAllowed = watchCpus;  // placement used only CPUs the process may run on
  pollWatch(false);
  watch.reset(new CgroupWatch(opts.cgroupPollMs, [this] { pollWatch(true); }));
}

// [watch] (or the constructor, notify false): one reading; a change moves the limit, then the
// event.
void Runtime::Impl::pollWatch(bool notify) {
  const CgroupReading r = readCgroupLimit(opts.cgroupFsroot, watchCpus, nprocs);
  // Node weights: the CPUs of each node's Ps still allowed (a cpuset shrunk to one node keeps
  // that node's Ps active); none (P counts) unless every P is pinned to CPUs of its own.
  std::vector<int> weights;
  const bool pinned = opts.pin && std::all_of(ps.begin(), ps.end(), [](const std::unique_ptr<P>& p) { return !p->cpus.empty(); });
  if (pinned) {
    weights.assign(nodes.size(), 0);
    for (size_t ni = 0; ni < nodes.size(); ++ni) {
      std::vector<int> mine;
      for (int v : nodes[ni].ps) {
        mine.insert(mine.end(), ps[v]->cpus.begin(), ps[v]->cpus.end());
      }
      std::sort(mine.begin(), mine.end());
      mine.erase(std::unique(mine.begin(), mine.end()), mine.end());
      for (int c : mine) weights[ni] += std::binary_search(r.allowed.begin(), r.allowed.end(), c) ? 1 : 0;
    }
  }
  ParallelismChange change;
  bool limitMoved = false;
  {
    std::lock_guard<std::mutex> lk(limitMu);
    change.previous = limit.load(std::memory_order_relaxed);
    const auto prevSource = static_cast<ParallelismSource>(limitSource.load(std::memory_order_relaxed));
    limitMoved = !(r.limit == change.previous && r.source == prevSource && weights == limitWeights);
    const bool cpusetMoved = r.allowed != watchAllowed;
    if (!limitMoved && !cpusetMoved) return;
    if (limitMoved) applyLimit(r.limit, r.source, weights);
    change.current = limit.load(std::memory_order_relaxed);
    change.source = r.source;
    watchAllowed = r.allowed;
    if (!watchCpus.empty()) replanPins(cpusetMoved);
  }
  if (limitMoved && notify && opts.onParallelism) opts.onParallelism(change);
}

// [watch] under limitMu: each P's pin for the cpuset now (planPins); the Ps apply it themselves
// (repinIfMoved). `force`: the cpuset moved, so every P re-pins even to the CPUs it had (before
// Linux 6.2 the kernel reset each thread of the cgroup to the whole new cpuset).
void Runtime::Impl::replanPins(bool force) {
  std::vector<std::vector<int>> base;
  std::vector<int> nodeOf;
  std::vector<bool> active;
  for (const auto& pp : ps) {
    base.push_back(opts.pin && !pp->cpus.empty() ? pp->cpus : opts.unpinnedCpus);
    nodeOf.push_back(pp->nodeIdx);
    active.push_back(!pp->limited.load(std::memory_order_relaxed));
  }
  const std::vector<std::vector<int>> plan = planPins(base, nodeOf, active, watchAllowed);
  bool moved = force;
  for (size_t i = 0; i < ps.size(); ++i) {
    if (ps[i]->pinTarget != plan[i]) moved = true;
    ps[i]->pinTarget = plan[i];
  }
  if (moved) pinEpoch.fetch_add(1, std::memory_order_release);
}

}  // namespace hwsq::sched
