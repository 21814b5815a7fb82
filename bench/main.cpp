// chatorbit-bench: load generator and measuring tool for the ChatOrbit chat server.
// See bench/README.md.

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "chart.hpp"
#include "scenarios.hpp"

namespace {

using chatorbit::bench::Options;
using chatorbit::bench::Report;

constexpr const char* kUsage = R"(chatorbit-bench SCENARIO [options]

Scenarios
  fanout   N read-only viewers and S signed-in senders in one room; the senders share
           R messages/s. Measures deliveries/s, send->viewer latency, loss,
           duplication and reordering per viewer, server CPU per delivery.
  rooms    The fanout load spread over many rooms (default 1,000 rooms, 18,000 viewers,
           1,000 senders, 2,000 msg/s in all); every figure of fanout, per room.
  ingress  Senders as fast as their window allows (no schedule); by default 64 rooms
           of one sender and one viewer. Messages/s accepted, stored (acknowledged
           after commit, and checked against the server's
           chatorbit_messages_stored_total) and delivered.
  limit    The physical reference: the cost of writing a small frame to N loopback
           TCP sockets, one frame per send() and K frames per send()/writev().
           No server involved.
  idle     Opens N idle WebSocket connections and reports the server's RSS growth
           per connection.
  connect  Authenticated WebSocket connects per second (handshake with a token until
           the welcome frame, then close), repeated for --duration.

Common options
  --url ws://HOST:PORT[/path]   server (default ws://127.0.0.1:8080; path /ws/chat)
  --http-url http://HOST:PORT   where POST /register and /login go (default: --url's)
  --url URL1,URL2,...           fanout, rooms, ingress: nodes of one chat (sharing a
                                Redis); sender g goes to node g mod K, viewer i to
                                node (i + 1) mod K
  --server-pid PID              server process for CPU (/proc/PID/stat) and RSS
                                (/proc/PID/status); default: the process listening on
                                the URL's port, if it is local; 0: none
  --server-pid P1,P2,...        fanout, rooms, ingress: the CPU of every one of them
                                (nodes, Redis) is summed, and reported per process
  --threads T                   client threads, one epoll loop each (default 1)
  --room ID                     room (default: a fresh bench-<pid>-<ms>)
  --protocol 1|2                viewers' protocol (fanout, idle: 1; connect: 2)
  --source-ips K                spread connections over 127.0.0.1..127.0.0.K (bind
                                before connect) to pass the ~28k ephemeral ports per
                                source address (default: one per 10,000 connections)
  --connect-concurrency C       handshakes in flight per thread (fanout/idle 256,
                                connect 64)
  --connect-timeout S           give up connecting after S seconds (default 300)
  --handshake-timeout S         one handshake's limit (default 15)
  --settle S                    pause between connecting and measuring (default 1)
  --no-verify-accept            do not check Sec-WebSocket-Accept (saves a SHA-1 each)
  --delayed-ack                 fanout, diagnostic only: keep TCP_QUICKACK off on the
                                viewers' sockets so the kernel does not ACK each small
                                frame as it is read. Halves the client's cost, but the
                                server's unacknowledged frames then fill its socket
                                buffers: it changes what is measured
  --json                        print one JSON object on stdout (summary to stderr)
  --out FILE.json               also write that JSON object to FILE.json and, for the
                                scenarios that time something, the latency histogram
                                chart to FILE.svg beside it
  --quiet                       no progress lines on stderr
  -h, --help

fanout, rooms, ingress
  --viewers N (100)  --senders S (1)  --rate R msg/s for all senders (10; ingress has
  no rate)  --rooms R (1) viewers and senders dealt round-robin over R rooms
  --accounts A (16) accounts the senders share  --duration SECONDS of sending (10)
  --window W unacknowledged messages per sender (32)  --pad P extra characters per message (0)  --drain S longest wait for the
  last deliveries (10)  --read-interval-us U  poll the sockets at most every U µs
  (0): several frames per read, so a cheaper client, at the price of latencies
  overstated by up to U; for runs where the client would otherwise be the limit
  --role both|viewers|senders   one part of a load split over processes: viewers
  connect, write --ready-file, wait for --expect-file (the acknowledged messages,
  written by a senders process with --acked-out FILE) and judge loss against it;
  --histogram adds the latency buckets to the JSON
  (bench/multinode.py merges them). CLOCK_MONOTONIC is shared by every process of
  the machine, so latencies across processes are exact.
  Each message's content is "b:<sender>:<counter>:<CLOCK_MONOTONIC send ns>"; the
  senders use protocol 2 with a cid and count acks; loss is judged per viewer against
  the acknowledged messages once the drain is over.

limit
  --sockets N (1000)  --frame-bytes B (120)  --coalesce 1,4,32  --duration S per
  probe (10; 1-3 is plenty)  --rounds R (1: the list of probes R times over, each
  probe's median and range reported)  --sender-cpu C  --receiver-cpu C (pin the two
  threads)

idle
  --connections N (1000)  --rooms R (1)  --hold S keep them open S more seconds,
  answering pings (0)

connect
  --duration S (10)  --connect-concurrency C (64)  --close rst|graceful|drop (rst:
  close frame then RST, so no TIME_WAIT piles up)

The server must be started with limits that do not get in the way, for example
  CHATORBIT_RATE_LIMIT=1000000/1s              (per-user message limit; default 20/30s)
  CHATORBIT_MAX_CONNECTIONS_PER_IP=1000000     (default 1000)
  CHATORBIT_CONNECT_RATE_PER_IP=1000000/1s     (default 200/1s)
and, for many connections, an open-file limit above the connection count for both
processes (ulimit -n / prlimit --nofile). This tool raises its own RLIMIT_NOFILE to
the hard limit (and beyond, when run as root). Pin the server and the bench to
different cores: taskset -c 0 chatorbit, taskset -c 1 chatorbit-bench.

JSON keys always present: scenario, deliveries_per_s, p50_ms, p90_ms, p99_ms,
p999_ms, max_ms, mean_ms, lost, duplicated, reordered, server_cpu_ns_per_delivery,
rss_bytes_per_connection (null where a scenario does not measure it), plus the
scenario's own.
)";

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) std::fprintf(stderr, "chatorbit-bench: cannot write %s\n", path.c_str());
  return static_cast<bool>(f);
}

