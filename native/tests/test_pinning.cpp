// The pinning model (pinning.h, affinity.h): pins name the process's CPUs whatever the calling
// thread's pin, undo per thread, process scope restores each thread's own mask and passes the
// Ps of runtimes by, unpinned Ps run on the runtime's CPUs. Cases that need a process started
// in a given state re-run this binary in a child (HWSQ_PIN_CHILD). Needs two allowed CPUs.
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "affinity.h"
#include "check.h"
#include "errors.h"
#include "pinning.h"
#include "sched/scheduler.h"
#include "support.h"
#include "topology.h"

using hwsq::PinRequest;
using hwsq::PinScope;
using hwsq_test::affinityOf;
using hwsq_test::gettidNow;
using hwsq_test::Parked;
using hwsq_test::rangeCode;

namespace {

bool setAffinityOf(pid_t tid, const std::vector<int>& cpus) {
  int bits = hwsq::possibleCpuCount();
  cpu_set_t* set = CPU_ALLOC(bits);
  size_t bytes = CPU_ALLOC_SIZE(bits);
  CPU_ZERO_S(bytes, set);
  for (int c : cpus) CPU_SET_S(size_t(c), bytes, set);
  bool ok = sched_setaffinity(tid, bytes, set) == 0;
  CPU_FREE(set);
  return ok;
}

PinRequest request(std::vector<int> cpus, PinScope scope = PinScope::Thread) {
  PinRequest r;
  r.cpus = std::move(cpus);
  r.scope = scope;
  return r;
}

// Runs this binary again with only test `name` and HWSQ_PIN_CHILD=mode, the whole process
// confined to `cpus` from the start when given. Returns the child's exit status.
int rerun(const char* name, const std::string& mode, const std::vector<int>& cpus) {
  // The environment is built before fork: the child may only make async-signal-safe calls.
  std::vector<std::string> vars{"HWSQ_PIN_CHILD=" + mode};
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "HWSQ_PIN_CHILD=", 15) != 0) vars.push_back(*e);
  std::vector<char*> envp;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec (the parent has threads).
    if (!cpus.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      for (int c : cpus) CPU_SET(c, &set);
      if (sched_setaffinity(0, sizeof set, &set) != 0) _exit(120);
    }
    char* const argv[] = {const_cast<char*>("test_pinning"), const_cast<char*>(name), nullptr};
    execve("/proc/self/exe", argv, envp.data());
    _exit(121);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The child's mode ("confined-3" -> "confined", argument 3), or "" in the parent.
std::string childMode(int* arg = nullptr) {
  const char* m = std::getenv("HWSQ_PIN_CHILD");
  if (!m) return "";
  std::string mode = m;
  size_t dash = mode.find('-');
  if (dash != std::string::npos) {
    if (arg) *arg = std::atoi(mode.c_str() + dash + 1);
    mode.resize(dash);
  }
  return mode;
}

// The process's CPUs as the parent sees them. Computed on first use, not at static
// initialization: a child must set its state up before hwsq first looks at the process.
const std::vector<int>& all() {
  static const std::vector<int> cpus = hwsq::processCpus();
  return cpus;
}

bool twoCpus() {
  if (all().size() >= 2) return true;
  std::fprintf(stderr, "  needs two allowed CPUs, has %zu\n", all().size());
  ++hwsq_test::failures();
  return false;
}

}  // namespace

TEST_CASE("processCpus and processStartAffinity: the process's CPUs, not the caller's pin") {
  if (!twoCpus()) return;
  const auto orig = hwsq::getThreadAffinity();
  CHECK(all() == hwsq::readTopology("").allowedCpus);
  const auto& start = hwsq::processStartAffinity();
  CHECK(std::includes(start.begin(), start.end(), all().begin(), all().end()));
  hwsq::setThreadAffinity({all().front()});
  CHECK(hwsq::processCpus() == all());
  CHECK(hwsq::readTopology("").allowedCpus == all());
  hwsq::setThreadAffinity(orig);
}

