// confineToNode (HWSQ_NUMA_NODE): a runtime confined to one node places every P there, keeps the
// machine's node ids, and refuses nodes it cannot use with the placement error codes.
#include <string>
#include <vector>

#include "check.h"
#include "support.h"
#include "errors.h"
#include "sched/placement.h"

using namespace hwsq::sched;

namespace {

// Nodes 0 {0,1}, 1 {2,3}, 2 memory-only; CPU 2 outside the cpuset.
hwsq::Topology machine() {
  hwsq::Topology topo;
  topo.nodes.resize(3);
  topo.nodes[0].id = 0;
  topo.nodes[0].cpus = {0, 1};
  topo.nodes[0].distances = {10, 21, 31};
  topo.nodes[1].id = 1;
  topo.nodes[1].cpus = {2, 3};
  topo.nodes[1].distances = {21, 10, 31};
  topo.nodes[2].id = 2;
  topo.nodes[2].distances = {31, 31, 10};
  topo.allowedCpus = {0, 1, 3};
  return topo;
}

}  // namespace

TEST_CASE("confineToNode keeps only the node's allowed CPUs") {
  const hwsq::Topology topo = machine();
  hwsq::Topology one = confineToNode(topo, 1, "HWSQ_NUMA_NODE");
  CHECK(one.allowedCpus == std::vector<int>{3});
  CHECK_EQ(one.nodes.size(), topo.nodes.size());  // ids and SLIT rows untouched
  RuntimeOptions o = optionsFromTopology(one, 0, PinMode::Node);
  CHECK_EQ(o.workers.size(), 1u);
  CHECK(o.nodeIds == std::vector<int>{1});
  CHECK(o.workers[0].node == 1 && o.workers[0].cpus == std::vector<int>{3});
  CHECK(o.distances == (std::vector<std::vector<int>>{{10}}));

  // Explicit worker counts are honoured, all on the node.
  o = optionsFromTopology(confineToNode(topo, 0, "HWSQ_NUMA_NODE"), 5, PinMode::Cpu);
  CHECK_EQ(o.workers.size(), 5u);
  for (const WorkerPlacement& w : o.workers) CHECK(w.node == 0 && w.cpus.size() == 1 && w.cpus[0] <= 1);
}

TEST_CASE("confineToNode refuses unusable nodes with stable codes") {
  const hwsq::Topology topo = machine();
  CHECK_CODE(confineToNode(topo, 7, "HWSQ_NUMA_NODE"), "ERR_HWSQ_UNKNOWN_NODE");
  CHECK_CODE(confineToNode(topo, 2, "HWSQ_NUMA_NODE"), "ERR_HWSQ_NODE_HAS_NO_CPUS");
  hwsq::Topology fenced = topo;
  fenced.allowedCpus = {0, 1};
  CHECK_CODE(confineToNode(fenced, 1, "HWSQ_NUMA_NODE"), "ERR_HWSQ_NO_ALLOWED_CPUS");
  try {
    confineToNode(topo, 7, "HWSQ_NUMA_NODE");
  } catch (const hwsq::HwsqRangeError& e) {
    CHECK(std::string(e.what()).find("HWSQ_NUMA_NODE") != std::string::npos);
  }
}

TEST_MAIN()
