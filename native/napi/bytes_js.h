// The bytes behind a buffer argument. lib/ passes every kind of buffer (ArrayBuffer,
// SharedArrayBuffer, typed arrays, node-local memory) as a Uint8Array view: typed-array info
// yields the data pointer for SharedArrayBuffer backing stores too, which the ArrayBuffer API
// would refuse.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>

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

}  // namespace hwsq::napi
