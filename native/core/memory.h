// Node-local memory: anonymous mmap placed with mbind(2) and touched so placement is real;
// page placement queries and migration with move_pages(2).
#pragma once
#include <cstddef>
#include <vector>

#include "affinity.h"

namespace hwsq {

size_t pageSize();

// Allocates bytes (rounded up to pages) with the policy over nodes, then touches every page.
// Throws std::system_error (ENOMEM, EINVAL, ...). Free with freeNodeMemory.
void* allocOnNodes(size_t bytes, MemPolicy policy, const std::vector<int>& nodes);
void freeNodeMemory(void* addr, size_t bytes);

// Node of each page overlapping [addr, addr+bytes); a negative entry is -errno
// (-ENOENT: page not present, -EFAULT: not mapped).
std::vector<int> queryPageNodes(const void* addr, size_t bytes);

// Migrates every page of [addr, addr+bytes) to node. Returns the pages that are on node afterwards.
size_t migratePages(void* addr, size_t bytes, int node);

}  // namespace hwsq
