// The shared-memory stats file: writer, reader, stale-file cleanup (protocol in segment.h).
#include "shm/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "topology.h"

namespace hwsq::shm {

namespace {

std::string errnoText(int err) { return std::strerror(err); }

std::string octal(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%03o", mode & 0777);
  return buf;
}

[[noreturn]] void fail(ShmErrorKind k, const std::string& what) { throw ShmError(k, what); }

// A file descriptor closed on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

bool allDigits(const std::string& s) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

uint64_t pageRound(uint64_t n) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096);
  return (n + page - 1) / page * page;
}

// pread of exactly n bytes; false when the file is shorter.
bool preadAll(int fd, void* dst, size_t n, uint64_t offset) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

bool validMagic(const Header& h) { return std::memcmp(h.magic, kMagic, sizeof kMagic) == 0; }

// Whether the file's process is gone: dead, or its pid names a process that started at another
// time. An empty string when it is alive (or cannot be judged).
std::string goneReason(const Header& h) {
  const auto pid = static_cast<pid_t>(h.pid);
  if (!processExists(pid)) return "process " + std::to_string(h.pid) + " has exited";
  const uint64_t start = processStartTime(pid);
  if (start != 0 && h.startTime != 0 && start != h.startTime) {
    return "pid " + std::to_string(h.pid) + " now names another process (started at tick " + std::to_string(start) + ", the file's at tick " +
           std::to_string(h.startTime) + ")";
  }
  return {};
}

bool samePidNamespace(const Header& h) {
  const uint64_t own = ownPidNamespace();
  return own == 0 || h.pidNamespace == 0 || own == h.pidNamespace;
}

