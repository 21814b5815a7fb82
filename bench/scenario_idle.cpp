// The idle scenario: many connections held open, the server's memory per connection.

#include "scenario_common.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <map>
#include <memory>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "client_loop.hpp"

namespace chatorbit::bench {

using namespace detail;

// ---------------------------------------------------------------------------------
// idle

namespace {

struct IdlePub {
  std::atomic<std::uint64_t> open{0}, failed{0}, closed{0}, pending{0};
};

/// open, failed, closed by the server, in progress
using IdleCounts = std::array<std::uint64_t, 4>;

class IdleWorker final : public ConnHandler {
 public:
  IdleWorker(const Options& o, const Target& t, std::atomic<int>& phase)
      : o_(o), target_(t), phase_(phase), loop_(*this, 16U << 10, o.verify_accept) {}

  void add(std::uint64_t index, std::string target) { todo_.emplace_back(index, std::move(target)); }

  void run() {
    std::uint64_t last_expire = mono_ns();
    const int max_pending = o_.connect_concurrency > 0 ? o_.connect_concurrency : 256;
    while (phase_.load(std::memory_order_acquire) != kStop) {
      while (pending_ < max_pending && next_ < todo_.size()) {
        const auto& [index, target] = todo_[next_++];
        if (loop_.open(target_.spec(target, index, 0))) {
          ++pending_;
        } else {
          ConnEnd e;
          e.reason = EndReason::connect_failed;
          e.err = errno;
          ++ends[end_key("idle", e)];
          ++failed_;
        }
      }
      loop_.poll(next_ < todo_.size() ? 5 : 100);
      const std::uint64_t now = mono_ns();
      if (now - last_expire > 1'000'000'000ULL) {
        loop_.expire(now, static_cast<std::uint64_t>(o_.handshake_timeout * 1e9));
        last_expire = now;
      }
      pub.open.store(open_, std::memory_order_relaxed);
      pub.failed.store(failed_, std::memory_order_relaxed);
      pub.closed.store(closed_, std::memory_order_relaxed);
      pub.pending.store(static_cast<std::uint64_t>(pending_), std::memory_order_relaxed);
    }
    pings = loop_.counters().pings;
  }

  std::map<std::string, std::uint64_t> ends;
  std::uint64_t pings = 0;
  LatencyHistogram latency;  // connect() to 101
  IdlePub pub;

 private:
  void on_open(ClientLoop&, std::uint32_t id, std::uint64_t now) override {
    --pending_;
    ++open_;
    latency.record(now - loop_.opened_at(id));
  }
  void on_text(ClientLoop&, std::uint32_t, std::string_view, std::uint64_t) override {}
  void on_end(ClientLoop&, std::uint32_t, const ConnEnd& e) override {
    ++ends[end_key("idle", e)];
    if (e.was_open) {
      --open_;
      ++closed_;
    } else {
      --pending_;
      ++failed_;
    }
  }

