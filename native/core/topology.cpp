// Topology from sysfs/procfs, following the kernel's sysfs ABI
// (Documentation/ABI/stable/sysfs-devices-node, sysfs-devices-system-cpu,
// admin-guide/cputopology.rst) rather than the shape of any one machine. Every file is
// optional: a missing or garbled file makes that piece of information unknown, never an error.
#include "topology.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

#include "parallelism.h"

#ifdef __linux__
#include <sched.h>
#endif

namespace hwsq {

namespace {

// Kernel defaults (include/linux/topology.h) used when a SLIT row is unusable.
constexpr int kLocalDistance = 10;
constexpr int kRemoteDistance = 20;

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
bool isDigit(char c) { return c >= '0' && c <= '9'; }

[[noreturn]] void badText(const char* kind, const char* what, const std::string& text) {
  std::string shown = text.size() > 64 ? text.substr(0, 64) + "..." : text;
  throw std::invalid_argument(std::string("invalid ") + kind + " (" + what + "): \"" + shown + "\"");
}

// A set of ids in [0, limit): a bitmap, so ranges cost O(range / 64) and listing O(limit / 64).
class IdSet {
 public:
  explicit IdSet(int limit) : words_((static_cast<size_t>(limit) + 63) / 64) {}
  void addRange(long a, long b) {  // a <= b < limit
    detail::parseWork().steps += static_cast<uint64_t>((b >> 6) - (a >> 6) + 1);
    for (long w = a >> 6; w <= (b >> 6); ++w) {
      const int lo = w == (a >> 6) ? static_cast<int>(a & 63) : 0;
      const int hi = w == (b >> 6) ? static_cast<int>(b & 63) : 63;
      const uint64_t upTo = hi == 63 ? ~uint64_t{0} : (uint64_t{1} << (hi + 1)) - 1;
      words_[static_cast<size_t>(w)] |= upTo & ~((uint64_t{1} << lo) - 1);
    }
  }
  std::vector<int> ids() const {
    std::vector<int> out;
    detail::parseWork().steps += words_.size();
    for (size_t w = 0; w < words_.size(); ++w)
      for (uint64_t bits = words_[w]; bits; bits &= bits - 1)
        out.push_back(static_cast<int>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits))));
    return out;
  }

 private:
  std::vector<uint64_t> words_;
};

// The kernel's bitmap list format (bitmap_parselist): comma-separated "a", "a-b" or
// "a-b:used/group" (used of every group ids from a), whitespace around elements allowed. One
// pass over the text; ids must be below limit.
std::vector<int> parseIdList(const std::string& text, int limit, const char* kind) {
  const size_t n = text.size();
  detail::parseWork().steps += n;  // one pass
  size_t i = 0;
  auto skipSpace = [&] {
    while (i < n && isSpace(text[i])) ++i;
  };
  // An id (below limit), or with saturate a group size: capped at kMaxCpus, which no range
  // exceeds, so a larger "used/group" means the same.
  auto number = [&](bool saturate = false) -> long {
    if (i >= n || !isDigit(text[i])) badText(kind, "expected a number", text);
    long v = 0;
    for (; i < n && isDigit(text[i]); ++i) {
      v = v * 10 + (text[i] - '0');
      if (saturate) v = std::min<long>(v, kMaxCpus);
      else if (v >= limit) badText(kind, "id too large", text);
    }
    return v;
  };
  skipSpace();
  if (i == n) return {};
  IdSet set(limit);
  for (;;) {
    skipSpace();
    if (i == n || text[i] == ',') badText(kind, "empty element", text);
    const long a = number();
    long b = a, used = 1, group = 1;
    if (i < n && text[i] == '-') {
      ++i;
      b = number();
      if (b < a) badText(kind, "descending range", text);
      if (i < n && text[i] == ':') {
        // "a-b:n" is read as a stride (every n-th id), i.e. "a-b:1/n".
        ++i;
        used = number(true);
        if (i < n && text[i] == '/') {
          ++i;
          group = number(true);
        } else {
          group = used;
          used = 1;
        }
        if (used == 0 || group == 0 || used > group) badText(kind, "bad group", text);
      }
    }
    skipSpace();
    if (used == group) {
      set.addRange(a, b);
    } else {
      for (long base = a; base <= b; base += group) set.addRange(base, std::min(base + used - 1, b));
    }
    if (i == n) break;
    if (text[i] != ',') badText(kind, "unexpected character", text);
    ++i;
  }
  return set.ids();
}

