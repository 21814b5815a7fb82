#pragma once
// What more than one scenario of chatorbit-bench uses: formatting and progress output,
// CPU snapshots, the connection target, account setup, and report helpers.

#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client_loop.hpp"
#include "http_client.hpp"
#include "scenarios.hpp"
#include "stats.hpp"

namespace chatorbit::bench::detail {

enum Phase : int { kConnect = 0, kRun = 1, kDrain = 2, kStop = 3 };

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));

void progress(const Options& o, const std::string& line);

inline double to_ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }
inline double to_s(std::uint64_t ns) { return static_cast<double>(ns) / 1e9; }

inline void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

/// Sleeps until `tick` seconds after `start`, or `limit_ns` after it if that comes first,
/// or until interrupted: the pace of a scenario's progress lines.
void sleep_until_tick(std::uint64_t start, int tick, std::uint64_t limit_ns);

/// CPU time of this process (user + system), in nanoseconds.
std::uint64_t self_cpu_ns();

/// A snapshot of the CPU time spent so far, to subtract.
struct CpuSnap {
  std::uint64_t wall = 0;
  std::optional<std::uint64_t> server;  ///< of every pid taken, summed (none if one is unknown)
  std::uint64_t self = 0;
  std::vector<std::optional<std::uint64_t>> each;  ///< per pid, when taken for several
  static CpuSnap take(long pid) { return {mono_ns(), proc_cpu_ns(pid), self_cpu_ns(), {}}; }
  static CpuSnap take(const std::vector<long>& pids);
};

/// Server CPU over an interval, as a share of one core.
std::optional<double> cpu_share(const CpuSnap& a, const CpuSnap& b);

std::string cpu_text(std::optional<double> share);

/// Where the connections go, and from where.
struct Target {
  Url ws;                  ///< the first node
  std::vector<Url> nodes;  ///< every node (--url's list), ws first
  Url http;
  std::string path;  ///< the URL's path, default /ws/chat (may already hold a query)
  std::vector<in_addr> sources;
  long pid = 0;
  std::vector<long> pids;  ///< pid and --server-pid's others (empty if pid is 0)

  std::string with_query(const std::string& query) const {
    return path + (path.find('?') == std::string::npos ? "?" : "&") + query;
  }
  /// A connection to node `node` (mod the node count).
  ConnectSpec spec(const std::string& target, std::uint64_t index, std::uint32_t tag, std::size_t node = 0) const {
    const Url& to = nodes.empty() ? ws : nodes[node % nodes.size()];
    ConnectSpec s;
    s.server = to.addr;
    if (!sources.empty()) s.source = sources[index % sources.size()];
    s.host_header = to.host_header();
    s.target = target;
    s.tag = tag;
    return s;
  }
};

Target prepare_target(const Options& o, std::uint64_t connections);

std::string default_room();

/// A counter or gauge without labels from the server's GET /metrics, if it answers.
std::optional<double> scrape_metric(const Url& http, const std::string& name);

/// Registers a fresh account and logs it in; the token, or nullopt with `err` set.
std::optional<std::string> register_and_login(const Url& http, const std::string& tag, std::string& err);

std::string end_key(const char* role, const ConnEnd& e);

std::string map_json(const std::map<std::string, std::uint64_t>& m);

std::string map_text(const std::map<std::string, std::uint64_t>& m);

void add_latency(Report& r, const std::string& prefix, const LatencyHistogram& h);
/// The keys every --json report has, set to null for a scenario that makes no deliveries
/// (limit, idle, connect): "scenario", then deliveries, latency, loss and CPU per delivery.
void report_without_deliveries(Report& r, const char* scenario);

std::string latency_text(const LatencyHistogram& h);

}  // namespace chatorbit::bench::detail