  const Options& o_;
  const Target& target_;
  std::atomic<int>& phase_;
  ClientLoop loop_;
  std::vector<std::pair<std::uint64_t, std::string>> todo_;
  std::size_t next_ = 0;
  int pending_ = 0;
  std::uint64_t open_ = 0, failed_ = 0, closed_ = 0;
};

}  // namespace

int run_idle(const Options& o, Report& r) {
  if (o.connections < 1 || o.threads < 1 || o.rooms < 1) {
    throw std::runtime_error("idle needs --connections >= 1, --threads >= 1, --rooms >= 1");
  }
  const auto requested = static_cast<std::uint64_t>(o.connections);
  const std::uint64_t nofile = raise_nofile(requested + 256);
  // Keep a few descriptors for /proc and the like: running out of them mid-run would
  // also blind the RSS probe.
  const std::uint64_t n = std::min(requested, nofile > 128 ? nofile - 64 : 1);
  if (n < requested) {
    progress(o, fmt("warning: RLIMIT_NOFILE is %llu: opening %llu connections, not %llu (raise the hard limit: "
                    "ulimit -Hn, which needs CAP_SYS_RESOURCE)",
                    static_cast<unsigned long long>(nofile), static_cast<unsigned long long>(n),
                    static_cast<unsigned long long>(requested)));
  }
  const Target target = prepare_target(o, n);
  if (target.pid <= 0) progress(o, "idle: no server pid (--server-pid): RSS will not be measured");
  const std::string room = o.room.empty() ? default_room() : o.room;
  const int protocol = o.protocol == 2 ? 2 : 1;
  std::atomic<int> phase{kConnect};
  std::vector<std::unique_ptr<IdleWorker>> workers;
  for (int t = 0; t < o.threads; ++t) workers.push_back(std::make_unique<IdleWorker>(o, target, phase));
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::string room_i =
        o.rooms > 1 ? room + "-" + std::to_string(i % static_cast<std::uint64_t>(o.rooms)) : room;
    workers[i % workers.size()]->add(i, target.with_query("room_id=" + room_i + (protocol == 2 ? "&v=2" : "")));
  }
  progress(o, fmt("idle: %llu connections (v%d) in %d room(s) from %zu source address(es), server pid %ld",
                  static_cast<unsigned long long>(n), protocol, o.rooms,
                  std::max<std::size_t>(1, target.sources.size()), target.pid));
  const auto rss0 = proc_rss_bytes(target.pid);
  const CpuSnap s0 = CpuSnap::take(target.pid);
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  auto totals = [&] {
    IdleCounts t{};
    for (const auto& w : workers) {
      t[0] += w->pub.open.load(std::memory_order_relaxed);
      t[1] += w->pub.failed.load(std::memory_order_relaxed);
      t[2] += w->pub.closed.load(std::memory_order_relaxed);
      t[3] += w->pub.pending.load(std::memory_order_relaxed);
    }
    return t;
  };
  IdleCounts t{};
  std::uint64_t last_print = s0.wall;
  std::uint64_t prev_open = 0;
  CpuSnap prev = s0;
  for (;;) {
    sleep_ms(50);
    t = totals();
    const std::uint64_t now = mono_ns();
    const bool done = t[0] + t[1] + t[2] >= n;
    if (now - last_print >= 1'000'000'000ULL || done) {
      const auto rss = proc_rss_bytes(target.pid);
      const CpuSnap snap = CpuSnap::take(target.pid);
      progress(o, fmt("idle connecting %5.1fs: open %llu/%llu (+%llu), failed %llu, closed %llu, in progress %llu; "
                      "server rss %.1f MiB, cpu %s",
                      to_s(now - s0.wall), static_cast<unsigned long long>(t[0]), static_cast<unsigned long long>(n),
                      static_cast<unsigned long long>(t[0] - std::min(t[0], prev_open)),
                      static_cast<unsigned long long>(t[1]), static_cast<unsigned long long>(t[2]),
                      static_cast<unsigned long long>(t[3]), rss ? static_cast<double>(*rss) / 1048576.0 : 0.0,
                      cpu_text(cpu_share(prev, snap)).c_str()));
      prev = snap;
      prev_open = t[0];
      last_print = now;
    }
    if (done || g_interrupted) break;
    if (to_s(now - s0.wall) > o.connect_timeout) {
      progress(o, "idle: connect timeout");
      break;
    }
  }
  const CpuSnap s1 = CpuSnap::take(target.pid);
  const double connect_s = to_s(s1.wall - s0.wall);
  // Let the server finish what each connect set off (presence, handshake buffers).
  sleep_ms(static_cast<int>(std::max(1.0, o.settle) * 1000));
  const auto rss1 = proc_rss_bytes(target.pid);
  t = totals();
  const std::uint64_t open_after_settle = t[0];
  std::optional<std::uint64_t> rss2;
  std::uint64_t open_after_hold = open_after_settle;
  if (o.hold > 0) {
    const std::uint64_t h0 = mono_ns();
    while (to_s(mono_ns() - h0) < o.hold && !g_interrupted) {
      sleep_ms(1000);
      t = totals();
      const auto rss = proc_rss_bytes(target.pid);
      progress(o, fmt("idle holding %5.1fs: open %llu, closed %llu; server rss %.1f MiB", to_s(mono_ns() - h0),
                      static_cast<unsigned long long>(t[0]), static_cast<unsigned long long>(t[2]),
                      rss ? static_cast<double>(*rss) / 1048576.0 : 0.0));
    }
    rss2 = proc_rss_bytes(target.pid);
    open_after_hold = totals()[0];
  }
  phase.store(kStop, std::memory_order_release);
  for (auto& th : threads) th.join();
  std::map<std::string, std::uint64_t> ends;
  std::uint64_t pings = 0;
  LatencyHistogram latency;
  for (const auto& w : workers) {
    for (const auto& [k, v] : w->ends) ends[k] += v;
    pings += w->pings;
    latency.merge(w->latency);
  }