void sortUnique(std::vector<int>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

bool contains(const std::vector<int>& sorted, int x) {
  return std::binary_search(sorted.begin(), sorted.end(), x);
}

std::vector<int> intersect(const std::vector<int>& a, const std::vector<int>& b) {
  std::vector<int> out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

// A file of ids parsed by parse (a cpulist, node list or cpumask), or nullopt when missing or
// unparsable (unknown, not empty).
std::optional<std::vector<int>> readIds(const std::string& path, std::vector<int> (*parse)(const std::string&)) {
  std::string text;
  if (!detail::readTextFile(path, text)) return std::nullopt;
  try {
    return parse(text);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}
std::optional<std::vector<int>> readList(const std::string& path) { return readIds(path, parseCpuList); }
std::optional<std::vector<int>> readNodeList(const std::string& path) { return readIds(path, parseNodeList); }
std::optional<std::vector<int>> readMask(const std::string& path) { return readIds(path, parseCpuMask); }

// A list file, falling back to its hex-mask twin (older kernels only had the mask).
std::optional<std::vector<int>> readListOrMask(const std::string& listPath,
                                               const std::string& maskPath) {
  if (auto l = readList(listPath)) return l;
  return readMask(maskPath);
}

std::optional<long long> readInt(const std::string& path) {
  std::string text;
  long long v = 0;
  if (!detail::readTextFile(path, text) || !detail::parseInt64(text, v)) return std::nullopt;
  return v;
}

int toIntOr(std::optional<long long> v, int fallback) {
  if (!v || *v < std::numeric_limits<int>::min() || *v > std::numeric_limits<int>::max())
    return fallback;
  return static_cast<int>(*v);
}

// "cpu12" -> 12 for names made of the prefix and digits only ("cpufreq", "cpuidle" -> -1);
// -1 as well for numbers from limit on.
long numberedEntry(const std::string& name, const std::string& prefix, int limit) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return -1;
  long v = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (!isDigit(name[i])) return -1;
    v = v * 10 + (name[i] - '0');
    if (v >= limit) return -1;
  }
  return v;
}

// Ids of the entries "<prefix><id>" of dir with id < limit (kMaxCpus for cpuN and cache
// indexN, kMaxNodes for nodeN), sorted.
std::vector<int> numberedEntries(const std::string& dir, const std::string& prefix, int limit) {
  std::vector<int> out;
  for (const auto& name : detail::listDir(dir)) {
    long n = numberedEntry(name, prefix, limit);
    if (n >= 0) out.push_back(static_cast<int>(n));
  }
  sortUnique(out);
  return out;
}

// MemTotal/MemFree in bytes from "Node 0 MemTotal:  123 kB" (node meminfo, prefixed lines)
// or "MemTotal:  123 kB" (/proc/meminfo).
struct MemInfo {
  bool known = false;
  uint64_t total = 0;
  uint64_t free = 0;
};

MemInfo readMemInfo(const std::string& path) {
  MemInfo m;
  std::string text;
  if (!detail::readTextFile(path, text)) return m;
  bool haveTotal = false;
  for (const std::string& line : detail::splitLines(text)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = detail::trim(line.substr(0, colon));
    size_t sp = key.rfind(' ');  // drop the "Node N " prefix of per-node files
    if (sp != std::string::npos) key = key.substr(sp + 1);
    if (key != "MemTotal" && key != "MemFree") continue;
    std::string value = detail::trim(line.substr(colon + 1));
    uint64_t scale = 1;
    if (value.size() > 2 && (value.compare(value.size() - 2, 2, "kB") == 0 ||
                             value.compare(value.size() - 2, 2, "KB") == 0)) {
      scale = 1024;
      value = detail::trim(value.substr(0, value.size() - 2));
    }
    long long v = 0;
    if (!detail::parseInt64(value, v) || v < 0) continue;
    uint64_t uv = static_cast<uint64_t>(v);
    if (uv > std::numeric_limits<uint64_t>::max() / scale) continue;
    uv *= scale;
    if (key == "MemTotal") {
      m.total = uv;
      haveTotal = true;
    } else {
      m.free = uv;
    }
  }
  m.known = haveTotal;
  return m;
}

// Whitespace-separated positive integers; nullopt if any token is not one.
std::optional<std::vector<int>> readDistanceRow(const std::string& path) {
  std::string text;
  if (!detail::readTextFile(path, text)) return std::nullopt;
  std::vector<int> row;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && isSpace(text[i])) ++i;
    if (i >= text.size()) break;
    size_t j = i;
    while (j < text.size() && !isSpace(text[j])) ++j;
    long long v = 0;
    if (!detail::parseInt64(text.substr(i, j - i), v) || v <= 0 || v > 0xffff)
      return std::nullopt;
    row.push_back(static_cast<int>(v));
    if (row.size() > static_cast<size_t>(kMaxNodes)) return std::nullopt;  // one entry per node
    i = j;
  }
  if (row.empty()) return std::nullopt;
  return row;
}

