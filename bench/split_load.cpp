#include "split_load.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace chatorbit::bench::detail {

bool write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    f.close();
    if (!f) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

std::string acked_text(const std::vector<AckedBy>& senders) {
  std::string out;
  for (const auto& s : senders) {
    std::uint64_t run_start = 0;
    for (std::uint64_t c = 1; c <= s.last_sent + 1; ++c) {
      const bool in = c <= s.last_sent && s.acked->contains(s.sender, c);
      if (in && run_start == 0) run_start = c;
      if (!in && run_start != 0) {
        out += std::to_string(s.sender) + " " + std::to_string(run_start) + " " + std::to_string(c - 1) + "\n";
        run_start = 0;
      }
    }
  }
  return out;
}

std::optional<std::vector<CounterSet>> read_expected(const std::string& path, std::uint32_t rooms) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::vector<CounterSet> by_room(rooms);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    std::istringstream in(line);
    std::uint32_t sender = 0;
    std::uint64_t first = 0, last = 0;
    if (!(in >> sender >> first >> last) || first == 0 || last < first || !CounterSet::valid(sender, last)) {
      throw std::runtime_error(path + ": malformed line '" + line + "'");
    }
    for (std::uint64_t c = first; c <= last; ++c) by_room[sender % rooms].insert(sender, c);
  }
  return by_room;
}

std::string histogram_json(const LatencyHistogram& h) {
  std::string out = "{\"count\":" + std::to_string(h.count()) + ",\"min_ns\":" + std::to_string(h.min()) +
                    ",\"max_ns\":" + std::to_string(h.max()) +
                    ",\"sum_ns\":" + std::to_string(static_cast<unsigned long long>(h.mean() * h.count())) +
                    ",\"buckets\":[";
  bool first = true;
  for (std::size_t b = 0; b < LatencyHistogram::kBucketCount; ++b) {
    const std::uint64_t n = h.bucket_count_at(b);
    if (n == 0) continue;
    if (!first) out += ",";
    first = false;
    out += "[" + std::to_string(LatencyHistogram::bucket_low(b)) + "," +
           std::to_string(LatencyHistogram::bucket_high(b)) + "," + std::to_string(n) + "]";
  }
  return out + "]}";
}

}  // namespace chatorbit::bench::detail
