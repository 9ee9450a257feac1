#include "sysmon.h"

#include <algorithm>

#include "../affinity.h"
#include "clock.h"

namespace hwsq::sched {

Sysmon::Sysmon(std::vector<const SysmonProbe*> probes, Config cfg)
    : probes_(std::move(probes)), cfg_(cfg), perP_(new PerP[probes_.size()]) {
  if (cfg_.minDelayUs == 0) cfg_.minDelayUs = 1;
  if (cfg_.maxDelayUs < cfg_.minDelayUs) cfg_.maxDelayUs = cfg_.minDelayUs;
  (void)nsPerTick();  // calibrate before the thread needs it
  thread_ = std::thread([this] { run(); });
  nameThread(thread_, "hwsq-sysmon");
}

Sysmon::~Sysmon() { stop(); }

void Sysmon::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  parker_.unpark();
  thread_.join();
}

bool Sysmon::sample(uint64_t now, bool* anyRunning) {
  bool newHog = false;
  uint64_t stuck = 0;
  const uint64_t tickNow = nowTicks();
  for (size_t p = 0; p < probes_.size(); ++p) {
    PerP& s = perP_[p];
    uint64_t tick = probes_[p]->tick.load(std::memory_order_acquire);
    if (tick != s.lastTick) {  // a different task (or none) since the last sample
      s.lastTick = tick;
      s.firstSeenNs = now;
      s.flagged = false;
      s.runningForNs.store(0, std::memory_order_relaxed);
      if (tick & 1) *anyRunning = true;
      continue;
    }
    if (!(tick & 1)) continue;  // idle, same as before
    *anyRunning = true;
    uint64_t runFor = now - s.firstSeenNs;
    uint64_t start = probes_[p]->startTicks.load(std::memory_order_relaxed);
    if (start != 0 && tickNow > start) {
      // Precise start (stats on). The start store may belong to a newer task than `tick` if the P
      // moved on between our two loads; then the value is small and harmless.
      uint64_t precise = ticksToNs(tickNow - start);
      if (precise > runFor) runFor = precise;
    }
    s.runningForNs.store(runFor, std::memory_order_relaxed);
    if (runFor >= cfg_.thresholdNs) {
      ++stuck;
      if (!s.flagged) {
        s.flagged = true;
        newHog = true;
        s.hogs.store(s.hogs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        hogs_.store(hogs_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      }
      if (runFor > longestNs_.load(std::memory_order_relaxed)) {
        longestNs_.store(runFor, std::memory_order_relaxed);
        longestWorker_.store(static_cast<int>(p), std::memory_order_relaxed);
      }
    }
  }
  stuck_.store(stuck, std::memory_order_relaxed);
  return newHog;
}

void Sysmon::run() {
  uint64_t delay = cfg_.minDelayUs;
  int idleRounds = 0;
  const uint64_t busyCap = std::max<uint64_t>(cfg_.minDelayUs, std::min<uint64_t>(cfg_.maxDelayUs, cfg_.thresholdNs / 4000));
  while (!stop_.load(std::memory_order_acquire)) {
    delayUs_.store(delay, std::memory_order_relaxed);
    parker_.park(static_cast<int64_t>(delay) * 1000);
    if (stop_.load(std::memory_order_acquire)) break;
    rounds_.store(rounds_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    bool anyRunning = false;
    const bool newHog = sample(nowNs(), &anyRunning);
    if (anyRunning && cfg_.onBusyRound) cfg_.onBusyRound();
    // A new hog keeps the cadence (no reset to minDelayUs, unlike Go's sysmon, which resets
    // after it retook a P): sysmon only reports here, so watching faster finds nothing more,
    // and a spawn loop that is itself a hog would get ~60 wake-ups that preempt its Ps.
    if (newHog) {
      idleRounds = 0;
      continue;
    }
    if (++idleRounds > 50) {
      uint64_t cap = anyRunning ? busyCap : cfg_.maxDelayUs;
      delay = std::min(delay * 2, cap);
      if (delay < cfg_.minDelayUs) delay = cfg_.minDelayUs;
    }
    if (anyRunning && delay > busyCap) delay = busyCap;  // work arrived after an idle period
  }
}

SysmonStats Sysmon::stats() const {
  SysmonStats s;
  s.hogs = hogs_.load(std::memory_order_relaxed);
  s.longestHogNs = longestNs_.load(std::memory_order_relaxed);
  s.longestHogWorker = longestWorker_.load(std::memory_order_relaxed);
  s.stuckWorkers = stuck_.load(std::memory_order_relaxed);
  s.rounds = rounds_.load(std::memory_order_relaxed);
  s.currentDelayUs = delayUs_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace hwsq::sched