// The SLIT row maps onto `nodes` (sorted ids). The kernel prints one entry per *online* node
// in id order (node_read_distance: for_each_online_node), so with sparse ids entry k belongs
// to the k-th online node, not to node k. Dumps from other kernels may instead be indexed by
// the possible-node list or by dense ids; accept those when the length says so.
std::vector<int> mapDistances(const std::vector<int>& row, const std::vector<int>& nodeIds,
                              const std::optional<std::vector<int>>& possible, int self) {
  const size_t n = nodeIds.size();
  std::vector<int> out(n, kRemoteDistance);
  for (size_t i = 0; i < n; ++i)
    if (nodeIds[i] == self) out[i] = kLocalDistance;
  auto mapBy = [&](const std::vector<int>& order) {
    for (size_t i = 0; i < n; ++i) {
      auto it = std::lower_bound(order.begin(), order.end(), nodeIds[i]);
      if (it != order.end() && *it == nodeIds[i]) out[i] = row[static_cast<size_t>(it - order.begin())];
    }
  };
  if (row.size() == n) {
    out = row;
  } else if (possible && possible->size() == row.size()) {
    mapBy(*possible);
  } else if (!nodeIds.empty() && row.size() > static_cast<size_t>(nodeIds.back())) {
    for (size_t i = 0; i < n; ++i) out[i] = row[static_cast<size_t>(nodeIds[i])];
  }
  return out;
}

// Last-level cache group of a CPU: the highest-level Unified/Data cache in cpuN/cache/indexK,
// identified by the lowest CPU id sharing it.
int readLastLevelCache(const std::string& cpuPath) {
  const std::string cacheDir = cpuPath + "/cache";
  int bestLevel = -1;
  bool bestUnified = false;
  int bestGroup = -1;
  for (int idx : numberedEntries(cacheDir, "index", kMaxCpus)) {
    const std::string dir = cacheDir + "/index" + std::to_string(idx);
    int level = toIntOr(readInt(dir + "/level"), -1);
    if (level < 0) continue;
    std::string type;
    if (!detail::readTextFile(dir + "/type", type)) continue;
    type = detail::trim(type);
    const bool unified = type == "Unified";
    if (!unified && type != "Data") continue;
    if (level < bestLevel || (level == bestLevel && (bestUnified || !unified))) continue;
    auto shared = readListOrMask(dir + "/shared_cpu_list", dir + "/shared_cpu_map");
    if (!shared || shared->empty()) continue;
    bestLevel = level;
    bestUnified = unified;
    bestGroup = shared->front();
  }
  return bestGroup;
}

// CPU numbers from "processor : N" lines (s390 writes "processor N: ..."); used only when
// sysfs has no CPU information at all.
std::vector<int> cpuinfoProcessors(const std::string& path) {
  std::vector<int> out;
  std::string text;
  if (!detail::readTextFile(path, text, detail::kTableFileBytes)) return out;
  const std::string key = "processor";
  for (const std::string& line : detail::splitLines(text)) {
    if (line.compare(0, key.size(), key) != 0) continue;
    size_t i = key.size();
    while (i < line.size() && isSpace(line[i])) ++i;
    if (i < line.size() && line[i] == ':') ++i;
    while (i < line.size() && isSpace(line[i])) ++i;
    size_t j = i;
    while (j < line.size() && isDigit(line[j])) ++j;
    long long v = 0;
    if (j > i && j - i < 8 && detail::parseInt64(line.substr(i, j - i), v) && v < kMaxCpus)
      out.push_back(static_cast<int>(v));
  }
  sortUnique(out);
  return out;
}