/// --out: the JSON report, and the chart beside it when the scenario timed anything.
bool write_outputs(const Options& o, const Report& r) {
  bool ok = write_file(o.out, r.json() + "\n");
  if (r.charts.empty()) return ok;
  std::vector<chatorbit::bench::ChartSeries> series;
  for (const auto& [label, h] : r.charts) series.push_back({label, &h});
  const std::string base = o.out.ends_with(".json") ? o.out.substr(0, o.out.size() - 5) : o.out;
  // The summary's first line says what ran (scenario, counts, rate, duration).
  std::string title = r.lines.empty() ? "chatorbit-bench " + o.scenario : r.lines.front();
  title = title.substr(0, title.find(" (room "));
  ok = write_file(base + ".svg", chatorbit::bench::latency_chart_svg(title, series)) && ok;
  return ok;
}

void on_signal(int) {
  if (chatorbit::bench::g_interrupted.exchange(true)) std::_Exit(130);  // a second ^C
}

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "chatorbit-bench: %s\n(see chatorbit-bench --help)\n", msg.c_str());
  std::exit(2);
}

double to_double(const std::string& key, const std::string& v) {
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0') usage_error("--" + key + " wants a number, not '" + v + "'");
  return d;
}

int to_int(const std::string& key, const std::string& v) {
  char* end = nullptr;
  const long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n < -1 || n > 100'000'000) usage_error("--" + key + " wants a whole number");
  return static_cast<int>(n);
}

