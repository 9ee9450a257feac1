// The layout of the shared-memory stats file (docs/shm-layout.md is its specification; keep the
// two in step). One file per process, <dir>/<pid>, mode 0600, written by the process's
// publisher thread (publisher.h) and read by `hwsq ps | stats --pid | top --pid | metrics serve
// --pid` or any other tool.
//
//   offset 0:          Header (256 bytes, below)
//   offset docOffset:  the document, docBytes long, rewritten whole at every publish under the
//                      seqlock `seq` (odd while it is being written)
//
// The document is a sequence of 64-bit words in the writer's byte order (Header::byteOrder):
//   fields block:  [n][n words]                 a reader takes the fields it knows (enums below)
//                                               and skips the rest; fields it knows beyond n are
//                                               absent (an older writer)
//   table block:   [rows][cols][rows x cols]    one row per node / worker / bucket, fields as above
//   strings block: [n] then n strings, each [byteLength][bytes, zero-padded to whole words];
//                  byteLength kAbsent means null
//   record:        [totalWords][blocks...]      totalWords counts the size word too: a reader
//                                               skips blocks it does not know (a later minor)
//   document:      process record, then ProcessField::RuntimeCount runtime records
//   process record: fields (ProcessField), strings (ProcessString)
//   runtime record: fields (RuntimeField), table (NodeField), table (WorkerField), strings (one
//                   cpulist per worker: the CPUs it is pinned to, "" when not pinned), latency
//                   histogram, run-time histogram
//   histogram:     fields (HistogramField), table of [bucket index, count] rows, non-empty
//                  buckets only, ascending
//
// Compatibility: a minor version appends fields to the enums (or blocks at the end of a record);
// readers of the same major read what they know. A major version changes what is there.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hwsq::shm {

constexpr char kMagic[8] = {'H', 'W', 'S', 'Q', 'S', 'H', 'M', '\0'};
constexpr uint32_t kByteOrderMark = 0x01020304;  // reads 0x04030201 in the other byte order
constexpr uint16_t kMajor = 1;
constexpr uint16_t kMinor = 1;  // 1: the parallelism fields and WorkerFlags bit 1 are written
constexpr uint32_t kHeaderBytes = 256;
constexpr uint32_t kStateReady = 1;              // Header::state once the header is complete
constexpr uint64_t kAbsent = ~uint64_t{0};       // a null string / an absent value
// Bounds a reader enforces (a document beyond them is corrupt) and the writer stays within.
constexpr uint64_t kMaxDocumentBytes = 64u << 20;
constexpr uint64_t kMaxStringBytes = 64u << 10;
constexpr uint64_t kMaxRuntimes = 1024;
constexpr uint64_t kMaxRows = 1u << 16;          // rows of one table (workers <= 4096, buckets <= 1408)
constexpr uint64_t kMaxColumns = 4096;

// At offset 0. Written once before the file is renamed into place, except seq, docBytes,
// capacityBytes and publishes, which the writer updates with atomic stores (see segment.cpp).
struct Header {
  char magic[8];           //   0  kMagic
  uint32_t byteOrder;      //   8  kByteOrderMark in the writer's byte order
  uint16_t major;          //  12  kMajor: a reader refuses another major
  uint16_t minor;          //  14  kMinor
  uint32_t headerBytes;    //  16  kHeaderBytes (where a reader may expect the document at the earliest)
  uint32_t state;          //  20  kStateReady
  uint64_t pid;            //  24  the writer's pid (the file's name)
  uint64_t startTime;      //  32  its start time: field 22 of /proc/<pid>/stat (clock ticks after boot)
  uint64_t uid;            //  40  its effective uid
  uint64_t pidNamespace;   //  48  inode of /proc/self/ns/pid (0: unknown): pids mean something only there
  uint64_t seq;            //  56  seqlock: odd while the document is being rewritten
  uint64_t docOffset;      //  64  offset of the document (>= headerBytes, a multiple of 8)
  uint64_t docBytes;       //  72  its length (a multiple of 8, <= kMaxDocumentBytes); under seq
  uint64_t capacityBytes;  //  80  size of the file (grows, never shrinks)
  uint64_t publishes;      //  88  documents written so far; under seq
  uint64_t reserved[20];   //  96  zero
};
static_assert(sizeof(Header) == kHeaderBytes, "the header is 256 bytes");
static_assert(offsetof(Header, seq) == 56 && offsetof(Header, docBytes) == 72 && offsetof(Header, publishes) == 88,
              "docs/shm-layout.md gives these offsets");

