// The shared-memory stats file: creating and updating it (SegmentWriter, one per process, used
// by the publisher thread) and reading it from any process (readSegment). layout.h has the
// format; this file has the protocol:
//
// Writer. The file is built under a temporary name (mode 0600, O_EXCL) and renamed to
// <dir>/<pid> once its header is complete, so a reader never sees a half-made header. Every
// publish rewrites the document under a seqlock (Linux's seqcount; Boehm, "Can seqlocks get
// along with programming language memory models?", 2012):
//   seq.store(s + 1, relaxed); fence(release); document words: relaxed atomic stores;
//   seq.store(s + 2, release)
// The fence keeps the odd value ahead of every data store, so a reader that sees any new word
// also sees seq != s when it re-reads it; the release store publishes the words to a reader
// that acquires the even value. One writer (the publisher thread, under its mutex): seq needs
// no read-modify-write. The file grows (ftruncate + remap) and never shrinks.
//
// Reader. It copies the file with pread, never maps it: a file that someone else truncates
// cannot SIGBUS it. s1 = seq; [acquire fence]; copy docBytes and the document; [acquire fence];
// s2 = seq. It keeps the copy when s1 == s2 and s1 is even, else it tries again. The fences
// order the kernel's copies (done on this thread) as the acquire loads of the seqcount protocol.
//
// Files of processes that are gone: the next writer to open its file removes the files of its
// directory whose pid is dead or whose pid now names a process with another start time (pid
// reuse); readers report them stale and never use them.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "shm/document.h"
#include "shm/layout.h"

namespace hwsq::shm {

// Why a file could not be read (or written). Codes are stable; the N-API layer turns them into
// the JS codes ERR_HWSQ_NO_SUCH_PROCESS and ERR_HWSQ_SHM_*.
enum class ShmErrorKind {
  NoSuchProcess,  // no file, and no process with that pid
  NotPublished,   // no file, but the process exists (no runtime, publishing off, another directory)
  Permission,     // the file or its directory belongs to another user
  Stale,          // the process that wrote it is gone (or its pid names another process now)
  Foreign,        // not an hwsq stats file of this user and PID namespace
  Corrupt,        // an hwsq stats file that breaks the layout
  Version,        // a layout major version this reader does not know
  Io,             // the directory or file could not be created, grown or read (errno in the message)
};
const char* shmErrorCode(ShmErrorKind k);  // "ERR_HWSQ_SHM_STALE", ...

struct ShmError : std::runtime_error {
  ShmError(ShmErrorKind k, const std::string& what) : std::runtime_error(what), kind(k) {}
  ShmErrorKind kind;
};

// ---- processes

// Field 22 of /proc/<pid>/stat (start time in clock ticks after boot); 0 when unreadable.
uint64_t processStartTime(pid_t pid);
// The process exists (kill(pid, 0) succeeds or is refused with EPERM).
bool processExists(pid_t pid);
// Inode of /proc/self/ns/pid; 0 when unknown.
uint64_t ownPidNamespace();

// ---- writing

class SegmentWriter {
 public:
  SegmentWriter() = default;
  ~SegmentWriter();  // close()
  SegmentWriter(const SegmentWriter&) = delete;
  SegmentWriter& operator=(const SegmentWriter&) = delete;

  // Makes `dir` (mode 0700, refused unless it is a directory of this user that no one else may
  // write to), removes its stale files, and creates <dir>/<pid> holding the document `first`.
  // Throws ShmError (Io, Permission, Foreign).
  void open(const std::string& dir, const std::vector<uint64_t>& first);
  // Rewrites the document under the seqlock, growing the file if it must. Throws ShmError (Io)
  // when the file cannot grow; the previous document stays.
  void write(const std::vector<uint64_t>& words);
  // Unmaps and removes the file. Idempotent.
  void close();
  bool isOpen() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }
  uint64_t publishes() const { return publishes_; }

 private:
  void remap(uint64_t bytes);
  Header* header() const { return static_cast<Header*>(map_); }

  int fd_ = -1;
  void* map_ = nullptr;
  uint64_t mapped_ = 0;
  uint64_t seq_ = 0;
  uint64_t publishes_ = 0;
  std::string path_;
};

// Removes the files of `dir` whose process is gone (see the file comment); returns how many.
// Files it cannot judge (foreign, unreadable, another PID namespace) are left alone.
int removeStaleFiles(const std::string& dir);

// ---- reading

struct SegmentInfo {
  uint64_t pid = 0;
  uint64_t startTime = 0;
  uint64_t uid = 0;
  uint16_t major = 0, minor = 0;
  uint64_t publishes = 0;
  uint64_t docBytes = 0;
  std::string path;
};

// One consistent copy of the document's words.
struct SegmentCopy {
  SegmentInfo info;
  std::vector<uint64_t> words;
};

struct Segment {
  SegmentInfo info;
  Document doc;
};

// Copies <path> (the file of process `pid`; pid 0: take it from the file) after checking, in
// this order: it exists (else NoSuchProcess / NotPublished), may be opened (Permission), is a
// regular file of this user, mode 0600, with hwsq's magic and byte order (Foreign), of a known
// major (Version), from this PID namespace (Foreign), of a live process that started when the
// file says (Stale); then copies one consistent document (see the file comment; Corrupt when
// the sizes are impossible). Throws ShmError.
SegmentCopy copySegment(const std::string& path, pid_t pid = 0);
// copySegment, then decodeDocument (Corrupt when the document breaks the layout).
Segment readSegment(const std::string& path, pid_t pid = 0);

}  // namespace hwsq::shm
