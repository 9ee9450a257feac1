// The document of the shared-memory stats file (layout.h) as C++ values, and its encoding: what
// the publisher writes (encodeDocument) is what a reader gets back (decodeDocument), so the
// stats a reader rebuilds are the scheduler's own RuntimeStats.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sched/stats.h"
#include "shm/layout.h"

namespace hwsq::shm {

// A JS-task runtime's own counters (Runtime.stats().tasks).
struct JsTaskCounts {
  uint64_t live = 0, queued = 0, completed = 0, failed = 0, workerExited = 0, cancelled = 0, deferred = 0;
};

// The parallelism limit (sched/limit.cpp; the cgroup watch moves it). Decoding also copies it
// into RuntimeStats (parallelism, activeWorkers, parallelismSource, parallelismChanges).
struct ParallelismInfo {
  uint64_t activeWorkers = 0;
  uint64_t parallelism = 0;
  ParallelismSource source = ParallelismSource::Unknown;
  uint64_t changes = 0;
};

// RuntimeStats::parallelismSource (sched::parallelismSourceName) <-> the layout's code.
ParallelismSource parallelismSourceOf(const std::string& name);  // anything else: Unknown
const char* parallelismSourceName(ParallelismSource s);          // Unknown: "fixed" (a writer before minor 1 never followed)

struct RuntimeSnapshot {
  uint64_t id = 0;
  RuntimeKind kind = RuntimeKind::Native;
  bool pinned = false;
  bool closed = false;
  bool flat = false;                 // steal policy 'flat' (else 'hierarchical')
  uint64_t createdAtNs = 0;
  uint64_t elapsedNs = 0;
  uint64_t hogThresholdNs = 0;
  sched::RuntimeStats stats;
  std::optional<JsTaskCounts> tasks;
  std::optional<ParallelismInfo> parallelism;
  std::vector<std::vector<int>> workerCpus;  // the CPUs each worker is pinned to (empty: not pinned)
};

struct ProcessSnapshot {
  uint64_t publishedAtNs = 0;
  uint64_t uptimeNs = 0;
  uint64_t intervalNs = 0;
  bool truncated = false;            // runtimes were left out (kMaxDocumentBytes)
  std::optional<std::string> strings[ProcessStringCount];
};

struct Document {
  ProcessSnapshot process;
  std::vector<RuntimeSnapshot> runtimes;
};

// A document that breaks the layout (bounds, sizes, values); what() says where.
struct CorruptDocument : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The words of a document (runtimes beyond kMaxDocumentBytes are left out and the process
// record says so).
std::vector<uint64_t> encodeDocument(const Document& doc);
// Every read is bounds-checked: any input gives a Document or CorruptDocument, never more work
// than linear in its length (plus two histograms' buckets per runtime, at most kMaxRuntimes).
Document decodeDocument(const uint64_t* words, size_t count);

}  // namespace hwsq::shm
