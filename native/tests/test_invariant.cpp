// HWSQ_ASSERT (core/invariant.h): compiled into the sanitizer builds -- the stages that run the
// scheduler's stress tests -- where a violated invariant aborts the process with its message;
// compiled out of release builds, where its condition is not even evaluated.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "check.h"
#include "invariant.h"
#include "sched/local_queue.h"

using namespace hwsq::sched;

namespace {

// Runs f in a child process. Returns what it wrote to stderr; *aborted: it died of SIGABRT.
template <class F>
std::string inChild(F f, bool* aborted) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    f();
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  *aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  return err;
}

}  // namespace

TEST_CASE("invariant: the sanitizer builds compile the checks in") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  CHECK_EQ(HWSQ_ASSERTS_ENABLED, 1);
#else
  CHECK(HWSQ_ASSERTS_ENABLED == 0 || HWSQ_ASSERTS_ENABLED == 1);
#endif
}

#if HWSQ_ASSERTS_ENABLED
TEST_CASE("invariant: a violated check aborts with its message") {
  bool aborted = false;
  std::string err = inChild([] { HWSQ_ASSERT(1 + 1 == 3, "arithmetic broke"); }, &aborted);
  CHECK(aborted);
  CHECK(err.find("hwsq: invariant violated") != std::string::npos);
  CHECK(err.find("arithmetic broke") != std::string::npos);
}

TEST_CASE("invariant: a steal into a non-empty LRQ is caught") {
  bool aborted = false;
  std::string err = inChild(
      [] {
        static Task a, b;
        static LocalQueue thief, victim;
        thief.pushBack(&a);
        victim.pushBack(&b);
        uint32_t n = 0;
        (void)thief.stealHalfFrom(victim, false, &n);
      },
      &aborted);
  CHECK(aborted);
  CHECK(err.find("LRQ: steal into a non-empty ring") != std::string::npos);
}
#else
TEST_CASE("invariant: release builds do not evaluate the condition") {
  int evaluated = 0;
  HWSQ_ASSERT(++evaluated == 0, "never evaluated");
  CHECK_EQ(evaluated, 0);
}
#endif

TEST_MAIN()
