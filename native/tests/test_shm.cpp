// The shared-memory stats file (native/core/shm): the document's encoding round trip and its
// compatibility rules, the decoder against truncated and garbled input, readers never seeing a
// torn document while a writer rewrites it (the seqlock), the file's life (mode 0600, removed on
// close, stale files of dead or reused pids reported and cleaned), every way a file can be
// refused (permission, foreign, corrupt, version), and the publisher thread with real runtimes.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <chrono>
#include <thread>
#include <vector>

#include "check.h"
#include "sched/scheduler.h"
#include "shm/document.h"
#include "shm/publisher.h"
#include "shm/segment.h"
#include "support.h"

using namespace hwsq::shm;
using hwsq::sched::Runtime;
using hwsq::sched::RuntimeOptions;
using hwsq_test::eventually;
using hwsq_test::TempDir;

namespace {

// The ShmErrorKind code f throws; "none" or "other: ..." otherwise.
template <class F>
std::string shmCode(F&& f) {
  try {
    f();
  } catch (const ShmError& e) {
    return shmErrorCode(e.kind);
  } catch (const std::exception& e) {
    return std::string("other: ") + e.what();
  }
  return "none";
}

#define CHECK_SHM(expr, expected)                                                                                   \
  do {                                                                                                              \
    const std::string _c = shmCode([&] { (void)(expr); });                                                          \
    if (_c != (expected)) {                                                                                         \
      std::fprintf(stderr, "  %s:%d: %s: expected %s, got %s\n", __FILE__, __LINE__, #expr, expected, _c.c_str()); \
      ++hwsq_test::failures();                                                                                      \
    }                                                                                                               \
  } while (0)

RuntimeOptions plain(int workers) {
  RuntimeOptions o;
  for (int i = 0; i < workers; ++i) o.workers.push_back({i % 2, {}});
  o.pin = false;
  return o;
}

void noop(void*) {}

// A document with every field set to something recognisable.
Document sampleDocument() {
  Document d;
  d.process.publishedAtNs = 1'700'000'000'123'456'789ull;
  d.process.uptimeNs = 42'000'000'000ull;
  d.process.intervalNs = 250'000'000;
  d.process.strings[HwsqVersion] = "0.1.0";
  d.process.strings[PodId] = "pod-a";
  d.process.strings[PodNamespace] = "prod";
  RuntimeSnapshot r;
  r.id = 7;
  r.kind = RuntimeKind::Js;
  r.pinned = true;
  r.closed = false;
  r.flat = true;
  r.createdAtNs = 1'700'000'000'000'000'000ull;
  r.elapsedNs = 5'000'000'000ull;
  r.hogThresholdNs = 10'000'000;
  auto& s = r.stats;
  s.statsEnabled = true;
  s.grqDepth = 3;
  s.externalSubmitted = 1000;
  s.rejected = 2;
  s.dropped = 1;
  s.spinning = 1;
  s.idle = 2;
  s.sysmon.hogs = 4;
  s.sysmon.longestHogNs = 15'000'000;
  s.sysmon.longestHogWorker = -1;
  s.sysmon.stuckWorkers = 1;
  s.sysmon.rounds = 99;
  s.sysmon.currentDelayUs = 10'000;
  for (int p = 0; p < 3; ++p) {
    hwsq::sched::WorkerStats w;
    w.worker = p;
    w.node = p == 2 ? 1 : 0;
    w.spawned = 10 + p;
    w.executed = 100 + p;
    w.localPushes = 1 + p;
    w.runnextHits = 2 + p;
    w.hwsqPushes = 3 + p;
    w.hwsqPops = 4 + p;
    w.grqPops = 5 + p;
    w.inboxPops = 6 + p;
    w.stealsSameNode = 7 + p;
    w.stealsSameNodeTasks = 8 + p;
    w.stealsRemote = 9 + p;
    w.stealsRemoteTasks = 10 + p;
    w.failedSteals = 11 + p;
    w.overflows = 12 + p;
    w.overflowTasks = 13 + p;
    w.parks = 14 + p;
    w.wakeups = 15 + p;
    w.spinningNs = 16'000 + p;
    w.busyNs = 17'000'000 + p;
    w.hogs = p;
    w.lrqDepth = 18 + p;
    w.parked = p == 1;
    w.runningForNs = p == 0 ? 19'000 : 0;
    s.workers.push_back(w);
    s.spawned += w.spawned;
    s.executed += w.executed;
    r.workerCpus.push_back(p == 2 ? std::vector<int>{4, 5, 6, 7, 9} : std::vector<int>{p});
  }
  for (int n = 0; n < 2; ++n) {
    hwsq::sched::NodeStats ns;
    ns.node = n;
    ns.workers = n == 0 ? 2 : 1;
    ns.hwsqDepth = 20 + n;
    ns.hwsqCapacity = 4096;
    ns.prefetches = 21 + n;
    ns.prefetchTasks = 22 + n;
    s.nodes.push_back(ns);
  }
  s.latency.unitNs = 0.37;
  s.latency.counts[3] = 5;
  s.latency.counts[700] = 2;
  s.latency.count = 7;
  s.latency.sum = 123456;
  s.latency.max = 99999;
  s.runTime.unitNs = 0.37;
  s.runTime.counts[1407] = 1;
  s.runTime.count = 1;
  s.runTime.sum = 1ull << 50;
  s.runTime.max = 1ull << 50;
  r.tasks = JsTaskCounts{1, 2, 3, 4, 5, 6, 7};
  r.parallelism = ParallelismInfo{2, 3, ParallelismSource::Cgroup2, 1};
  d.runtimes.push_back(r);
  RuntimeSnapshot native;
  native.id = 8;
  native.stats.workers.resize(1);
  native.stats.latency.unitNs = 1;
  native.stats.runTime.unitNs = 1;
  native.workerCpus.resize(1);
  d.runtimes.push_back(native);
  return d;
}

// Equal as a reader sees them.
void checkSame(const Document& a, const Document& b) {
  CHECK_EQ(a.process.publishedAtNs, b.process.publishedAtNs);
  CHECK_EQ(a.process.uptimeNs, b.process.uptimeNs);
  CHECK_EQ(a.process.intervalNs, b.process.intervalNs);
  for (size_t i = 0; i < ProcessStringCount; ++i) {
    CHECK(a.process.strings[i].has_value() == b.process.strings[i].has_value());
    if (a.process.strings[i] && b.process.strings[i]) CHECK_STR(*a.process.strings[i], *b.process.strings[i]);
  }
  CHECK_EQ(a.runtimes.size(), b.runtimes.size());
  for (size_t i = 0; i < std::min(a.runtimes.size(), b.runtimes.size()); ++i) {
    const RuntimeSnapshot& x = a.runtimes[i];
    const RuntimeSnapshot& y = b.runtimes[i];
    CHECK_EQ(x.id, y.id);
    CHECK(x.kind == y.kind);
    CHECK(x.pinned == y.pinned && x.closed == y.closed && x.flat == y.flat);
    CHECK_EQ(x.createdAtNs, y.createdAtNs);
    CHECK_EQ(x.elapsedNs, y.elapsedNs);
    CHECK_EQ(x.hogThresholdNs, y.hogThresholdNs);
    CHECK(x.stats.statsEnabled == y.stats.statsEnabled);
    CHECK_EQ(x.stats.grqDepth, y.stats.grqDepth);
    CHECK_EQ(x.stats.externalSubmitted, y.stats.externalSubmitted);
    CHECK_EQ(x.stats.rejected, y.stats.rejected);
    CHECK_EQ(x.stats.dropped, y.stats.dropped);
    CHECK_EQ(x.stats.spawned, y.stats.spawned);
    CHECK_EQ(x.stats.executed, y.stats.executed);
    CHECK_EQ(x.stats.spinning, y.stats.spinning);
    CHECK_EQ(x.stats.idle, y.stats.idle);
    CHECK_EQ(x.stats.sysmon.hogs, y.stats.sysmon.hogs);
    CHECK_EQ(x.stats.sysmon.longestHogNs, y.stats.sysmon.longestHogNs);
    CHECK_EQ(x.stats.sysmon.longestHogWorker, y.stats.sysmon.longestHogWorker);
    CHECK_EQ(x.stats.sysmon.stuckWorkers, y.stats.sysmon.stuckWorkers);
    CHECK_EQ(x.stats.sysmon.rounds, y.stats.sysmon.rounds);
    CHECK_EQ(x.stats.sysmon.currentDelayUs, y.stats.sysmon.currentDelayUs);
    CHECK_EQ(x.stats.workers.size(), y.stats.workers.size());
    for (size_t p = 0; p < std::min(x.stats.workers.size(), y.stats.workers.size()); ++p) {
      const auto& u = x.stats.workers[p];
      const auto& v = y.stats.workers[p];
      const uint64_t ux[] = {u.spawned, u.executed, u.localPushes, u.runnextHits, u.hwsqPushes, u.hwsqPops, u.grqPops, u.inboxPops, u.stealsSameNode,
                             u.stealsSameNodeTasks, u.stealsRemote, u.stealsRemoteTasks, u.failedSteals, u.overflows, u.overflowTasks, u.parks, u.wakeups,
                             u.spinningNs, u.busyNs, u.hogs, u.lrqDepth, u.runningForNs};
      const uint64_t vx[] = {v.spawned, v.executed, v.localPushes, v.runnextHits, v.hwsqPushes, v.hwsqPops, v.grqPops, v.inboxPops, v.stealsSameNode,
                             v.stealsSameNodeTasks, v.stealsRemote, v.stealsRemoteTasks, v.failedSteals, v.overflows, v.overflowTasks, v.parks, v.wakeups,
                             v.spinningNs, v.busyNs, v.hogs, v.lrqDepth, v.runningForNs};
      for (size_t k = 0; k < sizeof ux / sizeof ux[0]; ++k) CHECK_EQ(ux[k], vx[k]);
      CHECK_EQ(u.worker, v.worker);
      CHECK_EQ(u.node, v.node);
      CHECK(u.parked == v.parked);
      CHECK(x.workerCpus[p] == y.workerCpus[p]);
    }
    CHECK_EQ(x.stats.nodes.size(), y.stats.nodes.size());
    for (size_t n = 0; n < std::min(x.stats.nodes.size(), y.stats.nodes.size()); ++n) {
      const auto& u = x.stats.nodes[n];
      const auto& v = y.stats.nodes[n];
      CHECK(u.node == v.node && u.workers == v.workers && u.hwsqDepth == v.hwsqDepth && u.hwsqCapacity == v.hwsqCapacity &&
            u.prefetches == v.prefetches && u.prefetchTasks == v.prefetchTasks);
    }
    for (auto h : {std::make_pair(&x.stats.latency, &y.stats.latency), std::make_pair(&x.stats.runTime, &y.stats.runTime)}) {
      CHECK(h.first->counts == h.second->counts);
      CHECK_EQ(h.first->count, h.second->count);
      CHECK_EQ(h.first->sum, h.second->sum);
      CHECK_EQ(h.first->max, h.second->max);
      CHECK(h.first->unitNs == h.second->unitNs);
    }
    CHECK(x.tasks.has_value() == y.tasks.has_value());
    if (x.tasks && y.tasks) CHECK(std::memcmp(&*x.tasks, &*y.tasks, sizeof(JsTaskCounts)) == 0);
    CHECK(x.parallelism.has_value() == y.parallelism.has_value());
    if (x.parallelism && y.parallelism) {
      CHECK(x.parallelism->activeWorkers == y.parallelism->activeWorkers && x.parallelism->parallelism == y.parallelism->parallelism &&
            x.parallelism->source == y.parallelism->source && x.parallelism->changes == y.parallelism->changes);
    }
  }
}

// Word positions of the first runtime record of an encoded document.
size_t firstRuntime(const std::vector<uint64_t>& w) { return static_cast<size_t>(w[0]); }

// A child process that exits at once; its pid, reaped (so it names no process now).
pid_t deadPid() {
  std::fflush(nullptr);  // a child must not write the parent's buffered output again
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

// A child that waits (blocked on a pipe) until destroyed; named `comm`.
struct Child {
  pid_t pid = -1;
  int fd = -1;
  explicit Child(const char* comm = nullptr) {
    int p[2];
    if (::pipe(p) != 0) throw std::runtime_error("pipe");
    std::fflush(nullptr);
    pid = ::fork();
    if (pid == 0) {
      ::close(p[1]);
      if (comm) ::prctl(PR_SET_NAME, comm, 0, 0, 0);
      char c;
      while (::read(p[0], &c, 1) < 0 && errno == EINTR) {
      }
      ::_exit(0);
    }
    ::close(p[0]);
    fd = p[1];
  }
  ~Child() {
    ::close(fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
};

std::string bytesOf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void writeFile(const std::string& path, const std::string& bytes, mode_t mode = 0600) {
  ::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, mode);
  if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) throw std::runtime_error("cannot write " + path);
  ::fchmod(fd, mode);
  ::close(fd);
}
// The bytes of a valid file whose header is patched by `patch`.
std::string patched(const std::string& bytes, const std::function<void(Header&)>& patch) {
  std::string out = bytes;
  Header h;
  std::memcpy(&h, out.data(), sizeof h);
  patch(h);
  std::memcpy(&out[0], &h, sizeof h);
  return out;
}

}  // namespace

// ------------------------------------------------------------------ the document

TEST_CASE("document: what is encoded decodes to the same values, nulls and reserved fields included") {
  const Document d = sampleDocument();
  const std::vector<uint64_t> w = encodeDocument(d);
  checkSame(d, decodeDocument(w.data(), w.size()));
}

TEST_CASE("document: a later minor's fields and blocks are skipped, an earlier writer's missing fields are absent") {
  const Document d = sampleDocument();
  std::vector<uint64_t> w = encodeDocument(d);
  // A later writer: two more runtime fields (after the known ones) and one more block at the end
  // of the record. Sizes updated as that writer would.
  const size_t r = firstRuntime(w);
  const size_t n = static_cast<size_t>(w[r + 1]);
  w.insert(w.begin() + static_cast<long>(r + 2 + n), {0xdead, 0xbeef});
  w[r + 1] += 2;
  const size_t end = r + static_cast<size_t>(w[r]) + 2;
  w.insert(w.begin() + static_cast<long>(end), {1, 0x1234});  // a fields block of one field
  w[r] += 4;
  checkSame(d, decodeDocument(w.data(), w.size()));

  // An earlier writer: the runtime fields stop before the reserved parallelism fields.
  std::vector<uint64_t> old = encodeDocument(d);
  const size_t k = RuntimeFieldCount - ActiveWorkers;
  old[r + 2 + Flags] &= ~static_cast<uint64_t>(FlagParallelism);
  old.erase(old.begin() + static_cast<long>(r + 2 + ActiveWorkers), old.begin() + static_cast<long>(r + 2 + RuntimeFieldCount));
  old[r + 1] -= k;
  old[r] -= k;
  Document expected = d;
  expected.runtimes[0].parallelism.reset();
  checkSame(expected, decodeDocument(old.data(), old.size()));
}

TEST_CASE("document: every truncation and garbled word is a CorruptDocument or a document, never a crash") {
  const std::vector<uint64_t> w = encodeDocument(sampleDocument());
  for (size_t len = 0; len < w.size(); ++len) CHECK_THROWS(decodeDocument(w.data(), len));
  std::mt19937_64 rng(12345);
  const uint64_t specials[] = {0, 1, 2, 1408, 4096, 65536, ~0ull, ~0ull - 1, 1ull << 32, 1ull << 63};
  for (int round = 0; round < 20000; ++round) {
    std::vector<uint64_t> g = w;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      const size_t at = rng() % g.size();
      g[at] = rng() % 2 ? specials[rng() % (sizeof specials / sizeof specials[0])] : rng();
    }
    try {
      (void)decodeDocument(g.data(), g.size());
    } catch (const CorruptDocument&) {
    }
  }
  CHECK(true);
}

TEST_CASE("document: past kMaxRuntimes, runtimes are left out and the process record says so") {
  Document d;
  RuntimeSnapshot r;
  r.stats.latency.unitNs = r.stats.runTime.unitNs = 1;
  d.runtimes.assign(kMaxRuntimes + 3, r);
  const std::vector<uint64_t> w = encodeDocument(d);
  const Document back = decodeDocument(w.data(), w.size());
  CHECK_EQ(back.runtimes.size(), static_cast<size_t>(kMaxRuntimes));
  CHECK(back.process.truncated);
}

// ------------------------------------------------------------------ processes

TEST_CASE("processes: start time read past a command name holding spaces and parentheses; dead pids") {
  Child c("a) b (c) d");
  const uint64_t st = processStartTime(c.pid);
  CHECK(st > 0);
  // The same field read independently: /proc/<pid>/stat split after the last ')'.
  const std::string text = hwsq_test::readText("/proc/" + std::to_string(c.pid) + "/stat");
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) rest >> field;
  CHECK_EQ(st, std::stoull(field));
  CHECK(processExists(c.pid));
  const pid_t dead = deadPid();
  CHECK(!processExists(dead));
  CHECK_EQ(processStartTime(dead), uint64_t{0});
  CHECK(!processExists(0) && !processExists(-1));
}

