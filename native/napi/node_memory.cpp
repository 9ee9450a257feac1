// Node-local memory (allocOnNode) as ArrayBuffers that can move between isolates without a copy.
// Each mapping is a ref-counted block: every ArrayBuffer over it holds one reference (its
// finalizer drops it), so does a "ticket" taken when a buffer is transferred to a task, and so
// does a NodeMemoryPin held by native code using the memory (NativeRuntime tasks, probes). The
// sender's buffer is detached (V8 then finalizes it), the receiver adopts the ticket as a new
// external ArrayBuffer over the same pages, and the mapping is unmapped with the last reference.
//
// Tickets are ids in a table, not addresses: a ticket that is unknown or already adopted is
// refused (TypeError) and never dereferenced.
#include "node_memory.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "args_js.h"
#include "memory.h"

namespace hwsq::js {

namespace {

struct Block {
  void* mem;
  size_t bytes;
  // References: ArrayBuffers, tickets, pins. Incremented only under gMu and only from a
  // non-zero count (a block at zero is being unmapped); acq_rel on the decrement orders every
  // use of the memory before the unmapping.
  std::atomic<int> refs{1};
};

std::mutex gMu;
// By start address (ordered: a pin finds the block holding a range); leaked on purpose (process lifetime).
auto* gBlocks = new std::map<uintptr_t, Block*>();
auto* gTickets = new std::unordered_map<uint64_t, Block*>();  // under gMu
uint64_t gNextTicket = 0;                                     // under gMu

void release(Block* b) {
  if (b->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  {
    std::lock_guard<std::mutex> lk(gMu);
    gBlocks->erase(reinterpret_cast<uintptr_t>(b->mem));
  }
  try {
    hwsq::freeNodeMemory(b->mem, b->bytes);
  } catch (...) {
  }
  delete b;
}

// Under gMu: one more reference, unless the block is already going away.
bool retainLocked(Block* b) {
  int n = b->refs.load(std::memory_order_relaxed);
  while (n > 0)
    if (b->refs.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
  return false;
}

Napi::ArrayBuffer bufferOver(Napi::Env env, Block* b) {
  auto ab = Napi::ArrayBuffer::New(env, b->mem, b->bytes, [](Napi::Env finalizeEnv, void*, Block* blk) {
    // Finalizers may run during environment teardown: report nothing, throw nothing.
    int64_t unused = 0;
    (void)napi_adjust_external_memory(finalizeEnv, -static_cast<int64_t>(blk->bytes), &unused);
    release(blk);
  }, b);
  // Tell V8 the (page-rounded) memory is held so GC pressure reflects it.
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(b->bytes));
  return ab;
}

// Under gMu: the block v is a whole ArrayBuffer over, or nullptr.
Block* blockOfLocked(const Napi::Value& v) {
  if (!v.IsArrayBuffer()) return nullptr;
  auto ab = v.As<Napi::ArrayBuffer>();
  auto it = gBlocks->find(reinterpret_cast<uintptr_t>(ab.Data()));
  return it != gBlocks->end() && it->second->bytes == ab.ByteLength() ? it->second : nullptr;
}

// nodeMemoryOwned(ab) -> whether ab is a whole allocOnNode mapping.
Napi::Value Owned(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lk(gMu);
  return Napi::Boolean::New(info.Env(), blockOfLocked(info[0]) != nullptr);
}

// nodeMemoryTake(ab) -> ticket: a reference to ab's pages; ab is detached.
Napi::Value Take(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Block* b = nullptr;
  uint64_t ticket = 0;
  {
    std::lock_guard<std::mutex> lk(gMu);
    b = blockOfLocked(info[0]);
    if (b && retainLocked(b)) {
      ticket = ++gNextTicket;
      (*gTickets)[ticket] = b;
    }
  }
  if (!ticket) throw Napi::TypeError::New(env, "not node-local memory from allocOnNode");
  if (napi_detach_arraybuffer(env, info[0]) != napi_ok) {
    {
      std::lock_guard<std::mutex> lk(gMu);
      gTickets->erase(ticket);
    }
    release(b);
    throw Napi::Error::New(env, "the ArrayBuffer cannot be detached");
  }
  return Napi::Number::New(env, static_cast<double>(ticket));
}

// nodeMemoryAdopt(ticket) -> a new ArrayBuffer over the ticket's pages (the ticket is used up).
Napi::Value Adopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return hwsq::napi::guarded(env, [&]() -> Napi::Value {
    const auto ticket = static_cast<uint64_t>(hwsq::napi::integerIn(info[0], "ticket", 1, hwsq::napi::kMaxSafeInteger, "ERR_HWSQ_INVALID_ARG"));
    Block* b = nullptr;
    {
      std::lock_guard<std::mutex> lk(gMu);
      auto it = gTickets->find(ticket);
      if (it != gTickets->end()) {
        b = it->second;
        gTickets->erase(it);
      }
    }
    if (!b) throw Napi::TypeError::New(env, "unknown or already adopted node-memory ticket");
    return bufferOver(env, b);  // the ticket's reference becomes the new buffer's
  });
}

}  // namespace

NodeMemoryPin NodeMemoryPin::of(const void* data, size_t bytes) {
  NodeMemoryPin pin;
  if (!data || bytes == 0) return pin;
  const auto start = reinterpret_cast<uintptr_t>(data);
  std::lock_guard<std::mutex> lk(gMu);
  auto it = gBlocks->upper_bound(start);  // the first block after data; the one before may hold it
  if (it == gBlocks->begin()) return pin;
  Block* b = std::prev(it)->second;
  const auto base = reinterpret_cast<uintptr_t>(b->mem);
  if (start - base <= b->bytes && bytes <= b->bytes - (start - base) && retainLocked(b)) pin.block_ = b;
  return pin;
}

NodeMemoryPin& NodeMemoryPin::operator=(NodeMemoryPin&& o) noexcept {
  if (this != &o) {
    reset();
    block_ = o.block_;
    o.block_ = nullptr;
  }
  return *this;
}

void NodeMemoryPin::reset() {
  if (block_) release(static_cast<Block*>(block_));
  block_ = nullptr;
}

Napi::ArrayBuffer wrapNodeMemory(Napi::Env env, void* mem, size_t bytes) {
  auto* b = new Block{mem, bytes};
  {
    std::lock_guard<std::mutex> lk(gMu);
    (*gBlocks)[reinterpret_cast<uintptr_t>(mem)] = b;
  }
  return bufferOver(env, b);
}

void registerNodeMemory(Napi::Env env, Napi::Object target) {
  target.Set("nodeMemoryOwned", Napi::Function::New(env, Owned));
  target.Set("nodeMemoryTake", Napi::Function::New(env, Take));
  target.Set("nodeMemoryAdopt", Napi::Function::New(env, Adopt));
}

}  // namespace hwsq::js
