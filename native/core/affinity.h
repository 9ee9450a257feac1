// Thread placement through raw Linux syscalls (no libnuma): CPU affinity of the calling
// thread or of every thread of the process, the CPU/node it runs on, its memory policy.
#pragma once
#include <string>
#include <vector>

namespace hwsq {

std::vector<int> getThreadAffinity();                   // calling thread
void setThreadAffinity(const std::vector<int>& cpus);   // calling thread; throws std::system_error
// Every thread of the process (walks /proc/self/task). Returns threads changed.
int setProcessAffinity(const std::vector<int>& cpus);

struct CpuLocation { int cpu; int node; };
CpuLocation currentLocation();                          // getcpu(2)

enum class MemPolicy { Default, Preferred, Bind, Interleave, Local };
// Memory policy of the calling thread for future allocations (set_mempolicy(2)).
void setThreadMemPolicy(MemPolicy policy, const std::vector<int>& nodes);
struct MemPolicyState { MemPolicy policy; std::vector<int> nodes; };
MemPolicyState getThreadMemPolicy();                    // get_mempolicy(2)

bool numaSyscallsAvailable();                           // false when the kernel lacks CONFIG_NUMA
int maxPossibleNode();                                  // highest node id the kernel allows + 1 (bits for masks)

}  // namespace hwsq
