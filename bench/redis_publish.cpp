// chatorbit-redis-bench: how many publications per second RedisEngine::publish() gets
// through to one Redis server, for comparison with `redis-benchmark ... PUBLISH` on the
// same server (bench/README.md, "Redis engine").
//
// T threads call publish() with a P-byte payload, each keeping at most W publications
// whose PublishDone has not come back; a thread that reaches W waits until its count
// is down to W/2 (a low watermark, so that it does not wake once per reply). After a
// warm-up, N publications (or --duration seconds' worth) are timed from the first
// publish() to the last PublishDone. Only the engine's publisher connection carries
// traffic: nothing subscribes to the channel, as with redis-benchmark.

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "engine/engine_factory.hpp"
#include "engine/redis/redis_engine.hpp"

namespace {

using namespace chatorbit;
using Steady = std::chrono::steady_clock;

constexpr const char* kUsage = R"(chatorbit-redis-bench --redis HOST:PORT [options]

Publications per second through RedisEngine::publish() (one publisher connection).
  --redis HOST:PORT   the Redis server (required)
  --payload BYTES     payload size (default 256)
  --threads T         publishing threads (default 1)
  --window W          unconfirmed publications per thread (default 1024)
  --count N           publications timed, after the warm-up (default 2000000)
  --duration S        or: time S seconds instead of a count
  --warmup N          publications before timing starts (default 100000)
  --channel NAME      channel (default chatorbit-redis-bench)
  --redis-pid PID     the server's pid, for its CPU per publication
  --json              one JSON object on stdout
)";

struct Options {
  std::string redis;
  std::size_t payload = 256;
  int threads = 1;
  std::int64_t window = 1024;
  std::int64_t count = 2'000'000;
  double duration = 0;
  std::int64_t warmup = 100'000;
  std::string channel = "chatorbit-redis-bench";
  long redis_pid = 0;
  bool json = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "chatorbit-redis-bench: %s\n\n%s", why.c_str(), kUsage);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " wants a value");
      return argv[++i];
    };
    if (a == "--redis") {
      o.redis = value();
    } else if (a == "--payload") {
      o.payload = std::stoul(value());
    } else if (a == "--threads") {
      o.threads = std::stoi(value());
    } else if (a == "--window") {
      o.window = std::stoll(value());
    } else if (a == "--count") {
      o.count = std::stoll(value());
    } else if (a == "--duration") {
      o.duration = std::stod(value());
    } else if (a == "--warmup") {
      o.warmup = std::stoll(value());
    } else if (a == "--channel") {
      o.channel = value();
    } else if (a == "--redis-pid") {
      o.redis_pid = std::stol(value());
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      usage("unknown option " + a);
    }
  }
  if (o.redis.empty()) usage("--redis is required");
  if (o.threads < 1 || o.window < 2 || o.count < 1 || o.warmup < 0)
    usage("bad --threads, --window, --count or --warmup");
  return o;
}

