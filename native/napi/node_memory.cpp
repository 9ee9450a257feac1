// Node-local memory (allocOnNode) as ArrayBuffers that can move between isolates without a copy.
// Each mapping is a ref-counted block: every ArrayBuffer over it holds one reference (its
// finalizer drops it) and so does a "ticket" taken when a buffer is transferred to a task. The
// sender's buffer is detached (V8 then finalizes it), the receiver adopts the ticket as a new
// external ArrayBuffer over the same pages, and the mapping is unmapped with the last reference.
#include <napi.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "memory.h"

namespace hwsq::js {

namespace {

struct Block {
  void* mem;
  size_t bytes;
  std::atomic<int> refs{1};
};

std::mutex gMu;
auto* gBlocks = new std::unordered_map<void*, Block*>();  // by address; leaked on purpose (process lifetime)

void release(Block* b) {
  if (b->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  {
    std::lock_guard<std::mutex> lk(gMu);
    gBlocks->erase(b->mem);
  }
  try {
    hwsq::freeNodeMemory(b->mem, b->bytes);
  } catch (...) {
  }
  delete b;
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

Block* blockOf(const Napi::Value& v) {
  if (!v.IsArrayBuffer()) return nullptr;
  auto ab = v.As<Napi::ArrayBuffer>();
  void* data = ab.Data();
  std::lock_guard<std::mutex> lk(gMu);
  auto it = gBlocks->find(data);
  return it != gBlocks->end() && it->second->bytes == ab.ByteLength() ? it->second : nullptr;
}

// nodeMemoryOwned(ab) -> whether ab is a whole allocOnNode mapping.
Napi::Value Owned(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), blockOf(info[0]) != nullptr); }

// nodeMemoryTake(ab) -> ticket: a reference to ab's pages; ab is detached.
Napi::Value Take(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Block* b = blockOf(info[0]);
  if (!b) throw Napi::TypeError::New(env, "not node-local memory from allocOnNode");
  b->refs.fetch_add(1, std::memory_order_relaxed);
  if (napi_detach_arraybuffer(env, info[0]) != napi_ok) {
    release(b);
    throw Napi::Error::New(env, "the ArrayBuffer cannot be detached");
  }
  return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(b)));
}

// nodeMemoryAdopt(ticket) -> a new ArrayBuffer over the ticket's pages (the ticket is used up).
Napi::Value Adopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* b = reinterpret_cast<Block*>(static_cast<uintptr_t>(info[0].As<Napi::Number>().DoubleValue()));
  {
    std::lock_guard<std::mutex> lk(gMu);
    auto it = b ? gBlocks->find(b->mem) : gBlocks->end();
    if (it == gBlocks->end() || it->second != b) throw Napi::TypeError::New(env, "invalid node-memory ticket");
  }
  return bufferOver(env, b);
}

}  // namespace

// An ArrayBuffer over a fresh allocOnNodes mapping (the addon's allocOnNodes uses this).
Napi::ArrayBuffer wrapNodeMemory(Napi::Env env, void* mem, size_t bytes) {
  auto* b = new Block{mem, bytes};
  {
    std::lock_guard<std::mutex> lk(gMu);
    (*gBlocks)[mem] = b;
  }
  return bufferOver(env, b);
}

void registerNodeMemory(Napi::Env env, Napi::Object target) {
  target.Set("nodeMemoryOwned", Napi::Function::New(env, Owned));
  target.Set("nodeMemoryTake", Napi::Function::New(env, Take));
  target.Set("nodeMemoryAdopt", Napi::Function::New(env, Adopt));
}

}  // namespace hwsq::js
