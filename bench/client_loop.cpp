// The connection loop of chatorbit-bench: connect, upgrade, read and write many
// non-blocking WebSocket connections from one epoll loop.

#include "client_loop.hpp"

#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "http_client.hpp"

namespace chatorbit::bench {

std::uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

const char* to_string(EndReason r) {
  switch (r) {
    case EndReason::connect_failed: return "connect_failed";
    case EndReason::refused: return "refused";
    case EndReason::bad_handshake: return "bad_handshake";
    case EndReason::timeout: return "timeout";
    case EndReason::server_close: return "server_close";
    case EndReason::eof: return "eof";
    case EndReason::io_error: return "io_error";
    case EndReason::protocol_error: return "protocol_error";
    case EndReason::local: return "local";
  }
  return "?";
}

ClientLoop::ClientLoop(ConnHandler& handler, std::size_t read_buffer_bytes, bool verify_accept)
    : handler_(handler),
      epfd_(epoll_create1(EPOLL_CLOEXEC)),
      verify_accept_(verify_accept),
      buf_(read_buffer_bytes),
      rng_(mono_ns() ^ reinterpret_cast<std::uintptr_t>(this) ^ 0x9E3779B97F4A7C15ULL) {
  if (epfd_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  if (rng_ == 0) rng_ = 1;
}

ClientLoop::~ClientLoop() {
  // Reset what is still open: a FIN close would leave every connection in TIME_WAIT on
  // this side for a minute, and the next run would find the ephemeral ports of its
  // source address taken (connect() then crawls).
  const linger rst{1, 0};
  for (auto& c : conns_) {
    if (c.fd < 0) continue;
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
    ::close(c.fd);
  }
  ::close(epfd_);
}

std::optional<std::uint32_t> ClientLoop::open(const ConnectSpec& spec) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (spec.source.s_addr != 0) {
    // Choose the port at connect() time, per destination: a bind() to port 0 would
    // reserve a port per source address and cap each address at ~28k connections.
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr = spec.source;
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0) {
      const int e = errno;
      ::close(fd);
      errno = e;
      return std::nullopt;
    }
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&spec.server), sizeof spec.server) != 0 && errno != EINPROGRESS) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return std::nullopt;
  }
  std::uint32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = static_cast<std::uint32_t>(conns_.size());
    conns_.emplace_back();
  }
  Conn& c = conns_[id];
  c.fd = fd;
  c.state = State::connecting;
  c.want_write = true;
  c.tag = spec.tag;
  c.started_ns = mono_ns();
  c.parser = ServerFrameParser{};
  c.key = make_ws_key(rng_);
  c.out.clear();
  c.out.append("GET ").append(spec.target).append(" HTTP/1.1\r\nHost: ").append(spec.host_header);
  c.out.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ").append(c.key);
  c.out.append("\r\nSec-WebSocket-Version: 13\r\n\r\n");
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = key_of(id);
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int e = errno;
    ::close(fd);
    c.fd = -1;
    c.state = State::free;
    ++c.gen;
    free_.push_back(id);
    errno = e;
    return std::nullopt;
  }
  ++live_;
  return id;
}

int ClientLoop::poll(int timeout_ms) {
  // Ids ended in an earlier round become reusable only now, so that no callback chain
  // can see an id it is still handling change hands.
  free_.insert(free_.end(), pending_free_.begin(), pending_free_.end());
  pending_free_.clear();
  epoll_event events[512];
  const int n = epoll_wait(epfd_, events, 512, timeout_ms);
  for (int i = 0; i < n; ++i) {
    const std::uint64_t key = events[i].data.u64;
    const auto id = static_cast<std::uint32_t>(key & 0xFFFFFFFFU);
    if (id >= conns_.size() || conns_[id].gen != static_cast<std::uint32_t>(key >> 32) ||
        conns_[id].state == State::free) {
      continue;  // ended earlier in this batch
    }
    on_event(id, events[i].events);
  }
  return n < 0 ? 0 : n;
}

