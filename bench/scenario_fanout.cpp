// The chat-load scenarios, one engine with three faces:
// - fanout: viewers in one room, senders at a fixed rate; delivery latency and integrity.
// - rooms: the same spread over many rooms (viewers and senders dealt round-robin).
// - ingress: senders as fast as their window of unacknowledged messages allows; what the
//   server accepts, stores and delivers per second.
// The workers are in chat_load.hpp; this file is the main thread's side of a run.

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "chat_load.hpp"
#include "scenario_common.hpp"
#include "split_load.hpp"

namespace chatorbit::bench {

using namespace detail;

// ---------------------------------------------------------------------------------
// fanout

namespace {

enum class Load { fanout, rooms, ingress };

bool has_viewers(const Options& o) { return o.role != "senders"; }
bool has_senders(const Options& o) { return o.role != "viewers"; }

/// Checks the options; returns the connections the run opens (viewers and senders).
std::uint64_t check_options(const Options& o, const char* name, bool closed_loop) {
  if (o.viewers < 0 || o.senders < 1 || !(closed_loop || o.rate > 0) || !(o.duration > 0) || o.threads < 1 ||
      o.rooms < 1 || o.accounts < 1) {
    throw std::runtime_error(
        fmt("%s needs --viewers >= 0, --senders >= 1, --rate > 0, --duration > 0, --threads >= 1, "
            "--rooms >= 1, --accounts >= 1",
            name));
  }
  if (o.rooms > o.senders) throw std::runtime_error("--rooms must not exceed --senders: every room needs a sender");
  if (o.window < 1 || o.window > 4000) throw std::runtime_error("--window must be 1..4000");
  if (o.pad < 0 || o.pad > 400) throw std::runtime_error("--pad must be 0..400 (content is at most 500 characters)");
  const std::uint64_t total = (has_viewers(o) ? static_cast<std::uint64_t>(o.viewers) : 0) +
                              (has_senders(o) ? static_cast<std::uint64_t>(o.senders) : 0);
  const std::uint64_t nofile = raise_nofile(total + 256);
  if (nofile < total + 64) {
    throw std::runtime_error(
        fmt("RLIMIT_NOFILE is %llu, too low for %llu connections: lower --viewers or raise the "
            "hard limit (ulimit -Hn)",
            static_cast<unsigned long long>(nofile), static_cast<unsigned long long>(total)));
  }
  return total;
}

/// How the senders are paced, for the first and the summary line.
std::string pace_text(const FanoutShared& sh) {
  return sh.closed_loop ? fmt("window %d", sh.o.window) : fmt("%.1f msg/s", sh.o.rate);
}

/// Room i's id: the room itself when there is one, else "<room>-<i>".
std::string room_id(const FanoutShared& sh, const std::string& room, std::uint32_t i) {
  return sh.o.rooms == 1 ? room : room + "-" + std::to_string(i);
}

/// What the setup settles, for the report.
struct Setup {
  std::string room;  ///< the room, or the rooms' common prefix
  int accounts = 0;
  std::optional<double> stored_before;  ///< the server's stored-messages counter before the run
};

/// The target, the rooms and their viewers' targets, the schedule; says what the run
/// will be. Returns the room.
std::string plan_rooms(FanoutShared& sh, const char* name, std::uint64_t total) {
  const Options& o = sh.o;
  sh.target = prepare_target(o, total);
  const std::string room = o.room.empty() ? default_room() : o.room;
  sh.room_count = static_cast<std::uint32_t>(o.rooms);
  sh.rooms = std::make_unique<RoomPub[]>(sh.room_count);
  const int viewer_protocol = o.protocol == 2 ? 2 : 1;
  for (std::uint32_t i = 0; i < sh.room_count; ++i) {
    sh.viewer_targets.push_back(
        sh.target.with_query("room_id=" + room_id(sh, room, i) + (viewer_protocol == 2 ? "&v=2" : "")));
  }
  sh.per_sender_rate = o.rate / o.senders;
  sh.sender_spacing_ns = sh.closed_loop ? 0 : static_cast<std::uint64_t>(1e9 / o.rate);

  progress(o,
           fmt("%s: %d room(s) %s, %d viewers (v%d), %d senders, %s for %.1f s, server pid %ld", name, o.rooms,
               room.c_str(), o.viewers, viewer_protocol, o.senders, pace_text(sh).c_str(), o.duration, sh.target.pid));
  return room;
}

/// Registers and logs in the senders' accounts and sets the senders' targets; returns how
/// many accounts there are.
int login_senders(FanoutShared& sh, const char* name, const std::string& room) {
  const Options& o = sh.o;
  // Accounts are few (each costs a password hash on the server); senders share them.
  const std::string run_tag = fmt("%ld-%llu", static_cast<long>(getpid()), mono_ns() / 1000ULL);
  const int accounts = std::min(o.accounts, o.senders);
  std::vector<std::string> tokens;
  for (int i = 0; i < accounts; ++i) {
    std::string err;
    auto token = register_and_login(sh.target.http, run_tag + "-" + std::to_string(i), err);
    if (!token) throw std::runtime_error("account " + std::to_string(i) + ": " + err);
    tokens.push_back(std::move(*token));
    if (accounts > 4 && (i + 1) % 10 == 0) progress(o, fmt("%s: %d/%d accounts logged in", name, i + 1, accounts));
  }
  for (int g = 0; g < o.senders; ++g) {
    const auto gid = static_cast<std::uint32_t>(g);
    sh.sender_targets.push_back(sh.target.with_query("room_id=" + room_id(sh, room, sh.room_of_sender(gid)) +
                                                     "&v=2&token=" + tokens[static_cast<std::size_t>(g % accounts)]));
  }
  return accounts;
}

/// A counter of the server's /metrics, if it answers; over several nodes, their sum.
std::optional<double> scrape_nodes(const FanoutShared& sh, const std::string& name) {
  if (sh.target.nodes.size() <= 1) return scrape_metric(sh.target.http, name);
  double sum = 0;
  for (const Url& node : sh.target.nodes) {
    const auto v = scrape_metric(node, name);
    if (!v) return std::nullopt;
    sum += *v;
  }
  return sum;
}

/// The messages the server has stored so far (each node stores what its own senders post).
std::optional<double> scrape_stored(const FanoutShared& sh) {
  return scrape_nodes(sh, "chatorbit_messages_stored_total");
}

/// The server's own count of the frames it queued to viewers and of the writes that
/// carried them: over an interval, the frames per write it achieved. Absent where the
/// target does not count them (a gateway, another server).
struct ServerWrites {
  double frames = 0;
  double writes = 0;
};

std::optional<ServerWrites> scrape_writes(const FanoutShared& sh) {
  const auto frames = scrape_nodes(sh, "chatorbit_ws_frames_queued_total");
  const auto writes = scrape_nodes(sh, "chatorbit_ws_writes_total");
  if (!frames || !writes) return std::nullopt;
  return ServerWrites{*frames, *writes};
}

/// The worker threads, with the viewers and senders dealt round-robin over them. They run
/// from construction until stop(), at the latest until this goes.
struct Crew {
  explicit Crew(FanoutShared& shared) : sh(shared) {
    const Options& o = sh.o;
    for (int t = 0; t < o.threads; ++t) workers.push_back(std::make_unique<FanoutWorker>(sh));
    if (has_viewers(o)) {
      for (int i = 0; i < o.viewers; ++i) workers[i % o.threads]->add_viewer(static_cast<std::uint32_t>(i));
    }
    if (has_senders(o)) {
      for (int g = 0; g < o.senders; ++g) workers[g % o.threads]->add_sender(static_cast<std::uint32_t>(g));
    }
    for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  }
  Crew(const Crew&) = delete;
  Crew& operator=(const Crew&) = delete;
  ~Crew() { stop(); }