std::vector<int> liveAffinity(bool& known) {
  known = false;
  std::vector<int> cpus;
#ifdef __linux__
  // The mask size must cover the kernel's nr_cpu_ids; grow until EINVAL stops.
  for (int ncpus = 1024; ncpus <= (1 << 20); ncpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(ncpus);
    if (!set) return cpus;
    const size_t size = CPU_ALLOC_SIZE(ncpus);
    CPU_ZERO_S(size, set);
    if (sched_getaffinity(0, size, set) == 0) {
      for (int c = 0; c < ncpus; ++c)
        if (CPU_ISSET_S(c, size, set)) cpus.push_back(c);
      CPU_FREE(set);
      known = true;
      return cpus;
    }
    const int err = errno;
    CPU_FREE(set);
    if (err != EINVAL) return cpus;
  }
#endif
  return cpus;
}

// Cpus_allowed_list (or the Cpus_allowed mask) of a dumped proc/self/status.
std::vector<int> statusAffinity(const std::string& root, bool& known) {
  known = false;
  std::string text;
  if (!detail::readTextFile(root + "/proc/self/status", text)) return {};
  std::optional<std::vector<int>> fromMask;
  for (const std::string& line : detail::splitLines(text)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    const std::string value = line.substr(colon + 1);
    try {
      if (key == "Cpus_allowed_list") {
        auto cpus = parseCpuList(value);
        known = true;
        return cpus;
      }
      if (key == "Cpus_allowed") fromMask = parseCpuMask(value);
    } catch (const std::invalid_argument&) {
      // garbled line: unknown, keep looking
    }
  }
  if (fromMask) {
    known = true;
    return *fromMask;
  }
  return {};
}

// Effective CPUs of the process's cpuset cgroup, walking up to the nearest cgroup that has
// the file (in v2 the file only exists where the cpuset controller is enabled).
std::vector<int> cgroupCpuset(const std::string& root, bool& known) {
  known = false;
  for (const auto& h : detail::findCgroupHierarchies(root, "cpuset")) {
    static const char* const v2Files[] = {"cpuset.cpus.effective"};
    // v1: effective_cpus appeared in 4.x; "noprefix" mounts drop the "cpuset." prefix.
    static const char* const v1Files[] = {"cpuset.effective_cpus", "cpuset.cpus",
                                          "effective_cpus", "cpus"};
    for (const auto& dir : h.dirs) {
      const auto* begin = h.version == 2 ? std::begin(v2Files) : std::begin(v1Files);
      const auto* end = h.version == 2 ? std::end(v2Files) : std::end(v1Files);
      for (auto* f = begin; f != end; ++f) {
        auto cpus = readList(root + dir + "/" + *f);
        // An empty list means "not configured here" (inherit), so keep walking up.
        if (cpus && !cpus->empty()) {
          known = true;
          return *cpus;
        }
      }
    }
  }
  return {};
}

}  // namespace