TEST_CASE("pushPin: re-pinning anywhere in the process's CPUs; errors change nothing") {
  if (!twoCpus()) return;
  const auto orig = hwsq::getThreadAffinity();
  auto a = hwsq::pushPin(request({all().front()}));
  CHECK(a.cpus == std::vector<int>{all().front()});
  CHECK(a.previousCpus == orig);
  auto b = hwsq::pushPin(request({all().back(), all().back()}));  // duplicates folded
  CHECK(b.cpus == std::vector<int>{all().back()});
  CHECK(b.previousCpus == std::vector<int>{all().front()});
  CHECK(hwsq::getThreadAffinity() == std::vector<int>{all().back()});
  CHECK_EQ(hwsq::currentLocation().cpu, all().back());
  CHECK(a.id != b.id);
  CHECK_EQ(hwsq::pinDepth(), size_t(2));
  CHECK(rangeCode([] { hwsq::pushPin(request({})); }) == "ERR_HWSQ_EMPTY_CPUS");
  CHECK(rangeCode([] { hwsq::pushPin(request({-1})); }) == "ERR_HWSQ_CPU_OUT_OF_RANGE");
  CHECK(rangeCode([] { hwsq::pushPin(request({hwsq::possibleCpuCount()})); }) == "ERR_HWSQ_CPU_OUT_OF_RANGE");
  CHECK(rangeCode([] { hwsq::pushPin(request({all().front(), 1 << 20})); }) == "ERR_HWSQ_CPU_OUT_OF_RANGE");
  CHECK_EQ(hwsq::pinDepth(), size_t(2));
  CHECK(hwsq::getThreadAffinity() == std::vector<int>{all().back()});
  CHECK(hwsq::popPin());
  CHECK(hwsq::getThreadAffinity() == std::vector<int>{all().front()});
  CHECK(hwsq::popPin());
  CHECK(hwsq::getThreadAffinity() == orig);
  CHECK(!hwsq::popPin());
}

TEST_CASE("popPinsTo undoes the later pins too; another thread's or an undone pin is ERR_HWSQ_NOT_PINNED") {
  if (!twoCpus()) return;
  const auto orig = hwsq::getThreadAffinity();
  auto a = hwsq::pushPin(request({all().front()}));
  auto b = hwsq::pushPin(request({all().back()}));
  std::string other;
  std::thread([&] { other = rangeCode([&] { hwsq::popPinsTo(a.id); }); }).join();
  CHECK(other == "ERR_HWSQ_NOT_PINNED");
  CHECK_EQ(hwsq::pinDepth(), size_t(2));
  hwsq::popPinsTo(a.id);
  CHECK_EQ(hwsq::pinDepth(), size_t(0));
  CHECK(hwsq::getThreadAffinity() == orig);
  CHECK(rangeCode([&] { hwsq::popPinsTo(b.id); }) == "ERR_HWSQ_NOT_PINNED");
  CHECK(rangeCode([&] { hwsq::popPinsTo(a.id); }) == "ERR_HWSQ_NOT_PINNED");
}

TEST_CASE("pushPin sets and restores the memory policy") {
  if (!hwsq::numaSyscallsAvailable()) {
    std::printf("  (NUMA syscalls unavailable)\n");
    return;
  }
  PinRequest r = request({all().front()});
  r.memoryNodes = {hwsq::onlineNodes().front()};
  r.memoryPolicy = hwsq::MemPolicy::Bind;
  const auto before = hwsq::getThreadMemPolicy();
  hwsq::pushPin(r);
  auto during = hwsq::getThreadMemPolicy();
  CHECK(during.policy == hwsq::MemPolicy::Bind && during.nodes == r.memoryNodes);
  CHECK(hwsq::popPin());
  auto after = hwsq::getThreadMemPolicy();
  CHECK(after.policy == before.policy && after.nodes == before.nodes);
  // A policy the kernel refuses: the affinity is put back and nothing is pushed.
  const auto orig = hwsq::getThreadAffinity();
  r.memoryNodes = {hwsq::maxPossibleNode()};
  CHECK(rangeCode([&] { hwsq::pushPin(r); }) == "ERR_HWSQ_UNKNOWN_NODE");
  CHECK(hwsq::getThreadAffinity() == orig);
  CHECK_EQ(hwsq::pinDepth(), size_t(0));
}

TEST_CASE("process scope: the undo gives each thread its own mask back") {
  if (!twoCpus()) return;
  const auto orig = hwsq::getThreadAffinity();
  const std::vector<int> first{all().front()}, last{all().back()};
  Parked pinned, plain, repins;
  CHECK(setAffinityOf(pinned.tid.load(), last));  // its own pin
  hwsq::pushPin(request(first, PinScope::Process));
  CHECK(affinityOf(pinned.tid.load()) == first);
  CHECK(affinityOf(plain.tid.load()) == first);
  CHECK(hwsq::getThreadAffinity() == first);
  Parked newcomer;  // inherits the pin from this thread
  CHECK(affinityOf(newcomer.tid.load()) == first);
  CHECK(setAffinityOf(repins.tid.load(), last));  // re-pinned during the process pin: kept
  CHECK(hwsq::popPin());
  CHECK(affinityOf(pinned.tid.load()) == last);
  CHECK(affinityOf(plain.tid.load()) == orig);
  CHECK(affinityOf(repins.tid.load()) == last);
  CHECK(affinityOf(newcomer.tid.load()) == all());  // the process's CPUs
  CHECK(hwsq::getThreadAffinity() == orig);
}

