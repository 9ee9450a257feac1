// Node-local memory: anonymous mmap placed with mbind(2) and touched so placement is real;
// page placement queries and migration with move_pages(2).
#pragma once
#include <cstddef>
#include <vector>

#include "affinity.h"

namespace hwsq {

size_t pageSize();

// Allocates bytes (rounded up to pages) with the policy over nodes, then touches every page
// (the memory reads as zero). Node lists follow setThreadMemPolicy (Default/Local ignore them).
// bytes == 0 or more than physical RAM → HwsqRangeError ERR_HWSQ_BAD_SIZE; unknown node →
// ERR_HWSQ_UNKNOWN_NODE; mmap ENOMEM → std::system_error(ENOMEM); other errno →
// std::system_error. Nothing stays mapped when it throws. Free with freeNodeMemory.
// Without NUMA syscalls only node 0 works (a plain mmap); other online nodes → UnsupportedError.
void* allocOnNodes(size_t bytes, MemPolicy policy, const std::vector<int>& nodes);
void freeNodeMemory(void* addr, size_t bytes);          // nullptr: no-op; throws std::system_error

// Node of each page overlapping [addr, addr+bytes); a negative entry is -errno
// (-ENOENT: page not present, -EFAULT: not mapped or the shared zero page). The address is
// aligned down to a page. A range of more pages than RAM holds → ERR_HWSQ_BAD_SIZE. Without NUMA
// syscalls it answers from mincore(2): resident pages are on node 0.
std::vector<int> queryPageNodes(const void* addr, size_t bytes);

// Like queryPageNodes, for at most maxPages pages spread evenly over the range (one move_pages
// call whatever the size): a bounded-cost estimate of where a buffer lives. Entry k is the page
// in the middle of the k-th of min(pages, maxPages) equal stretches of the range.
std::vector<int> samplePageNodes(const void* addr, size_t bytes, size_t maxPages);

// Migrates every page of [addr, addr+bytes) to node. Returns the pages that are on node afterwards.
// Unknown node → ERR_HWSQ_UNKNOWN_NODE; node outside the cpuset → ERR_HWSQ_NODE_NOT_ALLOWED.
size_t migratePages(void* addr, size_t bytes, int node);

}  // namespace hwsq
