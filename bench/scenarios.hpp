#pragma once
// The scenarios of chatorbit-bench (fanout, rooms, ingress, limit, idle, connect) and what they share:
// options, the report, and the /proc probes of the server process.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "stats.hpp"

namespace chatorbit::bench {

struct Options {
  std::string scenario;
  std::string url = "ws://127.0.0.1:8080";
  /// --url's comma list: several nodes of one chat. fanout, rooms, ingress deal sender g
  /// to node g mod K and viewer i to node (i + 1) mod K; other scenarios use the first.
  std::vector<std::string> urls;
  std::string http_url;  ///< where /register and /login are; default: the host and port of url
  std::string room;      ///< default: a fresh "bench-<pid>-<time>"
  // fanout, rooms, ingress (defaults for rooms and ingress: scenario_defaults())
  int viewers = 100;
  int senders = 1;
  double rate = 10.0;      ///< messages per second, all senders together
  double duration = 10.0;  ///< seconds of sending (fanout), connecting (connect), or each probe (limit)
  int window = 32;         ///< unacknowledged messages per sender
  int accounts = 16;       ///< signed-in accounts the senders share (each costs a password hash)
  int pad = 0;             ///< extra content characters per message
  double drain = 10.0;     ///< at most this long to wait for the last deliveries
  /// Poll the sockets at most once per this many microseconds (0: as soon as data is
  /// there). Lets frames pile up so that one read takes several: cheaper for the
  /// client, but latencies are overstated by up to this much.
  double read_interval_us = 0;
  bool delayed_ack = false;  ///< see ClientLoop::set_delayed_ack()
  /// fanout/rooms: one part of a load split over processes (bench/multinode.py).
  /// "viewers": no senders; once connected, writes ready_file, waits for expect_file
  /// (what the senders had acknowledged, written by a "senders" process) and judges
  /// loss against it. "senders": no viewers; writes acked_out once its acks are in.
  std::string role = "both";
  std::string ready_file;
  std::string expect_file;
  std::string acked_out;
  bool histogram = false;  ///< add the latency histogram's buckets to the JSON (to merge runs)
  // all WebSocket scenarios
  int threads = 1;
  int protocol = 0;             ///< 1 or 2; 0 = the scenario's default (fanout/idle 1, connect 2)
  int source_ips = 0;           ///< 127.0.0.1..127.0.0.N; 0 = one per 10,000 connections
  int connect_concurrency = 0;  ///< handshakes in flight per thread; 0 = scenario default
  double connect_timeout = 300.0;
  double handshake_timeout = 15.0;
  double settle = 1.0;  ///< pause between connecting and measuring
  bool verify_accept = true;
  int rooms = 1;  ///< rooms the viewers and senders are dealt over, round-robin (also idle)
  // idle
  int connections = 1000;
  double hold = 0.0;
  // connect
  std::string close_mode = "rst";  ///< rst, graceful or drop
  // limit
  int sockets = 1000;
  int frame_bytes = 120;
  std::vector<int> coalesce = {1, 4, 32};
  int rounds = 1;  ///< times the whole list of probes runs; each probe's median is reported
  int sender_cpu = -1;
  int receiver_cpu = -1;
  // output
  long server_pid = -1;  ///< -1: find the process listening on the URL's port; 0: none
  /// --server-pid's comma list after the first: more processes of the system under test
  /// (other nodes, Redis). fanout, rooms, ingress add their CPU to the server's and report
  /// each one's as well.
  std::vector<long> more_pids;
  bool json = false;
  bool quiet = false;
  std::string out;  ///< write the JSON here too, and the latency chart beside it (.svg)
};

/// One flat JSON object, in insertion order, plus the human-readable summary.
class Report {
 public:
  void null(const std::string& key) { put(key, "null"); }
  void num(const std::string& key, double v);
  void num(const std::string& key, std::optional<double> v) { v ? num(key, *v) : null(key); }
  void integer(const std::string& key, long long v) { put(key, std::to_string(v)); }
  void str(const std::string& key, const std::string& v);
  void raw(const std::string& key, std::string json) { put(key, std::move(json)); }
  std::string json() const;

  /// A line of the human-readable summary.
  void line(std::string s) { lines.push_back(std::move(s)); }
  std::vector<std::string> lines;

  /// A latency distribution for the chart (the first one gets the percentile markers).
  void chart(std::string label, const LatencyHistogram& h) { charts.emplace_back(std::move(label), h); }
  std::vector<std::pair<std::string, LatencyHistogram>> charts;

  static std::string quote(const std::string& s);
  static std::string number(double v);

 private:
  void put(const std::string& key, std::string value);
  std::vector<std::pair<std::string, std::string>> fields_;
};

/// Set by SIGINT/SIGTERM: scenarios stop early and still report.
extern std::atomic<bool> g_interrupted;

/// Sets the defaults that differ by scenario (rooms: 1,000 rooms; ingress: 64 rooms of one
/// sender and one viewer), before the command line's options are applied.
void scenario_defaults(Options& o);

int run_fanout(const Options& o, Report& r);
int run_rooms(const Options& o, Report& r);
int run_ingress(const Options& o, Report& r);
int run_limit(const Options& o, Report& r);
int run_idle(const Options& o, Report& r);
int run_connect(const Options& o, Report& r);

// /proc probes (Linux).
/// utime + stime of `pid`, in nanoseconds.
std::optional<std::uint64_t> proc_cpu_ns(long pid);
/// VmRSS of `pid`, in bytes.
std::optional<std::uint64_t> proc_rss_bytes(long pid);
/// The kernel's ksoftirqd threads of the cores `pid` may run on (its Cpus_allowed_list).
/// Receive work that loopback could not finish inline on those cores runs there, and is
/// charged to no process of ours. Empty if `pid` is unknown.
std::vector<long> softirq_threads_of(long pid);
/// The CPU of `pids` summed, in nanoseconds; nullopt if one of them is gone.
std::optional<std::uint64_t> procs_cpu_ns(const std::vector<long>& pids);
/// The process with a listening TCP socket on `port` (other than this one), if any.
std::optional<long> find_listener_pid(std::uint16_t port);
/// Raises RLIMIT_NOFILE's soft limit to the hard limit, and both to `want` if that is
/// higher and allowed. Returns the soft limit in force.
std::uint64_t raise_nofile(std::uint64_t want);

}  // namespace chatorbit::bench
