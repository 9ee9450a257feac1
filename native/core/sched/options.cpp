// From RuntimeOptions to the runtime's shape: validation (every bad option throws before anything
// starts), the active nodes (those with Ps) and their distances, the Ps, and each P's steal
// tiers (its own node, then the other nodes grouped by SLIT distance, nearest first).
#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <stdexcept>
#include <string>

#include "../errors.h"
#include "clock.h"
#include "runtime_impl.h"

namespace hwsq::sched {

const char* stealPolicyName(StealPolicy p) { return p == StealPolicy::Flat ? "flat" : "hierarchical"; }

StealPolicy parseStealPolicy(const std::string& name) {
  if (name == "hierarchical") return StealPolicy::Hierarchical;
  if (name == "flat") return StealPolicy::Flat;
  throw HwsqRangeError("ERR_HWSQ_UNKNOWN_POLICY", "unknown steal policy '" + name + "' (hierarchical | flat)");
}

RuntimeOptions RuntimeOptions::virtualTopology(int nodes, int workersPerNode) {
  if (nodes < 1 || workersPerNode < 1) throw HwsqRangeError("ERR_HWSQ_INVALID_WORKERS", "virtualTopology needs nodes >= 1 and workersPerNode >= 1");
  RuntimeOptions o;
  for (int n = 0; n < nodes; ++n) {
    o.nodeIds.push_back(n);
    for (int i = 0; i < workersPerNode; ++i) o.workers.push_back(WorkerPlacement{n, {}});
  }
  o.distances.assign(nodes, std::vector<int>(nodes, 10));
  for (int i = 0; i < nodes; ++i)
    for (int j = 0; j < nodes; ++j) o.distances[i][j] = 10 + 10 * std::abs(i - j);
  o.pin = false;
  return o;
}

namespace {

std::vector<uint32_t> coprimesOf(uint32_t n) {
  std::vector<uint32_t> out;
  for (uint32_t c = 1; c <= n; ++c)
    if (std::gcd(c, n) == 1) out.push_back(c);
  return out;
}

}  // namespace

// [ctor]
Runtime::Impl::Impl(Runtime* s, RuntimeOptions options) : self(s), opts(std::move(options)) {
  RuntimeOptions& o = opts;
  if (o.workers.empty()) throw HwsqRangeError("ERR_HWSQ_INVALID_WORKERS", "a runtime needs at least one worker");
  if (o.workers.size() > 4096) throw HwsqRangeError("ERR_HWSQ_INVALID_WORKERS", "at most 4096 workers");
  if (o.hwsqCapacity < 2 || (o.hwsqCapacity & (o.hwsqCapacity - 1)) != 0)
    throw HwsqRangeError("ERR_HWSQ_INVALID_OPTION", "hwsqCapacity must be a power of two >= 2");
  std::vector<int> given = o.nodeIds;
  if (given.empty()) {
    for (auto& w : o.workers) given.push_back(w.node);
    std::sort(given.begin(), given.end());
    given.erase(std::unique(given.begin(), given.end()), given.end());
    if (!o.distances.empty() && o.distances.size() != given.size())
      throw HwsqRangeError("ERR_HWSQ_INVALID_DISTANCES", "distances given without nodeIds must match the workers' nodes");
  }
  for (size_t i = 0; i < given.size(); ++i) {
    if (given[i] < 0 || given[i] > 65535) throw HwsqRangeError("ERR_HWSQ_UNKNOWN_NODE", "invalid node id " + std::to_string(given[i]));
    for (size_t j = 0; j < i; ++j)
      if (given[i] == given[j]) throw HwsqRangeError("ERR_HWSQ_INVALID_OPTION", "duplicate node id " + std::to_string(given[i]));
  }
  if (!o.distances.empty()) {
    if (o.distances.size() != given.size()) throw HwsqRangeError("ERR_HWSQ_INVALID_DISTANCES", "distance matrix must be nodes x nodes");
    for (auto& row : o.distances)
      if (row.size() != given.size()) throw HwsqRangeError("ERR_HWSQ_INVALID_DISTANCES", "distance matrix must be nodes x nodes");
  }
  auto givenIndex = [&](int id) {
    for (size_t i = 0; i < given.size(); ++i)
      if (given[i] == id) return static_cast<int>(i);
    return -1;
  };
  for (auto& w : o.workers) {
    if (givenIndex(w.node) < 0) throw HwsqRangeError("ERR_HWSQ_UNKNOWN_NODE", "worker placed on unknown node " + std::to_string(w.node));
    for (int cpu : w.cpus)
      if (cpu < 0) throw HwsqRangeError("ERR_HWSQ_INVALID_CPU", "invalid CPU " + std::to_string(cpu));
  }
  // Active nodes: those with at least one P, in the given order.
  std::vector<int> activeGiven;
  for (size_t i = 0; i < given.size(); ++i)
    for (auto& w : o.workers)
      if (w.node == given[i]) { activeGiven.push_back(static_cast<int>(i)); break; }
  const size_t nn = activeGiven.size();
  std::vector<Node>(nn).swap(nodes);
  int maxId = 0;
  for (size_t i = 0; i < nn; ++i) {
    nodes[i].id = given[activeGiven[i]];
    maxId = std::max(maxId, nodes[i].id);
  }
  nodeIndexById.assign(maxId + 1, -1);
  for (size_t i = 0; i < nn; ++i) nodeIndexById[nodes[i].id] = static_cast<int>(i);
  // Distances between active nodes (SLIT; default 10 local, 20 remote).
  std::vector<std::vector<int>> dist(nn, std::vector<int>(nn, 20));
  for (size_t i = 0; i < nn; ++i)
    for (size_t j = 0; j < nn; ++j)
      dist[i][j] = o.distances.empty() ? (i == j ? 10 : 20) : o.distances[activeGiven[i]][activeGiven[j]];

  statsOn = o.stats;
  if (o.timingSampleShift < 0 || o.timingSampleShift > 20)
    throw HwsqRangeError("ERR_HWSQ_INVALID_OPTION", "timingSampleShift must be in [0, 20]");
  shift = o.timingSampleShift;
  timeAll = statsOn && shift == 0;
  sampleShift = statsOn ? shift : TimingSampler::kOff;
  hier = o.policy == StealPolicy::Hierarchical;
  nprocs = static_cast<int>(o.workers.size());
  for (size_t i = 0; i < nn; ++i) {
    Node& node = nodes[i];
    node.idleStack.reserve(o.workers.size());  // no allocation under idleMu
    std::vector<int> order(nn);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      if ((a == static_cast<int>(i)) != (b == static_cast<int>(i))) return a == static_cast<int>(i);
      return dist[i][a] < dist[i][b];
    });
    node.order = order;
    if (hier) node.hwsq.reset(new Hwsq(o.hwsqCapacity));
  }
  for (size_t p = 0; p < o.workers.size(); ++p) {
    int ni = nodeIndexById[o.workers[p].node];
    nodes[ni].ps.push_back(static_cast<int>(p));
    ps.emplace_back(new P(this, static_cast<int>(p), ni, o.workers[p].node, o.workers[p].cpus, statsOn));
  }
  for (auto& p : ps) buildTiers(*p, dist);
  if (o.parallelism < 0) throw HwsqRangeError("ERR_HWSQ_INVALID_OPTION", "parallelism must be >= 0");
  nactive.store(nprocs, std::memory_order_relaxed);
  limit.store(nprocs, std::memory_order_relaxed);
  limitSource.store(static_cast<int>(o.parallelismSource), std::memory_order_relaxed);
  if (o.parallelism > 0 && o.parallelism < nprocs) applyLimit(o.parallelism, o.parallelismSource);  // [ctor]: no thread yet
  if (statsOn) (void)nsPerTick();
  if (o.externalWorkers && !o.wakeExternal) throw std::invalid_argument("externalWorkers needs a wakeExternal hook");
}

