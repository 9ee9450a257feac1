// The per-thread pin stack (pinning.h).
#include "pinning.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <optional>
#include <string>

#include "errors.h"
#include "topology.h"

namespace hwsq {
namespace {

struct Undo {
  uint64_t id;
  PinScope scope;
  std::vector<int> previousCpus;         // Thread: the caller's mask before
  ProcessPin process;                    // Process: every thread it changed
  std::optional<MemPolicyState> policy;  // the caller's memory policy before, when it was set
};

// One stack per OS thread: a JS thread (main or Worker) is one OS thread for its whole life.
thread_local std::vector<Undo> tlStack;
std::atomic<uint64_t> gNextId{1};  // relaxed: only uniqueness matters

std::vector<int> validated(std::vector<int> cpus) {
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  if (cpus.empty()) throw HwsqRangeError("ERR_HWSQ_EMPTY_CPUS", "the CPU list is empty");
  const int possible = possibleCpuCount();
  for (int c : cpus)
    if (c < 0 || c >= possible)
      throw HwsqRangeError("ERR_HWSQ_CPU_OUT_OF_RANGE", "CPU " + std::to_string(c) +
                                                            " is out of range (possible CPUs: 0-" +
                                                            std::to_string(possible - 1) + ")");
  const std::vector<int> allowed = processCpus();
  std::vector<int> outside;
  std::set_difference(cpus.begin(), cpus.end(), allowed.begin(), allowed.end(), std::back_inserter(outside));
  if (!outside.empty())
    throw HwsqRangeError("ERR_HWSQ_CPU_NOT_ALLOWED", "CPU " + formatCpuList(outside) +
                                                         " is not allowed for this process (its CPUs: " +
                                                         formatCpuList(allowed) + ")");
  return cpus;
}

// The calling thread back to `cpus`; if the cpuset no longer allows any of them, to every CPU
// the process may use now.
void restoreThread(const std::vector<int>& cpus) {
  try {
    setThreadAffinity(cpus);
  } catch (const HwsqRangeError&) {
    setThreadAffinity(processCpus());
  }
}

void undo(const Undo& u) {
  if (u.scope == PinScope::Thread) restoreThread(u.previousCpus);
  else restoreProcessAffinity(u.process, processCpus());
  if (u.policy) setThreadMemPolicy(u.policy->policy, u.policy->nodes);
}

// Pops and undoes entries down to (and including) index `to`, latest first. Every entry is
// undone even if one fails; the first failure is rethrown at the end.
void popTo(size_t to) {
  std::exception_ptr first;
  while (tlStack.size() > to) {
    Undo u = std::move(tlStack.back());
    tlStack.pop_back();
    try {
      undo(u);
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

}  // namespace

PinRecord pushPin(const PinRequest& request) {
  PinRecord rec;
  rec.cpus = validated(request.cpus);
  rec.previousCpus = getThreadAffinity();
  Undo u;
  u.scope = request.scope;
  u.previousCpus = rec.previousCpus;
  const bool setPolicy = !request.memoryNodes.empty() && numaSyscallsAvailable();
  if (setPolicy) u.policy = getThreadMemPolicy();
  tlStack.reserve(tlStack.size() + 1);  // the push below cannot fail once the pin is made
  if (request.scope == PinScope::Thread) setThreadAffinity(rec.cpus);
  else u.process = setProcessAffinity(rec.cpus);
  if (setPolicy) {
    try {
      setThreadMemPolicy(request.memoryPolicy, request.memoryNodes);
    } catch (...) {
      if (request.scope == PinScope::Thread) restoreThread(rec.previousCpus);
      else restoreProcessAffinity(u.process, processCpus());
      throw;
    }
  }
  rec.id = u.id = gNextId.fetch_add(1, std::memory_order_relaxed);
  tlStack.push_back(std::move(u));
  return rec;
}

void popPinsTo(uint64_t id) {
  auto it = std::find_if(tlStack.begin(), tlStack.end(), [&](const Undo& u) { return u.id == id; });
  if (it == tlStack.end())
    throw HwsqRangeError("ERR_HWSQ_NOT_PINNED", "this pin was already undone (or belongs to another thread)");
  popTo(static_cast<size_t>(it - tlStack.begin()));
}

bool popPin() {
  if (tlStack.empty()) return false;
  popTo(tlStack.size() - 1);
  return true;
}

size_t pinDepth() { return tlStack.size(); }

}  // namespace hwsq
