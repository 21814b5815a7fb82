// chatorbit-store-bench: how many messages per second Store::append_messages() stores
// on one thread, in batches of B, on the store MONGO_URL (or SQLite at --sqlite PATH)
// selects, for bench/mongo_inserts.py (bench/README.md, "MongoDB store").
//
// The messages are what the pipeline writes: ids chosen up front, one room per batch
// cycling over --rooms, seq counting up per room, 120-byte content, a cid on each. One
// warm-up batch is not timed. Prints one JSON line: messages, seconds, messages_per_s,
// batch, and this process's CPU.

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "store/store_factory.hpp"

namespace {

using namespace chatorbit;

constexpr const char* kUsage = R"(chatorbit-store-bench [options]
  --batch B       messages per append_messages() call (default 256)
  --messages N    messages to time (default 20000)
  --rooms R       rooms the batches cycle over (default 16)
  --sqlite PATH   the SQLite store at PATH instead of MONGO_URL's database
MONGO_URL and the CHATORBIT_MONGO_* settings select and tune the MongoDB store.
)";

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string object_id(std::uint64_t n) {
  char buf[25];
  std::snprintf(buf, sizeof buf, "6600%020llx", static_cast<unsigned long long>(n));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  long batch = 256, messages = 20000, rooms = 16;
  std::string sqlite;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--batch" && v) {
      batch = std::atol(argv[++i]);
    } else if (a == "--messages" && v) {
      messages = std::atol(argv[++i]);
    } else if (a == "--rooms" && v) {
      rooms = std::atol(argv[++i]);
    } else if (a == "--sqlite" && v) {
      sqlite = argv[++i];
    } else {
      std::fputs(kUsage, stderr);
      return 2;
    }
  }
  if (batch < 1 || messages < 1 || rooms < 1) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  try {
    auto parsed = parse_config(environment_map(), {});
    Config config = parsed.config;
    if (!sqlite.empty()) {
      config.mongo_url.clear();
      config.data_dir = sqlite;
    }
    auto factory = store::make_store_factory(config);
    auto s = factory->open();

    std::uint64_t next_id = 1;
    std::map<std::string, std::uint64_t> seqs;
    long room_turn = 0;
    const std::string content(120, 'x');
    const auto make_batch = [&](long n) {
      std::vector<store::Message> out;
      const std::string room = "bench-room-" + std::to_string(room_turn++ % rooms);
      for (long i = 0; i < n; ++i) {
        store::Message m;
        m.id = object_id(next_id++);
        m.room_id = room;
        m.user_id = object_id(1'000'000'000 + static_cast<std::uint64_t>(i % 64));
        m.username = "sender" + std::to_string(i % 64);
        m.content = content;
        m.timestamp_ns = 1'700'000'000'000'000'000 + static_cast<std::int64_t>(next_id) * 1000;
        m.seq = ++seqs[room];
        m.cid = "c" + std::to_string(next_id);
        out.push_back(std::move(m));
      }
      return out;
    };

    s->append_messages(make_batch(batch));  // warm-up: connections, indexes, caches
    long done = 0;
    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    while (done < messages) {
      const long n = std::min(batch, messages - done);
      s->append_messages(make_batch(n));
      done += n;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_seconds() - cpu0;
    std::printf(
        "{\"store\": \"%s\", \"batch\": %ld, \"messages\": %ld, \"seconds\": %.6f, \"messages_per_s\": %.1f, "
        "\"client_cpu_us_per_message\": %.3f}\n",
        std::string(factory->kind()).c_str(), batch, done, secs, static_cast<double>(done) / secs,
        cpu / static_cast<double>(done) * 1e6);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chatorbit-store-bench: %s\n", e.what());
    return 1;
  }
}
