// Node-local memory (allocOnNode) as ArrayBuffers that move between isolates without a copy, and
// pins that keep such memory mapped while native code uses it (node_memory.cpp).
#pragma once
#include <napi.h>

#include <cstddef>

namespace hwsq::js {

// An ArrayBuffer over a fresh allocOnNodes mapping (the addon's allocOnNodes uses this).
Napi::ArrayBuffer wrapNodeMemory(Napi::Env env, void* mem, size_t bytes);
// nodeMemoryOwned / nodeMemoryTake / nodeMemoryAdopt on target (lib/core/codec.ts).
void registerNodeMemory(Napi::Env env, Napi::Object target);

// A reference on the allocOnNode mapping that holds a byte range: the mapping stays mapped until
// the pin is released, whatever JS does with the ArrayBuffers over it (transfer, detach, GC).
// Any thread may release it.
class NodeMemoryPin {
 public:
  NodeMemoryPin() = default;
  // An empty pin when [data, data + bytes) is not inside one live mapping.
  static NodeMemoryPin of(const void* data, size_t bytes);
  NodeMemoryPin(NodeMemoryPin&& o) noexcept : block_(o.block_) { o.block_ = nullptr; }
  NodeMemoryPin& operator=(NodeMemoryPin&& o) noexcept;
  NodeMemoryPin(const NodeMemoryPin&) = delete;
  NodeMemoryPin& operator=(const NodeMemoryPin&) = delete;
  ~NodeMemoryPin() { reset(); }
  explicit operator bool() const { return block_ != nullptr; }
  void reset();

 private:
  void* block_ = nullptr;  // a node_memory.cpp Block
};

}  // namespace hwsq::js
