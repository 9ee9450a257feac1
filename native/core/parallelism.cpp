// cgroup CPU quota -> parallelism, as automaxprocs and Go 1.25's GOMAXPROCS do it, plus the
// cgroup lookup (proc/self/cgroup + proc/self/mountinfo) that topology.cpp reuses for cpusets.
// References: Documentation/admin-guide/cgroup-v2.rst (cpu.max, cpuset.cpus.effective),
// cgroup-v1/cpusets.rst, scheduler/sched-bwc.rst (cpu.cfs_quota_us), proc_pid_mountinfo(5).
#include "parallelism.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "topology.h"

namespace hwsq {

namespace {

// The kernel prints cgroup paths and mount points of at most PATH_MAX bytes (a longer one
// fails with ENAMETOOLONG instead). Longer text in a dump is garbled: that line is ignored,
// which bounds the walk up a hierarchy at PATH_MAX / 2 levels.
constexpr size_t kPathMax = 4096;

// A canonical absolute path, as the kernel prints them: "/" or "/a/b" -- no empty, "." or ".."
// component -- shorter than PATH_MAX. Anything else in a dump is garbled, and a ".." in a mount
// point would make the fsroot-relative lookups read outside the dump.
bool isCanonicalPath(const std::string& p) {
  if (p.empty() || p[0] != '/' || p.size() >= kPathMax) return false;
  if (p.size() == 1) return true;
  for (size_t i = 0; i < p.size();) {
    size_t j = p.find('/', i + 1);
    if (j == std::string::npos) j = p.size();
    const size_t len = j - i - 1;  // the component after the '/' at i
    if (len == 0 || (len == 1 && p[i + 1] == '.') || (len == 2 && p[i + 1] == '.' && p[i + 2] == '.')) return false;
    i = j;
  }
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t i = s.find(sep, start);
    out.push_back(s.substr(start, i == std::string::npos ? std::string::npos : i - start));
    if (i == std::string::npos) break;
    start = i + 1;
  }
  return out;
}

bool hasItem(const std::vector<std::string>& items, const std::string& x) {
  return std::find(items.begin(), items.end(), x) != items.end();
}

// mountinfo escapes space, tab, newline and backslash in paths as \ooo (octal).
std::string unescapeMountPath(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' &&
        s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct CgroupLine {
  std::string hierarchy;                 // "0" for the v2 unified hierarchy
  std::vector<std::string> controllers;  // v1 controllers ("cpu", "cpuacct", "name=systemd")
  std::string path;                      // relative to the hierarchy root (or cgroup namespace)
};

std::vector<CgroupLine> readProcCgroup(const std::string& root) {
  std::vector<CgroupLine> out;
  std::string text;
  if (!detail::readTextFile(root + "/proc/self/cgroup", text)) return out;
  for (const auto& line : detail::splitLines(text)) {
    // hierarchy-ID:controller-list:cgroup-path; the path itself may contain ':'.
    const size_t a = line.find(':');
    if (a == std::string::npos) continue;
    const size_t b = line.find(':', a + 1);
    if (b == std::string::npos) continue;
    CgroupLine l;
    l.hierarchy = line.substr(0, a);
    const std::string ctrl = line.substr(a + 1, b - a - 1);
    if (!ctrl.empty()) l.controllers = split(ctrl, ',');
    l.path = line.substr(b + 1);
    // A cgroup removed under us is reported with this suffix; its parent is what remains.
    const std::string deleted = " (deleted)";
    if (l.path.size() > deleted.size() &&
        l.path.compare(l.path.size() - deleted.size(), deleted.size(), deleted) == 0)
      l.path.erase(l.path.size() - deleted.size());
    if (l.path.empty() || l.path[0] != '/' || l.path.size() >= kPathMax) continue;
    out.push_back(std::move(l));
  }
  return out;
}

struct Mount {
  std::string root;        // root of the mount within the cgroup hierarchy ("/" from proc/mounts)
  std::string mountPoint;  // where it is mounted (relative to fsroot in a dump)
  std::string fstype;      // "cgroup2", "cgroup" (v1) or "cpuset" (the pre-cgroup cpuset fs)
  std::vector<std::string> options;
};

bool isCgroupFs(const std::string& fstype) {
  return fstype == "cgroup" || fstype == "cgroup2" || fstype == "cpuset";
}

// Cgroup mounts from proc/self/mountinfo or, failing that, proc/mounts (which is what
// hwloc-gather-topology dumps hold). `present` says whether either table was found.
std::vector<Mount> readCgroupMounts(const std::string& root, bool& present) {
  std::vector<Mount> out;
  std::string text;
  present = false;
  if (detail::readTextFile(root + "/proc/self/mountinfo", text, detail::kTableFileBytes)) {
    present = true;
    for (const auto& line : detail::splitLines(text)) {
      // id parent major:minor root mount-point options [optional...] - fstype source super-options
      std::vector<std::string> f;
      for (const auto& tok : split(line, ' '))
        if (!tok.empty()) f.push_back(tok);
      size_t sep = 6;
      while (sep < f.size() && f[sep] != "-") ++sep;
      if (sep + 1 >= f.size()) continue;
      Mount m;
      m.fstype = f[sep + 1];
      if (!isCgroupFs(m.fstype)) continue;
      m.root = unescapeMountPath(f[3]);
      m.mountPoint = unescapeMountPath(f[4]);
      if (sep + 3 < f.size()) m.options = split(f[sep + 3], ',');
      if (!isCanonicalPath(m.mountPoint) || !isCanonicalPath(m.root)) continue;
      out.push_back(std::move(m));
    }
    return out;
  }
  if (detail::readTextFile(root + "/proc/mounts", text, detail::kTableFileBytes)) {
    present = true;
    for (const auto& line : detail::splitLines(text)) {
      // source mount-point fstype options dump pass; mount and super options are merged.
      std::vector<std::string> f;
      for (const auto& tok : split(line, ' '))
        if (!tok.empty()) f.push_back(tok);
      if (f.size() < 4 || !isCgroupFs(f[2])) continue;
      Mount m;
      m.fstype = f[2];
      m.root = "/";
      m.mountPoint = unescapeMountPath(f[1]);
      m.options = split(f[3], ',');
      if (!isCanonicalPath(m.mountPoint)) continue;
      out.push_back(std::move(m));
    }
  }
  return out;
}

bool isUnder(const std::string& path, const std::string& prefix) {
  if (prefix == "/" || prefix.empty()) return true;
  return path == prefix || (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
                            path[prefix.size()] == '/');
}

// Directories from the process's cgroup up to the mount point. The path from
// proc/self/cgroup is relative to the hierarchy root, while the mount exposes the hierarchy
// from `mountRoot` on: strip that prefix. When the path is not under mountRoot (a cgroup
// namespace makes proc/self/cgroup show "/" while the mount root names the container's
// cgroup) the path is already relative to what the mount shows.
std::vector<std::string> cgroupChain(const std::string& mountPoint, const std::string& mountRoot,
                                     const std::string& cgroupPath) {
  std::string rel = cgroupPath;
  if (mountRoot != "/" && !mountRoot.empty() && isUnder(cgroupPath, mountRoot))
    rel = cgroupPath.substr(mountRoot.size());
  std::vector<std::string> parts;
  for (const auto& p : split(rel, '/')) {
    if (p.empty() || p == ".") continue;
    if (p == "..") {  // never climb above the mount
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(p);
  }
  std::string base = mountPoint;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  // The leaf's path once; every directory up to the mount point is a prefix of it.
  std::string leaf = base == "/" ? std::string() : base;
  std::vector<size_t> ends{leaf.size()};
  for (const auto& p : parts) {
    leaf += "/" + p;
    ends.push_back(leaf.size());
  }
  std::vector<std::string> dirs;
  dirs.reserve(ends.size());
  for (size_t n = ends.size(); n-- > 0;) dirs.push_back(ends[n] == 0 ? std::string("/") : leaf.substr(0, ends[n]));
  return dirs;
}

// Among several mounts of one hierarchy (bind mounts), prefer one whose root holds our cgroup.
const Mount* pickMount(const std::vector<const Mount*>& candidates, const std::string& path) {
  const Mount* best = nullptr;
  for (const Mount* m : candidates) {
    if (!isUnder(path, m->root)) continue;
    if (!best || m->root.size() > best->root.size()) best = m;
  }
  return best ? best : (candidates.empty() ? nullptr : candidates.front());
}

struct Limit {
  int64_t quota = -1;
  int64_t period = -1;
};

// quotaA/periodA < quotaB/periodB without overflow or rounding.
bool tighter(const Limit& a, const Limit& b) {
#ifdef __SIZEOF_INT128__
  __extension__ typedef __int128 Wide;  // __extension__: no -Wpedantic noise
  return static_cast<Wide>(a.quota) * b.period < static_cast<Wide>(b.quota) * a.period;
#else
  return static_cast<long double>(a.quota) / a.period < static_cast<long double>(b.quota) / b.period;
#endif
}

bool readPositive(const std::string& path, int64_t& out) {
  std::string text;
  long long v = 0;
  if (!detail::readTextFile(path, text) || !detail::parseInt64(text, v) || v <= 0) return false;
  out = v;
  return true;
}

// cpu.max: "max 100000" (no limit) or "<quota> <period>".
bool readCpuMax(const std::string& path, Limit& out) {
  std::string text;
  if (!detail::readTextFile(path, text)) return false;
  std::vector<std::string> f;
  for (const auto& tok : split(detail::trim(text), ' '))
    if (!tok.empty()) f.push_back(tok);
  if (f.size() != 2 || f[0] == "max") return false;
  long long q = 0, p = 0;
  if (!detail::parseInt64(f[0], q) || !detail::parseInt64(f[1], p) || q <= 0 || p <= 0) return false;
  out.quota = q;
  out.period = p;
  return true;
}

// cpu.cfs_quota_us (-1 = no limit) with cpu.cfs_period_us.
bool readCfs(const std::string& dir, Limit& out) {
  Limit l;
  if (!readPositive(dir + "/cpu.cfs_quota_us", l.quota)) return false;
  if (!readPositive(dir + "/cpu.cfs_period_us", l.period)) return false;
  out = l;
  return true;
}

}  // namespace

namespace detail {

std::vector<CgroupHierarchy> findCgroupHierarchies(const std::string& fsroot,
                                                   const std::string& controller) {
  const std::string root = normalizeRoot(fsroot);
  std::vector<CgroupHierarchy> out;
  const std::vector<CgroupLine> lines = readProcCgroup(root);
  // proc/self/cpuset names the cpuset of the process on kernels (and dumps) that predate
  // proc/self/cgroup or only use the legacy cpuset filesystem; hwloc reads it first too.
  std::string cpusetPath;
  if (controller == "cpuset" && readTextFile(root + "/proc/self/cpuset", cpusetPath)) {
    cpusetPath = trim(cpusetPath);
    if (cpusetPath.empty() || cpusetPath[0] != '/' || cpusetPath.size() >= kPathMax) cpusetPath.clear();
  }
  bool haveMountTable = false;
  const std::vector<Mount> mounts = readCgroupMounts(root, haveMountTable);

  // v1 first: when a v1 hierarchy carries the controller, the v2 tree cannot (hybrid setups).
  const CgroupLine* v1Line = nullptr;
  for (const auto& l : lines)
    if (l.hierarchy != "0" && hasItem(l.controllers, controller)) {
      v1Line = &l;
      break;
    }
  const std::string v1Path = v1Line ? v1Line->path : cpusetPath;
  if (!v1Path.empty()) {
    CgroupHierarchy h;
    h.version = 1;
    if (haveMountTable) {
      std::vector<const Mount*> cands;
      for (const auto& m : mounts)
        if ((m.fstype == "cgroup" && hasItem(m.options, controller)) ||
            (m.fstype == "cpuset" && controller == "cpuset"))
          cands.push_back(&m);
      if (const Mount* m = pickMount(cands, v1Path)) h.dirs = cgroupChain(m->mountPoint, m->root, v1Path);
    } else {
      // No mount table in the dump: try the conventional locations.
      std::vector<std::string> guesses;
      if (v1Line) {
        std::string joined;
        for (const auto& c : v1Line->controllers) joined += (joined.empty() ? "" : ",") + c;
        guesses.push_back("/sys/fs/cgroup/" + joined);
      }
      guesses.push_back("/sys/fs/cgroup/" + controller);
      if (controller == "cpuset") guesses.push_back("/dev/cpuset");
      for (const auto& mp : guesses)
        if (isCanonicalPath(mp) && isDirectory(root + mp)) {
          h.dirs = cgroupChain(mp, "/", v1Path);
          break;
        }
    }
    if (!h.dirs.empty()) out.push_back(std::move(h));
  }

  std::string v2Path;
  for (const auto& l : lines)
    if (l.hierarchy == "0" && l.controllers.empty()) {
      v2Path = l.path;
      break;
    }
  if (v2Path.empty() && out.empty()) v2Path = cpusetPath;  // v2-only kernel, no cgroup file
  if (!v2Path.empty()) {
    CgroupHierarchy h;
    h.version = 2;
    if (haveMountTable) {
      std::vector<const Mount*> cands;
      for (const auto& m : mounts)
        if (m.fstype == "cgroup2") cands.push_back(&m);
      if (const Mount* m = pickMount(cands, v2Path)) h.dirs = cgroupChain(m->mountPoint, m->root, v2Path);
    } else {
      h.dirs = cgroupChain("/sys/fs/cgroup", "/", v2Path);
    }
    if (!h.dirs.empty()) out.push_back(std::move(h));
  }
  return out;
}

}  // namespace detail

Parallelism readParallelism(const std::string& fsroot, int allowedCpus) {
  const std::string root = detail::normalizeRoot(fsroot);
  Parallelism p;
  p.allowedCpus = std::max(1, allowedCpus);
  p.value = p.allowedCpus;
  p.source = "cpuset";

  // Every level of the hierarchy constrains its descendants, so the tightest ratio from the
  // process's cgroup up to the mount root is the effective limit.
  bool found = false;
  Limit best;
  for (const auto& h : detail::findCgroupHierarchies(root, "cpu")) {
    for (const auto& dir : h.dirs) {
      Limit l;
      const bool ok = h.version == 2 ? readCpuMax(root + dir + "/cpu.max", l) : readCfs(root + dir, l);
      if (!ok) continue;
      if (!found || tighter(l, best)) {
        found = true;
        best = l;
        p.cgroupPath = dir;
        p.source = h.version == 2 ? "cgroup2" : "cgroup1";
      }
    }
  }
  if (found) {
    p.quota = best.quota;
    p.period = best.period;
    // ceil(quota/period) CPUs of bandwidth; a quota below one CPU still needs one thread.
    const int64_t cpus = best.quota / best.period + (best.quota % best.period != 0 ? 1 : 0);
    const int64_t capped = std::min<int64_t>(cpus, INT_MAX);
    p.value = std::max(1, std::min(p.allowedCpus, static_cast<int>(capped)));
  }
  return p;
}

}  // namespace hwsq
