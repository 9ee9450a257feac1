// Helpers shared by the native tests: error-code checks and scratch directories.
#pragma once
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "errors.h"

namespace hwsq_test {

// Code of the HwsqRangeError f throws; "none" / "other: <what>" otherwise.
template <class F>
std::string rangeCode(F&& f) {
  try {
    f();
  } catch (const hwsq::HwsqRangeError& e) {
    return e.code;
  } catch (const std::exception& e) {
    return std::string("other: ") + e.what();
  }
  return "none";
}

// A scratch directory removed on scope exit.
struct TempDir {
  std::string path;
  explicit TempDir(const char* prefix = "hwsq-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    path = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  void write(const std::string& rel, const std::string& content) const {
    std::filesystem::path p = std::filesystem::path(path) / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
  }
};

// Runs fn on this thread under a hang detector: if fn has not returned after `seconds` (minutes,
// far beyond any loaded machine's slowness: not a timing assertion), the test binary reports
// `what` and exits with a failure instead of hanging CI until ctest's timeout.
template <class F>
void withWatchdog(const char* what, int seconds, F&& fn) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread dog([&] {
    std::unique_lock<std::mutex> lk(mu);
    if (!cv.wait_for(lk, std::chrono::seconds(seconds), [&] { return done; })) {
      std::fprintf(stderr, "  HANG: %s did not return within %d s\n", what, seconds);
      std::fflush(stderr);
      std::_Exit(3);
    }
  });
  struct Finish {
    std::mutex& mu;
    std::condition_variable& cv;
    bool& done;
    std::thread& dog;
    ~Finish() {
      {
        std::lock_guard<std::mutex> lk(mu);
        done = true;
      }
      cv.notify_all();
      dog.join();
    }
  } finish{mu, cv, done, dog};
  fn();
}

inline std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "0-2,5" -> {0,1,2,5}; enough for sysfs lists in tests.
inline std::vector<int> parseIds(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty() || item == "\n") continue;
    size_t dash = item.find('-');
    int a = std::stoi(item.substr(0, dash));
    int b = dash == std::string::npos ? a : std::stoi(item.substr(dash + 1));
    for (int v = a; v <= b; ++v) out.push_back(v);
  }
  return out;
}

}  // namespace hwsq_test

// check.h's CHECK_EQ prints through std::to_string, so strings get their own check.
#define CHECK_STR(a, b)                                                                        \
  do {                                                                                         \
    const std::string _sa = (a), _sb = (b);                                                    \
    if (_sa != _sb) {                                                                          \
      std::fprintf(stderr, "  %s:%d: CHECK_STR(%s, %s) failed: \"%s\" vs \"%s\"\n", __FILE__, \
                   __LINE__, #a, #b, _sa.c_str(), _sb.c_str());                                \
      ++hwsq_test::failures();                                                                 \
    }                                                                                          \
  } while (0)

#define CHECK_CODE(expr, expected)                                                              \
  do {                                                                                          \
    std::string _code = hwsq_test::rangeCode([&] { (void)(expr); });                            \
    if (_code != (expected)) {                                                                  \
      std::fprintf(stderr, "  %s:%d: %s: expected %s, got %s\n", __FILE__, __LINE__, #expr,      \
                   expected, _code.c_str());                                                    \
      ++hwsq_test::failures();                                                                  \
    }                                                                                           \
  } while (0)