// Relaxed / release atomic stores into the shared mapping (one writer; see segment.h).
inline void storeRelaxed(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
inline void storeRelease(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

constexpr uint64_t kInitialDocBytes = 64u << 10;

}  // namespace

const char* shmErrorCode(ShmErrorKind k) {
  switch (k) {
    case ShmErrorKind::NoSuchProcess: return "ERR_HWSQ_NO_SUCH_PROCESS";
    case ShmErrorKind::NotPublished: return "ERR_HWSQ_SHM_NOT_PUBLISHED";
    case ShmErrorKind::Permission: return "ERR_HWSQ_SHM_PERMISSION";
    case ShmErrorKind::Stale: return "ERR_HWSQ_SHM_STALE";
    case ShmErrorKind::Foreign: return "ERR_HWSQ_SHM_FOREIGN";
    case ShmErrorKind::Corrupt: return "ERR_HWSQ_SHM_CORRUPT";
    case ShmErrorKind::Version: return "ERR_HWSQ_SHM_VERSION";
    case ShmErrorKind::Io: break;
  }
  return "ERR_HWSQ_SHM_IO";
}

// ------------------------------------------------------------------ processes

uint64_t processStartTime(pid_t pid) {
  if (pid <= 0) return 0;
  std::string text;
  if (!detail::readTextFile("/proc/" + std::to_string(pid) + "/stat", text)) return 0;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so count from the last ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  size_t i = close + 1;
  for (int field = 3; field <= 22; ++field) {
    while (i < text.size() && text[i] == ' ') ++i;
    const size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\n') ++i;
    if (field == 22) {
      long long v = 0;
      return detail::parseInt64(text.substr(start, i - start), v) && v > 0 ? static_cast<uint64_t>(v) : 0;
    }
  }
  return 0;
}

bool processExists(pid_t pid) {
  if (pid <= 0) return false;  // kill(0 or -n, ...) would name process groups
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

uint64_t ownPidNamespace() {
  struct stat st;
  return ::stat("/proc/self/ns/pid", &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

// ------------------------------------------------------------------ writing

SegmentWriter::~SegmentWriter() { close(); }

int removeStaleFiles(const std::string& dir) {
  int removed = 0;
  const auto self = static_cast<uint64_t>(::getpid());
  for (const std::string& name : detail::listDir(dir)) {
    // <pid>, and <pid> files in the making (".<pid>.new") of processes that died meanwhile.
    const bool temp = name.size() > 5 && name[0] == '.' && name.compare(name.size() - 4, 4, ".new") == 0;
    const std::string pidText = temp ? name.substr(1, name.size() - 5) : name;
    if (!allDigits(pidText)) continue;
    const uint64_t pid = std::stoull(pidText);
    if (pid == self || pid == 0) continue;
    const std::string path = dir + "/" + name;
    if (temp) {
      if (!processExists(static_cast<pid_t>(pid)) && ::unlink(path.c_str()) == 0) ++removed;
      continue;
    }
    Fd f(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (f.fd < 0) continue;
    struct stat st;
    Header h;
    if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) continue;
    if (!preadAll(f.fd, &h, sizeof h, 0) || !validMagic(h) || h.byteOrder != kByteOrderMark || h.pid != pid) continue;
    if (!samePidNamespace(h) || goneReason(h).empty()) continue;
    if (::unlink(path.c_str()) == 0) ++removed;
  }
  return removed;
}

void SegmentWriter::open(const std::string& dir, const std::vector<uint64_t>& first) {
  close();
  if (dir.empty()) fail(ShmErrorKind::Io, "no directory for the stats file");
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) fail(ShmErrorKind::Io, "cannot create " + dir + ": " + errnoText(errno));
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) fail(ShmErrorKind::Io, "cannot stat " + dir + ": " + errnoText(errno));
  if (!S_ISDIR(st.st_mode)) fail(ShmErrorKind::Foreign, dir + " is not a directory");
  if (st.st_uid != ::geteuid()) fail(ShmErrorKind::Permission, dir + " belongs to uid " + std::to_string(st.st_uid) + ", not to this process's uid " + std::to_string(::geteuid()));
  if (st.st_mode & 022) fail(ShmErrorKind::Foreign, dir + " may be written by other users (mode " + octal(st.st_mode) + "): refusing it");
  removeStaleFiles(dir);

  const auto pid = static_cast<uint64_t>(::getpid());
  const std::string finalPath = dir + "/" + std::to_string(pid);
  const std::string temp = dir + "/." + std::to_string(pid) + ".new";
  ::unlink(temp.c_str());
  const int fd = ::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) fail(ShmErrorKind::Io, "cannot create " + temp + ": " + errnoText(errno));
  fd_ = fd;
  path_ = temp;  // close() removes what exists
  try {
    if (::fchmod(fd, 0600) != 0) fail(ShmErrorKind::Io, "cannot chmod " + temp + ": " + errnoText(errno));
    remap(pageRound(kHeaderBytes + kInitialDocBytes));
    Header* h = header();
    std::memset(h, 0, sizeof *h);
    std::memcpy(h->magic, kMagic, sizeof kMagic);
    h->byteOrder = kByteOrderMark;
    h->major = kMajor;
    h->minor = kMinor;
    h->headerBytes = kHeaderBytes;
    h->pid = pid;
    h->startTime = processStartTime(static_cast<pid_t>(pid));
    h->uid = ::geteuid();
    h->pidNamespace = ownPidNamespace();
    h->docOffset = kHeaderBytes;
    h->capacityBytes = mapped_;
    h->state = kStateReady;
    write(first);  // a reader never sees the file without a document
    if (::rename(temp.c_str(), finalPath.c_str()) != 0) fail(ShmErrorKind::Io, "cannot rename " + temp + " to " + finalPath + ": " + errnoText(errno));
    path_ = finalPath;
  } catch (...) {
    close();
    throw;
  }
}

void SegmentWriter::remap(uint64_t bytes) {
  if (::ftruncate(fd_, static_cast<off_t>(bytes)) != 0) fail(ShmErrorKind::Io, "cannot grow " + path_ + " to " + std::to_string(bytes) + " bytes: " + errnoText(errno));
  void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (m == MAP_FAILED) fail(ShmErrorKind::Io, "cannot map " + path_ + ": " + errnoText(errno));
  if (map_) ::munmap(map_, mapped_);
  map_ = m;
  mapped_ = bytes;
}

void SegmentWriter::write(const std::vector<uint64_t>& words) {
  if (fd_ < 0) fail(ShmErrorKind::Io, "the stats file is not open");
  const uint64_t bytes = words.size() * 8;
  if (bytes > kMaxDocumentBytes) fail(ShmErrorKind::Io, "a document of " + std::to_string(bytes) + " bytes");
  if (kHeaderBytes + bytes > mapped_) {
    remap(pageRound(std::max(mapped_ * 2, kHeaderBytes + bytes)));
    storeRelaxed(&header()->capacityBytes, mapped_);
  }
  Header* h = header();
  auto* doc = reinterpret_cast<uint64_t*>(static_cast<char*>(map_) + kHeaderBytes);
  storeRelaxed(&h->seq, seq_ + 1);
  std::atomic_thread_fence(std::memory_order_release);
  for (size_t i = 0; i < words.size(); ++i) storeRelaxed(&doc[i], words[i]);
  storeRelaxed(&h->docBytes, bytes);
  storeRelaxed(&h->publishes, ++publishes_);
  seq_ += 2;
  storeRelease(&h->seq, seq_);
}

void SegmentWriter::close() {
  if (map_) ::munmap(map_, mapped_);
  map_ = nullptr;
  mapped_ = 0;
  if (fd_ >= 0) {
    ::unlink(path_.c_str());
    ::close(fd_);
  }
  fd_ = -1;
  seq_ = 0;
  publishes_ = 0;
  path_.clear();
}

// ------------------------------------------------------------------ reading

SegmentCopy copySegment(const std::string& path, pid_t pid) {
  Fd f(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (f.fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      if (pid > 0 && !processExists(pid)) fail(ShmErrorKind::NoSuchProcess, "no process " + std::to_string(pid));
      fail(ShmErrorKind::NotPublished, (pid > 0 ? "process " + std::to_string(pid) + " publishes no hwsq stats: " : std::string()) + path + " does not exist");
    }
    if (err == EACCES || err == EPERM) {
      struct stat st;
      const std::string owner = ::stat(path.c_str(), &st) == 0 ? " (it belongs to uid " + std::to_string(st.st_uid) + ")" : "";
      fail(ShmErrorKind::Permission, "permission denied: " + path + owner + "; hwsq stats files are readable by their owner only");
    }
    if (err == ELOOP) fail(ShmErrorKind::Foreign, path + " is a symbolic link, not an hwsq stats file");
    fail(ShmErrorKind::Io, "cannot open " + path + ": " + errnoText(err));
  }
  struct stat st;
  if (::fstat(f.fd, &st) != 0) fail(ShmErrorKind::Io, "cannot stat " + path + ": " + errnoText(errno));
  if (!S_ISREG(st.st_mode)) fail(ShmErrorKind::Foreign, path + " is not a regular file");
  if (st.st_uid != ::geteuid() && ::geteuid() != 0) fail(ShmErrorKind::Foreign, path + " belongs to uid " + std::to_string(st.st_uid) + ", not to this user");
  if ((st.st_mode & 0777) != 0600) fail(ShmErrorKind::Foreign, path + " has mode " + octal(st.st_mode) + ": hwsq writes its stats files with mode 600");
  Header h;
  if (static_cast<uint64_t>(st.st_size) < kHeaderBytes || !preadAll(f.fd, &h, sizeof h, 0)) fail(ShmErrorKind::Corrupt, path + " is shorter than the header of an hwsq stats file");
  if (!validMagic(h)) fail(ShmErrorKind::Foreign, path + " is not an hwsq stats file (no HWSQSHM magic)");
  if (h.byteOrder != kByteOrderMark) fail(ShmErrorKind::Foreign, path + " was written in another byte order");
  if (h.major != kMajor) {
    fail(ShmErrorKind::Version, path + " has layout version " + std::to_string(h.major) + "." + std::to_string(h.minor) + "; this reader knows major version " + std::to_string(kMajor));
  }
  if (h.state != kStateReady || h.headerBytes < kHeaderBytes || h.docOffset < h.headerBytes || h.docOffset % 8 != 0 || h.docOffset > kMaxDocumentBytes) {
    fail(ShmErrorKind::Corrupt, path + ": a header that is not complete or not consistent");
  }
  if (pid > 0 && h.pid != static_cast<uint64_t>(pid)) fail(ShmErrorKind::Corrupt, path + " says it belongs to pid " + std::to_string(h.pid));
  if (h.uid != st.st_uid) fail(ShmErrorKind::Corrupt, path + " was written by uid " + std::to_string(h.uid) + " but belongs to uid " + std::to_string(st.st_uid));
  if (!samePidNamespace(h)) {
    fail(ShmErrorKind::Foreign, path + " was written in another PID namespace: its pid " + std::to_string(h.pid) + " means another process here (share the process namespace, e.g. the pod's)");
  }
  const std::string gone = goneReason(h);
  if (!gone.empty()) fail(ShmErrorKind::Stale, path + " is stale: " + gone);

  SegmentCopy out;
  out.info.pid = h.pid;
  out.info.startTime = h.startTime;
  out.info.uid = h.uid;
  out.info.major = h.major;
  out.info.minor = h.minor;
  out.info.path = path;
  std::vector<uint64_t>& words = out.words;
  bool everEven = false;
  for (int attempt = 0; attempt < 2000; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::microseconds(attempt < 20 ? 10 : 500));
    uint64_t s1 = 0, s2 = 0, docBytes = 0, publishes = 0;
    if (!preadAll(f.fd, &s1, 8, offsetof(Header, seq))) fail(ShmErrorKind::Corrupt, path + " was truncated");
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s1 & 1) continue;  // being rewritten
    everEven = true;
    const bool sizes = preadAll(f.fd, &docBytes, 8, offsetof(Header, docBytes)) && preadAll(f.fd, &publishes, 8, offsetof(Header, publishes));
    const bool sane = sizes && docBytes % 8 == 0 && docBytes <= kMaxDocumentBytes;
    bool copied = false;
    if (sane) {
      words.resize(docBytes / 8);
      copied = preadAll(f.fd, words.data(), docBytes, h.docOffset);
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (!preadAll(f.fd, &s2, 8, offsetof(Header, seq))) fail(ShmErrorKind::Corrupt, path + " was truncated");
    if (s1 != s2) continue;  // a publish overlapped the copy: what was copied may be torn
    if (!sane) fail(ShmErrorKind::Corrupt, path + ": a document of " + std::to_string(docBytes) + " bytes");
    if (!copied) fail(ShmErrorKind::Corrupt, path + ": the document runs past the end of the file");
    if (publishes == 0) fail(ShmErrorKind::Corrupt, path + ": no document was ever published");
    out.info.publishes = publishes;
    out.info.docBytes = docBytes;
    return out;
  }
  fail(ShmErrorKind::Corrupt, path + (everEven ? ": the document changed during every read" : ": its writer never finished a publish"));
}

Segment readSegment(const std::string& path, pid_t pid) {
  SegmentCopy copy = copySegment(path, pid);
  Segment out;
  out.info = std::move(copy.info);
  try {
    out.doc = decodeDocument(copy.words.data(), copy.words.size());
  } catch (const CorruptDocument& e) {
    fail(ShmErrorKind::Corrupt, path + ": " + e.what());
  }
  return out;
}

}  // namespace hwsq::shm