// The process record's fields.
enum ProcessField : uint32_t {
  PublishedAtNs,      // CLOCK_REALTIME of this publish, ns since the epoch
  UptimeNs,           // the process's age at this publish (CLOCK_BOOTTIME - start time)
  IntervalNs,         // the publish period
  RuntimeCount,       // runtime records that follow
  ProcessFlags,       // bit 0: runtimes were left out (the document would exceed kMaxDocumentBytes)
  ProcessFieldCount,
};
// The process record's strings: what the process's /metrics/scheduler document says about itself.
enum ProcessString : uint32_t {
  HwsqVersion,
  PodId,              // pod_id ... cpu_limit as in /metrics/scheduler (null: unset)
  PodUid,
  PodNamespace,
  NodeName,
  CpuLimit,
  ProcessStringCount,
};

enum class RuntimeKind : uint64_t { Native = 1, Js = 2 };  // NativeRuntime / Runtime (JS tasks)
enum RuntimeFlag : uint64_t {
  FlagStatsEnabled = 1,   // counters beyond spawned/executed, clocks and histograms
  FlagPinned = 2,         // the Ps are pinned (worker cpulists)
  FlagClosed = 4,         // close() or destroy() began
  FlagJsTasks = 8,        // the Tasks* fields are set (JS-task runtimes)
  FlagParallelism = 16,   // the parallelism fields are set (minor >= 1: always)
};
// Where the parallelism comes from (RuntimeField::ParallelismSource).
enum class ParallelismSource : uint64_t { Unknown = 0, Fixed = 1, Cgroup2 = 2, Cgroup1 = 3, Cpuset = 4 };

// The runtime record's fields (nanoseconds for times, counters cumulative, depths now).
enum RuntimeField : uint32_t {
  RuntimeId,                 // unique within the process, never reused
  Kind,                      // RuntimeKind
  Flags,                     // RuntimeFlag bits
  Policy,                    // 0 hierarchical, 1 flat
  CreatedAtNs,               // CLOCK_REALTIME when it was registered
  ElapsedNs,                 // its age at this publish
  HogThresholdNs,
  GlobalQueueDepth,
  ExternalSubmitted,
  Rejected,
  Dropped,
  Spawned,
  Executed,
  Spinning,
  Idle,
  SysmonHogs,
  SysmonLongestHogNs,
  SysmonLongestHogWorker,    // two's complement; -1: none
  SysmonStuckWorkers,
  SysmonRounds,
  SysmonCurrentDelayUs,
  TasksLive,                 // JS-task runtimes (FlagJsTasks), as Runtime.stats().tasks
  TasksQueued,
  TasksCompleted,
  TasksFailed,
  TasksWorkerExited,
  TasksCancelled,
  TasksDeferred,
  ActiveWorkers,             // FlagParallelism: Ps not parked by the parallelism limit
  Parallelism,               // the parallelism limit in force (sched/limit.cpp)
  ParallelismSourceField,    // ParallelismSource: what set it
  ParallelismChanges,        // times it changed
  RuntimeFieldCount,
};

enum NodeField : uint32_t {
  NodeId,
  NodeWorkers,
  NodeQueueDepth,
  NodeQueueCapacity,
  NodePrefetches,
  NodePrefetchTasks,
  NodeFieldCount,
};

enum WorkerField : uint32_t {
  WorkerIndex,
  WorkerNode,
  WorkerSpawned,
  WorkerExecuted,
  WorkerLocalPushes,
  WorkerRunnextHits,
  WorkerHwsqPushes,
  WorkerHwsqPops,
  WorkerGrqPops,
  WorkerInboxPops,
  WorkerStealsSameNode,
  WorkerStealsSameNodeTasks,
  WorkerStealsRemote,
  WorkerStealsRemoteTasks,
  WorkerFailedSteals,
  WorkerOverflows,
  WorkerOverflowTasks,
  WorkerParks,
  WorkerWakeups,
  WorkerSpinningNs,
  WorkerBusyNs,
  WorkerHogs,
  WorkerQueueDepth,
  WorkerFlags,               // bit 0: parked; bit 1: parked by the parallelism limit (minor >= 1)
  WorkerRunningForNs,
  WorkerFieldCount,
};

// A log-linear histogram (sched/histogram.h): bucket i of a layout with sub-bucket bits s holds
// values in [low(i), low(i+1)), low(i) = i for i < 2^s, else (2^s + i mod 2^s) << (g - 1) with
// g = i div 2^s; values are in units of UnitNsBits (a double: ns per unit).
enum HistogramField : uint32_t {
  UnitNsBits,                // IEEE-754 double bits
  HistCount,
  HistSum,                   // in units
  HistMax,                   // in units
  LayoutBuckets,             // buckets of the layout (1408)
  LayoutSubBits,             // s (5)
  HistogramFieldCount,
};

}  // namespace hwsq::shm
