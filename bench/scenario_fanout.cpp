// The chat-load scenarios, one engine with three faces:
// - fanout: viewers in one room, senders at a fixed rate; delivery latency and integrity.
// - rooms: the same spread over many rooms (viewers and senders dealt round-robin).
// - ingress: senders as fast as their window of unacknowledged messages allows; what the
//   server accepts, stores and delivers per second.

#include "scenario_common.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include "client_loop.hpp"
#include "http_client.hpp"

namespace chatorbit::bench {

using namespace detail;

// ---------------------------------------------------------------------------------
// fanout

namespace {

std::uint64_t parse_u64_at(const char* p, const char* end) {
  std::uint64_t v = 0;
  std::from_chars(p, end, v);
  return v;
}

/// Per room, for the drain: every open viewer of a room must hold every message its
/// senders had acknowledged. Relaxed counters, written by the workers.
struct RoomPub {
  std::atomic<std::uint64_t> acked{0}, viewers_open{0}, unique{0};
};

struct FanoutShared {
  FanoutShared(const Options& opts, bool closed) : o(opts), closed_loop(closed) {}
  const Options& o;
  const bool closed_loop;  ///< ingress: no schedule, only the window holds senders back
  Target target;
  std::vector<std::string> viewer_targets;  // by room
  std::vector<std::string> sender_targets;  // by global sender id
  std::unique_ptr<RoomPub[]> rooms;
  std::uint32_t room_count = 1;
  double per_sender_rate = 0;
  std::uint64_t sender_spacing_ns = 0;  // between consecutive senders' first messages
  std::atomic<int> phase{kConnect};
  std::atomic<std::uint64_t> t0{0};

  std::uint32_t room_of_viewer(std::uint32_t index) const { return index % room_count; }
  std::uint32_t room_of_sender(std::uint32_t gid) const { return gid % room_count; }
};

/// What a worker publishes for the main thread (relaxed; read for progress and to
/// decide when the drain is over).
struct FanoutPub {
  std::atomic<std::uint64_t> viewers_open{0}, viewers_failed{0}, viewers_closed{0};
  std::atomic<std::uint64_t> senders_open{0}, senders_failed{0}, senders_closed{0};
  std::atomic<std::uint64_t> sent{0}, acked{0}, in_flight{0}, errors{0};
  std::atomic<std::uint64_t> deliveries{0};
};

class FanoutWorker final : public ConnHandler {
 public:
  static constexpr std::uint32_t kSenderBit = 1U << 31;
  static constexpr std::size_t kRing = 4096;  // send times by counter; >= the window

  struct Viewer {
    std::uint32_t index = 0;  // global
    std::uint32_t room = 0;
    std::uint32_t conn = 0;
    bool opened = false;
    bool ended = false;
    std::uint64_t last_seq = 0;
    SequenceChecker seq;
  };
  struct Sender {
    std::uint32_t gid = 0;
    std::uint32_t room = 0;
    std::uint32_t conn = 0;
    bool opened = false;
    bool ended = false;
    std::uint64_t next = 0;  // last counter sent; counters start at 1
    std::uint64_t in_flight = 0;
    std::uint64_t acked_n = 0;
    std::uint64_t errors = 0;
    std::uint64_t dup_acks = 0;
    std::uint64_t max_behind_ns = 0;
    CounterSet acked;
    std::vector<std::uint64_t> sent_at = std::vector<std::uint64_t>(kRing, 0);
  };

  explicit FanoutWorker(FanoutShared& sh) : sh_(sh), loop_(*this, 64U << 10, sh.o.verify_accept) {
    loop_.set_delayed_ack(sh.o.delayed_ack);
  }

  void add_viewer(std::uint32_t index) {
    Viewer v;
    v.index = index;
    v.room = sh_.room_of_viewer(index);
    viewers.push_back(std::move(v));
  }
  void add_sender(std::uint32_t gid) {
    senders.emplace_back();
    senders.back().gid = gid;
    senders.back().room = sh_.room_of_sender(gid);
  }