/// "a,b,c" -> {"a", "b", "c"} (empty parts dropped).
std::vector<std::string> split(const std::string& v) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= v.size()) {
    const std::size_t comma = v.find(',', pos);
    std::string part = v.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!part.empty()) out.push_back(std::move(part));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  std::map<std::string, std::function<void(const std::string&)>> valued = {
      {"url",
       [&](const std::string& v) {
         o.urls = split(v);
         if (o.urls.empty()) usage_error("--url wants a URL");
         o.url = o.urls.front();
       }},
      {"http-url", [&](const std::string& v) { o.http_url = v; }},
      {"room", [&](const std::string& v) { o.room = v; }},
      {"viewers", [&](const std::string& v) { o.viewers = to_int("viewers", v); }},
      {"senders", [&](const std::string& v) { o.senders = to_int("senders", v); }},
      {"rate", [&](const std::string& v) { o.rate = to_double("rate", v); }},
      {"duration", [&](const std::string& v) { o.duration = to_double("duration", v); }},
      {"window", [&](const std::string& v) { o.window = to_int("window", v); }},
      {"accounts", [&](const std::string& v) { o.accounts = to_int("accounts", v); }},
      {"pad", [&](const std::string& v) { o.pad = to_int("pad", v); }},
      {"drain", [&](const std::string& v) { o.drain = to_double("drain", v); }},
      {"read-interval-us", [&](const std::string& v) { o.read_interval_us = to_double("read-interval-us", v); }},
      {"threads", [&](const std::string& v) { o.threads = to_int("threads", v); }},
      {"protocol", [&](const std::string& v) { o.protocol = to_int("protocol", v); }},
      {"source-ips", [&](const std::string& v) { o.source_ips = to_int("source-ips", v); }},
      {"connect-concurrency", [&](const std::string& v) { o.connect_concurrency = to_int("connect-concurrency", v); }},
      {"concurrency", [&](const std::string& v) { o.connect_concurrency = to_int("concurrency", v); }},
      {"connect-timeout", [&](const std::string& v) { o.connect_timeout = to_double("connect-timeout", v); }},
      {"handshake-timeout", [&](const std::string& v) { o.handshake_timeout = to_double("handshake-timeout", v); }},
      {"settle", [&](const std::string& v) { o.settle = to_double("settle", v); }},
      {"connections", [&](const std::string& v) { o.connections = to_int("connections", v); }},
      {"rooms", [&](const std::string& v) { o.rooms = to_int("rooms", v); }},
      {"hold", [&](const std::string& v) { o.hold = to_double("hold", v); }},
      {"close", [&](const std::string& v) { o.close_mode = v; }},
      {"sockets", [&](const std::string& v) { o.sockets = to_int("sockets", v); }},
      {"frame-bytes", [&](const std::string& v) { o.frame_bytes = to_int("frame-bytes", v); }},
      {"sender-cpu", [&](const std::string& v) { o.sender_cpu = to_int("sender-cpu", v); }},
      {"receiver-cpu", [&](const std::string& v) { o.receiver_cpu = to_int("receiver-cpu", v); }},
      {"rounds",
       [&](const std::string& v) {
         o.rounds = to_int("rounds", v);
         if (o.rounds < 1) usage_error("--rounds must be at least 1");
       }},
      {"server-pid",
       [&](const std::string& v) {
         const auto pids = split(v);
         if (pids.empty()) usage_error("--server-pid wants a pid");
         o.server_pid = to_int("server-pid", pids.front());
         o.more_pids.clear();
         for (std::size_t i = 1; i < pids.size(); ++i) o.more_pids.push_back(to_int("server-pid", pids[i]));
       }},
      {"role", [&](const std::string& v) { o.role = v; }},
      {"ready-file", [&](const std::string& v) { o.ready_file = v; }},
      {"expect-file", [&](const std::string& v) { o.expect_file = v; }},
      {"acked-out", [&](const std::string& v) { o.acked_out = v; }},
      {"out", [&](const std::string& v) { o.out = v; }},
      {"coalesce",
       [&](const std::string& v) {
         o.coalesce.clear();
         std::size_t pos = 0;
         while (pos <= v.size()) {
           const std::size_t comma = v.find(',', pos);
           const std::string part = v.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
           o.coalesce.push_back(to_int("coalesce", part));
           if (comma == std::string::npos) break;
           pos = comma + 1;
         }
       }},
  };
  std::map<std::string, std::function<void()>> flags = {
      {"json", [&] { o.json = true; }},
      {"quiet", [&] { o.quiet = true; }},
      {"no-verify-accept", [&] { o.verify_accept = false; }},
      {"delayed-ack", [&] { o.delayed_ack = true; }},
      {"histogram", [&] { o.histogram = true; }},
  };
  // The scenario first, wherever it stands: its defaults come before the options.
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (!a.starts_with("--")) {
      o.scenario = a;
      break;
    }
    if (a.find('=') == std::string::npos && valued.contains(a.substr(2))) ++i;
  }
  chatorbit::bench::scenario_defaults(o);
  o.scenario.clear();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help" || a == "help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (!a.starts_with("--")) {
      if (!o.scenario.empty()) usage_error("unexpected argument '" + a + "'");
      o.scenario = a;
      continue;
    }
    a = a.substr(2);
    std::string value;
    bool has_value = false;
    if (const auto eq = a.find('='); eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    if (const auto f = flags.find(a); f != flags.end()) {
      if (has_value) usage_error("--" + a + " takes no value");
      f->second();
      continue;
    }
    const auto v = valued.find(a);
    if (v == valued.end()) usage_error("unknown option --" + a);
    if (!has_value) {
      if (i + 1 >= argc) usage_error("--" + a + " wants a value");
      value = argv[++i];
    }
    v->second(value);
  }
  if (o.scenario.empty()) usage_error("no scenario (fanout, rooms, ingress, limit, idle or connect)");
  if (o.role != "both" && o.role != "viewers" && o.role != "senders") usage_error("--role is both, viewers or senders");
  if (o.role == "viewers" && o.expect_file.empty()) usage_error("--role viewers needs --expect-file");
  if (o.urls.empty()) o.urls.push_back(o.url);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  Report r;
  int rc = 0;
  try {
    if (o.scenario == "fanout") {
      rc = chatorbit::bench::run_fanout(o, r);
    } else if (o.scenario == "rooms") {
      rc = chatorbit::bench::run_rooms(o, r);
    } else if (o.scenario == "ingress") {
      rc = chatorbit::bench::run_ingress(o, r);
    } else if (o.scenario == "limit") {
      rc = chatorbit::bench::run_limit(o, r);
    } else if (o.scenario == "idle") {
      rc = chatorbit::bench::run_idle(o, r);
    } else if (o.scenario == "connect") {
      rc = chatorbit::bench::run_connect(o, r);
    } else {
      usage_error("unknown scenario '" + o.scenario + "'");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chatorbit-bench %s: %s\n", o.scenario.c_str(), e.what());
    if (o.json) {
      Report err;
      err.str("scenario", o.scenario);
      err.str("error", e.what());
      std::printf("%s\n", err.json().c_str());
    }
    return 1;
  }
  if (chatorbit::bench::g_interrupted) r.raw("interrupted", "true");
  FILE* human = o.json ? stderr : stdout;
  if (!(o.json && o.quiet)) {
    for (const auto& line : r.lines) std::fprintf(human, "%s\n", line.c_str());
  }
  if (o.json) std::printf("%s\n", r.json().c_str());
  std::fflush(stdout);
  if (!o.out.empty() && !write_outputs(o, r)) return rc ? rc : 1;
  return rc;
}