TEST_CASE("process scope passes runtime threads by, and the Ps of a scheduler runtime") {
  if (!twoCpus()) return;
  const std::vector<int> first{all().front()}, last{all().back()};
  Parked runtime([] { hwsq::enterRuntimeThread(); });
  CHECK(setAffinityOf(runtime.tid.load(), last));
  std::atomic<pid_t> pTid{0};
  hwsq::sched::RuntimeOptions o;
  o.workers = {{0, last}};
  o.sysmon = false;
  o.onWorkerStart = [&](int) { pTid.store(gettidNow()); };
  hwsq::sched::Runtime rt(o);
  CHECK(affinityOf(pTid.load()) == last);
  hwsq::pushPin(request(first, PinScope::Process));
  CHECK(affinityOf(runtime.tid.load()) == last);
  CHECK(affinityOf(pTid.load()) == last);
  CHECK(hwsq::popPin());
  CHECK(affinityOf(runtime.tid.load()) == last);
  CHECK(affinityOf(pTid.load()) == last);
  rt.close();
  // Unmarked, a thread is an ordinary thread again.
  std::thread([&] {
    hwsq::enterRuntimeThread();
    hwsq::leaveRuntimeThread();
    const pid_t me = gettidNow();
    hwsq::pushPin(request(first, PinScope::Process));
    CHECK(affinityOf(me) == first);
    CHECK(hwsq::popPin());
  }).join();
}

TEST_CASE("unpinned Ps run on the runtime's CPUs, not their creator's pin") {
  if (!twoCpus()) return;
  const auto orig = hwsq::getThreadAffinity();
  hwsq::setThreadAffinity({all().front()});
  std::atomic<pid_t> pTid{0};
  hwsq::sched::RuntimeOptions o;
  o.workers = {{0, {}}};
  o.pin = false;
  o.unpinnedCpus = all();
  o.sysmon = false;
  o.onWorkerStart = [&](int) { pTid.store(gettidNow()); };
  {
    hwsq::sched::Runtime rt(o);
    CHECK(affinityOf(pTid.load()) == all());
    rt.close();
  }
  o.unpinnedCpus.clear();  // none given: the creator's mask, as before
  {
    hwsq::sched::Runtime rt(o);
    CHECK(affinityOf(pTid.load()) == std::vector<int>{all().front()});
    rt.close();
  }
  hwsq::setThreadAffinity(orig);
}

TEST_CASE("a process started confined (taskset -c) may pin only there: ERR_HWSQ_CPU_NOT_ALLOWED") {
  int other = -1;
  if (childMode(&other) == "confined") {
    // The parent gave this process one CPU before exec; `other` is one it did not give.
    const auto mine = hwsq::getThreadAffinity();
    CHECK_EQ(mine.size(), size_t(1));
    CHECK(hwsq::processStartAffinity() == mine);
    CHECK(hwsq::processCpus() == mine);
    CHECK(rangeCode([&] { hwsq::pushPin(request({other})); }) == "ERR_HWSQ_CPU_NOT_ALLOWED");
    CHECK(rangeCode([&] { hwsq::pushPin(request({mine.front(), other})); }) == "ERR_HWSQ_CPU_NOT_ALLOWED");
    CHECK(hwsq::getThreadAffinity() == mine);
    CHECK_EQ(hwsq::pinDepth(), size_t(0));
    hwsq::pushPin(request(mine));
    CHECK(hwsq::popPin());
    return;
  }
  if (!twoCpus()) return;
  CHECK_EQ(rerun("a process started confined", "confined-" + std::to_string(all().front()), {all().back()}), 0);
}

TEST_CASE("the start affinity is the union of the threads' masks, not the first caller's pin") {
  if (childMode() == "union") {
    const auto every = hwsq::getThreadAffinity();  // nothing of hwsq's state is read before this line
    Parked other;
    setAffinityOf(0, {every.front()});  // this thread pins itself before the first hwsq call
    CHECK(hwsq::processStartAffinity() == every);
    CHECK(hwsq::processCpus() == every);
    hwsq::pushPin(request({every.back()}));
    CHECK(hwsq::getThreadAffinity() == std::vector<int>{every.back()});
    CHECK(hwsq::popPin());
    CHECK(hwsq::getThreadAffinity() == std::vector<int>{every.front()});
    return;
  }
  if (!twoCpus()) return;
  CHECK_EQ(rerun("the start affinity is the union", "union", {}), 0);
}

TEST_MAIN()