  void run() {
    // Senders first: they are few, and the run cannot start without them.
    for (std::uint32_t i = 0; i < senders.size(); ++i) queue_.push_back(kSenderBit | i);
    for (std::uint32_t i = 0; i < viewers.size(); ++i) queue_.push_back(i);
    std::uint64_t last_expire = mono_ns();
    const int max_pending = sh_.o.connect_concurrency > 0 ? sh_.o.connect_concurrency : 256;
    const auto interval_ns = static_cast<std::uint64_t>(sh_.o.read_interval_us * 1000.0);
    if (interval_ns) prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    for (;;) {
      const int phase = sh_.phase.load(std::memory_order_acquire);
      if (phase == kStop) break;
      while (pending_ < max_pending && next_queued_ < queue_.size()) start(queue_[next_queued_++]);
      int timeout = 50;
      if (phase == kRun) timeout = std::min(timeout, tick_senders());
      const std::uint64_t polled = mono_ns();
      loop_.poll(timeout);
      if (sh_.phase.load(std::memory_order_acquire) == kRun) tick_senders();
      std::uint64_t now = mono_ns();
      if (interval_ns && phase != kConnect && now - polled < interval_ns) {
        std::this_thread::sleep_for(std::chrono::nanoseconds(interval_ns - (now - polled)));
        now = mono_ns();
      }
      if (now - last_expire > 1'000'000'000ULL) {
        loop_.expire(now, static_cast<std::uint64_t>(sh_.o.handshake_timeout * 1e9));
        last_expire = now;
      }
      publish();
    }
    counters = loop_.counters();
  }

  std::vector<Viewer> viewers;
  std::vector<Sender> senders;
  LatencyHistogram latency;
  LatencyHistogram ack_latency;
  std::map<std::string, std::uint64_t> error_codes;
  std::map<std::string, std::uint64_t> ends;
  std::uint64_t deliveries = 0;
  std::uint64_t foreign = 0;  // message frames that were not the bench's
  std::uint64_t seq_gaps = 0;
  std::uint64_t seq_backwards = 0;
  LoopCounters counters;
  FanoutPub pub;

 private:
  void start(std::uint32_t tag) {
    const bool is_sender = tag & kSenderBit;
    const std::uint32_t i = tag & ~kSenderBit;
    const std::string& target = is_sender ? sh_.sender_targets[senders[i].gid] : sh_.viewer_targets[viewers[i].room];
    const std::uint64_t index = is_sender ? senders[i].gid : static_cast<std::uint64_t>(viewers[i].index) + 1000;
    const auto id = loop_.open(sh_.target.spec(target, index, tag));
    if (!id) {
      ConnEnd e;
      e.reason = EndReason::connect_failed;
      e.err = errno;
      ++ends[end_key(is_sender ? "sender" : "viewer", e)];
      if (is_sender) {
        senders[i].ended = true;
        ++senders_failed_;
      } else {
        viewers[i].ended = true;
        ++viewers_failed_;
      }
      return;
    }
    ++pending_;
    if (is_sender) {
      senders[i].conn = *id;
    } else {
      viewers[i].conn = *id;
    }
  }