void ClientLoop::on_event(std::uint32_t id, std::uint32_t events) {
  const std::uint32_t gen = conns_[id].gen;
  if (events & EPOLLOUT) {
    on_writable(id);
    if (conns_[id].gen != gen) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
    on_readable(id, events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
}

void ClientLoop::on_writable(std::uint32_t id) {
  Conn& c = conns_[id];
  if (c.state == State::connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      ConnEnd e;
      e.reason = EndReason::connect_failed;
      e.err = err;
      end(id, e);
      return;
    }
    c.state = State::handshaking;
  }
  while (!c.out.empty()) {
    const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      counters_.bytes_out += static_cast<std::uint64_t>(n);
      c.out.erase(0, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    ConnEnd e;
    e.reason = c.state == State::open || c.state == State::closing ? EndReason::io_error : EndReason::connect_failed;
    e.err = errno;
    end(id, e);
    return;
  }
  if (c.out.empty() && c.out.capacity() > 4096) std::string().swap(c.out);
  update_interest(id, !c.out.empty());
}

void ClientLoop::on_readable(std::uint32_t id, bool hangup) {
  // Edge-triggered: read until a short read (the socket is then empty) or EAGAIN, else
  // no new event would come for what is left; after a hang-up, until the EOF itself.
  const std::uint32_t gen = conns_[id].gen;
  for (;;) {
    Conn& c = conns_[id];
    const ssize_t n = ::recv(c.fd, buf_.data(), buf_.size(), 0);
    if (n > 0) {
      ++counters_.reads;
      counters_.bytes_in += static_cast<std::uint64_t>(n);
      if (delayed_ack_) {
        int zero = 0;
        setsockopt(c.fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
      }
      if (!on_bytes(id, buf_.data(), static_cast<std::size_t>(n), mono_ns())) return;
      if (conns_[id].gen != gen) return;
      if (static_cast<std::size_t>(n) < buf_.size() && !hangup) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    ConnEnd e;
    const bool was_open = c.state == State::open;
    if (c.state == State::closing) {
      e.reason = EndReason::local;
    } else if (n == 0) {
      e.reason = was_open ? EndReason::eof : EndReason::connect_failed;
    } else {
      e.reason = was_open ? EndReason::io_error : EndReason::connect_failed;
      e.err = errno;
    }
    end(id, e);
    return;
  }
}

bool ClientLoop::on_bytes(std::uint32_t id, const char* data, std::size_t n, std::uint64_t now) {
  switch (conns_[id].state) {
    case State::connecting:
    case State::handshaking: return on_handshake_bytes(id, data, n, now);
    case State::open:
    case State::closing: return on_frames(id, std::string_view(data, n), now);
    case State::free: return false;
  }
  return false;
}

bool ClientLoop::on_handshake_bytes(std::uint32_t id, const char* data, std::size_t n, std::uint64_t now) {
  Conn& c = conns_[id];
  c.inbuf.append(data, n);
  const std::size_t end_of_head = c.inbuf.find("\r\n\r\n");
  if (end_of_head == std::string::npos) {
    if (c.inbuf.size() > 16384) {
      ConnEnd e;
      e.reason = EndReason::bad_handshake;
      end(id, e);
      return false;
    }
    return true;
  }
  const std::string_view head(c.inbuf.data(), end_of_head);
  const int status = parse_status(head);
  if (status != 101) {
    ConnEnd e;
    e.reason = status ? EndReason::refused : EndReason::bad_handshake;
    e.http_status = status;
    end(id, e);
    return false;
  }
  if (verify_accept_) {
    const auto accept = header_value(head, "sec-websocket-accept");
    if (!accept || *accept != ws_accept_for(c.key)) {
      ConnEnd e;
      e.reason = EndReason::bad_handshake;
      e.http_status = status;
      end(id, e);
      return false;
    }
  }
  std::string leftover = c.inbuf.substr(end_of_head + 4);
  std::string().swap(c.inbuf);
  std::string().swap(c.key);
  c.state = State::open;
  const std::uint32_t gen = c.gen;
  handler_.on_open(*this, id, now);
  if (conns_[id].gen != gen || conns_[id].state != State::open) return false;
  if (leftover.empty()) return true;
  return on_frames(id, leftover, now);
}

bool ClientLoop::on_frames(std::uint32_t id, std::string_view data, std::uint64_t now) {
  const std::uint32_t gen = conns_[id].gen;
  auto alive = [&] { return conns_[id].gen == gen && conns_[id].state != State::free; };
  const auto status = conns_[id].parser.feed(data, [&](const ServerFrame& f) {
    ++counters_.frames_in;
    switch (f.op) {
      case WsOp::text:
        if (conns_[id].state == State::open) handler_.on_text(*this, id, f.payload, now);
        return alive();
      case WsOp::ping: {
        ++counters_.pings;
        std::string pong;
        append_client_frame(pong, WsOp::pong, f.payload, next_mask());
        send_raw(id, pong);
        return true;
      }
      case WsOp::close: {
        std::uint16_t code = 1005;
        if (f.payload.size() >= 2) {
          code = static_cast<std::uint16_t>((static_cast<unsigned char>(f.payload[0]) << 8) |
                                            static_cast<unsigned char>(f.payload[1]));
        }
        ConnEnd e;
        if (conns_[id].state == State::open) {
          // Echo the close (RFC 6455 5.5.1), then go.
          std::string reply;
          if (code == 1005) {
            append_client_frame(reply, WsOp::close, {}, next_mask());
          } else {
            append_client_close(reply, code, next_mask());
          }
          send_raw(id, reply);
          e.reason = EndReason::server_close;
        } else {
          e.reason = EndReason::local;
        }
        e.ws_code = code;
        end(id, e);
        return false;
      }
      default: return true;  // binary, pong, continuation: nothing the bench needs
    }
  });
  if (status == ServerFrameParser::Status::error) {
    if (alive()) {
      ConnEnd e;
      e.reason = EndReason::protocol_error;
      end(id, e);
    }
    return false;
  }
  return alive();
}

bool ClientLoop::send_text(std::uint32_t id, std::string_view payload) {
  if (id >= conns_.size() || conns_[id].state != State::open) return false;
  scratch_.clear();
  append_client_frame(scratch_, WsOp::text, payload, next_mask());
  return send_raw(id, scratch_);
}

bool ClientLoop::send_raw(std::uint32_t id, std::string_view bytes) {
  Conn& c = conns_[id];
  if (c.state == State::free) return false;
  if (!c.out.empty() || c.state == State::connecting) {
    c.out.append(bytes);
    return true;
  }
  ssize_t n;
  do {
    n = ::send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(bytes.size())) {
    counters_.bytes_out += static_cast<std::uint64_t>(n);
    return true;
  }
  // Partly taken, would block, or failed: keep the rest and let EPOLLOUT finish it
  // (or report the error from on_writable(), outside whatever callback we are in).
  ++counters_.write_blocked;
  const std::size_t taken = n > 0 ? static_cast<std::size_t>(n) : 0;
  counters_.bytes_out += taken;
  c.out.append(bytes.substr(taken));
  update_interest(id, true);
  return true;
}

void ClientLoop::update_interest(std::uint32_t id, bool want_write) {
  Conn& c = conns_[id];
  if (c.want_write == want_write || c.fd < 0) return;
  c.want_write = want_write;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (want_write ? EPOLLOUT : 0U);
  ev.data.u64 = key_of(id);
  epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void ClientLoop::close(std::uint32_t id, std::uint16_t code, CloseMode mode) {
  if (id >= conns_.size()) return;
  Conn& c = conns_[id];
  if (c.state == State::free) return;
  if (c.state == State::open && mode != CloseMode::drop) {
    std::string frame;
    append_client_close(frame, code, next_mask());
    send_raw(id, frame);
    if (mode == CloseMode::graceful) {
      c.state = State::closing;
      c.started_ns = mono_ns();
      return;
    }
  }
  ConnEnd e;
  e.reason = EndReason::local;
  end(id, e, mode == CloseMode::rst);
}

void ClientLoop::expire(std::uint64_t now_ns, std::uint64_t timeout_ns) {
  for (std::uint32_t id = 0; id < conns_.size(); ++id) {
    const Conn& c = conns_[id];
    if (c.state == State::free || c.state == State::open) continue;
    if (now_ns - c.started_ns < timeout_ns) continue;
    ConnEnd e;
    e.reason = c.state == State::closing ? EndReason::local : EndReason::timeout;
    end(id, e, true);
  }
}

void ClientLoop::end(std::uint32_t id, ConnEnd e, bool rst) {
  Conn& c = conns_[id];
  if (c.state == State::free) return;
  e.was_open = c.state == State::open || c.state == State::closing;
  if (c.fd >= 0) {
    if (rst) {
      linger l{1, 0};
      setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    ::close(c.fd);  // also leaves the epoll set
    c.fd = -1;
  }
  c.state = State::free;
  c.want_write = false;
  ++c.gen;
  std::string().swap(c.out);
  std::string().swap(c.inbuf);
  std::string().swap(c.key);
  // The parser is reset when the id is reused: it may be on the stack right now.
  --live_;
  pending_free_.push_back(id);
  handler_.on_end(*this, id, e);
}

}  // namespace chatorbit::bench
