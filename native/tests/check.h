// Minimal test harness for the standalone native tests (no external framework needed).
#pragma once
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace hwsq_test {
struct Case { const char* name; std::function<void()> fn; };
inline std::vector<Case>& cases() { static std::vector<Case> all; return all; }
inline int& failures() { static int n = 0; return n; }
struct Register { Register(const char* n, std::function<void()> f) { cases().push_back({n, std::move(f)}); } };
// Waits for cond with a generous deadline; returns false on timeout (a hang is a failure).
template <class F>
bool eventually(F cond, int ms = 10000) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::yield();
  }
  return true;
}
inline int runAll(int argc, char** argv) {
  int ran = 0;
  for (auto& c : cases()) {
    if (argc > 1 && std::string(c.name).find(argv[1]) == std::string::npos) continue;
    int before = failures();
    try { c.fn(); } catch (const std::exception& e) { std::fprintf(stderr, "  exception: %s\n", e.what()); ++failures(); }
    std::printf("%s %s\n", failures() == before ? "ok  " : "FAIL", c.name);
    ++ran;
  }
  std::printf("%d passed, %d failed\n", ran - failures(), failures());
  return failures() ? 1 : 0;
}
}  // namespace hwsq_test

#define HWSQ_CAT2(a, b) a##b
#define HWSQ_CAT(a, b) HWSQ_CAT2(a, b)
#define TEST_CASE(name) \
  static void HWSQ_CAT(test_fn_, __LINE__)(); \
  static hwsq_test::Register HWSQ_CAT(test_reg_, __LINE__)(name, HWSQ_CAT(test_fn_, __LINE__)); \
  static void HWSQ_CAT(test_fn_, __LINE__)()
#define CHECK(cond) do { if (!(cond)) { std::fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); ++hwsq_test::failures(); } } while (0)
#define CHECK_EQ(a, b) do { auto _va = (a); auto _vb = (b); if (!(_va == _vb)) { std::fprintf(stderr, "  %s:%d: CHECK_EQ(%s, %s) failed: %s vs %s\n", __FILE__, __LINE__, #a, #b, std::to_string(_va).c_str(), std::to_string(_vb).c_str()); ++hwsq_test::failures(); } } while (0)
#define CHECK_THROWS(expr) do { bool _t = false; try { (void)(expr); } catch (...) { _t = true; } if (!_t) { std::fprintf(stderr, "  %s:%d: %s did not throw\n", __FILE__, __LINE__, #expr); ++hwsq_test::failures(); } } while (0)
#define TEST_MAIN() int main(int argc, char** argv) { return hwsq_test::runAll(argc, argv); }
