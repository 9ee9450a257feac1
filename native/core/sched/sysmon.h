// sysmon: a monitor thread per runtime that watches the Ps from outside, like Go's sysmon.
// Native code cannot preempt a task (least of all JS), so it reports: tasks running longer
// than a threshold (hogs: count, longest, which P) and Ps stuck in one task right now; and it
// gives the runtime a periodic hook to move idle Ps towards work stuck behind busy ones.
//
// It borrows Go's trick (sysmon's schedtick/schedwhen): each P publishes a tick counter that it
// bumps when a task starts and when it ends (odd = running). If sysmon sees the same odd tick in
// two samples, the same task is still running; its start is the P's published start timestamp
// when stats are on, else the time sysmon first saw that tick (accurate to one period). The P's
// hot path costs two relaxed stores per task and no clock read.
//
// Sleep: 20 us at first; after 50 rounds without a new hog it doubles each round up to 10 ms
// while the runtime is idle, and up to threshold/4 while some P runs a task (so a 10 ms hog is
// seen within ~12.5 ms at ~400 wake-ups per second). A new hog holds the sleep where it is.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "parker.h"
#include "stats.h"

namespace hwsq::sched {

// Written by one P, read by sysmon.
struct alignas(64) SysmonProbe {
  std::atomic<uint64_t> tick{0};        // +1 at task start, +1 at task end; odd = running (release stores)
  std::atomic<uint64_t> startTicks{0};  // nowTicks() at task start, 0 when stats are off (relaxed)
};

class Sysmon {
 public:
  struct Config {
    uint64_t thresholdNs = 10'000'000;
    uint64_t minDelayUs = 20;
    uint64_t maxDelayUs = 10'000;
    // Called after each round in which some P was inside a task (the runtime uses it to send
    // idle Ps to nodes whose Ps are all busy while work waits there). Must not block.
    std::function<void()> onBusyRound;
  };
  Sysmon(std::vector<const SysmonProbe*> probes, Config cfg);  // starts the thread
  ~Sysmon();                                                   // stop()
  Sysmon(const Sysmon&) = delete;
  Sysmon& operator=(const Sysmon&) = delete;

  void stop();  // idempotent; joins
  SysmonStats stats() const;
  uint64_t workerHogs(size_t p) const { return perP_[p].hogs.load(std::memory_order_relaxed); }
  uint64_t runningForNs(size_t p) const { return perP_[p].runningForNs.load(std::memory_order_relaxed); }

 private:
  void run();
  bool sample(uint64_t nowNs, bool* anyRunning);  // returns true when a new hog was detected

  struct PerP {
    // sysmon-thread private
    uint64_t lastTick = 0;
    uint64_t firstSeenNs = 0;
    bool flagged = false;
    // published (single writer: sysmon; relaxed)
    std::atomic<uint64_t> hogs{0};
    std::atomic<uint64_t> runningForNs{0};  // 0 when not seen running the same task twice
  };

  std::vector<const SysmonProbe*> probes_;
  Config cfg_;
  std::unique_ptr<PerP[]> perP_;
  std::atomic<uint64_t> hogs_{0}, longestNs_{0}, rounds_{0}, delayUs_{0}, stuck_{0};
  std::atomic<int> longestWorker_{-1};
  std::atomic<bool> stop_{false};  // release by stop(), acquire by the loop
  Parker parker_;
  std::thread thread_;
};

}  // namespace hwsq::sched
