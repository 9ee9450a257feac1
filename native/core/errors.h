// Error types the core throws; the N-API layer maps them to typed JS errors with stable codes.
#pragma once
#include <stdexcept>
#include <string>

namespace hwsq {

// The platform lacks the facility (non-Linux, kernel without NUMA). JS code: ERR_HWSQ_UNSUPPORTED.
struct UnsupportedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A caller-supplied value is out of range (unknown node, CPU not allowed...). JS: RangeError.
struct HwsqRangeError : std::runtime_error {
  HwsqRangeError(std::string code, const std::string& what)
      : std::runtime_error(what), code(std::move(code)) {}
  std::string code;  // stable, e.g. "ERR_HWSQ_UNKNOWN_NODE"
};

// Throws UnsupportedError for a facility that exists only on Linux.
[[noreturn]] inline void throwLinuxOnly(const char* what) {
  throw UnsupportedError(std::string(what) + " is only supported on Linux");
}

}  // namespace hwsq