namespace detail {

std::string normalizeRoot(const std::string& fsroot) {
  std::string r = fsroot;
  while (!r.empty() && r.back() == '/') r.pop_back();
  return r;
}

bool isDirectory(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

ParseWork& parseWork() {
  static thread_local ParseWork work;
  return work;
}

bool readTextFile(const std::string& path, std::string& out, size_t maxBytes) {
  out.clear();
  ++parseWork().files;
  // Regular files only (following symlinks): a directory reads as garbage, and a FIFO or
  // device planted in a dump could block.
  std::error_code ec;
  if (path.empty() || !std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char buf[4096];
  while (in) {
    in.read(buf, sizeof buf);
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
    if (out.size() > maxBytes) {
      out.clear();
      return false;
    }
  }
  if (in.bad()) {
    out.clear();
    return false;
  }
  return true;
}

std::vector<std::string> listDir(const std::string& path) {
  ++parseWork().files;
  std::vector<std::string> names;
  std::error_code ec;
  std::filesystem::directory_iterator it(path, ec), end;
  while (!ec && it != end) {
    names.push_back(it->path().filename().string());
    it.increment(ec);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string joinInts(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s;
}

std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    lines.push_back(text.substr(pos, eol - pos));
    pos = eol + 1;
  }
  return lines;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && isSpace(s[b])) ++b;
  while (e > b && isSpace(s[e - 1])) --e;
  return s.substr(b, e - b);
}

bool parseInt64(const std::string& s, long long& out) {
  const std::string t = trim(s);
  size_t i = 0;
  bool neg = false;
  if (i < t.size() && (t[i] == '-' || t[i] == '+')) neg = t[i++] == '-';
  if (i >= t.size()) return false;
  unsigned long long v = 0;
  const unsigned long long limit =
      neg ? static_cast<unsigned long long>(std::numeric_limits<long long>::max()) + 1
          : static_cast<unsigned long long>(std::numeric_limits<long long>::max());
  for (; i < t.size(); ++i) {
    if (!isDigit(t[i])) return false;
    const unsigned d = static_cast<unsigned>(t[i] - '0');
    if (v > (limit - d) / 10) return false;
    v = v * 10 + d;
  }
  if (neg) {
    out = v == limit ? std::numeric_limits<long long>::min() : -static_cast<long long>(v);
  } else {
    out = static_cast<long long>(v);
  }
  return true;
}

}  // namespace detail

std::vector<int> parseCpuList(const std::string& text) { return parseIdList(text, kMaxCpus, "cpu list"); }

std::vector<int> parseNodeList(const std::string& text) { return parseIdList(text, kMaxNodes, "node list"); }

std::vector<int> parseCpuMask(const std::string& text) {
  // Comma-separated 32-bit hex words, most significant first (bitmap_print_to_pagebuf).
  auto bad = [&](const char* what) { badText("cpu mask", what, text); };
  detail::parseWork().steps += text.size();  // two passes at most
  size_t b = 0, e = text.size();
  while (b < e && isSpace(text[b])) ++b;
  while (e > b && isSpace(text[e - 1])) --e;
  if (b == e) return {};
  // Word boundaries first: never more words than kMaxCpus ids need.
  std::vector<size_t> commas;
  for (size_t i = b; i < e; ++i)
    if (text[i] == ',') {
      if (commas.size() + 1 >= static_cast<size_t>(kMaxCpus / 32)) bad("too long");
      commas.push_back(i);
    }
  const size_t nwords = commas.size() + 1;
  std::vector<int> out;
  for (size_t w = 0; w < nwords; ++w) {  // least significant word first: ids come out sorted
    const size_t k = nwords - 1 - w;
    size_t wb = k == 0 ? b : commas[k - 1] + 1;
    size_t we = k == nwords - 1 ? e : commas[k];
    while (wb < we && isSpace(text[wb])) ++wb;
    while (we > wb && isSpace(text[we - 1])) --we;
    if (we - wb > 2 && text[wb] == '0' && (text[wb + 1] == 'x' || text[wb + 1] == 'X')) wb += 2;
    if (wb == we) bad("empty word");
    // Only a lone word may be wider than 32 bits (e.g. a hand-written "ffffffffff").
    if (we - wb > 8 && nwords > 1) bad("word wider than 32 bits");
    for (size_t j = 0; j < we - wb; ++j) {
      const char c = text[we - 1 - j];
      int v;
      if (c >= '0' && c <= '9') v = c - '0';
      else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
      else bad("not hex"), v = 0;
      for (int bit = 0; bit < 4; ++bit) {
        if (!(v & (1 << bit))) continue;
        const size_t id = 32 * w + 4 * j + static_cast<size_t>(bit);
        if (id >= static_cast<size_t>(kMaxCpus)) bad("cpu id too large");
        out.push_back(static_cast<int>(id));
      }
    }
  }
  return out;
}

std::string formatCpuList(const std::vector<int>& cpus) {
  std::vector<int> v;
  for (int c : cpus)
    if (c >= 0) v.push_back(c);
  sortUnique(v);
  std::string out;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(v[i]);
    if (j > i) out += "-" + std::to_string(v[j]);
    i = j + 1;
  }
  return out;
}

std::string defaultFsRoot() {
  const char* env = std::getenv("HWSQ_FSROOT");
  return env ? std::string(env) : std::string();
}

const NodeInfo* Topology::findNode(int id) const {
  const int i = nodeIndex(id);
  return i < 0 ? nullptr : &nodes[static_cast<size_t>(i)];
}

