// The process's stats publisher (see publisher.h): a registry of runtimes under one mutex, one
// thread that publishes them every interval, the file's writer, and the atexit hook that removes
// the file. The singleton is leaked on purpose: no static destructor may join its thread or
// touch runtimes at process exit. The thread runs only while runtimes are registered: the last
// remove() joins it, so a service that closes its runtimes is left with none of hwsq's threads.
#include "shm/publisher.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "affinity.h"
#include "shm/segment.h"

namespace hwsq::shm {

namespace {

uint64_t clockNs(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// CLOCK_BOOTTIME when the process started (from its start time in clock ticks), so that its
// uptime is right whenever the first runtime is registered.
uint64_t processStartBootNs() {
  const uint64_t ticks = processStartTime(::getpid());
  const long hz = ::sysconf(_SC_CLK_TCK);
  if (ticks == 0 || hz <= 0) return clockNs(CLOCK_BOOTTIME);
  return ticks * (1'000'000'000ull / static_cast<uint64_t>(hz));
}

// The atexit hook's state: plain memory it can read without a lock while the process exits.
char gExitPath[4096];
std::atomic<bool> gExitArmed{false};
std::atomic<pid_t> gExitPid{0};
void removeOnExit() {
  // A forked child inherits the hook: only the process that wrote the file removes it.
  if (gExitArmed.load(std::memory_order_acquire) && gExitPid.load(std::memory_order_relaxed) == ::getpid()) ::unlink(gExitPath);
}

struct Entry {
  uint64_t id = 0;
  RuntimeSource source;
  uint64_t intervalNs = 0;
  uint64_t createdAtNs = 0;      // CLOCK_REALTIME
  uint64_t createdSteadyNs = 0;  // CLOCK_MONOTONIC
};

class Publisher {
 public:
  uint64_t add(const RuntimeSource& src, const PublishSettings& settings);  // -> the entry's id
  void remove(uint64_t id);
  PublisherStatus status();

 private:
  void run(uint64_t generation);
  void publishLocked();
  void armExitHook();
  RuntimeSnapshot snapshot(const Entry& e, uint64_t steadyNow) const;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Entry> entries_;   // guarded by mu_
  SegmentWriter writer_;         // guarded by mu_
  PublishSettings settings_;     // guarded by mu_
  std::string error_;            // guarded by mu_
  bool failed_ = false;          // the file could not be opened: wait for the next registration
  bool wake_ = false;
  // The publishing thread's generation: a thread whose generation is not generation_ exits (the
  // last remove() bumps it and joins the thread). threadRunning_: a thread of generation_ runs.
  uint64_t generation_ = 0;
  bool threadRunning_ = false;
  bool hookAdded_ = false;
  uint64_t nextId_ = 1;
  uint64_t startBootNs_ = 0;
  std::thread thread_;
};

Publisher& publisher() {
  static Publisher* p = new Publisher();  // leaked: see the file comment
  return *p;
}

uint64_t Publisher::add(const RuntimeSource& src, const PublishSettings& settings) {
  std::lock_guard<std::mutex> lk(mu_);
  if (startBootNs_ == 0) startBootNs_ = processStartBootNs();
  Entry e;
  e.id = nextId_++;
  e.source = src;
  e.intervalNs = std::max<uint64_t>(settings.intervalNs, 1'000'000);
  e.createdAtNs = clockNs(CLOCK_REALTIME);
  e.createdSteadyNs = clockNs(CLOCK_MONOTONIC);
  entries_.push_back(std::move(e));
  if (!writer_.isOpen()) settings_.dir = settings.dir;
  for (size_t i = 0; i < ProcessStringCount; ++i) settings_.strings[i] = settings.strings[i];
  failed_ = false;
  const uint64_t id = entries_.back().id;
  if (!threadRunning_) {
    // A thread that exited by itself (its runtimes stopped) holds no lock any more: join it here.
    if (thread_.joinable()) thread_.join();
    try {
      thread_ = std::thread([this, g = generation_] { run(g); });
      nameThread(thread_, "hwsq-shm");
    } catch (...) {  // std::system_error: nothing registered
      entries_.pop_back();
      throw;
    }
    threadRunning_ = true;
  }
  publishLocked();
  wake_ = true;  // the interval may be shorter now
  cv_.notify_all();
  return id;
}

void Publisher::remove(uint64_t id) {
  std::thread last;
  {
    std::lock_guard<std::mutex> lk(mu_);
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(), [id](const Entry& e) { return e.id == id; }), entries_.end());
    if (!entries_.empty()) return;
    gExitArmed.store(false, std::memory_order_release);
    writer_.close();
    ++generation_;  // the running thread, if any, exits at its next look
    threadRunning_ = false;
    last = std::move(thread_);
    cv_.notify_all();
  }
  // Joined without the lock (the thread needs it to see its generation end). Never called on the
  // publishing thread itself: it removes nothing through a Registration.
  if (last.joinable()) last.join();
}

PublisherStatus Publisher::status() {
  std::lock_guard<std::mutex> lk(mu_);
  PublisherStatus s;
  s.path = writer_.path();
  s.error = error_;
  s.publishes = writer_.publishes();
  s.runtimes = entries_.size();
  return s;
}

void Publisher::run(uint64_t generation) {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    if (generation != generation_) return;
    if (entries_.empty()) {  // every runtime stopped: the next add() joins this thread
      threadRunning_ = false;
      return;
    }
    uint64_t interval = UINT64_MAX;
    for (const Entry& e : entries_) interval = std::min(interval, e.intervalNs);
    cv_.wait_for(lk, std::chrono::nanoseconds(interval), [&] { return wake_ || generation != generation_; });
    if (generation != generation_) return;
    wake_ = false;
    if (!entries_.empty() && !failed_) publishLocked();
  }
}

RuntimeSnapshot Publisher::snapshot(const Entry& e, uint64_t steadyNow) const {
  const sched::Runtime& rt = *e.source.runtime;
  const sched::RuntimeOptions& o = rt.options();
  RuntimeSnapshot r;
  r.id = e.id;
  r.kind = e.source.kind;
  r.pinned = o.pin;
  r.flat = o.policy == sched::StealPolicy::Flat;
  r.closed = rt.isClosed();
  r.createdAtNs = e.createdAtNs;
  r.elapsedNs = steadyNow - e.createdSteadyNs;
  r.hogThresholdNs = o.hogThresholdNs;
  r.stats = rt.stats();
  r.parallelism = ParallelismInfo{static_cast<uint64_t>(r.stats.activeWorkers), static_cast<uint64_t>(r.stats.parallelism),
                                  parallelismSourceOf(r.stats.parallelismSource), r.stats.parallelismChanges};
  if (e.source.jsTasks) r.tasks = e.source.jsTasks();
  r.workerCpus.resize(o.workers.size());
  if (o.pin)
    for (size_t p = 0; p < o.workers.size(); ++p) r.workerCpus[p] = o.workers[p].cpus;
  return r;
}

void Publisher::publishLocked() {
  // A runtime that stopped is no longer published (its Registration may outlive it).
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(), [](const Entry& e) { return e.source.runtime->isStopped(); }), entries_.end());
  if (entries_.empty()) {
    gExitArmed.store(false, std::memory_order_release);
    writer_.close();
    return;
  }
  try {
    const uint64_t steadyNow = clockNs(CLOCK_MONOTONIC);
    Document doc;
    doc.process.publishedAtNs = clockNs(CLOCK_REALTIME);
    const uint64_t boot = clockNs(CLOCK_BOOTTIME);
    doc.process.uptimeNs = boot > startBootNs_ ? boot - startBootNs_ : 0;
    doc.process.intervalNs = UINT64_MAX;
    for (const Entry& e : entries_) doc.process.intervalNs = std::min(doc.process.intervalNs, e.intervalNs);
    for (size_t i = 0; i < ProcessStringCount; ++i) doc.process.strings[i] = settings_.strings[i];
    doc.runtimes.reserve(entries_.size());
    for (const Entry& e : entries_) doc.runtimes.push_back(snapshot(e, steadyNow));
    const std::vector<uint64_t> words = encodeDocument(doc);
    if (writer_.isOpen()) {
      writer_.write(words);
    } else {
      writer_.open(settings_.dir, words);
      armExitHook();
    }
    error_.clear();
  } catch (const ShmError& e) {
    error_ = e.what();
    if (!writer_.isOpen()) failed_ = true;  // retried at the next registration
  } catch (const std::exception& e) {  // out of memory: try again next round
    error_ = e.what();
  }
}

void Publisher::armExitHook() {
  const std::string& path = writer_.path();
  if (path.size() >= sizeof gExitPath) return;
  gExitArmed.store(false, std::memory_order_release);
  std::memcpy(gExitPath, path.c_str(), path.size() + 1);
  gExitPid.store(::getpid(), std::memory_order_relaxed);
  gExitArmed.store(true, std::memory_order_release);
  if (!hookAdded_) hookAdded_ = std::atexit(removeOnExit) == 0;
}

}  // namespace

Registration& Registration::operator=(Registration&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    o.id_ = 0;
  }
  return *this;
}

void Registration::reset() {
  if (id_ == 0) return;
  publisher().remove(id_);
  id_ = 0;
}

Registration publishRuntime(const RuntimeSource& source, const PublishSettings& settings) {
  return Registration(publisher().add(source, settings));
}

PublisherStatus publisherStatus() { return publisher().status(); }

}  // namespace hwsq::shm