  void on_open(ClientLoop&, std::uint32_t id, std::uint64_t) override {
    --pending_;
    const std::uint32_t tag = loop_.tag(id);
    if (tag & kSenderBit) {
      senders[tag & ~kSenderBit].opened = true;
      ++senders_open_;
    } else {
      viewers[tag].opened = true;
      ++viewers_open_;
      sh_.rooms[viewers[tag].room].viewers_open.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void on_end(ClientLoop&, std::uint32_t id, const ConnEnd& e) override {
    const std::uint32_t tag = loop_.tag(id);
    const bool is_sender = tag & kSenderBit;
    ++ends[end_key(is_sender ? "sender" : "viewer", e)];
    if (!e.was_open) --pending_;
    if (is_sender) {
      Sender& s = senders[tag & ~kSenderBit];
      s.ended = true;
      s.in_flight = 0;  // whatever was in flight is unknown now: not expected anywhere
      if (e.was_open) {
        --senders_open_;
        ++senders_closed_;
      } else {
        ++senders_failed_;
      }
    } else {
      Viewer& v = viewers[tag];
      v.ended = true;
      if (e.was_open) {
        --viewers_open_;
        ++viewers_closed_;
        RoomPub& rp = sh_.rooms[v.room];
        rp.viewers_open.fetch_sub(1, std::memory_order_relaxed);
        rp.unique.fetch_sub(v.seq.unique(), std::memory_order_relaxed);
      } else {
        ++viewers_failed_;
      }
    }
  }

  void on_text(ClientLoop&, std::uint32_t id, std::string_view payload, std::uint64_t now) override {
    const std::uint32_t tag = loop_.tag(id);
    if (tag & kSenderBit) {
      on_sender_text(senders[tag & ~kSenderBit], payload, now);
      return;
    }
    // Viewers: only chat messages matter; v1 messages start with {"id", v2 ones with
    // {"type":"message". Everything else (presence, welcome, moderation) is skipped
    // after one comparison.
    const char* p = payload.data();
    const char* const end = p + payload.size();
    if (payload.starts_with("{\"id\"")) {
      // v1
    } else if (payload.starts_with("{\"type\":\"message\"")) {
      // v2
    } else {
      return;
    }
    Viewer& v = viewers[tag];
    // "seq":N} closes the message.
    const char* q = end - 1;
    if (q > p && *q == '}') {
      const char* digits_end = q;
      while (q > p && q[-1] >= '0' && q[-1] <= '9') --q;
      if (q < digits_end && q - p > 7 && std::memcmp(q - 6, "\"seq\":", 6) == 0) {
        const std::uint64_t seq = parse_u64_at(q, digits_end);
        if (v.last_seq != 0) {
          if (seq <= v.last_seq) {
            ++seq_backwards;
          } else if (seq != v.last_seq + 1) {
            seq_gaps += seq - v.last_seq - 1;
          }
        }
        v.last_seq = std::max(v.last_seq, seq);
      }
    }
    static constexpr std::string_view kContent = "\"content\":\"";
    const void* c = memmem(p, payload.size(), kContent.data(), kContent.size());
    BenchContent bc;
    if (!c || !parse_bench_content(static_cast<const char*>(c) + kContent.size(), end, bc)) {
      ++foreign;
      return;
    }
    ++deliveries;
    const auto verdict = v.seq.on_receive(bc.sender, bc.counter);
    if (verdict == SequenceChecker::Verdict::in_order || verdict == SequenceChecker::Verdict::reordered) {
      sh_.rooms[v.room].unique.fetch_add(1, std::memory_order_relaxed);
      latency.record(now > bc.send_ns ? now - bc.send_ns : 0);
    }
  }

  void on_sender_text(Sender& s, std::string_view payload, std::uint64_t now) {
    if (payload.starts_with("{\"type\":\"ack\"")) {
      const auto cid = json_string_field(payload, "cid");
      if (!cid) return;
      // "<sender>.<counter>": senders of one room may share an account, and the server
      // deduplicates cids per room and account.
      const auto dot = cid->find('.');
      if (dot == std::string::npos) return;
      const std::uint64_t counter = parse_u64_at(cid->data() + dot + 1, cid->data() + cid->size());
      if (payload.find("\"duplicate\":true") != std::string_view::npos) ++s.dup_acks;
      if (s.acked.insert(s.gid, counter)) {
        ++s.acked_n;
        sh_.rooms[s.room].acked.fetch_add(1, std::memory_order_relaxed);
        if (s.in_flight) --s.in_flight;
        if (counter + kRing > s.next) ack_latency.record(now - s.sent_at[counter % kRing]);
      }
    } else if (payload.starts_with("{\"type\":\"error\"")) {
      ++s.errors;
      ++error_codes[json_string_field(payload, "code").value_or("?")];
      if (json_string_field(payload, "cid") && s.in_flight) --s.in_flight;
    }
  }

  /// Sends what is due; returns the milliseconds until the next send is due (or 50).
  int tick_senders() {
    const std::uint64_t t0 = sh_.t0.load(std::memory_order_acquire);
    const std::uint64_t now = mono_ns();
    const double rate = sh_.per_sender_rate;
    const auto window = static_cast<std::uint64_t>(sh_.o.window);
    std::uint64_t wait_ns = 50'000'000;
    for (Sender& s : senders) {
      if (!s.opened || s.ended) continue;
      const std::uint64_t start = t0 + s.gid * sh_.sender_spacing_ns;
      if (now < start) {
        wait_ns = std::min(wait_ns, start - now);
        continue;
      }
      const double elapsed = static_cast<double>(now - start);
      const std::uint64_t due = sh_.closed_loop ? UINT64_MAX : static_cast<std::uint64_t>(elapsed * rate / 1e9) + 1;
      while (s.next < due && s.in_flight < window) send_one(s);
      if (sh_.closed_loop) continue;
      if (s.next < due) {
        const double behind = elapsed - static_cast<double>(s.next) / rate * 1e9;
        s.max_behind_ns = std::max(s.max_behind_ns, static_cast<std::uint64_t>(std::max(0.0, behind)));
      } else {
        const double next_at = static_cast<double>(s.next) / rate * 1e9;
        wait_ns = std::min(wait_ns, static_cast<std::uint64_t>(std::max(0.0, next_at - elapsed)));
      }
    }
    return static_cast<int>((wait_ns + 999'999) / 1'000'000);
  }

  void send_one(Sender& s) {
    const std::uint64_t counter = ++s.next;
    const std::uint64_t at = mono_ns();
    frame_.assign("{\"type\":\"message\",\"content\":\"");
    frame_ += make_bench_content(s.gid, counter, at, static_cast<std::size_t>(sh_.o.pad));
    frame_ += "\",\"cid\":\"";
    frame_ += std::to_string(s.gid);
    frame_ += '.';
    frame_ += std::to_string(counter);
    frame_ += "\"}";
    s.sent_at[counter % kRing] = at;
    loop_.send_text(s.conn, frame_);
    ++s.in_flight;
    ++sent_;
  }

  void publish() {
    std::uint64_t acked = 0, in_flight = 0, errors = 0;
    for (const Sender& s : senders) {
      acked += s.acked_n;
      in_flight += s.in_flight;
      errors += s.errors;
    }
    pub.viewers_open.store(viewers_open_, std::memory_order_relaxed);
    pub.viewers_failed.store(viewers_failed_, std::memory_order_relaxed);
    pub.viewers_closed.store(viewers_closed_, std::memory_order_relaxed);
    pub.senders_open.store(senders_open_, std::memory_order_relaxed);
    pub.senders_failed.store(senders_failed_, std::memory_order_relaxed);
    pub.senders_closed.store(senders_closed_, std::memory_order_relaxed);
    pub.sent.store(sent_, std::memory_order_relaxed);
    pub.acked.store(acked, std::memory_order_relaxed);
    pub.in_flight.store(in_flight, std::memory_order_relaxed);
    pub.errors.store(errors, std::memory_order_relaxed);
    pub.deliveries.store(deliveries, std::memory_order_relaxed);
  }

  FanoutShared& sh_;
  ClientLoop loop_;
  std::vector<std::uint32_t> queue_;
  std::size_t next_queued_ = 0;
  int pending_ = 0;
  std::uint64_t viewers_open_ = 0, viewers_failed_ = 0, viewers_closed_ = 0;
  std::uint64_t senders_open_ = 0, senders_failed_ = 0, senders_closed_ = 0;
  std::uint64_t sent_ = 0;
  std::string frame_;
};

struct FanoutTotals {
  std::uint64_t viewers_open = 0, viewers_failed = 0, viewers_closed = 0;
  std::uint64_t senders_open = 0, senders_failed = 0, senders_closed = 0;
  std::uint64_t sent = 0, acked = 0, in_flight = 0, errors = 0, deliveries = 0;
};

FanoutTotals sum(const std::vector<std::unique_ptr<FanoutWorker>>& workers) {
  FanoutTotals t;
  for (const auto& w : workers) {
    const auto& p = w->pub;
    t.viewers_open += p.viewers_open.load(std::memory_order_relaxed);
    t.viewers_failed += p.viewers_failed.load(std::memory_order_relaxed);
    t.viewers_closed += p.viewers_closed.load(std::memory_order_relaxed);
    t.senders_open += p.senders_open.load(std::memory_order_relaxed);
    t.senders_failed += p.senders_failed.load(std::memory_order_relaxed);
    t.senders_closed += p.senders_closed.load(std::memory_order_relaxed);
    t.sent += p.sent.load(std::memory_order_relaxed);
    t.acked += p.acked.load(std::memory_order_relaxed);
    t.in_flight += p.in_flight.load(std::memory_order_relaxed);
    t.errors += p.errors.load(std::memory_order_relaxed);
    t.deliveries += p.deliveries.load(std::memory_order_relaxed);
  }
  return t;
}

/// Deliveries still owed: per room, open viewers x acknowledged messages, minus what
/// those viewers hold.
std::uint64_t missing_deliveries(const FanoutShared& sh) {
  std::uint64_t missing = 0;
  for (std::uint32_t i = 0; i < sh.room_count; ++i) {
    const RoomPub& rp = sh.rooms[i];
    const std::uint64_t want =
        rp.viewers_open.load(std::memory_order_relaxed) * rp.acked.load(std::memory_order_relaxed);
    const std::uint64_t have = rp.unique.load(std::memory_order_relaxed);
    missing += want - std::min(want, have);
  }
  return missing;
}

bool all_delivered(const FanoutShared& sh) { return missing_deliveries(sh) == 0; }

enum class Load { fanout, rooms, ingress };

int run_chat_load(const Options& o, Report& r, Load kind) {
  const char* const name = kind == Load::fanout ? "fanout" : kind == Load::rooms ? "rooms" : "ingress";
  const bool closed_loop = kind == Load::ingress;
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
  const std::uint64_t total = static_cast<std::uint64_t>(o.viewers) + static_cast<std::uint64_t>(o.senders);
  const std::uint64_t nofile = raise_nofile(total + 256);
  if (nofile < total + 64) {
    throw std::runtime_error(
        fmt("RLIMIT_NOFILE is %llu, too low for %llu connections: lower --viewers or raise the "
            "hard limit (ulimit -Hn)",
            static_cast<unsigned long long>(nofile), static_cast<unsigned long long>(total)));
  }
  FanoutShared sh(o, closed_loop);
  sh.target = prepare_target(o, total);
  const std::string room = o.room.empty() ? default_room() : o.room;
  sh.room_count = static_cast<std::uint32_t>(o.rooms);
  sh.rooms = std::make_unique<RoomPub[]>(sh.room_count);
  auto room_id = [&](std::uint32_t i) { return o.rooms == 1 ? room : room + "-" + std::to_string(i); };
  const int viewer_protocol = o.protocol == 2 ? 2 : 1;
  for (std::uint32_t i = 0; i < sh.room_count; ++i) {
    sh.viewer_targets.push_back(sh.target.with_query("room_id=" + room_id(i) + (viewer_protocol == 2 ? "&v=2" : "")));
  }
  sh.per_sender_rate = o.rate / o.senders;
  sh.sender_spacing_ns = closed_loop ? 0 : static_cast<std::uint64_t>(1e9 / o.rate);

  progress(o, fmt("%s: %d room(s) %s, %d viewers (v%d), %d senders, %s for %.1f s, server pid %ld", name, o.rooms,
                  room.c_str(), o.viewers, viewer_protocol, o.senders,
                  closed_loop ? fmt("window %d", o.window).c_str() : fmt("%.1f msg/s", o.rate).c_str(), o.duration,
                  sh.target.pid));
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
    sh.sender_targets.push_back(sh.target.with_query("room_id=" + room_id(sh.room_of_sender(gid)) +
                                                     "&v=2&token=" + tokens[static_cast<std::size_t>(g % accounts)]));
  }
  const auto stored_before = scrape_metric(sh.target.http, "chatorbit_messages_stored_total");

  std::vector<std::unique_ptr<FanoutWorker>> workers;
  for (int t = 0; t < o.threads; ++t) workers.push_back(std::make_unique<FanoutWorker>(sh));
  for (int i = 0; i < o.viewers; ++i) workers[i % o.threads]->add_viewer(static_cast<std::uint32_t>(i));
  for (int g = 0; g < o.senders; ++g) workers[g % o.threads]->add_sender(static_cast<std::uint32_t>(g));
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  auto stop = [&] {
    sh.phase.store(kStop, std::memory_order_release);
    for (auto& th : threads) th.join();
  };

  // Connect.
  const std::uint64_t c0 = mono_ns();
  std::uint64_t last_print = c0;
  FanoutTotals t;
  for (;;) {
    sleep_ms(50);
    t = sum(workers);
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
  if (t.senders_open == 0) {
    stop();
    throw std::runtime_error("no sender connected (see the server's log; is CHATORBIT_MAX_CONNECTIONS_PER_IP high?)");
  }
  if (o.settle > 0) sleep_ms(static_cast<int>(o.settle * 1000));

  // Send.
  const CpuSnap s0 = CpuSnap::take(sh.target.pid);
  sh.t0.store(s0.wall, std::memory_order_release);
  sh.phase.store(kRun, std::memory_order_release);
  const auto run_ns = static_cast<std::uint64_t>(o.duration * 1e9);
  CpuSnap prev = s0;
  std::uint64_t prev_deliveries = 0;
  for (int tick = 1;; ++tick) {
    const std::uint64_t wake =
        s0.wall + std::min<std::uint64_t>(static_cast<std::uint64_t>(tick) * 1'000'000'000ULL, run_ns);
    while (mono_ns() < wake && !g_interrupted)
      sleep_ms(std::max<int>(1, static_cast<int>((wake - mono_ns()) / 1'000'000)));
    const CpuSnap now = CpuSnap::take(sh.target.pid);
    t = sum(workers);
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
  sh.phase.store(kDrain, std::memory_order_release);
  const std::uint64_t t_end = mono_ns();
  const FanoutTotals at_end = sum(workers);

  // Drain: until every message is acknowledged and every open viewer has it all, or
  // nothing moves for two seconds, or --drain runs out.
  std::uint64_t last_change = mono_ns();
  FanoutTotals last = at_end;
  for (;;) {
    sleep_ms(10);
    t = sum(workers);
    const std::uint64_t now = mono_ns();
    if (t.in_flight == 0 && all_delivered(sh)) break;
    if (t.deliveries != last.deliveries || t.acked != last.acked) last_change = now;
    last = t;
    if (now - last_change > 2'000'000'000ULL || to_s(now - t_end) > o.drain || g_interrupted) {
      progress(o, fmt("%s: drain ended with %llu messages unacknowledged and %llu deliveries missing", name,
                      static_cast<unsigned long long>(t.in_flight),
                      static_cast<unsigned long long>(missing_deliveries(sh))));
      break;
    }
  }
  const CpuSnap s1 = CpuSnap::take(sh.target.pid);
  const auto server_rss = proc_rss_bytes(sh.target.pid);
  const auto stored_after = scrape_metric(sh.target.http, "chatorbit_messages_stored_total");
  stop();

  // Tally.
  std::vector<CounterSet> expected(sh.room_count);  // by room: what its senders had acknowledged
  LatencyHistogram latency, ack_latency;
  std::map<std::string, std::uint64_t> error_codes, ends;
  std::uint64_t deliveries = 0, foreign = 0, seq_gaps = 0, seq_backwards = 0, sent = 0, dup_acks = 0;
  std::uint64_t max_behind = 0, viewers_ever_open = 0;
  LoopCounters lc;
  for (const auto& w : workers) {
    for (const auto& s : w->senders) {
      expected[s.room].merge(s.acked);
      sent += s.next;
      dup_acks += s.dup_acks;
      max_behind = std::max(max_behind, s.max_behind_ns);
    }
    latency.merge(w->latency);
    ack_latency.merge(w->ack_latency);
    for (const auto& [k, v] : w->error_codes) error_codes[k] += v;
    for (const auto& [k, v] : w->ends) ends[k] += v;
    deliveries += w->deliveries;
    foreign += w->foreign;
    seq_gaps += w->seq_gaps;
    seq_backwards += w->seq_backwards;
    lc.bytes_in += w->counters.bytes_in;
    lc.reads += w->counters.reads;
    lc.frames_in += w->counters.frames_in;
    lc.pings += w->counters.pings;
  }
  std::uint64_t acked = 0;
  for (const auto& e : expected) acked += e.size();
  DeliveryTotals dt;
  double expected_per_s = 0;  // deliveries per second the schedule asks for (fanout, rooms)
  std::vector<std::uint32_t> senders_in_room(sh.room_count, 0);
  for (int g = 0; g < o.senders; ++g) ++senders_in_room[sh.room_of_sender(static_cast<std::uint32_t>(g))];
  for (const auto& w : workers) {
    for (const auto& v : w->viewers) {
      if (!v.opened) continue;
      ++viewers_ever_open;
      dt.add(v.seq, expected[v.room]);
      expected_per_s += sh.per_sender_rate * senders_in_room[v.room];
    }
  }
  const double run_s = to_s(t_end - s0.wall);
  const double measured_s = to_s(s1.wall - s0.wall);
  const double deliveries_per_s = static_cast<double>(at_end.deliveries) / run_s;
  std::optional<double> server_ns_per_delivery;
  if (s0.server && s1.server && deliveries) {
    server_ns_per_delivery = static_cast<double>(*s1.server - *s0.server) / static_cast<double>(deliveries);
  }
  const double bench_ns_per_delivery =
      deliveries ? static_cast<double>(s1.self - s0.self) / static_cast<double>(deliveries) : NAN;

  r.str("scenario", name);
  r.num("deliveries_per_s", deliveries_per_s);
  add_latency(r, "", latency);
  r.chart("send -> viewer", latency);
  r.chart("send -> ack", ack_latency);
  r.integer("lost", static_cast<long long>(dt.lost));
  r.integer("duplicated", static_cast<long long>(dt.duplicated));
  r.integer("reordered", static_cast<long long>(dt.reordered));
  r.num("server_cpu_ns_per_delivery", server_ns_per_delivery);
  r.null("rss_bytes_per_connection");
  if (closed_loop) {
    // Acknowledged means stored: the server acks a message after its transaction commits.
    r.num("messages_per_s", static_cast<double>(at_end.acked) / run_s);
    r.num("server_cpu_ns_per_message",
          s0.server && s1.server && acked
              ? std::optional<double>(static_cast<double>(*s1.server - *s0.server) / static_cast<double>(acked))
              : std::nullopt);
    r.integer("window", o.window);
  }
  r.num("stored", stored_before && stored_after ? std::optional<double>(*stored_after - *stored_before) : std::nullopt);
  r.str("room", room);
  r.integer("rooms", o.rooms);
  r.integer("viewers", o.viewers);
  r.integer("senders", o.senders);
  r.integer("accounts", accounts);
  if (closed_loop) {
    r.null("rate");
  } else {
    r.num("rate", o.rate);
  }
  r.num("duration_s", run_s);
  r.num("measured_s", measured_s);
  r.integer("threads", o.threads);
  r.num("read_interval_us", o.read_interval_us);
  r.raw("delayed_ack", o.delayed_ack ? "true" : "false");
  r.integer("viewers_open", static_cast<long long>(viewers_ever_open));
  r.integer("viewers_failed", static_cast<long long>(t.viewers_failed));
  r.integer("viewers_closed_by_server", static_cast<long long>(t.viewers_closed));
  r.integer("senders_open", static_cast<long long>(at_end.senders_open));
  r.num("connect_s", connect_s);
  r.integer("sent", static_cast<long long>(sent));
  r.integer("acked", static_cast<long long>(acked));
  r.integer("send_errors", static_cast<long long>(t.errors));
  r.raw("error_codes", map_json(error_codes));
  r.integer("duplicate_acks", static_cast<long long>(dup_acks));
  r.num("sender_max_behind_ms", to_ms(max_behind));
  r.integer("deliveries", static_cast<long long>(deliveries));
  r.num("expected_deliveries_per_s", closed_loop ? std::nullopt : std::optional<double>(expected_per_s));
  r.integer("unexpected", static_cast<long long>(dt.unexpected));
  r.integer("viewers_with_loss", static_cast<long long>(dt.viewers_with_loss));
  r.integer("seq_gaps", static_cast<long long>(seq_gaps));
  r.integer("seq_backwards", static_cast<long long>(seq_backwards));
  r.integer("foreign_messages", static_cast<long long>(foreign));
  add_latency(r, "ack_", ack_latency);
  r.num("server_cpu_percent", cpu_share(s0, s1) ? std::optional<double>(*cpu_share(s0, s1) * 100) : std::nullopt);
  r.num("bench_cpu_ns_per_delivery", bench_ns_per_delivery);
  r.num("bench_cpu_percent", static_cast<double>(s1.self - s0.self) / static_cast<double>(s1.wall - s0.wall) * 100);
  r.num("server_rss_bytes", server_rss ? std::optional<double>(static_cast<double>(*server_rss)) : std::nullopt);
  r.integer("server_pid", sh.target.pid);
  r.num("bytes_per_delivery", deliveries ? static_cast<double>(lc.bytes_in) / static_cast<double>(deliveries) : NAN);
  r.num("frames_per_read", lc.reads ? static_cast<double>(lc.frames_in) / static_cast<double>(lc.reads) : NAN);
  r.raw("connection_ends", map_json(ends));

  r.line(fmt("%s: %llu viewers, %d senders in %d room(s), %s for %.1f s (room %s)", name,
             static_cast<unsigned long long>(viewers_ever_open), o.senders, o.rooms,
             closed_loop ? fmt("window %d", o.window).c_str() : fmt("%.1f msg/s", o.rate).c_str(), run_s,
             room.c_str()));
  if (closed_loop) {
    r.line(fmt("  accepted and stored %.0f messages/s (acked during sending); stored counter %s",
               static_cast<double>(at_end.acked) / run_s,
               stored_before && stored_after ? fmt("+%.0f", *stored_after - *stored_before).c_str() : "n/a"));
  }
  r.line(fmt("  sent %llu, acked %llu, send errors %llu (%s), sender max behind schedule %.1f ms",
             static_cast<unsigned long long>(sent), static_cast<unsigned long long>(acked),
             static_cast<unsigned long long>(t.errors), map_text(error_codes).c_str(), to_ms(max_behind)));
  r.line(fmt("  deliveries %llu: %.0f/s during sending (expected %s)", static_cast<unsigned long long>(deliveries),
             deliveries_per_s, closed_loop ? "as many as acked" : fmt("%.0f/s", expected_per_s).c_str()));
  r.line("  latency send->viewer: " + latency_text(latency));
  r.line("  latency send->ack:    " + latency_text(ack_latency));
  r.line(
      fmt("  lost %llu (viewers with loss %llu), duplicated %llu, reordered %llu, seq gaps %llu, closed by server "
          "%llu",
          static_cast<unsigned long long>(dt.lost), static_cast<unsigned long long>(dt.viewers_with_loss),
          static_cast<unsigned long long>(dt.duplicated), static_cast<unsigned long long>(dt.reordered),
          static_cast<unsigned long long>(seq_gaps), static_cast<unsigned long long>(t.viewers_closed)));
  r.line(fmt("  server cpu %s, %s ns/delivery; bench cpu %.0f ns/delivery; server rss %s",
             cpu_text(cpu_share(s0, s1)).c_str(),
             server_ns_per_delivery ? fmt("%.0f", *server_ns_per_delivery).c_str() : "n/a", bench_ns_per_delivery,
             server_rss ? fmt("%.1f MiB", static_cast<double>(*server_rss) / 1048576.0).c_str() : "n/a"));
  r.line("  connection ends: " + map_text(ends));
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