  FanoutTotals totals() const { return sum(workers); }
  void stop() {
    sh.phase.store(kStop, std::memory_order_release);
    for (auto& th : threads) {
      if (th.joinable()) th.join();
    }
  }

  FanoutShared& sh;
  std::vector<std::unique_ptr<FanoutWorker>> workers;
  std::vector<std::thread> threads;
};

/// Waits until every connection is open or has failed (or --connect-timeout), then
/// --settle. Returns the seconds connecting took.
double connect_all(Crew& crew, const char* name, std::uint64_t total) {
  const Options& o = crew.sh.o;
  const std::uint64_t c0 = mono_ns();
  std::uint64_t last_print = c0;
  FanoutTotals t;
  for (;;) {
    sleep_ms(50);
    t = crew.totals();
    const std::uint64_t done =
        t.viewers_open + t.viewers_failed + t.viewers_closed + t.senders_open + t.senders_failed + t.senders_closed;
    const std::uint64_t now = mono_ns();
    if (now - last_print >= 1'000'000'000ULL || done == total) {
      progress(o, fmt("%s connecting %5.1fs: viewers %llu/%d open, %llu failed; senders %llu/%d open, %llu failed",
                      name, to_s(now - c0), static_cast<unsigned long long>(t.viewers_open), o.viewers,
                      static_cast<unsigned long long>(t.viewers_failed + t.viewers_closed),
                      static_cast<unsigned long long>(t.senders_open), o.senders,
                      static_cast<unsigned long long>(t.senders_failed + t.senders_closed)));
      last_print = now;
    }
    if (done == total || g_interrupted) break;
    if (to_s(now - c0) > o.connect_timeout) {
      progress(o, fmt("%s: connect timeout; measuring with what is open", name));
      break;
    }
  }
  const double connect_s = to_s(mono_ns() - c0);
  if (t.senders_open == 0 && has_senders(o)) {
    crew.stop();
    throw std::runtime_error("no sender connected (see the server's log; is CHATORBIT_MAX_CONNECTIONS_PER_IP high?)");
  }
  if (o.settle > 0) sleep_ms(static_cast<int>(o.settle * 1000));
  if (!o.ready_file.empty() && !write_file_atomic(o.ready_file, fmt("%llu\n", static_cast<unsigned long long>(
                                                                                  t.viewers_open + t.senders_open)))) {
    throw std::runtime_error("cannot write --ready-file " + o.ready_file);
  }
  return connect_s;
}

/// What is read of the server beside its CPU at either end of the measured interval.
struct ServerCounters {
  std::optional<ServerWrites> writes;    ///< its /metrics counters
  std::optional<std::uint64_t> softirq;  ///< CPU of its cores' ksoftirqd threads

