// Shared pieces of the libFuzzer harnesses (native/fuzz/fuzz_*.cpp, built by native/CMakeLists.txt
// with HWSQ_FUZZ=ON and run by `scripts/native-tests.js` variant `fuzz`).
//
// Input format of the file-tree harnesses: pieces separated by "\n%%\n"; piece i becomes the
// file at the harness's i-th path below a scratch root (an empty piece: no file). Seeds are made
// from test/fixtures by the same harness binary: HWSQ_FUZZ_MAKE_SEEDS=<fixtures>:<outdir> writes
// them and exits (see LLVMFuzzerInitialize in each harness), so the path tables live in one place.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace hwsq_fuzz {

namespace fs = std::filesystem;

// An invariant of the parse: a violation aborts, and libFuzzer saves the input as a crash.
#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "fuzz invariant violated at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

inline const std::string kSep = "\n%%\n";

inline std::vector<std::string> splitPieces(const uint8_t* data, size_t size) {
  const std::string s(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(kSep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + kSep.size();
  }
}

inline std::string joinPieces(const std::vector<std::string>& pieces) {
  std::string out;
  for (size_t i = 0; i < pieces.size(); ++i) out += (i ? kSep : "") + pieces[i];
  return out;
}

inline std::string readFile(const fs::path& p, size_t max = 4096) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max ? s.substr(0, max) : s;
}

// A scratch directory of this process, emptied for each input and removed at exit.
class Scratch {
 public:
  Scratch() {
    std::string tmpl = (fs::temp_directory_path() / "hwsq-fuzz-XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) std::abort();
    path_ = buf.data();
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  void clear() {
    std::error_code ec;
    for (auto& e : fs::directory_iterator(path_, ec)) fs::remove_all(e.path(), ec);
  }
  // rel must be relative and free of "..": callers pass fixed paths or checked parser output.
  void write(const std::string& rel, const std::string& text) const {
    const fs::path p = fs::path(path_) / rel;
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
  }

 private:
  std::string path_;
};

// This process's scratch tree, emptied, with pieces[i] written at paths[i] (an empty piece: no
// file); pieces beyond paths are left for the caller.
inline Scratch& freshTree(const std::vector<std::string>& pieces, const std::vector<std::string>& paths) {
  static Scratch scratch;
  scratch.clear();
  for (size_t i = 0; i < pieces.size() && i < paths.size(); ++i)
    if (!pieces[i].empty()) scratch.write(paths[i], pieces[i]);
  return scratch;
}

// The inverse, for seeds: the files of a fixture machine at paths, as pieces.
inline std::vector<std::string> piecesOf(const fs::path& machine, const std::vector<std::string>& paths) {
  std::vector<std::string> pieces;
  for (const auto& p : paths) pieces.push_back(readFile(machine / p));
  return pieces;
}

// HWSQ_FUZZ_MAKE_SEEDS=<fixtures>:<outdir>: writes make(fixtures) as seed files into outdir and
// exits. Called from LLVMFuzzerInitialize.
inline void makeSeedsIfAsked(const std::function<std::vector<std::string>(const std::string&)>& make) {
  const char* env = std::getenv("HWSQ_FUZZ_MAKE_SEEDS");
  if (!env) return;
  const std::string spec = env;
  const size_t colon = spec.find(':');
  if (colon == std::string::npos) std::exit(2);
  const std::string fixtures = spec.substr(0, colon), out = spec.substr(colon + 1);
  fs::create_directories(out);
  int n = 0;
  for (const std::string& seed : make(fixtures))
    std::ofstream(fs::path(out) / ("seed-" + std::to_string(n++)), std::ios::binary) << seed;
  std::printf("%d seeds in %s\n", n, out.c_str());
  std::exit(0);
}

// Subdirectories of dir, sorted (fixture machines).
inline std::vector<fs::path> subdirs(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace hwsq_fuzz
