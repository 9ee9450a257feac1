// Fuzzes the id-list parsers (topology.h): parseCpuList, parseNodeList (the kernel's bitmap
// list format) and parseCpuMask (hex words). Invariants of every successful parse: ids sorted,
// unique and within the kernel's bounds; formatting and re-parsing gives the same ids (as a list
// and as a mask); a node-list parse gives what the CPU-list parse gives, and fails on ids from
// kMaxNodes on; and the work done is linear in the input (topology.h's ParseWork counters).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness.h"
#include "topology.h"

namespace {

// Most work a list parse may do per input byte: one pass over the text, plus at most
// kMaxCpus / 2 bitmap steps for a stride element, which takes at least 10 characters
// ("0-8191:1/2"), plus the listing of the bitmap.
constexpr uint64_t kStepsPerByte = 512;

std::optional<std::vector<int>> tryParse(std::vector<int> (*parse)(const std::string&), const std::string& text) {
  try {
    return parse(text);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

// ids as a kernel cpumask: 32-bit hex words, most significant first.
std::string formatMask(const std::vector<int>& ids) {
  if (ids.empty()) return "0";
  const size_t words = static_cast<size_t>(ids.back()) / 32 + 1;
  std::vector<uint32_t> w(words, 0);
  for (int id : ids) w[static_cast<size_t>(id) / 32] |= uint32_t{1} << (id % 32);
  std::string out;
  char buf[16];
  for (size_t i = words; i-- > 0;) {
    std::snprintf(buf, sizeof buf, "%08x", w[i]);
    out += buf;
    if (i) out += ',';
  }
  return out;
}

void checkIds(const std::vector<int>& ids, int limit) {
  for (size_t i = 0; i < ids.size(); ++i) {
    FUZZ_CHECK(ids[i] >= 0 && ids[i] < limit);
    if (i) FUZZ_CHECK(ids[i - 1] < ids[i]);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  hwsq_fuzz::makeSeedsIfAsked([](const std::string& fixtures) {
    std::vector<std::string> seeds = {"0-3,8,10-11\n", "0-15:2", "0-7:2/4", "1-9:1/4", " 0-1 , 4 \n",
                                      "ff,00000001\n", "0x3", "8191", "0-8191:1/2", "0-1023"};
    // Every small file of the sysfs and cgroup dumps: lists, masks and their garbled variants.
    std::set<std::string> unique;
    for (const char* kind : {"sysfs", "cgroup"}) {
      std::error_code ec;
      for (auto it = hwsq_fuzz::fs::recursive_directory_iterator(hwsq_fuzz::fs::path(fixtures) / kind, ec);
           it != hwsq_fuzz::fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file() && it->file_size() <= 4096) unique.insert(hwsq_fuzz::readFile(it->path()));
    }
    seeds.insert(seeds.end(), unique.begin(), unique.end());
    return seeds;
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto& work = hwsq::detail::parseWork();

  uint64_t before = work.steps;
  const auto cpus = tryParse(hwsq::parseCpuList, text);
  FUZZ_CHECK(work.steps - before <= kStepsPerByte * (size + 1));
  if (cpus) {
    checkIds(*cpus, hwsq::kMaxCpus);
    const auto again = tryParse(hwsq::parseCpuList, hwsq::formatCpuList(*cpus));
    FUZZ_CHECK(again && *again == *cpus);
    const auto asMask = tryParse(hwsq::parseCpuMask, formatMask(*cpus));
    FUZZ_CHECK(asMask && *asMask == *cpus);
  }

  before = work.steps;
  const auto nodes = tryParse(hwsq::parseNodeList, text);
  FUZZ_CHECK(work.steps - before <= kStepsPerByte * (size + 1));
  if (nodes) {
    checkIds(*nodes, hwsq::kMaxNodes);
    FUZZ_CHECK(cpus && *cpus == *nodes);  // the same grammar, a tighter bound
  }
  if (cpus && !cpus->empty() && cpus->back() >= hwsq::kMaxNodes) FUZZ_CHECK(!nodes);

  before = work.steps;
  const auto mask = tryParse(hwsq::parseCpuMask, text);
  FUZZ_CHECK(work.steps - before <= 2 * (size + 1));
  if (mask) {
    checkIds(*mask, hwsq::kMaxCpus);
    const auto again = tryParse(hwsq::parseCpuMask, formatMask(*mask));
    FUZZ_CHECK(again && *again == *mask);
  }
  return 0;
}
