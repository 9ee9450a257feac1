// The process's stats publisher: one thread per process that snapshots every registered runtime
// (Runtime::stats(), never the spawn path) every interval and rewrites the process's stats file
// (segment.h) with them. A runtime is registered by the glue that creates it (both kinds) and
// published until its Registration is reset or the runtime stops; the file exists while at least
// one registered runtime runs, and is removed when the last one goes and when the process exits
// (atexit). A process killed by a signal leaves its file behind: the next publisher cleans it.
//
// Publishing never fails a runtime: a file that cannot be made (a directory of another user, a
// full tmpfs) is reported by publisherStatus().error and retried at the next registration.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "sched/scheduler.h"
#include "shm/document.h"
#include "shm/layout.h"

namespace hwsq::shm {

struct PublishSettings {
  // Where <pid> goes (resolved by the JS layer: $HWSQ_SHM_DIR, /dev/shm/hwsq-<uid> or
  // $XDG_RUNTIME_DIR/hwsq). Taken from the registration that opens the file.
  std::string dir;
  // The publish period: the shortest of the registered runtimes' is used.
  uint64_t intervalNs = 250'000'000;
  // The process record's strings (version, pod identity); the latest registration's are used.
  std::optional<std::string> strings[ProcessStringCount];
};

struct RuntimeSource {
  const sched::Runtime* runtime = nullptr;
  RuntimeKind kind = RuntimeKind::Native;
  // A JS-task runtime's own counters; called on the publisher thread while registered.
  std::function<JsTaskCounts()> jsTasks;
};

// Publishing of one runtime. Reset it (or destroy it) before the runtime is destroyed: reset()
// waits for a publish in progress, after which the publisher no longer touches the runtime.
class Registration {
 public:
  Registration() = default;
  ~Registration() { reset(); }
  Registration(Registration&& o) noexcept : id_(o.id_) { o.id_ = 0; }
  Registration& operator=(Registration&& o) noexcept;
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

  void reset();
  // The runtime's id in the stats file (0: not registered).
  uint64_t id() const { return id_; }

 private:
  friend Registration publishRuntime(const RuntimeSource&, const PublishSettings&);
  explicit Registration(uint64_t id) : id_(id) {}
  uint64_t id_ = 0;
};

// Registers the runtime and publishes once before returning (so its file lists it at once).
// Throws only std::bad_alloc / std::system_error (no thread could be started).
Registration publishRuntime(const RuntimeSource& source, const PublishSettings& settings);

struct PublisherStatus {
  std::string path;    // the file, "" when none is open
  std::string error;   // why the last attempt to open or write it failed, "" when it did not
  uint64_t publishes = 0;
  size_t runtimes = 0; // registered and running
};
PublisherStatus publisherStatus();

}  // namespace hwsq::shm
