// The connect scenario: connections opened and closed as fast as possible.

#include "scenario_common.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
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
// connect

namespace {

ClientLoop::CloseMode parse_close_mode(const std::string& s) {
  if (s == "rst") return ClientLoop::CloseMode::rst;
  if (s == "graceful") return ClientLoop::CloseMode::graceful;
  if (s == "drop") return ClientLoop::CloseMode::drop;
  throw std::runtime_error("--close must be rst, graceful or drop");
}

class ConnectWorker final : public ConnHandler {
 public:
  ConnectWorker(const Options& o, const Target& t, std::string target, int protocol, std::atomic<int>& phase,
                std::uint64_t first_index)
      : o_(o),
        target_(t),
        path_(std::move(target)),
        protocol_(protocol),
        phase_(phase),
        mode_(parse_close_mode(o.close_mode)),
        loop_(*this, 16U << 10, o.verify_accept),
        index_(first_index) {}

  void run() {
    const int concurrency = o_.connect_concurrency > 0 ? o_.connect_concurrency : 64;
    std::uint64_t last_expire = mono_ns();
    for (;;) {
      const int phase = phase_.load(std::memory_order_acquire);
      if (phase == kStop) break;
      while (phase == kRun && loop_.live() < static_cast<std::size_t>(concurrency)) {
        if (!loop_.open(target_.spec(path_, index_++, 0))) {
          ConnEnd e;
          e.reason = EndReason::connect_failed;
          e.err = errno;
          ++ends[end_key("connect", e)];
          ++failures_;
          break;  // out of ports or descriptors: let some close first
        }
      }
      loop_.poll(10);
      const std::uint64_t now = mono_ns();
      if (now - last_expire > 500'000'000ULL) {
        loop_.expire(now, static_cast<std::uint64_t>(o_.handshake_timeout * 1e9));
        last_expire = now;
      }
      ok.store(ok_, std::memory_order_relaxed);
      failed.store(failures_, std::memory_order_relaxed);
    }
  }

  LatencyHistogram latency;
  std::map<std::string, std::uint64_t> ends;
  std::atomic<std::uint64_t> ok{0}, failed{0};

 private:
  void done(std::uint32_t id, std::uint64_t now) {
    if (phase_.load(std::memory_order_relaxed) == kRun) {
      ++ok_;
      latency.record(now - loop_.opened_at(id));
    }
    succeeded_ = true;
    loop_.close(id, 1000, mode_);
    succeeded_ = false;
  }
  void on_open(ClientLoop&, std::uint32_t id, std::uint64_t now) override {
    if (protocol_ == 1) done(id, now);
  }
  void on_text(ClientLoop&, std::uint32_t id, std::string_view payload, std::uint64_t now) override {
    if (payload.starts_with("{\"type\":\"welcome\"") && loop_.state(id) == ClientLoop::State::open) done(id, now);
  }
  void on_end(ClientLoop&, std::uint32_t, const ConnEnd& e) override {
    if (succeeded_ || e.reason == EndReason::local) return;  // ours, after success (or graceful close)
    if (phase_.load(std::memory_order_relaxed) != kRun) return;
    ++ends[end_key("connect", e)];
    ++failures_;
  }

  const Options& o_;
  const Target& target_;
  std::string path_;
  int protocol_;
  std::atomic<int>& phase_;
  ClientLoop::CloseMode mode_;
  ClientLoop loop_;
  std::uint64_t index_;
  std::uint64_t ok_ = 0, failures_ = 0;
  bool succeeded_ = false;
};

}  // namespace

