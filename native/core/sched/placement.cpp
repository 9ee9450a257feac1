#include "placement.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <numeric>
#include <string>

#include "../affinity.h"
#include "../errors.h"

namespace hwsq::sched {
namespace {

// Why `node` cannot take a P: unknown, memory-only, or none of its CPUs allowed.
[[noreturn]] void throwUnusableNode(const Topology& topo, int node, const std::string& where) {
  const NodeInfo* n = topo.findNode(node);
  if (!n) {
    std::vector<int> ids;
    for (const NodeInfo& k : topo.nodes) ids.push_back(k.id);
    throw HwsqRangeError("ERR_HWSQ_UNKNOWN_NODE", where + " names unknown NUMA node " + std::to_string(node) + "; nodes are " + detail::joinInts(ids));
  }
  if (n->cpus.empty()) throw HwsqRangeError("ERR_HWSQ_NODE_HAS_NO_CPUS", where + ": NUMA node " + std::to_string(node) + " has no CPUs (memory-only node)");
  throw HwsqRangeError("ERR_HWSQ_NO_ALLOWED_CPUS", where + ": none of NUMA node " + std::to_string(node) + "'s CPUs is allowed for this process");
}

}  // namespace

std::vector<int> spreadWorkers(const std::vector<int>& cpusPerNode, int workers) {
  std::vector<int> out(cpusPerNode.size(), 0);
  long total = std::accumulate(cpusPerNode.begin(), cpusPerNode.end(), 0L);
  if (total <= 0 || workers <= 0) return out;
  // Largest remainder: floor shares first, then the biggest remainders get one more.
  std::vector<std::pair<long, size_t>> rem;
  int given = 0;
  for (size_t i = 0; i < cpusPerNode.size(); ++i) {
    long num = static_cast<long>(workers) * cpusPerNode[i];
    out[i] = static_cast<int>(num / total);
    given += out[i];
    rem.push_back({num % total, i});
  }
  std::stable_sort(rem.begin(), rem.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < workers; k = (k + 1) % rem.size()) {
    if (cpusPerNode[rem[k].second] == 0) continue;
    ++out[rem[k].second];
    ++given;
  }
  // Every node with CPUs gets a P when there are at least as many Ps as such nodes: take from
  // the node with the most.
  for (size_t i = 0; i < out.size(); ++i) {
    if (cpusPerNode[i] == 0 || out[i] > 0) continue;
    auto most = std::max_element(out.begin(), out.end());
    if (*most <= 1) break;
    --*most;
    ++out[i];
  }
  return out;
}

void confineToCallingThread(Topology& topo) {
  const std::vector<int> mine = getThreadAffinity();
  std::vector<int> both;
  std::set_intersection(topo.allowedCpus.begin(), topo.allowedCpus.end(), mine.begin(), mine.end(), std::back_inserter(both));
  if (both.empty())
    throw HwsqRangeError("ERR_HWSQ_NO_CPUS", "confineToCaller: the calling thread runs on none of the process's CPUs (" +
                                                 detail::joinInts(topo.allowedCpus) + ")");
  topo.allowedCpus = std::move(both);
}

namespace {
// Where unpinned Ps run. Elsewhere than Linux no thread can be pinned (affinity.h): leave them be.
std::vector<int> unpinnedCpusOf(const Topology& topo) {
#ifdef __linux__
  return topo.allowedCpus;
#else
  (void)topo;
  return {};
#endif
}
}  // namespace

RuntimeOptions optionsFromTopology(const Topology& topo, int workers, PinMode pin) {
  std::vector<const NodeInfo*> nodes;
  std::vector<std::vector<int>> nodeCpus;
  for (const NodeInfo& n : topo.nodes) {
    std::vector<int> cpus;
    for (int c : n.cpus)
      if (std::binary_search(topo.allowedCpus.begin(), topo.allowedCpus.end(), c)) cpus.push_back(c);
    if (cpus.empty()) continue;
    nodes.push_back(&n);
    nodeCpus.push_back(std::move(cpus));
  }
  if (nodes.empty()) throw HwsqRangeError("ERR_HWSQ_NO_CPUS", "no allowed CPU on any node");
  int allowed = 0;
  std::vector<int> counts;
  for (auto& c : nodeCpus) {
    counts.push_back(static_cast<int>(c.size()));
    allowed += static_cast<int>(c.size());
  }
  if (workers <= 0) workers = allowed;
  std::vector<int> perNode = spreadWorkers(counts, workers);

  RuntimeOptions o;
  o.pin = pin != PinMode::None;
  o.unpinnedCpus = unpinnedCpusOf(topo);
  for (size_t i = 0; i < nodes.size(); ++i) {
    o.nodeIds.push_back(nodes[i]->id);
    for (int k = 0; k < perNode[i]; ++k) {
      WorkerPlacement wp;
      wp.node = nodes[i]->id;
      if (pin == PinMode::Node) wp.cpus = nodeCpus[i];
      else if (pin == PinMode::Cpu) wp.cpus = {nodeCpus[i][k % nodeCpus[i].size()]};
      o.workers.push_back(std::move(wp));
    }
  }
  // SLIT rows are indexed like topo.nodes; pick the columns of the nodes we kept.
  bool haveSlit = true;
  for (auto* n : nodes)
    if (n->distances.size() != topo.nodes.size()) haveSlit = false;
  if (haveSlit) {
    for (auto* a : nodes) {
      std::vector<int> row;
      for (auto* b : nodes) row.push_back(a->distances[static_cast<size_t>(b - topo.nodes.data())]);
      o.distances.push_back(std::move(row));
    }
  }
  // Drop nodes that ended up with no P (more nodes than Ps): the runtime ignores them, but
  // keep nodeIds and distances consistent.
  return o;
}

RuntimeOptions optionsFromPlacement(const Topology& topo, const std::vector<PlacementRequest>& requests, PinMode pin) {
  // Node ids, allowed CPUs per node and SLIT rows exactly as the spread placement sees them.
  RuntimeOptions base = optionsFromTopology(topo, static_cast<int>(topo.allowedCpus.size()), PinMode::Node);
  std::map<int, std::vector<int>> allowedOf;
  for (const WorkerPlacement& w : base.workers) allowedOf.emplace(w.node, w.cpus);
  RuntimeOptions o;
  o.nodeIds = base.nodeIds;
  o.distances = base.distances;
  o.pin = pin != PinMode::None;
  o.unpinnedCpus = unpinnedCpusOf(topo);
  std::map<int, size_t> placed;
  for (size_t i = 0; i < requests.size(); ++i) {
    const PlacementRequest& r = requests[i];
    const std::string where = "placement[" + std::to_string(i) + "]";
    auto it = allowedOf.find(r.node);
    if (it == allowedOf.end()) throwUnusableNode(topo, r.node, where);
    WorkerPlacement wp;
    wp.node = r.node;
    if (!r.cpus.empty()) {
      for (int cpu : r.cpus)
        if (!std::binary_search(topo.allowedCpus.begin(), topo.allowedCpus.end(), cpu))
          throw HwsqRangeError("ERR_HWSQ_CPU_NOT_ALLOWED", where + ": CPU " + std::to_string(cpu) + " is not allowed for this process (allowed: " + detail::joinInts(topo.allowedCpus) + ")");
      wp.cpus = r.cpus;
    } else if (pin == PinMode::Node) {
      wp.cpus = it->second;
    } else if (pin == PinMode::Cpu) {
      wp.cpus = {it->second[placed[r.node]++ % it->second.size()]};
    }
    o.workers.push_back(std::move(wp));
  }
  return o;
}

Topology confineToNode(const Topology& topo, int node, const std::string& where) {
  Topology out = topo;
  out.allowedCpus.clear();
  if (const NodeInfo* n = topo.findNode(node)) {
    for (int c : n->cpus)
      if (std::binary_search(topo.allowedCpus.begin(), topo.allowedCpus.end(), c)) out.allowedCpus.push_back(c);
  }
  if (out.allowedCpus.empty()) throwUnusableNode(topo, node, where);
  std::sort(out.allowedCpus.begin(), out.allowedCpus.end());
  return out;
}

}  // namespace hwsq::sched