// ------------------------------------------------------------------ the file

TEST_CASE("file: created 0600 in a 0700 directory, read back, removed on close") {
  TempDir tmp("hwsq-shm");
  const std::string dir = tmp.path + "/stats";
  const Document d = sampleDocument();
  SegmentWriter w;
  w.open(dir, encodeDocument(d));
  const std::string path = dir + "/" + std::to_string(::getpid());
  CHECK_STR(w.path(), path);
  struct stat st;
  CHECK(::stat(dir.c_str(), &st) == 0 && (st.st_mode & 0777) == 0700);
  CHECK(::stat(path.c_str(), &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_uid == ::geteuid());
  const Segment s = readSegment(path, ::getpid());
  CHECK_EQ(s.info.pid, static_cast<uint64_t>(::getpid()));
  CHECK_EQ(s.info.publishes, uint64_t{1});
  CHECK_EQ(s.info.major, kMajor);
  CHECK_EQ(s.info.startTime, processStartTime(::getpid()));
  checkSame(d, s.doc);
  // A bigger document grows the file; the reader follows.
  Document big = d;
  big.runtimes.assign(40, d.runtimes[0]);
  w.write(encodeDocument(big));
  const Segment s2 = readSegment(path, ::getpid());
  CHECK_EQ(s2.info.publishes, uint64_t{2});
  checkSame(big, s2.doc);
  w.close();
  CHECK(::access(path.c_str(), F_OK) != 0);
  CHECK_SHM(readSegment(path, ::getpid()), "ERR_HWSQ_SHM_NOT_PUBLISHED");
}

TEST_CASE("file: a directory of another user, or one others may write to, is refused") {
  TempDir tmp("hwsq-shm");
  const std::vector<uint64_t> doc = encodeDocument(Document{});
  SegmentWriter w;
  const std::string open = tmp.path + "/open";
  ::mkdir(open.c_str(), 0777);
  ::chmod(open.c_str(), 0777);
  CHECK_SHM(w.open(open, doc), "ERR_HWSQ_SHM_FOREIGN");
  const std::string theirs = tmp.path + "/theirs";
  ::mkdir(theirs.c_str(), 0700);
  if (::geteuid() == 0) {
    CHECK(::chown(theirs.c_str(), 65534, 65534) == 0);
    CHECK_SHM(w.open(theirs, doc), "ERR_HWSQ_SHM_PERMISSION");
  } else {
    CHECK_SHM(w.open("/", doc), "ERR_HWSQ_SHM_PERMISSION");  // root's
  }
  CHECK(!w.isOpen());
  CHECK_SHM(w.open(tmp.path + "/missing/parent", doc), "ERR_HWSQ_SHM_IO");
}

TEST_CASE("file: a dead pid's file is stale to readers and removed by the next writer; a reused pid's too") {
  TempDir tmp("hwsq-shm");
  const std::string dir = tmp.path;
  ::chmod(dir.c_str(), 0700);
  SegmentWriter w;
  w.open(dir, encodeDocument(sampleDocument()));
  const std::string bytes = bytesOf(w.path());
  w.close();

  const pid_t dead = deadPid();
  const std::string deadPath = dir + "/" + std::to_string(dead);
  writeFile(deadPath, patched(bytes, [&](Header& h) { h.pid = static_cast<uint64_t>(dead); }));
  CHECK_SHM(readSegment(deadPath, dead), "ERR_HWSQ_SHM_STALE");

  Child live;
  const uint64_t start = processStartTime(live.pid);
  const std::string livePath = dir + "/" + std::to_string(live.pid);
  // The pid is alive but names a process that started later than the file's writer: reused.
  writeFile(livePath, patched(bytes, [&](Header& h) {
              h.pid = static_cast<uint64_t>(live.pid);
              h.startTime = start - 1;
            }));
  CHECK_SHM(readSegment(livePath, live.pid), "ERR_HWSQ_SHM_STALE");
  // The live process's own file (right start time) is read and kept.
  Child other;
  const std::string otherPath = dir + "/" + std::to_string(other.pid);
  writeFile(otherPath, patched(bytes, [&](Header& h) {
              h.pid = static_cast<uint64_t>(other.pid);
              h.startTime = processStartTime(other.pid);
            }));
  CHECK_SHM(readSegment(otherPath, other.pid), "none");
  // A temp file of a dead writer, and files that are not a pid's, or not hwsq's.
  writeFile(dir + "/." + std::to_string(dead) + ".new", "x");
  writeFile(dir + "/notes", "x");
  writeFile(dir + "/" + std::to_string(deadPid()), "not hwsq");

  w.open(dir, encodeDocument(Document{}));  // the next writer cleans up
  CHECK(::access(deadPath.c_str(), F_OK) != 0);
  CHECK(::access(livePath.c_str(), F_OK) != 0);
  CHECK(::access((dir + "/." + std::to_string(dead) + ".new").c_str(), F_OK) != 0);
  CHECK(::access(otherPath.c_str(), F_OK) == 0);
  CHECK(::access((dir + "/notes").c_str(), F_OK) == 0);
  w.close();
}

TEST_CASE("file: missing, foreign, corrupt and other-version files each get their own error") {
  TempDir tmp("hwsq-shm");
  const std::string dir = tmp.path;
  ::chmod(dir.c_str(), 0700);
  SegmentWriter w;
  w.open(dir, encodeDocument(sampleDocument()));
  const std::string good = bytesOf(w.path());
  const pid_t self = ::getpid();
  w.close();
  const std::string path = dir + "/" + std::to_string(self);
  auto check = [&](const std::string& bytes, const char* code, mode_t mode = 0600) {
    writeFile(path, bytes, mode);
    CHECK_SHM(readSegment(path, self), code);
  };
  check(good, "none");
  const pid_t dead = deadPid();
  CHECK_SHM(readSegment(dir + "/" + std::to_string(dead), dead), "ERR_HWSQ_NO_SUCH_PROCESS");
  CHECK_SHM(readSegment(dir + "/1", 1), "ERR_HWSQ_SHM_NOT_PUBLISHED");  // init exists
  check(good, "ERR_HWSQ_SHM_FOREIGN", 0644);
  check(std::string(4096, 'x'), "ERR_HWSQ_SHM_FOREIGN");
  check(patched(good, [](Header& h) { h.byteOrder = 0x04030201; }), "ERR_HWSQ_SHM_FOREIGN");
  check(patched(good, [](Header& h) { h.pidNamespace = ownPidNamespace() + 1; }), ownPidNamespace() ? "ERR_HWSQ_SHM_FOREIGN" : "none");
  check(patched(good, [](Header& h) { h.major = kMajor + 1; }), "ERR_HWSQ_SHM_VERSION");
  check(patched(good, [](Header& h) { h.minor = kMinor + 5; }), "none");  // a later minor: read what is known
  check(good.substr(0, 100), "ERR_HWSQ_SHM_CORRUPT");
  check(good.substr(0, kHeaderBytes + 16), "ERR_HWSQ_SHM_CORRUPT");
  check(patched(good, [](Header& h) { h.state = 0; }), "ERR_HWSQ_SHM_CORRUPT");
  check(patched(good, [](Header& h) { h.docBytes = 12; }), "ERR_HWSQ_SHM_CORRUPT");
  check(patched(good, [](Header& h) { h.docBytes = kMaxDocumentBytes + 8; }), "ERR_HWSQ_SHM_CORRUPT");
  check(patched(good, [](Header& h) { h.publishes = 0; }), "ERR_HWSQ_SHM_CORRUPT");
  check(patched(good, [](Header& h) { h.uid += 1; }), "ERR_HWSQ_SHM_CORRUPT");
  check(patched(good, [](Header& h) { h.seq = 3; }), "ERR_HWSQ_SHM_CORRUPT");  // a writer that never finished
  std::string garbled = good;
  std::memset(&garbled[kHeaderBytes], 0xff, 64);
  check(garbled, "ERR_HWSQ_SHM_CORRUPT");
  // A symbolic link to a good file is not followed.
  writeFile(path, good);
  const std::string link = dir + "/link";
  CHECK(::symlink(path.c_str(), link.c_str()) == 0);
  CHECK_SHM(readSegment(link, self), "ERR_HWSQ_SHM_FOREIGN");
  // Another user cannot read it: checked in a child that becomes `nobody` (root only).
  if (::geteuid() == 0) {
    ::chmod(dir.c_str(), 0755);  // the file's own mode stops it, not the directory's
    std::fflush(nullptr);
    const pid_t child = ::fork();
    if (child == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
      try {
        readSegment(path, self);
      } catch (const ShmError& e) {
        ::_exit(e.kind == ShmErrorKind::Permission ? 0 : 3);
      } catch (...) {
      }
      ::_exit(4);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
}

// ------------------------------------------------------------------ the seqlock

TEST_CASE("seqlock: readers never see a torn document while the writer rewrites it") {
  TempDir tmp("hwsq-shm");
  const std::string dir = tmp.path;
  ::chmod(dir.c_str(), 0700);
  // Generation g: 1000 + (g % 7) * 3000 words, every one of them g (up to ~150 KiB: many pages,
  // and the file grows meanwhile). A torn copy holds words of two generations or a length that
  // is not its generation's.
  auto doc = [](uint64_t g) { return std::vector<uint64_t>(1000 + (g % 7) * 3000, g); };
  SegmentWriter w;
  w.open(dir, doc(1));
  const std::string path = w.path();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, torn{0}, distinct{0};
  std::thread writer([&] {
    // Mostly back to back (copies overlap publishes), with a pause every few publishes: a reader
    // gives up after a bounded number of overlapped copies, and on two loaded cores a writer that
    // never pauses can outrun every attempt (the real publisher writes at most once a millisecond).
    for (uint64_t g = 2; !stop.load(std::memory_order_relaxed); ++g) {
      w.write(doc(g));
      if (g % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      uint64_t last = 0;
      // Until the document has changed under the readers many times (a hang is a failure).
      while (reads.load() < 2000 || distinct.load() < 300) {
        const SegmentCopy c = copySegment(path, ::getpid());
        const uint64_t g = c.words.empty() ? 0 : c.words[0];
        bool ok = c.words.size() == 1000 + (g % 7) * 3000;
        for (uint64_t v : c.words) ok = ok && v == g;
        if (!ok) torn.fetch_add(1);
        if (g != last) distinct.fetch_add(1);
        last = g;
        reads.fetch_add(1);
      }
    });
  }
  for (auto& t : readers) t.join();
  stop.store(true);
  writer.join();
  CHECK_EQ(torn.load(), uint64_t{0});
  w.close();
}

// ------------------------------------------------------------------ the publisher

TEST_CASE("publisher: a runtime's stats appear in the file and follow its tasks; the file goes with the last runtime") {
  TempDir tmp("hwsq-shm");
  const std::string dir = tmp.path + "/pub";
  PublishSettings settings;
  settings.dir = dir;
  settings.intervalNs = 1'000'000;
  settings.strings[HwsqVersion] = "test";
  RuntimeOptions every = plain(2);
  every.timingSampleShift = 0;  // every task timed: the published latency count is exact
  auto rt = std::make_unique<Runtime>(every);
  Registration reg = publishRuntime({rt.get(), RuntimeKind::Native, {}}, settings);
  const std::string path = dir + "/" + std::to_string(::getpid());
  CHECK_STR(publisherStatus().path, path);
  CHECK_STR(publisherStatus().error, "");
  // Published before publishRuntime returned.
  Segment s = readSegment(path, ::getpid());
  CHECK_EQ(s.doc.runtimes.size(), size_t{1});
  CHECK_EQ(s.doc.runtimes[0].id, reg.id());
  CHECK_EQ(s.doc.runtimes[0].stats.workers.size(), size_t{2});
  CHECK_STR(*s.doc.process.strings[HwsqVersion], "test");
  CHECK(!s.doc.process.strings[PodId].has_value());
  CHECK(s.doc.process.uptimeNs > 0);
  for (int i = 0; i < 5000; ++i) rt->spawn(noop, nullptr);
  rt->waitIdle();
  CHECK(eventually([&] { return readSegment(path, ::getpid()).doc.runtimes.at(0).stats.executed == 5000; }));
  s = readSegment(path, ::getpid());
  const auto& st = s.doc.runtimes[0].stats;
  CHECK_EQ(st.externalSubmitted, uint64_t{5000});
  CHECK_EQ(st.latency.count, uint64_t{5000});
  CHECK_EQ(st.workers[0].executed + st.workers[1].executed, uint64_t{5000});

  // A second runtime (JS kind, with its own counters) joins the same file.
  auto rt2 = std::make_unique<Runtime>(plain(1));
  std::atomic<uint64_t> failed{3};
  Registration reg2 = publishRuntime({rt2.get(), RuntimeKind::Js, [&] { return JsTaskCounts{0, 0, 9, failed.load(), 0, 0, 0}; }}, settings);
  s = readSegment(path, ::getpid());
  CHECK_EQ(s.doc.runtimes.size(), size_t{2});
  CHECK(s.doc.runtimes[1].kind == RuntimeKind::Js);
  CHECK(s.doc.runtimes[1].tasks.has_value() && s.doc.runtimes[1].tasks->failed == 3);
  failed.store(4);
  CHECK(eventually([&] { return readSegment(path, ::getpid()).doc.runtimes.at(1).tasks->failed == 4; }));
  // A runtime that stops leaves the file; the file stays for the other one.
  rt2->close();
  CHECK(eventually([&] { return readSegment(path, ::getpid()).doc.runtimes.size() == 1; }));
  reg2.reset();
  rt2.reset();
  // The last registration gone: the file goes at once.
  reg.reset();
  CHECK(::access(path.c_str(), F_OK) != 0);
  CHECK_STR(publisherStatus().path, "");
  rt->close();
}

TEST_CASE("publisher: a closed runtime's file is removed without its registration; a bad directory is an error, not a failure") {
  TempDir tmp("hwsq-shm");
  PublishSettings settings;
  settings.dir = tmp.path + "/pub2";
  settings.intervalNs = 1'000'000;
  auto rt = std::make_unique<Runtime>(plain(1));
  Registration reg = publishRuntime({rt.get(), RuntimeKind::Native, {}}, settings);
  const std::string path = settings.dir + "/" + std::to_string(::getpid());
  CHECK(::access(path.c_str(), F_OK) == 0);
  rt->close();
  CHECK(eventually([&] { return ::access(path.c_str(), F_OK) != 0; }));
  reg.reset();

  PublishSettings bad = settings;
  bad.dir = tmp.path + "/no/such/parent";
  auto rt2 = std::make_unique<Runtime>(plain(1));
  Registration reg2 = publishRuntime({rt2.get(), RuntimeKind::Native, {}}, bad);
  CHECK(reg2.id() != 0);
  CHECK(publisherStatus().error.find("cannot create") != std::string::npos);
  CHECK_STR(publisherStatus().path, "");
  rt2->spawn(noop, nullptr);
  rt2->waitIdle();
  reg2.reset();
  rt2->close();
}

TEST_CASE("publisher: decoded snapshots stay consistent while Ps run and the publisher rewrites every millisecond") {
  TempDir tmp("hwsq-shm");
  PublishSettings settings;
  settings.dir = tmp.path + "/pub3";
  settings.intervalNs = 1'000'000;
  auto rt = std::make_unique<Runtime>(plain(2));
  Registration reg = publishRuntime({rt.get(), RuntimeKind::Native, {}}, settings);
  const std::string path = settings.dir + "/" + std::to_string(::getpid());
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    while (!stop.load()) {
      for (int i = 0; i < 200; ++i) rt->spawn(noop, nullptr);
      std::this_thread::yield();
    }
  });
  // In every snapshot the totals are the sums of the per-worker counters and each histogram's
  // count the sum of its buckets: both hold for any one stats() and break in a torn mix.
  uint64_t reads = 0, bad = 0, changes = 0, last = 0;
  while (reads < 3000) {
    Segment s;
    try {
      s = readSegment(path, ::getpid());
    } catch (const ShmError&) {  // a torn copy may not even decode
      ++bad, ++reads;
      continue;
    }
    const auto& st = s.doc.runtimes.at(0).stats;
    uint64_t executed = 0, spawned = 0, buckets = 0;
    for (const auto& w : st.workers) executed += w.executed, spawned += w.spawned;
    for (uint64_t c : st.latency.counts) buckets += c;
    if (executed != st.executed || spawned != st.spawned || buckets != st.latency.count) ++bad;
    if (st.executed != last) ++changes;
    last = st.executed;
    ++reads;
  }
  stop.store(true);
  producer.join();
  CHECK_EQ(bad, uint64_t{0});
  CHECK(changes > 10);
  reg.reset();
  rt->close();
}

TEST_MAIN()