int Topology::nodeIndex(int id) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].id == id) return static_cast<int>(i);
  return -1;
}

Topology readTopology(const std::string& fsroot) {
  const std::string root = detail::normalizeRoot(fsroot);
  const bool live = root.empty();
  const std::string cpuDir = root + "/sys/devices/system/cpu";
  const std::string nodeDir = root + "/sys/devices/system/node";
  Topology topo;

  // --- Nodes present in sysfs (online list, else the nodeN directories). ---
  std::vector<int> nodeIds;
  if (auto online = readNodeList(nodeDir + "/online"); online && !online->empty()) nodeIds = *online;
  if (nodeIds.empty()) nodeIds = numberedEntries(nodeDir, "node", kMaxNodes);
  // Raw cpulist per node (may hold offline CPUs). A CPU listed by several nodes belongs to the
  // lowest (a garbled dump could list every CPU in every node): each is kept once, so this holds
  // at most kMaxCpus ids whatever the dump says.
  std::map<int, std::vector<int>> nodeCpuLists;
  {
    std::vector<bool> claimed(kMaxCpus, false);
    for (int id : nodeIds) {
      const std::string dir = nodeDir + "/node" + std::to_string(id);
      std::vector<int>& mine = nodeCpuLists[id];
      if (auto list = readListOrMask(dir + "/cpulist", dir + "/cpumap"))
        for (int cpu : *list)
          if (!claimed[static_cast<size_t>(cpu)]) {
            claimed[static_cast<size_t>(cpu)] = true;
            mine.push_back(cpu);
          }
    }
  }

  // --- CPU ids: present, else possible, else cpuN directories; plus anything online. ---
  std::optional<std::vector<int>> present = readList(cpuDir + "/present");
  if (!present || present->empty()) present = readList(cpuDir + "/possible");
  std::vector<int> ids = present ? *present : std::vector<int>{};
  if (ids.empty()) ids = numberedEntries(cpuDir, "cpu", kMaxCpus);
  std::optional<std::vector<int>> onlineList = readList(cpuDir + "/online");
  if (onlineList && onlineList->empty()) onlineList.reset();  // some CPU always runs: garbled
  if (onlineList) ids.insert(ids.end(), onlineList->begin(), onlineList->end());
  if (ids.empty())
    for (const auto& [id, list] : nodeCpuLists) ids.insert(ids.end(), list.begin(), list.end());
  if (ids.empty()) ids = cpuinfoProcessors(root + "/proc/cpuinfo");
  sortUnique(ids);
  if (ids.empty()) {
    // Nothing in sysfs (non-Linux, or an empty dump): assume the runtime's CPU count.
    const unsigned n = live ? std::max(1u, std::thread::hardware_concurrency()) : 1u;
    for (unsigned i = 0; i < n; ++i) ids.push_back(static_cast<int>(i));
  }

  // --- Per-CPU data. ---
  for (int id : ids) {
    CpuInfo c;
    c.id = id;
    const std::string dir = cpuDir + "/cpu" + std::to_string(id);
    if (onlineList) {
      c.online = contains(*onlineList, id);
    } else {
      // Without cpu/online, the per-CPU "online" file decides; cpu0 usually lacks it.
      auto v = readInt(dir + "/online");
      c.online = !v || *v != 0;
    }
    const std::string t = dir + "/topology";
    c.core = toIntOr(readInt(t + "/core_id"), -1);
    c.package = toIntOr(readInt(t + "/physical_package_id"), -1);  // -1 is a real value on some ARM
    c.die = toIntOr(readInt(t + "/die_id"), -1);
    auto sib = readList(t + "/thread_siblings_list");
    if (!sib) sib = readList(t + "/core_cpus_list");
    if (!sib) sib = readListOrMask(t + "/thread_siblings", t + "/core_cpus");
    if (sib && sib->size() <= static_cast<size_t>(kMaxSiblings)) c.siblings = *sib;
    c.l3 = readLastLevelCache(dir);
    topo.cpus.push_back(std::move(c));
  }
  auto cpuAt = [&](int id) -> CpuInfo* {
    auto it = std::lower_bound(topo.cpus.begin(), topo.cpus.end(), id,
                               [](const CpuInfo& c, int v) { return c.id < v; });
    return it != topo.cpus.end() && it->id == id ? &*it : nullptr;
  };

  std::vector<int> onlineCpus;
  for (const auto& c : topo.cpus)
    if (c.online) onlineCpus.push_back(c.id);
  if (onlineCpus.empty()) {
    // Every file said "offline": impossible on a running system, so treat all as online.
    for (auto& c : topo.cpus) {
      c.online = true;
      onlineCpus.push_back(c.id);
    }
  }

  if (nodeIds.empty()) {
    // No NUMA information (CONFIG_NUMA=n, non-Linux, or a dump without the node dir).
    topo.synthetic = true;
    NodeInfo n;
    n.id = 0;
    n.cpus = onlineCpus;
    const MemInfo m = readMemInfo(root + "/proc/meminfo");
    n.memoryBytes = m.total;
    n.freeBytes = m.free;
    n.distances = {kLocalDistance};
    topo.nodes.push_back(std::move(n));
    for (auto& c : topo.cpus) c.node = 0;
  } else {
    // Node of each CPU: the node cpulists first (lowest node wins if a dump lists a CPU
    // twice), then cpuN/nodeM links, then nodeN/cpuM links; offline CPUs usually only
    // appear in the links because the kernel masks cpulist with cpu_online_mask.
    for (const auto& [id, list] : nodeCpuLists)
      for (int cpu : list)
        if (CpuInfo* c = cpuAt(cpu); c && c->node < 0) c->node = id;
    for (auto& c : topo.cpus) {
      if (c.node >= 0) continue;
      auto links = numberedEntries(cpuDir + "/cpu" + std::to_string(c.id), "node", kMaxNodes);
      if (!links.empty()) c.node = links.front();
    }
    for (int id : nodeIds)
      for (int cpu : numberedEntries(nodeDir + "/node" + std::to_string(id), "cpu", kMaxCpus))
        if (CpuInfo* c = cpuAt(cpu); c && c->node < 0) c->node = id;
    if (nodeIds.size() == 1)  // a single node unambiguously holds every CPU
      for (auto& c : topo.cpus)
        if (c.node < 0) c.node = nodeIds.front();

    std::optional<std::vector<int>> hasMemory = readNodeList(nodeDir + "/has_memory");
    const std::optional<std::vector<int>> possibleNodes = readNodeList(nodeDir + "/possible");
    // Online CPUs per node in one pass (nodeIds is sorted).
    std::vector<std::vector<int>> cpusOfNode(nodeIds.size());
    for (const auto& c : topo.cpus) {
      if (!c.online || c.node < 0) continue;
      auto it = std::lower_bound(nodeIds.begin(), nodeIds.end(), c.node);
      if (it != nodeIds.end() && *it == c.node) cpusOfNode[static_cast<size_t>(it - nodeIds.begin())].push_back(c.id);
    }
    for (size_t ni = 0; ni < nodeIds.size(); ++ni) {
      const int id = nodeIds[ni];
      const std::string dir = nodeDir + "/node" + std::to_string(id);
      NodeInfo n;
      n.id = id;
      n.cpus = std::move(cpusOfNode[ni]);
      const MemInfo m = readMemInfo(dir + "/meminfo");
      n.memoryBytes = m.total;
      n.freeBytes = m.free;
      if (hasMemory) n.hasMemory = contains(*hasMemory, id);
      else if (m.known) n.hasMemory = m.total > 0;
      auto row = readDistanceRow(dir + "/distance");
      n.distances = mapDistances(row ? *row : std::vector<int>{}, nodeIds, possibleNodes, id);
      topo.nodes.push_back(std::move(n));
    }
  }

  // --- allowedCpus = online ∩ affinity ∩ cgroup cpuset. ---
  std::vector<int> allowed = onlineCpus;
  bool known = false;
  std::vector<int> affinity = live ? liveAffinity(known) : statusAffinity(root, known);
  if (known) allowed = intersect(allowed, affinity);
  std::vector<int> cpuset = cgroupCpuset(root, known);
  if (known) allowed = intersect(allowed, cpuset);
  // An empty result can only come from inconsistent sources; never leave no CPU to run on.
  topo.allowedCpus = allowed.empty() ? onlineCpus : allowed;
  return topo;
}

}  // namespace hwsq
