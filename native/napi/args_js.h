// Numbers crossing from JS into C++. lib/ checks options first; these checks are the native
// layer's own guarantee: a value that does not fit is refused with a typed error, never wrapped
// or truncated (Int32Value(2**32 + 1) is 1, so { worker: 2**32 + 1 } would run on worker 1), and
// a double outside an integer type's range is never cast to it (undefined behaviour).
// A non-number is a TypeError ERR_HWSQ_INVALID_ARG_TYPE; a number out of range, fractional or
// NaN a RangeError with the caller's code (thrown as HwsqRangeError: call inside guarded()).
#pragma once
#include <napi.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "errors.h"
#include "errors_js.h"

namespace hwsq::napi {

constexpr int64_t kMaxSafeInteger = 9007199254740991;  // 2^53 - 1: every integer a double holds exactly

inline std::string numberText(double d) {
  char buf[40];
  if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) <= 1e18) std::snprintf(buf, sizeof buf, "%.0f", d);
  else std::snprintf(buf, sizeof buf, "%g", d);
  return buf;
}

inline void requireNumber(const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) {
    throw withCode(v.Env(), Napi::TypeError::New(v.Env(), std::string(name) + " must be a number"), "ERR_HWSQ_INVALID_ARG_TYPE");
  }
}

// An integer in [min, max] (bounds within +-2^53).
inline int64_t integerIn(const Napi::Value& v, const char* name, int64_t min, int64_t max, const char* code) {
  requireNumber(v, name);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) || std::trunc(d) != d) {
    throw HwsqRangeError(code, std::string(name) + " must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                                   "], got " + numberText(d));
  }
  return static_cast<int64_t>(d);
}

// A finite number in [min, max], fractions allowed (durations, sizes the caller rounds down).
inline double numberIn(const Napi::Value& v, const char* name, double min, double max, const char* code) {
  requireNumber(v, name);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max)) {
    throw HwsqRangeError(code, std::string(name) + " must be a number in [" + numberText(min) + ", " + numberText(max) + "], got " + numberText(d));
  }
  return d;
}

inline int intIn(const Napi::Value& v, const char* name, int min, int max, const char* code) {
  return static_cast<int>(integerIn(v, name, min, max, code));
}

// Node and CPU ids, P indexes: [0, INT_MAX]; -1 allowed where it means "none".
inline int indexArg(const Napi::Value& v, const char* name, const char* code, bool allowNone = false) {
  requireNumber(v, name);
  if (allowNone && v.As<Napi::Number>().DoubleValue() == -1) return -1;
  return intIn(v, name, 0, INT_MAX, code);
}

// An optional integer field: def when undefined.
inline int64_t integerField(const Napi::Object& o, const char* key, int64_t def, int64_t min, int64_t max, const char* code) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? def : integerIn(v, key, min, max, code);
}

// A list of ids (nodes, CPUs), each in [0, INT_MAX].
inline std::vector<int> indexList(const Napi::Value& v, const char* name, const char* code) {
  if (!v.IsArray()) {
    throw withCode(v.Env(), Napi::TypeError::New(v.Env(), std::string(name) + " must be an array"), "ERR_HWSQ_INVALID_ARG_TYPE");
  }
  auto arr = v.As<Napi::Array>();
  std::vector<int> out;
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(indexArg(arr.Get(i), name, code));
  return out;
}

}  // namespace hwsq::napi
