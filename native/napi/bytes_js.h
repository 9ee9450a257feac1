// The bytes behind a buffer argument. lib/ passes every kind of buffer (ArrayBuffer,
// SharedArrayBuffer, typed arrays, node-local memory) as a Uint8Array view: typed-array info
// yields the data pointer for SharedArrayBuffer backing stores too, which the ArrayBuffer API
// would refuse.
//
// bytesOf() is for use during the call only. HeldBytes is for native code that keeps using the
// memory after the call returns (NativeRuntime touch/chase tasks, probes on the thread pool).
// A reference to the JS view does not hold its memory: an ArrayBuffer can be resized to 0,
// transferred (structuredClone, postMessage, ArrayBuffer.prototype.transfer) and its new owner
// collected, and N-API cannot hold a V8 backing store. So HeldBytes
//   - uses SharedArrayBuffer memory in place, holding a reference to the view (a SAB's memory
//     lives as long as the SAB; a growable one never shrinks or moves);
//   - uses allocOnNode memory in place, holding a NodeMemoryPin on its mapping;
//   - copies anything else (ArrayBuffers, resizable or not), and views not 8-byte aligned, into
//     native memory; copyBack() writes the copy back into the view, when the view still has
//     the bytes, for kinds that write (touch). Users that need the memory where it is (the
//     memory probes: pointer chasing stores addresses, placement is what they measure) refuse
//     instead: a TypeError ERR_HWSQ_INVALID_ARG_TYPE.
// No JS action can then make native code touch freed or decommitted memory.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#include "node_memory.h"

namespace hwsq::napi {

struct ByteRange {
  uint8_t* data;
  size_t length;
};

inline ByteRange bytesOf(const Napi::Value& value) {
  if (!value.IsTypedArray()) throw std::invalid_argument("expected a Uint8Array view");
  auto view = value.As<Napi::Uint8Array>();
  return {view.Data(), view.ByteLength()};
}

class HeldBytes {
 public:
  // How the bytes are held (see the file comment).
  enum class Mode { None, Shared, NodeMemory, Copy };
  // What to do with memory that cannot be held in place.
  enum class Otherwise { Copy, Refuse };

  HeldBytes() = default;
  // On the JS thread: holds the bytes of a typed-array view (throws std::invalid_argument for
  // anything else).
  explicit HeldBytes(const Napi::Value& view, Otherwise otherwise = Otherwise::Copy);
  HeldBytes(HeldBytes&&) = default;
  HeldBytes& operator=(HeldBytes&&) = default;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  Mode mode() const { return mode_; }
  // On the JS thread: a copy's bytes go back into the view (as many as it still has).
  void copyBack();

 private:
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  Mode mode_ = Mode::None;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  Napi::ObjectReference view_;  // Shared: keeps the SAB; Copy: where copyBack() writes
  hwsq::js::NodeMemoryPin pin_;
  std::unique_ptr<uint8_t, FreeDeleter> copy_;
};

}  // namespace hwsq::napi
