// The limit scenario: the client's own ceiling, writing frames over plain socket pairs.

#include "scenario_common.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "client_loop.hpp"

namespace chatorbit::bench {

using namespace detail;

// ---------------------------------------------------------------------------------
// limit

namespace {

std::uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

void pin_thread(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

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
  /// Over the rounds (medians()): the lowest and highest cpu_ns_per_frame, and how many.
  double cpu_min = 0;
  double cpu_max = 0;
  int rounds = 1;
};

/// Each probe of the first round, with its times the medians over every round that ran
/// it (the last round may have been cut short by an interrupt); frames and blocked
/// writes are summed.
std::vector<LimitResult> medians(const std::vector<std::vector<LimitResult>>& rounds) {
  std::vector<LimitResult> out;
  if (rounds.empty()) return out;
  for (std::size_t i = 0; i < rounds.front().size(); ++i) {
    std::vector<double> wall, cpu, rate;
    LimitResult m = rounds.front()[i];
    m.frames = 0;
    m.blocked = 0;
    for (const auto& round : rounds) {
      if (i >= round.size()) continue;
      wall.push_back(round[i].ns_per_frame);
      cpu.push_back(round[i].cpu_ns_per_frame);
      rate.push_back(round[i].frames_per_s);
      m.frames += round[i].frames;
      m.blocked += round[i].blocked;
    }
    m.ns_per_frame = median(wall);
    m.cpu_ns_per_frame = median(cpu);
    m.frames_per_s = median(rate);
    m.cpu_min = *std::min_element(cpu.begin(), cpu.end());
    m.cpu_max = *std::max_element(cpu.begin(), cpu.end());
    m.rounds = static_cast<int>(cpu.size());
    out.push_back(m);
  }
  return out;
}

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

  // One probe: `k` frames per write, by send() of one block or writev() of k buffers,
  // over every socket in turn for --duration.
  std::uint64_t sent_total = 0;
  const auto probe = [&](int k, const char* mode) {
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
    const bool use_writev = std::strcmp(mode, "writev") == 0;
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
    return res;
  };

  for (const int k : o.coalesce) {
    if (k < 1 || k > 1024) throw std::runtime_error("--coalesce values must be 1..1024");
  }
  // On this machine one probe's cost varies by a third or more from one run of it to
  // the next (691-930 ns per frame at 8 frames per send in three 3 s runs, 2026-12-03).
  // With --rounds R, every probe runs R times, the whole list once per round, and each
  // one's median is reported, so that a slow moment weighs on one round of every probe,
  // not on one probe.
  std::vector<std::vector<LimitResult>> rounds;
  for (int round = 0; round < o.rounds && !g_interrupted; ++round) {
    std::vector<LimitResult> this_round;
    for (const int k : o.coalesce) {
      for (const char* mode : {"send", "writev"}) {
        if (k == 1 && std::strcmp(mode, "writev") == 0) continue;  // the same thing
        this_round.push_back(probe(k, mode));
        if (g_interrupted) break;
      }
      if (g_interrupted) break;
    }
    rounds.push_back(std::move(this_round));
  }
  const std::vector<LimitResult> results = medians(rounds);
  rx.stop = true;
  receiver.join();
  const linger rst{1, 0};  // no TIME_WAIT left behind
  for (const int fd : tx) {
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
    ::close(fd);
  }
  for (const int fd : rx.fds) ::close(fd);

  report_without_deliveries(r, "limit");
  r.null("rss_bytes_per_connection");
  r.integer("sockets", static_cast<long long>(n));
  r.integer("frame_bytes", static_cast<long long>(fb));
  std::string arr = "[";
  for (const auto& res : results) {
    if (arr.size() > 1) arr += ",";
    arr +=
        fmt("{\"coalesce\":%d,\"mode\":\"%s\",\"ns_per_frame\":%s,\"cpu_ns_per_frame\":%s,\"frames_per_s\":%s,"
            "\"frames\":%llu,\"blocked\":%llu,\"rounds\":%d,\"cpu_ns_per_frame_min\":%s,\"cpu_ns_per_frame_max\":%s}",
            res.k, res.mode.c_str(), Report::number(res.ns_per_frame).c_str(),
            Report::number(res.cpu_ns_per_frame).c_str(), Report::number(res.frames_per_s).c_str(),
            static_cast<unsigned long long>(res.frames), static_cast<unsigned long long>(res.blocked), res.rounds,
            Report::number(res.cpu_min).c_str(), Report::number(res.cpu_max).c_str());
    r.num(fmt("limit_k%d_%s_ns_per_frame", res.k, res.mode.c_str()), res.ns_per_frame);
    r.num(fmt("limit_k%d_%s_cpu_ns_per_frame", res.k, res.mode.c_str()), res.cpu_ns_per_frame);
  }
  r.raw("limit", arr + "]");
  r.num("receiver_cpu_ns_per_frame",
        rx.bytes ? static_cast<double>(rx.cpu_ns) / (static_cast<double>(rx.bytes.load()) / static_cast<double>(fb))
                 : NAN);

  r.line(fmt("limit: %zu loopback TCP sockets, %zu-byte frames (one sender thread, one draining thread)", n, fb));
  r.line(fmt("  medians of %d rounds", o.rounds));
  r.line("  coalesce  mode     ns/frame(wall)  ns/frame(sender cpu)  (lowest-highest)  frames/s");
  for (const auto& res : results) {
    r.line(fmt("  %8d  %-6s  %14.1f  %20.1f  (%6.0f-%6.0f)  %8.2fM", res.k, res.mode.c_str(), res.ns_per_frame,
               res.cpu_ns_per_frame, res.cpu_min, res.cpu_max, res.frames_per_s / 1e6));
  }
  return 0;
}

}  // namespace chatorbit::bench