int run_connect(const Options& o, Report& r) {
  if (!(o.duration > 0) || o.threads < 1) throw std::runtime_error("connect needs --duration > 0 and --threads >= 1");
  const int concurrency = o.connect_concurrency > 0 ? o.connect_concurrency : 64;
  const std::uint64_t nofile = raise_nofile(static_cast<std::uint64_t>(concurrency) * o.threads + 256);
  (void)nofile;
  const Target target = prepare_target(o, 1);
  const std::string room = o.room.empty() ? default_room() : o.room;
  const int protocol = o.protocol == 1 ? 1 : 2;
  std::string err;
  const auto token =
      register_and_login(target.http, fmt("%ld-%llu-c", static_cast<long>(getpid()), mono_ns() / 1000ULL), err);
  if (!token) throw std::runtime_error(err);
  const std::string path = target.with_query("room_id=" + room + (protocol == 2 ? "&v=2" : "") + "&token=" + *token);
  progress(o, fmt("connect: authenticated v%d handshakes%s, %d in flight per thread, %d thread(s), close %s, "
                  "server pid %ld",
                  protocol, protocol == 2 ? " until the welcome" : " until the 101", concurrency, o.threads,
                  o.close_mode.c_str(), target.pid));
  std::atomic<int> phase{kConnect};
  std::vector<std::unique_ptr<ConnectWorker>> workers;
  for (int t = 0; t < o.threads; ++t) {
    workers.push_back(std::make_unique<ConnectWorker>(o, target, path, protocol, phase,
                                                      static_cast<std::uint64_t>(t) * 1'000'000'007ULL));
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  auto totals = [&] {
    std::pair<std::uint64_t, std::uint64_t> t{0, 0};
    for (const auto& w : workers) {
      t.first += w->ok.load(std::memory_order_relaxed);
      t.second += w->failed.load(std::memory_order_relaxed);
    }
    return t;
  };
  const CpuSnap s0 = CpuSnap::take(target.pid);
  phase.store(kRun, std::memory_order_release);
  const auto run_ns = static_cast<std::uint64_t>(o.duration * 1e9);
  CpuSnap prev = s0;
  std::uint64_t prev_ok = 0;
  for (int tick = 1;; ++tick) {
    sleep_until_tick(s0.wall, tick, run_ns);
    const CpuSnap now = CpuSnap::take(target.pid);
    const auto [ok, failed] = totals();
    progress(o, fmt("connect %5.1fs: %llu connects (%.0f/s), %llu failed; server cpu %s", to_s(now.wall - s0.wall),
                    static_cast<unsigned long long>(ok),
                    static_cast<double>(ok - prev_ok) / std::max(1e-9, to_s(now.wall - prev.wall)),
                    static_cast<unsigned long long>(failed), cpu_text(cpu_share(prev, now)).c_str()));
    prev = now;
    prev_ok = ok;
    if (now.wall - s0.wall >= run_ns || g_interrupted) break;
  }
  phase.store(kDrain, std::memory_order_release);
  const CpuSnap s1 = CpuSnap::take(target.pid);
  const std::uint64_t failed = totals().second;
  sleep_ms(200);  // let the last closes reach the server before the threads close the rest
  phase.store(kStop, std::memory_order_release);
  for (auto& th : threads) th.join();
  LatencyHistogram latency;
  std::map<std::string, std::uint64_t> ends;
  for (const auto& w : workers) {
    latency.merge(w->latency);
    for (const auto& [k, v] : w->ends) ends[k] += v;
  }
  // Counted while the phase was kRun, so a handful may have completed after s1.
  const std::uint64_t ok = latency.count();
  const double secs = to_s(s1.wall - s0.wall);
  std::optional<double> cpu_per;
  if (s0.server && s1.server && ok) cpu_per = static_cast<double>(*s1.server - *s0.server) / static_cast<double>(ok);

  report_without_deliveries(r, "connect");
  r.null("rss_bytes_per_connection");
  r.num("connects_per_s", static_cast<double>(ok) / secs);
  r.integer("connects", static_cast<long long>(ok));
  r.integer("failures", static_cast<long long>(failed));
  r.num("duration_s", secs);
  add_latency(r, "connect_", latency);
  r.chart("connect -> welcome", latency);
  r.num("server_cpu_ns_per_connect", cpu_per);
  r.num("server_cpu_percent", cpu_share(s0, s1) ? std::optional<double>(*cpu_share(s0, s1) * 100) : std::nullopt);
  r.num("bench_cpu_ns_per_connect", ok ? static_cast<double>(s1.self - s0.self) / static_cast<double>(ok) : NAN);
  r.integer("protocol", protocol);
  r.integer("concurrency", concurrency);
  r.integer("threads", o.threads);
  r.str("close", o.close_mode);
  r.integer("server_pid", target.pid);
  r.raw("failure_reasons", map_json(ends));

  r.line(fmt("connect: %llu authenticated connects in %.1f s: %.0f/s; %llu failed", static_cast<unsigned long long>(ok),
             secs, static_cast<double>(ok) / secs, static_cast<unsigned long long>(failed)));
  r.line(std::string("  connect->") + (protocol == 2 ? "welcome" : "101") + " latency: " + latency_text(latency));
  r.line(fmt("  server cpu %s, %s us per connect; bench %.1f us per connect", cpu_text(cpu_share(s0, s1)).c_str(),
             cpu_per ? fmt("%.1f", *cpu_per / 1e3).c_str() : "n/a",
             ok ? static_cast<double>(s1.self - s0.self) / static_cast<double>(ok) / 1e3 : 0.0));
  r.line("  failures: " + map_text(ends));
  return 0;
}

}  // namespace chatorbit::bench
