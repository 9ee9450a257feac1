// Turning a machine topology into RuntimeOptions: workers spread over NUMA nodes in proportion
// to their allowed CPUs (largest-remainder rounding, every node with CPUs gets at least one P
// when there are enough Ps), pinned to their node's CPUs or to one CPU each.
#pragma once
#include <string>
#include <vector>

#include "../topology.h"
#include "scheduler.h"

namespace hwsq::sched {

enum class PinMode { Node, Cpu, None };

// A runtime spreads over every CPU of the process (readTopology's allowedCpus), whatever the
// pin of the thread that creates it. This narrows topo.allowedCpus to the CPUs the calling
// thread may run on now (the confineToCaller option); none of them → ERR_HWSQ_NO_CPUS.
void confineToCallingThread(Topology& topo);

// workers <= 0: one per allowed CPU. Uses topo.allowedCpus; nodes without allowed CPUs are
// skipped. Distances come from the nodes' SLIT rows. Throws HwsqRangeError when no CPU is allowed.
// Unpinned Ps run on topo.allowedCpus (RuntimeOptions::unpinnedCpus), both here and below.
RuntimeOptions optionsFromTopology(const Topology& topo, int workers, PinMode pin);

// One P of an explicit placement: its node and, optionally, its CPUs.
struct PlacementRequest {
  int node = -1;
  std::vector<int> cpus;  // empty: the node's allowed CPUs (pin Node) or one of them (pin Cpu)
};

// Explicit placement: one P per request, in order. Throws HwsqRangeError with a stable code for
// an unknown node (ERR_HWSQ_UNKNOWN_NODE), a node without CPUs (ERR_HWSQ_NODE_HAS_NO_CPUS) or
// without allowed ones (ERR_HWSQ_NO_ALLOWED_CPUS), a CPU this process may not use
// (ERR_HWSQ_CPU_NOT_ALLOWED). Node ids and distances are those of the whole machine.
RuntimeOptions optionsFromPlacement(const Topology& topo, const std::vector<PlacementRequest>& requests, PinMode pin);

// The topology as a runtime confined to one node sees it (HWSQ_NUMA_NODE, see
// lib/per-node/env.ts): allowedCpus keeps only that node's, so optionsFromTopology puts every P
// there and readParallelism counts only them. Node ids and distances stay the machine's.
// Throws like optionsFromPlacement (ERR_HWSQ_UNKNOWN_NODE, ERR_HWSQ_NODE_HAS_NO_CPUS,
// ERR_HWSQ_NO_ALLOWED_CPUS), naming `where` in the message.
Topology confineToNode(const Topology& topo, int node, const std::string& where);

// How many Ps each of `cpusPerNode` gets (exposed for tests).
std::vector<int> spreadWorkers(const std::vector<int>& cpusPerNode, int workers);

}  // namespace hwsq::sched
