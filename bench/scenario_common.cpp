// The parts of chatorbit-bench that more than one scenario uses: the report, the /proc
// probes of the server process, and the helpers declared in scenario_common.hpp.

#include "scenario_common.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

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

namespace {

/// The cores of a list like "0-3,6" (/proc/PID/status, Cpus_allowed_list).
std::vector<int> parse_cpu_list(const std::string& list) {
  std::vector<int> cpus;
  std::istringstream in(list);
  std::string part;
  while (std::getline(in, part, ',')) {
    char* end = nullptr;
    const long lo = std::strtol(part.c_str(), &end, 10);
    if (end == part.c_str()) continue;
    const long hi = *end == '-' ? std::strtol(end + 1, nullptr, 10) : lo;
    for (long c = lo; c <= hi && c - lo < 4096; ++c) cpus.push_back(static_cast<int>(c));
  }
  return cpus;
}

}  // namespace

std::vector<long> softirq_threads_of(long pid) {
  std::vector<long> out;
  if (pid <= 0) return out;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line, allowed;
  while (std::getline(status, line)) {
    if (line.rfind("Cpus_allowed_list:", 0) == 0) allowed = line.substr(18);
  }
  std::vector<std::string> wanted;
  for (const int cpu : parse_cpu_list(allowed)) wanted.push_back("ksoftirqd/" + std::to_string(cpu));
  if (wanted.empty()) return out;
  DIR* proc = opendir("/proc");
  if (!proc) return out;
  while (const dirent* e = readdir(proc)) {
    char* end = nullptr;
    const long p = std::strtol(e->d_name, &end, 10);
    if (p <= 0 || *end != '\0') continue;
    std::ifstream comm(std::string("/proc/") + e->d_name + "/comm");
    std::string name;
    if (std::getline(comm, name) && std::find(wanted.begin(), wanted.end(), name) != wanted.end()) out.push_back(p);
  }
  closedir(proc);
  return out;
}

std::optional<std::uint64_t> procs_cpu_ns(const std::vector<long>& pids) {
  std::uint64_t sum = 0;
  for (const long p : pids) {
    const auto ns = proc_cpu_ns(p);
    if (!ns) return std::nullopt;
    sum += *ns;
  }
  return sum;
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

}  // namespace chatorbit::bench

// ---------------------------------------------------------------------------------
// Shared helpers

namespace chatorbit::bench::detail {

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

void sleep_until_tick(std::uint64_t start, int tick, std::uint64_t limit_ns) {
  const std::uint64_t wake =
      start + std::min<std::uint64_t>(static_cast<std::uint64_t>(tick) * 1'000'000'000ULL, limit_ns);
  while (mono_ns() < wake && !g_interrupted)
    sleep_ms(std::max<int>(1, static_cast<int>((wake - mono_ns()) / 1'000'000)));
}

std::uint64_t self_cpu_ns() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& tv) {
    return static_cast<std::uint64_t>(tv.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(tv.tv_usec) * 1000ULL;
  };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

CpuSnap CpuSnap::take(const std::vector<long>& pids) {
  if (pids.size() <= 1) return take(pids.empty() ? 0L : pids.front());
  CpuSnap s{mono_ns(), std::uint64_t{0}, self_cpu_ns(), {}};
  for (const long pid : pids) {
    s.each.push_back(proc_cpu_ns(pid));
    if (!s.each.back()) s.server.reset();
    if (s.server) *s.server += *s.each.back();
  }
  return s;
}

std::optional<double> cpu_share(const CpuSnap& a, const CpuSnap& b) {
  if (!a.server || !b.server || b.wall <= a.wall) return std::nullopt;
  return static_cast<double>(*b.server - *a.server) / static_cast<double>(b.wall - a.wall);
}

std::string cpu_text(std::optional<double> share) { return share ? fmt("%.0f%%", *share * 100.0) : std::string("n/a"); }

Target prepare_target(const Options& o, std::uint64_t connections) {
  Target t;
  t.ws = parse_url(o.url);
  for (const auto& u : o.urls) t.nodes.push_back(parse_url(u));
  if (t.nodes.empty()) t.nodes.push_back(t.ws);
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
  if (t.pid > 0) {
    t.pids.push_back(t.pid);
    t.pids.insert(t.pids.end(), o.more_pids.begin(), o.more_pids.end());
  }
  return t;
}

std::string default_room() { return fmt("bench-%ld-%llu", static_cast<long>(getpid()), mono_ns() / 1'000'000ULL); }

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

std::optional<double> scrape_metric(const Url& http, const std::string& name) {
  const auto res = http_request(http, "GET", "/metrics", "");
  if (res.status != 200) return std::nullopt;
  const std::string prefix = name + " ";
  std::size_t pos = 0;
  while (pos < res.body.size()) {
    std::size_t eol = res.body.find('\n', pos);
    if (eol == std::string::npos) eol = res.body.size();
    const std::string_view line(res.body.data() + pos, eol - pos);
    if (line.starts_with(prefix)) {
      const std::string value(line.substr(prefix.size()));
      char* end = nullptr;
      const double v = std::strtod(value.c_str(), &end);
      if (end != value.c_str()) return v;
    }
    pos = eol + 1;
  }
  return std::nullopt;
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

void report_without_deliveries(Report& r, const char* scenario) {
  r.str("scenario", scenario);
  r.null("deliveries_per_s");
  add_latency(r, "", LatencyHistogram{});
  r.null("lost");
  r.null("duplicated");
  r.null("reordered");
  r.null("server_cpu_ns_per_delivery");
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

}  // namespace chatorbit::bench::detail
