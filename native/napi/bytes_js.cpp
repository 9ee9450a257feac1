// HeldBytes (bytes_js.h): JS buffer memory that native code uses after the call returns.
#include "bytes_js.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "errors_js.h"

namespace hwsq::napi {

namespace {
constexpr size_t kAlign = 64;  // the native kinds work per cache line, with 64-bit atomics
}

HeldBytes::HeldBytes(const Napi::Value& value, Otherwise otherwise) {
  if (!value.IsTypedArray()) throw std::invalid_argument("expected a Uint8Array view");
  Napi::Env env = value.Env();
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer = nullptr;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, &buffer, &offset) != napi_ok) {
    throw std::invalid_argument("expected a Uint8Array view");
  }
  auto view = value.As<Napi::TypedArray>();
  size_ = view.ByteLength();
  if (size_ == 0 || data == nullptr) return;  // detached or empty: Mode::None
  auto* bytes = static_cast<uint8_t*>(data);
  const bool aligned = reinterpret_cast<uintptr_t>(bytes) % alignof(uint64_t) == 0;
  bool isArrayBuffer = true;
  if (napi_is_arraybuffer(env, buffer, &isArrayBuffer) != napi_ok) isArrayBuffer = true;
  if (aligned && !isArrayBuffer) {  // a typed array's buffer is an ArrayBuffer or a SharedArrayBuffer
    mode_ = Mode::Shared;
    data_ = bytes;
    view_ = Napi::Persistent(value.As<Napi::Object>());
    return;
  }
  if (aligned) {
    pin_ = hwsq::js::NodeMemoryPin::of(bytes, size_);
    if (pin_) {
      mode_ = Mode::NodeMemory;
      data_ = bytes;
      return;
    }
  }
  if (otherwise == Otherwise::Refuse) {
    throw withCode(env, Napi::TypeError::New(env, "this needs the memory in place: allocOnNode memory or a SharedArrayBuffer (8-byte aligned)"),
                   "ERR_HWSQ_INVALID_ARG_TYPE");
  }
  void* p = std::aligned_alloc(kAlign, (size_ + kAlign - 1) / kAlign * kAlign);
  if (!p) throw std::bad_alloc();
  copy_.reset(static_cast<uint8_t*>(p));
  std::memcpy(p, bytes, size_);
  mode_ = Mode::Copy;
  data_ = copy_.get();
  view_ = Napi::Persistent(value.As<Napi::Object>());
}

void HeldBytes::copyBack() {
  if (mode_ != Mode::Copy || view_.IsEmpty()) return;
  napi_value value = nullptr;
  if (napi_get_reference_value(view_.Env(), view_, &value) != napi_ok || value == nullptr) return;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer = nullptr;
  size_t offset = 0;
  if (napi_get_typedarray_info(view_.Env(), value, &type, &length, &data, &buffer, &offset) != napi_ok || !data) return;
  // The view as it is now: it may have been detached (0 bytes) or shrunk meanwhile.
  const size_t now = Napi::TypedArray(view_.Env(), value).ByteLength();
  if (now) std::memcpy(data, data_, std::min(now, size_));
}

}  // namespace hwsq::napi
