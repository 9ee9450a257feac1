// Turning a machine topology into RuntimeOptions: workers spread over NUMA nodes in proportion
// to their allowed CPUs (largest-remainder rounding, every node with CPUs gets at least one P
// when there are enough Ps), pinned to their node's CPUs or to one CPU each.
#pragma once
#include <vector>

#include "../topology.h"
#include "scheduler.h"

namespace hwsq::sched {

enum class PinMode { Node, Cpu, None };

// workers <= 0: one per allowed CPU. Uses topo.allowedCpus; nodes without allowed CPUs are
// skipped. Distances come from the nodes' SLIT rows. Throws HwsqRangeError when no CPU is allowed.
RuntimeOptions optionsFromTopology(const Topology& topo, int workers, PinMode pin);

// How many Ps each of `cpusPerNode` gets (exposed for tests).
std::vector<int> spreadWorkers(const std::vector<int>& cpusPerNode, int workers);

}  // namespace hwsq::sched