std::uint64_t self_cpu_ns() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& tv) {
    return static_cast<std::uint64_t>(tv.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(tv.tv_usec) * 1000ULL;
  };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

/// utime + stime of `pid` in ns (0 if unknown).
std::uint64_t proc_cpu_ns(long pid) {
  if (pid <= 0) return 0;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(f, s)) return 0;
  std::istringstream in(s.substr(s.rfind(')') + 2));
  std::string field;
  std::uint64_t ticks = 0;
  for (int i = 3; i <= 15 && (in >> field); ++i) {
    if (i == 14 || i == 15) ticks += std::strtoull(field.c_str(), nullptr, 10);
  }
  return ticks * (1'000'000'000ULL / static_cast<std::uint64_t>(sysconf(_SC_CLK_TCK)));
}

/// One publishing thread's window: PublishDone callbacks (on the engine's network
/// thread) count down, the thread waits at the watermark.
struct Window {
  std::int64_t limit = 0;
  std::int64_t low = 0;
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<std::int64_t> done{0};
  std::atomic<std::int64_t> errors{0};
  std::mutex mu;
  std::condition_variable cv;

  void completed(std::string_view error) {
    if (!error.empty()) errors.fetch_add(1, std::memory_order_relaxed);
    done.fetch_add(1, std::memory_order_relaxed);
    if (in_flight.fetch_sub(1, std::memory_order_acq_rel) - 1 == low) {
      std::lock_guard lock(mu);
      cv.notify_one();
    }
  }
  void wait_for_room() {
    if (in_flight.load(std::memory_order_acquire) < limit) return;
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return in_flight.load(std::memory_order_acquire) <= low; });
  }
};

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  log::set_level(log::Level::warn);
  engine::redis::RedisTopology topology;
  topology.nodes.push_back(engine::parse_redis_endpoint(o.redis, "--redis"));
  engine::redis::RedisEngine engine(topology, RedisSettings{}, SystemClock::instance());
  for (int i = 0; i < 500 && !engine.broker_health().up; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  if (const auto h = engine.broker_health(); !h.up) {
    std::fprintf(stderr, "chatorbit-redis-bench: Redis at %s is not up: %s\n", o.redis.c_str(), h.detail.c_str());
    return 1;
  }
  const auto payload = std::make_shared<const std::string>(std::string(o.payload, 'x'));

  // The threads publish until told to stop; the main thread watches the total number of
  // PublishDone callbacks.
  std::vector<std::unique_ptr<Window>> windows;
  for (int t = 0; t < o.threads; ++t) {
    auto w = std::make_unique<Window>();
    w->limit = o.window;
    w->low = o.window / 2;
    windows.push_back(std::move(w));
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    threads.emplace_back([&, w = windows[static_cast<std::size_t>(t)].get()] {
      engine::PublishDone done = [w](std::string_view error) { w->completed(error); };
      while (!stop.load(std::memory_order_relaxed)) {
        w->wait_for_room();
        w->in_flight.fetch_add(1, std::memory_order_relaxed);
        engine.publish(o.channel, payload, done);
      }
    });
  }
  auto total_done = [&] {
    std::int64_t n = 0;
    for (const auto& w : windows) n += w->done.load(std::memory_order_relaxed);
    return n;
  };
  while (total_done() < o.warmup) std::this_thread::sleep_for(std::chrono::microseconds{200});
  const std::int64_t d0 = total_done();
  const auto t0 = Steady::now();
  const std::uint64_t cpu0 = self_cpu_ns();
  const std::uint64_t redis0 = proc_cpu_ns(o.redis_pid);
  const std::int64_t goal = o.duration > 0 ? INT64_MAX : d0 + o.count;
  const auto until = t0 + std::chrono::duration_cast<Steady::duration>(std::chrono::duration<double>(o.duration));
  for (;;) {
    std::this_thread::sleep_for(std::chrono::microseconds{200});
    if (o.duration > 0 ? Steady::now() >= until : total_done() >= goal) break;
  }
  const std::int64_t d1 = total_done();
  const auto t1 = Steady::now();
  const std::uint64_t cpu1 = self_cpu_ns();
  const std::uint64_t redis1 = proc_cpu_ns(o.redis_pid);
  stop = true;
  for (auto& th : threads) th.join();
  // Let what is still in flight come back before the engine goes.
  for (int i = 0; i < 2000; ++i) {
    std::int64_t left = 0;
    for (const auto& w : windows) left += w->in_flight.load();
    if (left == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  std::int64_t errors = 0;
  for (const auto& w : windows) errors += w->errors.load();

  const double secs = std::chrono::duration<double>(t1 - t0).count();
  const auto n = static_cast<double>(d1 - d0);
  const double rate = n / secs;
  const double cpu_ns = static_cast<double>(cpu1 - cpu0) / n;
  const double redis_ns = o.redis_pid > 0 ? static_cast<double>(redis1 - redis0) / n : 0;
  if (o.json) {
    std::printf(
        "{\"publications_per_s\":%.1f,\"publications\":%lld,\"errors\":%lld,\"seconds\":%.4f,\"payload\":%zu,"
        "\"threads\":%d,\"window\":%lld,\"client_cpu_ns_per_publication\":%.1f,\"client_cpu_percent\":%.1f,"
        "\"redis_cpu_ns_per_publication\":%s}\n",
        rate, static_cast<long long>(d1 - d0), static_cast<long long>(errors), secs, o.payload, o.threads,
        static_cast<long long>(o.window), cpu_ns, static_cast<double>(cpu1 - cpu0) / secs / 1e7,
        o.redis_pid > 0 ? std::to_string(redis_ns).c_str() : "null");
  } else {
    std::printf(
        "%.0f publications/s (%lld in %.3f s, %lld errors), payload %zu B, %d thread(s), window %lld; "
        "client CPU %.0f ns/publication%s\n",
        rate, static_cast<long long>(d1 - d0), secs, static_cast<long long>(errors), o.payload, o.threads,
        static_cast<long long>(o.window), cpu_ns,
        o.redis_pid > 0 ? (", redis CPU " + std::to_string(static_cast<long>(redis_ns)) + " ns/publication").c_str()
                        : "");
  }
  return errors == 0 ? 0 : 1;
}