  static ServerCounters read(const FanoutShared& sh, const std::vector<long>& softirq_pids) {
    return {scrape_writes(sh), procs_cpu_ns(softirq_pids)};
  }
};

/// What the send phase leaves for the drain and the report.
struct Sending {
  CpuSnap s0;                      ///< when sending started
  std::vector<long> softirq_pids;  ///< the server's cores' ksoftirqd threads
  ServerCounters counters0;        ///< just after s0
  std::uint64_t t_end = 0;         ///< when it stopped
  FanoutTotals at_end;             ///< the totals then
};

/// Opens the measured interval: the first snapshots, then the workers start sending
/// (or, with --role viewers, counting).
Sending start_sending(FanoutShared& sh) {
  Sending sending;
  sending.s0 = CpuSnap::take(sh.target.pids);
  sending.softirq_pids = softirq_threads_of(sh.target.pid);
  sending.counters0 = ServerCounters::read(sh, sending.softirq_pids);
  sh.t0.store(sending.s0.wall, std::memory_order_release);
  sh.phase.store(kRun, std::memory_order_release);
  return sending;
}

/// Ends the sending; the drain follows.
void stop_sending(Crew& crew, Sending& sending) {
  crew.sh.phase.store(kDrain, std::memory_order_release);
  sending.t_end = mono_ns();
  sending.at_end = crew.totals();
}

/// Lets the senders send for --duration (or until every sender's connection has closed),
/// with a progress line a second.
Sending send_phase(Crew& crew, const char* name) {
  FanoutShared& sh = crew.sh;
  const Options& o = sh.o;
  Sending sending = start_sending(sh);
  const CpuSnap& s0 = sending.s0;
  const auto run_ns = static_cast<std::uint64_t>(o.duration * 1e9);
  CpuSnap prev = s0;
  std::uint64_t prev_deliveries = 0;
  for (int tick = 1;; ++tick) {
    sleep_until_tick(s0.wall, tick, run_ns);
    const CpuSnap now = CpuSnap::take(sh.target.pids);
    const FanoutTotals t = crew.totals();
    const double dt = to_s(now.wall - prev.wall);
    progress(o, fmt("%s %5.1fs: viewers %llu open (%llu closed), senders %llu; sent %llu acked %llu in flight %llu "
                    "errors %llu; deliveries %llu (%.0f/s); server cpu %s",
                    name, to_s(now.wall - s0.wall), static_cast<unsigned long long>(t.viewers_open),
                    static_cast<unsigned long long>(t.viewers_closed), static_cast<unsigned long long>(t.senders_open),
                    static_cast<unsigned long long>(t.sent), static_cast<unsigned long long>(t.acked),
                    static_cast<unsigned long long>(t.in_flight), static_cast<unsigned long long>(t.errors),
                    static_cast<unsigned long long>(t.deliveries),
                    dt > 0 ? static_cast<double>(t.deliveries - prev_deliveries) / dt : 0.0,
                    cpu_text(cpu_share(prev, now)).c_str()));
    prev = now;
    prev_deliveries = t.deliveries;
    if (now.wall - s0.wall >= run_ns || g_interrupted) break;
    if (t.senders_open == 0) {
      progress(o, fmt("%s: every sender's connection has closed; stopping", name));
      break;
    }
  }
  stop_sending(crew, sending);
  return sending;
}

/// --role viewers: the senders are another process. Receives until their --expect-file
/// appears (at most --duration seconds), with a progress line a second; loads what it
/// says into `expected` and into the rooms' acknowledged counts, for the drain.
Sending wait_for_senders(Crew& crew, const char* name, std::vector<CounterSet>& expected) {
  FanoutShared& sh = crew.sh;
  const Options& o = sh.o;
  Sending sending = start_sending(sh);
  const CpuSnap& s0 = sending.s0;
  const auto limit_ns = static_cast<std::uint64_t>(o.duration * 1e9);
  std::uint64_t last_print = s0.wall;
  for (;;) {
    if (auto e = read_expected(o.expect_file, sh.room_count)) {
      expected = std::move(*e);
      break;
    }
    const std::uint64_t now = mono_ns();
    if (now - s0.wall >= limit_ns || g_interrupted) {
      throw std::runtime_error("no --expect-file " + o.expect_file + " within --duration");
    }
    if (now - last_print >= 1'000'000'000ULL) {
      const FanoutTotals t = crew.totals();
      progress(o, fmt("%s %5.1fs: viewers %llu open (%llu closed); deliveries %llu; waiting for %s", name,
                      to_s(now - s0.wall), static_cast<unsigned long long>(t.viewers_open),
                      static_cast<unsigned long long>(t.viewers_closed), static_cast<unsigned long long>(t.deliveries),
                      o.expect_file.c_str()));
      last_print = now;
    }
    sleep_ms(20);
  }
  for (std::uint32_t r = 0; r < sh.room_count; ++r) {
    sh.rooms[r].acked.store(expected[r].size(), std::memory_order_relaxed);
  }
  stop_sending(crew, sending);
  return sending;
}

/// The end of the measured interval, for the report.
struct Drained {
  FanoutTotals totals;  ///< at the drain's last look
  CpuSnap s1;
  std::optional<std::uint64_t> server_rss;
  std::vector<std::optional<std::uint64_t>> rss_each;  ///< per --server-pid
  std::optional<double> stored_after;                  ///< the server's stored-messages counter
  ServerCounters counters1;                            ///< just after s1
};

/// Drain: until every message is acknowledged and every open viewer has it all, or
/// nothing moves for two seconds, or --drain runs out. Then the last snapshots, and the
/// workers stop.
Drained drain(Crew& crew, const char* name, const Sending& sending) {
  const FanoutShared& sh = crew.sh;
  const Options& o = sh.o;
  std::uint64_t last_change = mono_ns();
  FanoutTotals last = sending.at_end;
  FanoutTotals t;
  for (;;) {
    sleep_ms(10);
    t = crew.totals();
    const std::uint64_t now = mono_ns();
    if (t.in_flight == 0 && all_delivered(sh)) break;
    if (t.deliveries != last.deliveries || t.acked != last.acked) last_change = now;
    last = t;
    if (now - last_change > 2'000'000'000ULL || to_s(now - sending.t_end) > o.drain || g_interrupted) {
      progress(o, fmt("%s: drain ended with %llu messages unacknowledged and %llu deliveries missing", name,
                      static_cast<unsigned long long>(t.in_flight),
                      static_cast<unsigned long long>(missing_deliveries(sh))));
      break;
    }
  }
  Drained drained;
  drained.totals = t;
  drained.s1 = CpuSnap::take(sh.target.pids);
  drained.counters1 = ServerCounters::read(sh, sending.softirq_pids);
  drained.server_rss = proc_rss_bytes(sh.target.pid);
  for (const long pid : sh.target.pids) drained.rss_each.push_back(proc_rss_bytes(pid));
  drained.stored_after = scrape_stored(sh);
  crew.stop();
  return drained;
}

/// The workers' results added up; loss, duplicates and order judged per viewer against
/// what its room's senders had acknowledged.
struct Tally {
  LatencyHistogram latency, ack_latency;
  std::vector<std::uint32_t> worst_us_by_slot;  ///< over the workers: FanoutWorker's, merged
  std::map<std::string, std::uint64_t> error_codes, ends;
  std::uint64_t deliveries = 0, foreign = 0, seq_gaps = 0, seq_backwards = 0, sent = 0, dup_acks = 0;
  std::uint64_t max_behind = 0, viewers_ever_open = 0;
  std::uint64_t acked = 0;
  LoopCounters lc;
  DeliveryTotals dt;
  double expected_per_s = 0;  // deliveries per second the schedule asks for (fanout, rooms)
};

/// Reads the workers once they have stopped. `from_file`: what another process's senders
/// had acknowledged (--role viewers), by room.
Tally tally_up(const Crew& crew, const std::vector<CounterSet>& from_file) {
  const FanoutShared& sh = crew.sh;
  Tally t;
  std::vector<CounterSet> expected(sh.room_count);  // by room: what its senders had acknowledged
  for (std::size_t r = 0; r < from_file.size() && r < expected.size(); ++r) expected[r].merge(from_file[r]);
  for (const auto& w : crew.workers) {
    for (const auto& s : w->senders) {
      expected[s.room].merge(s.acked);
      t.sent += s.next;
      t.dup_acks += s.dup_acks;
      t.max_behind = std::max(t.max_behind, s.max_behind_ns);
    }
    t.latency.merge(w->latency);
    t.ack_latency.merge(w->ack_latency);
    if (t.worst_us_by_slot.size() < w->worst_us_by_slot.size())
      t.worst_us_by_slot.resize(w->worst_us_by_slot.size(), 0);
    for (std::size_t i = 0; i < w->worst_us_by_slot.size(); ++i)
      t.worst_us_by_slot[i] = std::max(t.worst_us_by_slot[i], w->worst_us_by_slot[i]);
    for (const auto& [k, v] : w->error_codes) t.error_codes[k] += v;
    for (const auto& [k, v] : w->ends) t.ends[k] += v;
    t.deliveries += w->deliveries;
    t.foreign += w->foreign;
    t.seq_gaps += w->seq_gaps;
    t.seq_backwards += w->seq_backwards;
    t.lc.bytes_in += w->counters.bytes_in;
    t.lc.reads += w->counters.reads;
    t.lc.frames_in += w->counters.frames_in;
    t.lc.pings += w->counters.pings;
  }
  for (const auto& e : expected) t.acked += e.size();
  std::vector<std::uint32_t> senders_in_room(sh.room_count, 0);
  for (int g = 0; g < sh.o.senders; ++g) ++senders_in_room[sh.room_of_sender(static_cast<std::uint32_t>(g))];
  for (const auto& w : crew.workers) {
    for (const auto& v : w->viewers) {
      if (!v.opened) continue;
      ++t.viewers_ever_open;
      t.dt.add(v.seq, expected[v.room]);
      t.expected_per_s += sh.per_sender_rate * senders_in_room[v.room];
    }
  }
  return t;
}

/// What the steps found, for the report.
struct Results {
  Setup setup;
  double connect_s = 0;
  Sending sending;
  Drained drained;
  Tally tally;
};

/// Rates and costs over the measured interval, derived from the results.
struct Figures {
  double run_s = 0;       ///< sending
  double measured_s = 0;  ///< sending and draining
  double deliveries_per_s = 0;
  std::optional<double> server_ns_per_delivery;
  /// The server's cores' ksoftirqd over the deliveries: receive work deferred out of the
  /// server's own process (and of server_ns_per_delivery).
  std::optional<double> softirq_ns_per_delivery;
  double bench_ns_per_delivery = 0;
  std::optional<double> stored;  ///< by the server during the run
};

Figures figures(const Results& res) {
  const CpuSnap& s0 = res.sending.s0;
  const CpuSnap& s1 = res.drained.s1;
  const std::uint64_t deliveries = res.tally.deliveries;
  Figures f;
  f.run_s = to_s(res.sending.t_end - s0.wall);
  f.measured_s = to_s(s1.wall - s0.wall);
  f.deliveries_per_s = static_cast<double>(res.sending.at_end.deliveries) / f.run_s;
  if (s0.server && s1.server && deliveries) {
    f.server_ns_per_delivery = static_cast<double>(*s1.server - *s0.server) / static_cast<double>(deliveries);
  }
  const auto& q0 = res.sending.counters0.softirq;
  const auto& q1 = res.drained.counters1.softirq;
  if (!res.sending.softirq_pids.empty() && q0 && q1 && deliveries) {
    f.softirq_ns_per_delivery = static_cast<double>(*q1 - *q0) / static_cast<double>(deliveries);
  }
  f.bench_ns_per_delivery = deliveries ? static_cast<double>(s1.self - s0.self) / static_cast<double>(deliveries) : NAN;
  const auto& before = res.setup.stored_before;
  const auto& after = res.drained.stored_after;
  if (before && after) f.stored = *after - *before;
  return f;
}

void report_fields(Report& r, const char* name, const FanoutShared& sh, const Results& res, const Figures& f) {
  const Options& o = sh.o;
  const bool closed_loop = sh.closed_loop;
  const Tally& t = res.tally;
  const DeliveryTotals& dt = t.dt;
  const CpuSnap& s0 = res.sending.s0;
  const CpuSnap& s1 = res.drained.s1;
  const FanoutTotals& last = res.drained.totals;  // at the drain's last look
  r.str("scenario", name);
  r.num("deliveries_per_s", f.deliveries_per_s);
  add_latency(r, "", t.latency);
  r.chart("send -> viewer", t.latency);
  r.chart("send -> ack", t.ack_latency);
  r.integer("lost", static_cast<long long>(dt.lost));
  r.integer("duplicated", static_cast<long long>(dt.duplicated));
  r.integer("reordered", static_cast<long long>(dt.reordered));
  r.num("server_cpu_ns_per_delivery", f.server_ns_per_delivery);
  r.num("softirq_cpu_ns_per_delivery", f.softirq_ns_per_delivery);
  r.null("rss_bytes_per_connection");
  if (closed_loop) {
    // Acknowledged means stored: the server acks a message after its transaction commits.
    r.num("messages_per_s", static_cast<double>(res.sending.at_end.acked) / f.run_s);
    r.num("server_cpu_ns_per_message",
          s0.server && s1.server && t.acked
              ? std::optional<double>(static_cast<double>(*s1.server - *s0.server) / static_cast<double>(t.acked))
              : std::nullopt);
    r.integer("window", o.window);
  }
  r.num("stored", f.stored);
  r.str("room", res.setup.room);
  r.integer("rooms", o.rooms);
  r.integer("viewers", o.viewers);
  r.integer("senders", o.senders);
  r.integer("accounts", res.setup.accounts);
  if (closed_loop) {
    r.null("rate");
  } else {
    r.num("rate", o.rate);
  }
  r.num("duration_s", f.run_s);
  r.num("measured_s", f.measured_s);
  r.integer("threads", o.threads);
  r.num("read_interval_us", o.read_interval_us);
  r.raw("delayed_ack", o.delayed_ack ? "true" : "false");
  r.integer("viewers_open", static_cast<long long>(t.viewers_ever_open));
  r.integer("viewers_failed", static_cast<long long>(last.viewers_failed));
  r.integer("viewers_closed_by_server", static_cast<long long>(last.viewers_closed));
  r.integer("senders_open", static_cast<long long>(res.sending.at_end.senders_open));
  r.num("connect_s", res.connect_s);
  r.integer("sent", static_cast<long long>(t.sent));
  r.integer("acked", static_cast<long long>(t.acked));
  r.integer("send_errors", static_cast<long long>(last.errors));
  r.raw("error_codes", map_json(t.error_codes));
  r.integer("duplicate_acks", static_cast<long long>(t.dup_acks));
  r.num("sender_max_behind_ms", to_ms(t.max_behind));
  r.integer("deliveries", static_cast<long long>(t.deliveries));
  r.num("expected_deliveries_per_s", closed_loop ? std::nullopt : std::optional<double>(t.expected_per_s));
  r.integer("unexpected", static_cast<long long>(dt.unexpected));
  r.integer("viewers_with_loss", static_cast<long long>(dt.viewers_with_loss));
  r.integer("seq_gaps", static_cast<long long>(t.seq_gaps));
  r.integer("seq_backwards", static_cast<long long>(t.seq_backwards));
  r.integer("foreign_messages", static_cast<long long>(t.foreign));
  add_latency(r, "ack_", t.ack_latency);
  r.num("server_cpu_percent", cpu_share(s0, s1) ? std::optional<double>(*cpu_share(s0, s1) * 100) : std::nullopt);
  r.num("bench_cpu_ns_per_delivery", f.bench_ns_per_delivery);
  r.num("bench_cpu_percent", static_cast<double>(s1.self - s0.self) / static_cast<double>(s1.wall - s0.wall) * 100);
  const auto& server_rss = res.drained.server_rss;
  r.num("server_rss_bytes", server_rss ? std::optional<double>(static_cast<double>(*server_rss)) : std::nullopt);
  r.integer("server_pid", sh.target.pid);
  const LoopCounters& lc = t.lc;
  r.num("bytes_per_delivery",
        t.deliveries ? static_cast<double>(lc.bytes_in) / static_cast<double>(t.deliveries) : NAN);
  r.num("frames_per_read", lc.reads ? static_cast<double>(lc.frames_in) / static_cast<double>(lc.reads) : NAN);
  // The deliveries the server queued per write it made over the measured interval.
  // Its writes of acks and pings count too, so at one frame per write this reads just
  // under 1. Viewers' reads may join several writes, so this, not frames per read, is
  // the coalescing to set beside the `limit` probe.
  const auto& w0 = res.sending.counters0.writes;
  const auto& w1 = res.drained.counters1.writes;
  r.num("frames_per_write", w0 && w1 && w1->writes > w0->writes
                                ? std::optional<double>((w1->frames - w0->frames) / (w1->writes - w0->writes))
                                : std::nullopt);
  r.raw("connection_ends", map_json(t.ends));
  r.str("role", o.role);
  if (!s0.each.empty() && s0.each.size() == s1.each.size()) {
    // Several processes under test (--server-pid P1,P2,...): each one's CPU per delivery
    // (per message for ingress) and RSS.
    std::string cpu = "{", rss = "{";
    const double per = static_cast<double>(closed_loop ? t.acked : t.deliveries);
    for (std::size_t i = 0; i < s0.each.size(); ++i) {
      const std::string pid = Report::quote(std::to_string(sh.target.pids[i]));
      const bool known = s0.each[i] && s1.each[i] && per > 0;
      cpu += (i ? "," : "") + pid + ":" +
             (known ? Report::number(static_cast<double>(*s1.each[i] - *s0.each[i]) / per) : "null");
      const auto& m = i < res.drained.rss_each.size() ? res.drained.rss_each[i] : std::nullopt;
      rss += (i ? "," : "") + pid + ":" + (m ? std::to_string(*m) : "null");
    }
    r.raw(closed_loop ? "server_cpu_ns_per_message_by_pid" : "server_cpu_ns_per_delivery_by_pid", cpu + "}");
    r.raw("server_rss_bytes_by_pid", rss + "}");
  }
  if (o.histogram) r.raw("latency_histogram", histogram_json(t.latency));
  std::string worst = "[";
  for (std::size_t i = 0; i < t.worst_us_by_slot.size(); ++i)
    worst += (i ? "," : "") + Report::number(t.worst_us_by_slot[i] / 1000.0);
  r.raw("max_ms_by_100ms_sent", worst + "]");
}

void report_summary(Report& r, const char* name, const FanoutShared& sh, const Results& res, const Figures& f) {
  const Options& o = sh.o;
  const bool closed_loop = sh.closed_loop;
  const Tally& t = res.tally;
  const DeliveryTotals& dt = t.dt;
  const FanoutTotals& last = res.drained.totals;  // at the drain's last look
  const auto& server_rss = res.drained.server_rss;
  r.line(fmt("%s: %llu viewers, %d senders in %d room(s), %s for %.1f s (room %s)", name,
             static_cast<unsigned long long>(t.viewers_ever_open), o.senders, o.rooms, pace_text(sh).c_str(), f.run_s,
             res.setup.room.c_str()));
  if (closed_loop) {
    r.line(fmt("  accepted and stored %.0f messages/s (acked during sending); stored counter %s",
               static_cast<double>(res.sending.at_end.acked) / f.run_s,
               f.stored ? fmt("+%.0f", *f.stored).c_str() : "n/a"));
  }
  r.line(fmt("  sent %llu, acked %llu, send errors %llu (%s), sender max behind schedule %.1f ms",
             static_cast<unsigned long long>(t.sent), static_cast<unsigned long long>(t.acked),
             static_cast<unsigned long long>(last.errors), map_text(t.error_codes).c_str(), to_ms(t.max_behind)));
  r.line(fmt("  deliveries %llu: %.0f/s during sending (expected %s)", static_cast<unsigned long long>(t.deliveries),
             f.deliveries_per_s, closed_loop ? "as many as acked" : fmt("%.0f/s", t.expected_per_s).c_str()));
  r.line("  latency send->viewer: " + latency_text(t.latency));
  r.line("  latency send->ack:    " + latency_text(t.ack_latency));
  r.line(
      fmt("  lost %llu (viewers with loss %llu), duplicated %llu, reordered %llu, seq gaps %llu, closed by server "
          "%llu",
          static_cast<unsigned long long>(dt.lost), static_cast<unsigned long long>(dt.viewers_with_loss),
          static_cast<unsigned long long>(dt.duplicated), static_cast<unsigned long long>(dt.reordered),
          static_cast<unsigned long long>(t.seq_gaps), static_cast<unsigned long long>(last.viewers_closed)));
  r.line(fmt("  server cpu %s, %s ns/delivery; bench cpu %.0f ns/delivery; server rss %s",
             cpu_text(cpu_share(res.sending.s0, res.drained.s1)).c_str(),
             f.server_ns_per_delivery ? fmt("%.0f", *f.server_ns_per_delivery).c_str() : "n/a", f.bench_ns_per_delivery,
             server_rss ? fmt("%.1f MiB", static_cast<double>(*server_rss) / 1048576.0).c_str() : "n/a"));
  r.line("  connection ends: " + map_text(t.ends));
}

/// The JSON fields (keys in the order the suite and the docs expect) and the summary.
void report(Report& r, const char* name, const FanoutShared& sh, const Results& res) {
  const Figures f = figures(res);
  report_fields(r, name, sh, res, f);
  report_summary(r, name, sh, res, f);
}

int run_chat_load(const Options& o, Report& r, Load kind) {
  const char* const name = kind == Load::fanout ? "fanout" : kind == Load::rooms ? "rooms" : "ingress";
  const bool closed_loop = kind == Load::ingress;
  const std::uint64_t total = check_options(o, name, closed_loop);
  FanoutShared sh(o, closed_loop);
  Results res;
  res.setup.room = plan_rooms(sh, name, total);
  if (has_senders(o)) res.setup.accounts = login_senders(sh, name, res.setup.room);
  res.setup.stored_before = scrape_stored(sh);
  Crew crew(sh);
  res.connect_s = connect_all(crew, name, total);
  std::vector<CounterSet> from_file;
  res.sending = has_senders(o) ? send_phase(crew, name) : wait_for_senders(crew, name, from_file);
  res.drained = drain(crew, name, res.sending);
  res.tally = tally_up(crew, from_file);
  if (!o.acked_out.empty()) {
    std::vector<AckedBy> acked;
    for (const auto& w : crew.workers) {
      for (const auto& s : w->senders) acked.push_back({s.gid, s.next, &s.acked});
    }
    if (!write_file_atomic(o.acked_out, acked_text(acked))) {
      throw std::runtime_error("cannot write --acked-out " + o.acked_out);
    }
  }
  report(r, name, sh, res);
  return 0;
}

}  // namespace

void scenario_defaults(Options& o) {
  if (o.scenario == "rooms") {
    // 1,000 rooms of 18 viewers and one sender: 19,000 connections, under this machine's
    // open-file limit of 20,000; two messages per second in each room.
    o.rooms = 1000;
    o.viewers = 18000;
    o.senders = 1000;
    o.rate = 2000;
  } else if (o.scenario == "ingress") {
    // A room per sender with one viewer in it: each message is stored once and
    // delivered twice (the viewer and the sender's own echo), so what is measured is
    // the path of a message, not a fan-out.
    o.rooms = 64;
    o.viewers = 64;
    o.senders = 64;
  }
}

int run_fanout(const Options& o, Report& r) { return run_chat_load(o, r, Load::fanout); }
int run_rooms(const Options& o, Report& r) { return run_chat_load(o, r, Load::rooms); }
int run_ingress(const Options& o, Report& r) { return run_chat_load(o, r, Load::ingress); }

}  // namespace chatorbit::bench