// [ctor] p's steal order: its own node's other Ps, then per distance (nearest first) the Ps of
// the nodes at that distance and those nodes' HWSQs. Flat: one tier of every other P.
void Runtime::Impl::buildTiers(P& p, const std::vector<std::vector<int>>& dist) {
  auto addTier = [&](std::vector<int> victims, std::vector<int> tierNodes, bool sameNode = false) {
    if (victims.empty() && tierNodes.empty()) return;
    Tier t;
    t.sameNode = sameNode;
    t.coprimes = coprimesOf(static_cast<uint32_t>(std::max<size_t>(victims.size(), 1)));
    t.ps = std::move(victims);
    t.nodes = std::move(tierNodes);
    p.tiers.push_back(std::move(t));
  };
  if (!hier) {
    std::vector<int> all;
    for (int v = 0; v < nprocs; ++v)
      if (v != p.index) all.push_back(v);
    addTier(all, {});
    return;
  }
  const size_t nn = nodes.size();
  std::vector<int> same;
  for (int v : nodes[p.nodeIdx].ps)
    if (v != p.index) same.push_back(v);
  addTier(same, {}, true);
  std::vector<int> dists;
  for (size_t ni = 0; ni < nn; ++ni)
    if (static_cast<int>(ni) != p.nodeIdx) dists.push_back(dist[p.nodeIdx][ni]);
  std::sort(dists.begin(), dists.end());
  dists.erase(std::unique(dists.begin(), dists.end()), dists.end());
  for (int d : dists) {
    std::vector<int> victims, tierNodes;
    for (size_t ni = 0; ni < nn; ++ni) {
      if (static_cast<int>(ni) == p.nodeIdx || dist[p.nodeIdx][ni] != d) continue;
      tierNodes.push_back(static_cast<int>(ni));
      for (int v : nodes[ni].ps) victims.push_back(v);
    }
    addTier(victims, tierNodes);
  }
}

// [any]
int Runtime::Impl::checkedNodeIndex(int id) const {
  int ni = nodeIndexOf(id);
  if (ni < 0) throw HwsqRangeError("ERR_HWSQ_UNKNOWN_NODE", "task affinity names node " + std::to_string(id) + ", which has no worker in this runtime");
  return ni;
}

int Runtime::workerCount() const { return impl_->nprocs; }
int Runtime::nodeCount() const { return static_cast<int>(impl_->nodes.size()); }
const RuntimeOptions& Runtime::options() const { return impl_->opts; }
int Runtime::workerNode(int worker) const {
  if (worker < 0 || worker >= impl_->nprocs) throw HwsqRangeError("ERR_HWSQ_UNKNOWN_WORKER", "no worker " + std::to_string(worker));
  return impl_->ps[worker]->nodeId;
}

}  // namespace hwsq::sched