  std::optional<double> per_conn;
  if (rss0 && rss1 && open_after_settle) {
    per_conn = (static_cast<double>(*rss1) - static_cast<double>(*rss0)) / static_cast<double>(open_after_settle);
  }
  std::optional<double> cpu_per_connect;
  if (s0.server && s1.server && open_after_settle) {
    cpu_per_connect = static_cast<double>(*s1.server - *s0.server) / static_cast<double>(open_after_settle);
  }
  report_without_deliveries(r, "idle");
  r.num("rss_bytes_per_connection", per_conn);
  r.integer("connections", static_cast<long long>(n));
  r.integer("connections_requested", static_cast<long long>(requested));
  r.integer("connections_open", static_cast<long long>(open_after_settle));
  r.integer("connections_failed", static_cast<long long>(t[1]));
  r.integer("connections_closed_by_server", static_cast<long long>(t[2]));
  r.num("connect_s", connect_s);
  r.num("connects_per_s", static_cast<double>(open_after_settle) / connect_s);
  r.num("rss_before_bytes", rss0 ? std::optional<double>(static_cast<double>(*rss0)) : std::nullopt);
  r.num("rss_after_bytes", rss1 ? std::optional<double>(static_cast<double>(*rss1)) : std::nullopt);
  r.num("rss_after_hold_bytes", rss2 ? std::optional<double>(static_cast<double>(*rss2)) : std::nullopt);
  r.integer("open_after_hold", static_cast<long long>(open_after_hold));
  r.num("hold_s", o.hold);
  r.num("server_cpu_ns_per_connect", cpu_per_connect);
  add_latency(r, "connect_", latency);
  r.chart("connect", latency);
  r.integer("pings_answered", static_cast<long long>(pings));
  r.integer("source_addresses", static_cast<long long>(std::max<std::size_t>(1, target.sources.size())));
  r.integer("nofile_limit", static_cast<long long>(nofile));
  r.integer("server_pid", target.pid);
  r.raw("connection_ends", map_json(ends));

  r.line(fmt("idle: %llu/%llu connections open (%llu failed) in %.1f s (%.0f/s)",
             static_cast<unsigned long long>(open_after_settle), static_cast<unsigned long long>(n),
             static_cast<unsigned long long>(t[1]), connect_s, static_cast<double>(open_after_settle) / connect_s));
  r.line(fmt("  server rss %.1f MiB -> %.1f MiB: %s bytes per connection",
             rss0 ? static_cast<double>(*rss0) / 1048576.0 : 0.0, rss1 ? static_cast<double>(*rss1) / 1048576.0 : 0.0,
             per_conn ? fmt("%.0f", *per_conn).c_str() : "n/a"));
  if (rss2) {
    r.line(fmt("  after holding %.0f s: rss %.1f MiB, %llu still open", o.hold, static_cast<double>(*rss2) / 1048576.0,
               static_cast<unsigned long long>(open_after_hold)));
  }
  r.line(fmt("  server cpu per connect %s us", cpu_per_connect ? fmt("%.1f", *cpu_per_connect / 1e3).c_str() : "n/a"));
  r.line("  connect->101 latency: " + latency_text(latency));
  r.line("  connection ends: " + map_text(ends));
  return 0;
}

}  // namespace chatorbit::bench
