// Mapping of core exceptions to typed JS errors with stable codes, shared by every N-API glue
// file (addon.cpp, runtime_binding.cpp, the JS-task runtime).
//   HwsqRangeError          -> RangeError, code from the exception (e.g. ERR_HWSQ_UNKNOWN_NODE)
//   UnsupportedError        -> Error ERR_HWSQ_UNSUPPORTED
//   std::system_error       -> RangeError ERR_HWSQ_OUT_OF_MEMORY (ENOMEM) / Error ERR_HWSQ_SYSCALL + errno
//   std::invalid_argument   -> TypeError ERR_HWSQ_INVALID_ARG
//   std::logic_error        -> Error ERR_HWSQ_INVALID_STATE (a call in the wrong state/thread)
//   std::bad_alloc          -> RangeError ERR_HWSQ_OUT_OF_MEMORY
#pragma once
#include <napi.h>

#include <cerrno>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

#include "errors.h"

namespace hwsq::napi {

// Sets `code` on err and returns it (for `throw withCode(...)` and promise rejections).
inline Napi::Error withCode(Napi::Env env, Napi::Error err, const char* code) {
  err.Set("code", Napi::String::New(env, code));
  return err;
}

inline Napi::Error codedError(Napi::Env env, const char* code, const std::string& message) {
  return withCode(env, Napi::Error::New(env, message), code);
}
inline Napi::Error codedRangeError(Napi::Env env, const char* code, const std::string& message) {
  return withCode(env, Napi::RangeError::New(env, message), code);
}

// Runs fn, translating core exceptions to JS errors with stable codes (see the file comment).
// JS exceptions (Napi::Error) pass through untouched.
template <typename Fn>
auto guarded(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const hwsq::HwsqRangeError& e) {
    throw withCode(env, Napi::RangeError::New(env, e.what()), e.code.c_str());
  } catch (const hwsq::UnsupportedError& e) {
    throw withCode(env, Napi::Error::New(env, e.what()), "ERR_HWSQ_UNSUPPORTED");
  } catch (const std::system_error& e) {
    if (e.code().value() == ENOMEM) {
      throw withCode(env, Napi::RangeError::New(env, e.what()), "ERR_HWSQ_OUT_OF_MEMORY");
    }
    auto err = withCode(env, Napi::Error::New(env, e.what()), "ERR_HWSQ_SYSCALL");
    err.Set("errno", Napi::Number::New(env, e.code().value()));
    throw err;
  } catch (const std::invalid_argument& e) {
    throw withCode(env, Napi::TypeError::New(env, e.what()), "ERR_HWSQ_INVALID_ARG");
  } catch (const std::logic_error& e) {
    throw withCode(env, Napi::Error::New(env, e.what()), "ERR_HWSQ_INVALID_STATE");
  } catch (const std::bad_alloc&) {
    throw withCode(env, Napi::RangeError::New(env, "out of memory"), "ERR_HWSQ_OUT_OF_MEMORY");
  }
}

}  // namespace hwsq::napi
