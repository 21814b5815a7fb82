#include "scenarios.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "stats.hpp"
#include "ws_client.hpp"

namespace chatorbit::bench {

std::atomic<bool> g_interrupted{false};

// ---------------------------------------------------------------------------------
// Report

std::string Report::quote(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
  return out;
}

std::string Report::number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

void Report::num(const std::string& key, double v) { put(key, number(v)); }
void Report::str(const std::string& key, const std::string& v) { put(key, quote(v)); }

void Report::put(const std::string& key, std::string value) {
  for (auto& [k, v] : fields_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  fields_.emplace_back(key, std::move(value));
}

std::string Report::json() const {
  std::string out = "{";
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    if (i) out += ",";
    out += quote(fields_[i].first);
    out += ":";
    out += fields_[i].second;
  }
  out += "}";
  return out;
}

// ---------------------------------------------------------------------------------
// /proc probes

std::optional<std::uint64_t> proc_cpu_ns(long pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(f, s)) return std::nullopt;
  // Fields after the command name (which may hold spaces and parentheses): state is
  // field 3, utime 14 and stime 15.
  const std::size_t close = s.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  std::uint64_t utime = 0;
  std::uint64_t stime = 0;
  for (int i = 3; i <= 15 && (in >> field); ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  const long hz = sysconf(_SC_CLK_TCK);
  return (utime + stime) * (1'000'000'000ULL / static_cast<std::uint64_t>(hz > 0 ? hz : 100));
}

std::optional<std::uint64_t> proc_rss_bytes(long pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return std::nullopt;
}

std::optional<long> find_listener_pid(std::uint16_t port) {
  std::vector<std::string> inodes;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream f(table);
    std::string line;
    std::getline(f, line);  // header
    while (std::getline(f, line)) {
      std::istringstream in(line);
      std::string sl, local, remote, st, queues, timer, retr, uid, timeout, inode;
      if (!(in >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >> inode)) continue;
      if (st != "0A") continue;  // LISTEN
      const std::size_t colon = local.rfind(':');
      if (colon == std::string::npos) continue;
      if (std::strtoul(local.c_str() + colon + 1, nullptr, 16) != port) continue;
      inodes.push_back("socket:[" + inode + "]");
    }
  }
  if (inodes.empty()) return std::nullopt;
  DIR* proc = opendir("/proc");
  if (!proc) return std::nullopt;
  std::optional<long> found;
  const long self = getpid();
  while (dirent* d = readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(d->d_name, &end, 10);
    if (!end || *end != '\0' || pid <= 0 || pid == self) continue;
    const std::string fd_dir = "/proc/" + std::string(d->d_name) + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (!fds) continue;
    while (dirent* e = readdir(fds)) {
      char target[64];
      const std::string link = fd_dir + "/" + e->d_name;
      const ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      target[n] = '\0';
      if (std::find(inodes.begin(), inodes.end(), target) != inodes.end()) {
        found = pid;
        break;
      }
    }
    closedir(fds);
    if (found) break;
  }
  closedir(proc);
  return found;
}

std::uint64_t raise_nofile(std::uint64_t want) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (want > rl.rlim_max) {
    // Raising the hard limit needs CAP_SYS_RESOURCE, and stays under fs.nr_open.
    std::uint64_t cap = want;
    std::ifstream f("/proc/sys/fs/nr_open");
    std::uint64_t nr_open = 0;
    if (f >> nr_open && nr_open > 0) cap = std::min(cap, nr_open);
    rlimit higher{cap, cap};
    if (setrlimit(RLIMIT_NOFILE, &higher) == 0) return cap;
  }
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

// ---------------------------------------------------------------------------------
// Shared helpers

namespace {

enum Phase : int { kConnect = 0, kRun = 1, kDrain = 2, kStop = 3 };

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

void progress(const Options& o, const std::string& line) {
  if (!o.quiet) std::fprintf(stderr, "%s\n", line.c_str());
}

double to_ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }
double to_s(std::uint64_t ns) { return static_cast<double>(ns) / 1e9; }

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::uint64_t self_cpu_ns() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& tv) {
    return static_cast<std::uint64_t>(tv.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(tv.tv_usec) * 1000ULL;
  };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

std::uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

/// A snapshot of the CPU time spent so far, to subtract.
struct CpuSnap {
  std::uint64_t wall = 0;
  std::optional<std::uint64_t> server;
  std::uint64_t self = 0;
  static CpuSnap take(long pid) { return {mono_ns(), proc_cpu_ns(pid), self_cpu_ns()}; }
};

/// Server CPU over an interval, as a share of one core.
std::optional<double> cpu_share(const CpuSnap& a, const CpuSnap& b) {
  if (!a.server || !b.server || b.wall <= a.wall) return std::nullopt;
  return static_cast<double>(*b.server - *a.server) / static_cast<double>(b.wall - a.wall);
}

std::string cpu_text(std::optional<double> share) { return share ? fmt("%.0f%%", *share * 100.0) : std::string("n/a"); }

/// Where the connections go, and from where.
struct Target {
  Url ws;
  Url http;
  std::string path;  ///< the URL's path, default /ws/chat (may already hold a query)
  std::vector<in_addr> sources;
  long pid = 0;

  std::string with_query(const std::string& query) const {
    return path + (path.find('?') == std::string::npos ? "?" : "&") + query;
  }
  ConnectSpec spec(const std::string& target, std::uint64_t index, std::uint32_t tag) const {
    ConnectSpec s;
    s.server = ws.addr;
    if (!sources.empty()) s.source = sources[index % sources.size()];
    s.host_header = ws.host_header();
    s.target = target;
    s.tag = tag;
    return s;
  }
};

Target prepare_target(const Options& o, std::uint64_t connections) {
  Target t;
  t.ws = parse_url(o.url);
  t.http = o.http_url.empty() ? t.ws : parse_url(o.http_url);
  t.path = t.ws.path == "/" ? "/ws/chat" : t.ws.path;
  const bool loopback = (ntohl(t.ws.addr.sin_addr.s_addr) >> 24) == 127;
  int n = o.source_ips;
  if (n <= 0) n = static_cast<int>((connections + 9'999) / 10'000);
  if (loopback && n > 1) {
    // 127.0.0.1, .2, ...: each source address has its own ~28k ephemeral ports.
    for (int i = 0; i < n; ++i) {
      const std::uint32_t host =
          (127U << 24) | static_cast<std::uint32_t>(1 + i / 254) << 8 | static_cast<std::uint32_t>(1 + i % 254);
      in_addr a{};
      a.s_addr = htonl(host);
      t.sources.push_back(a);
    }
  }
  if (o.server_pid > 0) {
    t.pid = o.server_pid;
  } else if (o.server_pid < 0 && loopback) {
    t.pid = find_listener_pid(t.ws.port).value_or(0);
  }
  return t;
}

std::string default_room() { return fmt("bench-%ld-%llu", static_cast<long>(getpid()), mono_ns() / 1'000'000ULL); }

/// Registers a fresh account and logs it in; the token, or nullopt with `err` set.
std::optional<std::string> register_and_login(const Url& http, const std::string& tag, std::string& err) {
  const std::string email = "bench-" + tag + "@bench.example.com";
  const std::string password = "bench-password-1";
  const std::string reg = "{\"email\":" + Report::quote(email) + ",\"username\":" + Report::quote("bench-" + tag) +
                          ",\"password\":" + Report::quote(password) + "}";
  const auto r1 = http_request(http, "POST", "/register", reg);
  if (r1.status != 200 && !(r1.status == 400 && r1.body.find("already") != std::string::npos)) {
    err = fmt("POST /register: %d %s %s", r1.status, r1.error.c_str(), r1.body.substr(0, 200).c_str());
    return std::nullopt;
  }
  const std::string login = "{\"email\":" + Report::quote(email) + ",\"password\":" + Report::quote(password) + "}";
  const auto r2 = http_request(http, "POST", "/login", login);
  if (r2.status != 200) {
    err = fmt("POST /login: %d %s %s", r2.status, r2.error.c_str(), r2.body.substr(0, 200).c_str());
    return std::nullopt;
  }
  auto token = json_string_field(r2.body, "token");
  if (!token) err = "POST /login: no token in " + r2.body.substr(0, 200);
  return token;
}

std::string end_key(const char* role, const ConnEnd& e) {
  std::string k = std::string(role) + ":" + to_string(e.reason);
  if (e.http_status) k += ":" + std::to_string(e.http_status);
  if (e.ws_code) k += ":" + std::to_string(e.ws_code);
  if (e.err) k += std::string(":") + std::strerror(e.err);
  return k;
}

std::string map_json(const std::map<std::string, std::uint64_t>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) {
    if (out.size() > 1) out += ",";
    out += Report::quote(k) + ":" + std::to_string(v);
  }
  return out + "}";
}

std::string map_text(const std::map<std::string, std::uint64_t>& m) {
  std::string out;
  for (const auto& [k, v] : m) out += (out.empty() ? "" : ", ") + k + " " + std::to_string(v);
  return out.empty() ? "none" : out;
}

void add_latency(Report& r, const std::string& prefix, const LatencyHistogram& h) {
  if (h.count() == 0) {
    for (const char* k : {"p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms"}) r.null(prefix + k);
    return;
  }
  r.num(prefix + "p50_ms", to_ms(h.percentile(50)));
  r.num(prefix + "p90_ms", to_ms(h.percentile(90)));
  r.num(prefix + "p99_ms", to_ms(h.percentile(99)));
  r.num(prefix + "p999_ms", to_ms(h.percentile(99.9)));
  r.num(prefix + "max_ms", to_ms(h.max()));
  r.num(prefix + "mean_ms", h.mean() / 1e6);
}

std::string latency_text(const LatencyHistogram& h) {
  if (h.count() == 0) return "no samples";
  return fmt("p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms  (n=%llu)", to_ms(h.percentile(50)),
             to_ms(h.percentile(90)), to_ms(h.percentile(99)), to_ms(h.percentile(99.9)), to_ms(h.max()),
             static_cast<unsigned long long>(h.count()));
}

ClientLoop::CloseMode parse_close_mode(const std::string& s) {
  if (s == "rst") return ClientLoop::CloseMode::rst;
  if (s == "graceful") return ClientLoop::CloseMode::graceful;
  if (s == "drop") return ClientLoop::CloseMode::drop;
  throw std::runtime_error("--close must be rst, graceful or drop");
}

void pin_thread(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

std::uint64_t parse_u64_at(const char* p, const char* end) {
  std::uint64_t v = 0;
  std::from_chars(p, end, v);
  return v;
}

// ---------------------------------------------------------------------------------
// fanout

struct FanoutShared {
  explicit FanoutShared(const Options& opts) : o(opts) {}
  const Options& o;
  Target target;
  std::string viewer_target;
  std::vector<std::string> sender_targets;  // by global sender id
  double per_sender_rate = 0;
  std::uint64_t sender_spacing_ns = 0;  // between consecutive senders' first messages
  std::atomic<int> phase{kConnect};
  std::atomic<std::uint64_t> t0{0};
};

/// What a worker publishes for the main thread (relaxed; read for progress and to
/// decide when the drain is over).
struct FanoutPub {
  std::atomic<std::uint64_t> viewers_open{0}, viewers_failed{0}, viewers_closed{0};
  std::atomic<std::uint64_t> senders_open{0}, senders_failed{0}, senders_closed{0};
  std::atomic<std::uint64_t> sent{0}, acked{0}, in_flight{0}, errors{0};
  std::atomic<std::uint64_t> deliveries{0}, open_unique{0};
};

class FanoutWorker final : public ConnHandler {
 public:
  static constexpr std::uint32_t kSenderBit = 1U << 31;
  static constexpr std::size_t kRing = 4096;  // send times by counter; >= the window

  struct Viewer {
    std::uint32_t index = 0;  // global
    std::uint32_t conn = 0;
    bool opened = false;
    bool ended = false;
    std::uint64_t last_seq = 0;
    SequenceChecker seq;
  };
  struct Sender {
    std::uint32_t gid = 0;
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
    viewers.push_back(std::move(v));
  }
  void add_sender(std::uint32_t gid) {
    senders.emplace_back();
    senders.back().gid = gid;
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
    const std::string& target = is_sender ? sh_.sender_targets[senders[i].gid] : sh_.viewer_target;
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
        open_unique_ -= v.seq.unique();
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
      ++open_unique_;
      latency.record(now > bc.send_ns ? now - bc.send_ns : 0);
    }
  }

  void on_sender_text(Sender& s, std::string_view payload, std::uint64_t now) {
    if (payload.starts_with("{\"type\":\"ack\"")) {
      const auto cid = json_string_field(payload, "cid");
      if (!cid) return;
      const std::uint64_t counter = parse_u64_at(cid->data(), cid->data() + cid->size());
      if (payload.find("\"duplicate\":true") != std::string_view::npos) ++s.dup_acks;
      if (s.acked.insert(s.gid, counter)) {
        ++s.acked_n;
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
      const auto due = static_cast<std::uint64_t>(elapsed * rate / 1e9) + 1;
      while (s.next < due && s.in_flight < window) send_one(s);
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
    pub.open_unique.store(open_unique_, std::memory_order_relaxed);
  }

  FanoutShared& sh_;
  ClientLoop loop_;
  std::vector<std::uint32_t> queue_;
  std::size_t next_queued_ = 0;
  int pending_ = 0;
  std::uint64_t viewers_open_ = 0, viewers_failed_ = 0, viewers_closed_ = 0;
  std::uint64_t senders_open_ = 0, senders_failed_ = 0, senders_closed_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t open_unique_ = 0;
  std::string frame_;
};

struct FanoutTotals {
  std::uint64_t viewers_open = 0, viewers_failed = 0, viewers_closed = 0;
  std::uint64_t senders_open = 0, senders_failed = 0, senders_closed = 0;
  std::uint64_t sent = 0, acked = 0, in_flight = 0, errors = 0, deliveries = 0, open_unique = 0;
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
    t.open_unique += p.open_unique.load(std::memory_order_relaxed);
  }
  return t;
}

}  // namespace

int run_fanout(const Options& o, Report& r) {
  if (o.viewers < 0 || o.senders < 1 || !(o.rate > 0) || !(o.duration > 0) || o.threads < 1) {
    throw std::runtime_error("fanout needs --viewers >= 0, --senders >= 1, --rate > 0, --duration > 0, --threads >= 1");
  }
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
  FanoutShared sh(o);
  sh.target = prepare_target(o, total);
  const std::string room = o.room.empty() ? default_room() : o.room;
  const int viewer_protocol = o.protocol == 2 ? 2 : 1;
  sh.viewer_target = sh.target.with_query("room_id=" + room + (viewer_protocol == 2 ? "&v=2" : ""));
  sh.per_sender_rate = o.rate / o.senders;
  sh.sender_spacing_ns = static_cast<std::uint64_t>(1e9 / o.rate);

  progress(o, fmt("fanout: room %s, %d viewers (v%d), %d senders, %.1f msg/s for %.1f s, server pid %ld", room.c_str(),
                  o.viewers, viewer_protocol, o.senders, o.rate, o.duration, sh.target.pid));
  const std::string run_tag = fmt("%ld-%llu", static_cast<long>(getpid()), mono_ns() / 1000ULL);
  for (int i = 0; i < o.senders; ++i) {
    std::string err;
    const auto token = register_and_login(sh.target.http, run_tag + "-" + std::to_string(i), err);
    if (!token) throw std::runtime_error("sender " + std::to_string(i) + ": " + err);
    sh.sender_targets.push_back(sh.target.with_query("room_id=" + room + "&v=2&token=" + *token));
    if (o.senders > 4 && (i + 1) % 10 == 0) progress(o, fmt("fanout: %d/%d senders logged in", i + 1, o.senders));
  }

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
      progress(o, fmt("fanout connecting %5.1fs: viewers %llu/%d open, %llu failed; senders %llu/%d open, %llu failed",
                      to_s(now - c0), static_cast<unsigned long long>(t.viewers_open), o.viewers,
                      static_cast<unsigned long long>(t.viewers_failed + t.viewers_closed),
                      static_cast<unsigned long long>(t.senders_open), o.senders,
                      static_cast<unsigned long long>(t.senders_failed + t.senders_closed)));
      last_print = now;
    }
    if (done == total || g_interrupted) break;
    if (to_s(now - c0) > o.connect_timeout) {
      progress(o, "fanout: connect timeout; measuring with what is open");
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
    progress(o, fmt("fanout %5.1fs: viewers %llu open (%llu closed), senders %llu; sent %llu acked %llu in flight %llu "
                    "errors %llu; deliveries %llu (%.0f/s); server cpu %s",
                    to_s(now.wall - s0.wall), static_cast<unsigned long long>(t.viewers_open),
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
      progress(o, "fanout: every sender's connection has closed; stopping");
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
    if (t.in_flight == 0 && t.open_unique >= t.viewers_open * t.acked) break;
    if (t.deliveries != last.deliveries || t.acked != last.acked) last_change = now;
    last = t;
    if (now - last_change > 2'000'000'000ULL || to_s(now - t_end) > o.drain || g_interrupted) {
      progress(o, fmt("fanout: drain ended with %llu messages unacknowledged and %llu deliveries missing",
                      static_cast<unsigned long long>(t.in_flight),
                      static_cast<unsigned long long>(t.viewers_open * t.acked -
                                                      std::min(t.open_unique, t.viewers_open * t.acked))));
      break;
    }
  }
  const CpuSnap s1 = CpuSnap::take(sh.target.pid);
  const auto server_rss = proc_rss_bytes(sh.target.pid);
  stop();

  // Tally.
  CounterSet expected;
  LatencyHistogram latency, ack_latency;
  std::map<std::string, std::uint64_t> error_codes, ends;
  std::uint64_t deliveries = 0, foreign = 0, seq_gaps = 0, seq_backwards = 0, sent = 0, dup_acks = 0;
  std::uint64_t max_behind = 0, viewers_ever_open = 0;
  LoopCounters lc;
  for (const auto& w : workers) {
    for (const auto& s : w->senders) {
      expected.merge(s.acked);
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
  DeliveryTotals dt;
  for (const auto& w : workers) {
    for (const auto& v : w->viewers) {
      if (!v.opened) continue;
      ++viewers_ever_open;
      dt.add(v.seq, expected);
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

  r.str("scenario", "fanout");
  r.num("deliveries_per_s", deliveries_per_s);
  add_latency(r, "", latency);
  r.integer("lost", static_cast<long long>(dt.lost));
  r.integer("duplicated", static_cast<long long>(dt.duplicated));
  r.integer("reordered", static_cast<long long>(dt.reordered));
  r.num("server_cpu_ns_per_delivery", server_ns_per_delivery);
  r.null("rss_bytes_per_connection");
  r.str("room", room);
  r.integer("viewers", o.viewers);
  r.integer("senders", o.senders);
  r.num("rate", o.rate);
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
  r.integer("acked", static_cast<long long>(expected.size()));
  r.integer("send_errors", static_cast<long long>(t.errors));
  r.raw("error_codes", map_json(error_codes));
  r.integer("duplicate_acks", static_cast<long long>(dup_acks));
  r.num("sender_max_behind_ms", to_ms(max_behind));
  r.integer("deliveries", static_cast<long long>(deliveries));
  r.num("expected_deliveries_per_s", o.rate * static_cast<double>(viewers_ever_open));
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

  r.line(fmt("fanout: %llu viewers, %d senders, %.1f msg/s for %.1f s (room %s)",
             static_cast<unsigned long long>(viewers_ever_open), o.senders, o.rate, run_s, room.c_str()));
  r.line(fmt("  sent %llu, acked %llu, send errors %llu (%s), sender max behind schedule %.1f ms",
             static_cast<unsigned long long>(sent), static_cast<unsigned long long>(expected.size()),
             static_cast<unsigned long long>(t.errors), map_text(error_codes).c_str(), to_ms(max_behind)));
  r.line(fmt("  deliveries %llu: %.0f/s during sending (expected %.0f/s)", static_cast<unsigned long long>(deliveries),
             deliveries_per_s, o.rate * static_cast<double>(viewers_ever_open)));
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
  r.str("scenario", "idle");
  r.null("deliveries_per_s");
  add_latency(r, "", LatencyHistogram{});
  r.null("lost");
  r.null("duplicated");
  r.null("reordered");
  r.null("server_cpu_ns_per_delivery");
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

// ---------------------------------------------------------------------------------
// connect

namespace {

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
    const std::uint64_t wake =
        s0.wall + std::min<std::uint64_t>(static_cast<std::uint64_t>(tick) * 1'000'000'000ULL, run_ns);
    while (mono_ns() < wake && !g_interrupted)
      sleep_ms(std::max<int>(1, static_cast<int>((wake - mono_ns()) / 1'000'000)));
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

  r.str("scenario", "connect");
  r.null("deliveries_per_s");
  add_latency(r, "", LatencyHistogram{});
  r.null("lost");
  r.null("duplicated");
  r.null("reordered");
  r.null("server_cpu_ns_per_delivery");
  r.null("rss_bytes_per_connection");
  r.num("connects_per_s", static_cast<double>(ok) / secs);
  r.integer("connects", static_cast<long long>(ok));
  r.integer("failures", static_cast<long long>(failed));
  r.num("duration_s", secs);
  add_latency(r, "connect_", latency);
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

// ---------------------------------------------------------------------------------
// limit

namespace {

struct LimitReceiver {
  std::vector<int> fds;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bytes{0};
  std::uint64_t cpu_ns = 0;
  int cpu = -1;

  void run() {
    pin_thread(cpu);
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    for (std::size_t i = 0; i < fds.size(); ++i) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    std::vector<char> buf(64U << 10);
    epoll_event events[512];
    std::uint64_t total = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const int n = epoll_wait(ep, events, 512, 20);
      for (int i = 0; i < n; ++i) {
        const ssize_t got = ::recv(fds[events[i].data.u64], buf.data(), buf.size(), MSG_DONTWAIT);
        if (got > 0) total += static_cast<std::uint64_t>(got);
      }
      bytes.store(total, std::memory_order_relaxed);
    }
    cpu_ns = thread_cpu_ns();
    ::close(ep);
  }
};

struct LimitResult {
  int k = 1;
  std::string mode;
  double ns_per_frame = 0;
  double cpu_ns_per_frame = 0;
  double frames_per_s = 0;
  std::uint64_t frames = 0;
  std::uint64_t blocked = 0;
};

}  // namespace

int run_limit(const Options& o, Report& r) {
  if (o.sockets < 1 || o.frame_bytes < 8 || o.frame_bytes > 125 + 2 || !(o.duration > 0)) {
    throw std::runtime_error("limit needs --sockets >= 1, --frame-bytes 8..127 and --duration > 0");
  }
  const auto n = static_cast<std::size_t>(o.sockets);
  const std::uint64_t nofile = raise_nofile(2 * n + 64);
  if (nofile < 2 * n + 16) throw std::runtime_error("RLIMIT_NOFILE too low for 2 x --sockets");

  // N loopback TCP connections: this thread writes the accepted ends, the receiver
  // thread drains the connecting ends.
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd, 4096) != 0 ||
      getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error(std::string("limit: listen: ") + std::strerror(errno));
  }
  LimitReceiver rx;
  rx.cpu = o.receiver_cpu;
  std::vector<int> tx;
  for (std::size_t i = 0; i < n; ++i) {
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error(std::string("limit: connect: ") + std::strerror(errno));
    }
    const int s = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (s < 0) throw std::runtime_error(std::string("limit: accept: ") + std::strerror(errno));
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    rx.fds.push_back(c);
    tx.push_back(s);
  }
  ::close(lfd);
  std::thread receiver([&rx] { rx.run(); });
  pin_thread(o.sender_cpu);

  // One server frame: an unmasked text frame of frame_bytes in all.
  const auto fb = static_cast<std::size_t>(o.frame_bytes);
  std::string frame(fb, 'x');
  frame[0] = static_cast<char>(0x81);
  frame[1] = static_cast<char>(fb - 2);
  progress(o, fmt("limit: %zu loopback sockets, %zu-byte frames, %.1f s per probe", n, fb, o.duration));

  std::vector<LimitResult> results;
  std::uint64_t sent_total = 0;
  for (const int k : o.coalesce) {
    if (k < 1 || k > 1024) throw std::runtime_error("--coalesce values must be 1..1024");
    const std::string block = [&] {
      std::string b;
      for (int i = 0; i < k; ++i) b += frame;
      return b;
    }();
    std::vector<iovec> iov(static_cast<std::size_t>(k));
    for (auto& v : iov) {
      v.iov_base = frame.data();
      v.iov_len = fb;
    }
    for (const char* mode : {"send", "writev"}) {
      const bool use_writev = std::strcmp(mode, "writev") == 0;
      if (k == 1 && use_writev) continue;   // the same thing
      std::vector<std::size_t> owed(n, 0);  // bytes of a partly written block still to send
      LimitResult res;
      res.k = k;
      res.mode = mode;
      std::uint64_t bytes = 0;
      const std::uint64_t t0 = mono_ns();
      const std::uint64_t c0 = thread_cpu_ns();
      const auto stop_at = t0 + static_cast<std::uint64_t>(o.duration * 1e9);
      while (mono_ns() < stop_at && !g_interrupted) {
        for (std::size_t i = 0; i < n; ++i) {
          ssize_t w;
          if (owed[i]) {
            w = ::send(tx[i], block.data() + block.size() - owed[i], owed[i], MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) owed[i] -= static_cast<std::size_t>(w);
          } else if (use_writev) {
            w = ::writev(tx[i], iov.data(), k);
            if (w > 0) owed[i] = block.size() - static_cast<std::size_t>(w);
          } else {
            w = ::send(tx[i], block.data(), block.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) owed[i] = block.size() - static_cast<std::size_t>(w);
          }
          if (w > 0) {
            bytes += static_cast<std::uint64_t>(w);
          } else {
            ++res.blocked;
          }
        }
      }
      const std::uint64_t wall = mono_ns() - t0;
      const std::uint64_t cpu = thread_cpu_ns() - c0;
      res.frames = bytes / fb;
      res.ns_per_frame = res.frames ? static_cast<double>(wall) / static_cast<double>(res.frames) : NAN;
      res.cpu_ns_per_frame = res.frames ? static_cast<double>(cpu) / static_cast<double>(res.frames) : NAN;
      res.frames_per_s = static_cast<double>(res.frames) / to_s(wall);
      // Finish partial blocks, then let the receiver catch up before the next probe.
      for (std::size_t i = 0; i < n; ++i) {
        while (owed[i]) {
          const ssize_t w = ::send(tx[i], block.data() + block.size() - owed[i], owed[i], MSG_NOSIGNAL);
          if (w > 0) {
            owed[i] -= static_cast<std::size_t>(w);
            bytes += static_cast<std::uint64_t>(w);
          } else if (errno != EAGAIN && errno != EINTR) {
            break;
          } else {
            sleep_ms(1);
          }
        }
      }
      sent_total += bytes;
      for (int i = 0; i < 5000 && rx.bytes.load() < sent_total; ++i) sleep_ms(1);
      progress(o, fmt("limit k=%-3d %-6s: %8.1f ns/frame wall, %8.1f ns/frame sender cpu, %.2f M frames/s", k, mode,
                      res.ns_per_frame, res.cpu_ns_per_frame, res.frames_per_s / 1e6));
      results.push_back(res);
      if (g_interrupted) break;
    }
    if (g_interrupted) break;
  }
  rx.stop = true;
  receiver.join();
  const linger rst{1, 0};  // no TIME_WAIT left behind
  for (const int fd : tx) {
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
    ::close(fd);
  }
  for (const int fd : rx.fds) ::close(fd);

  r.str("scenario", "limit");
  r.null("deliveries_per_s");
  add_latency(r, "", LatencyHistogram{});
  r.null("lost");
  r.null("duplicated");
  r.null("reordered");
  r.null("server_cpu_ns_per_delivery");
  r.null("rss_bytes_per_connection");
  r.integer("sockets", static_cast<long long>(n));
  r.integer("frame_bytes", static_cast<long long>(fb));
  std::string arr = "[";
  for (const auto& res : results) {
    if (arr.size() > 1) arr += ",";
    arr +=
        fmt("{\"coalesce\":%d,\"mode\":\"%s\",\"ns_per_frame\":%s,\"cpu_ns_per_frame\":%s,\"frames_per_s\":%s,"
            "\"frames\":%llu,\"blocked\":%llu}",
            res.k, res.mode.c_str(), Report::number(res.ns_per_frame).c_str(),
            Report::number(res.cpu_ns_per_frame).c_str(), Report::number(res.frames_per_s).c_str(),
            static_cast<unsigned long long>(res.frames), static_cast<unsigned long long>(res.blocked));
    r.num(fmt("limit_k%d_%s_ns_per_frame", res.k, res.mode.c_str()), res.ns_per_frame);
    r.num(fmt("limit_k%d_%s_cpu_ns_per_frame", res.k, res.mode.c_str()), res.cpu_ns_per_frame);
  }
  r.raw("limit", arr + "]");
  r.num("receiver_cpu_ns_per_frame",
        rx.bytes ? static_cast<double>(rx.cpu_ns) / (static_cast<double>(rx.bytes.load()) / static_cast<double>(fb))
                 : NAN);

  r.line(fmt("limit: %zu loopback TCP sockets, %zu-byte frames (one sender thread, one draining thread)", n, fb));
  r.line("  coalesce  mode     ns/frame(wall)  ns/frame(sender cpu)  frames/s");
  for (const auto& res : results) {
    r.line(fmt("  %8d  %-6s  %14.1f  %20.1f  %8.2fM", res.k, res.mode.c_str(), res.ns_per_frame, res.cpu_ns_per_frame,
               res.frames_per_s / 1e6));
  }
  return 0;
}

}  // namespace chatorbit::bench
