#include "ws_client.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <openssl/sha.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <stdexcept>

namespace chatorbit::bench {

std::uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

// ---------------------------------------------------------------------------------
// Codec

void append_client_frame(std::string& out, WsOp op, std::string_view payload, std::uint32_t mask) {
  const std::size_t n = payload.size();
  out.push_back(static_cast<char>(0x80 | static_cast<unsigned>(op)));
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>((n >> 8) & 0xFF));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xFF));
  }
  const unsigned char key[4] = {static_cast<unsigned char>(mask >> 24), static_cast<unsigned char>(mask >> 16),
                                static_cast<unsigned char>(mask >> 8), static_cast<unsigned char>(mask)};
  out.append(reinterpret_cast<const char*>(key), 4);
  const std::size_t start = out.size();
  out.append(payload);
  for (std::size_t i = 0; i < n; ++i) out[start + i] = static_cast<char>(out[start + i] ^ key[i & 3]);
}

void append_client_close(std::string& out, std::uint16_t code, std::uint32_t mask) {
  const char body[2] = {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  append_client_frame(out, WsOp::close, std::string_view(body, 2), mask);
}

std::size_t ServerFrameParser::frame_size(const unsigned char* p, std::size_t n, ServerFrame& f, std::size_t& header) {
  if (n < 2) return 0;
  const unsigned b0 = p[0];
  const unsigned b1 = p[1];
  if ((b0 & 0x70) != 0 || (b1 & 0x80) != 0) return SIZE_MAX;  // RSV bits; servers never mask
  f.op = static_cast<WsOp>(b0 & 0x0F);
  f.fin = (b0 & 0x80) != 0;
  std::uint64_t len = b1 & 0x7F;
  header = 2;
  if (len == 126) {
    if (n < 4) return 0;
    len = (static_cast<std::uint64_t>(p[2]) << 8) | p[3];
    header = 4;
  } else if (len == 127) {
    if (n < 10) return 0;
    len = 0;
    for (int i = 2; i < 10; ++i) len = (len << 8) | p[i];
    header = 10;
  }
  if (len > kMaxFrameBytes) return SIZE_MAX;
  return header + static_cast<std::size_t>(len);
}

// ---------------------------------------------------------------------------------
// Handshake helpers

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(const unsigned char* p, std::size_t n) {
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v =
        (static_cast<std::uint32_t>(p[i]) << 16) | (static_cast<std::uint32_t>(p[i + 1]) << 8) | p[i + 2];
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back(kB64[v & 63]);
  }
  if (n - i == 1) {
    const std::uint32_t v = static_cast<std::uint32_t>(p[i]) << 16;
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out += "==";
  } else if (n - i == 2) {
    const std::uint32_t v = (static_cast<std::uint32_t>(p[i]) << 16) | (static_cast<std::uint32_t>(p[i + 1]) << 8);
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

std::uint64_t xorshift(std::uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

/// The value of header `name` (lower case, without the colon) in `head`, trimmed.
std::optional<std::string_view> header_value(std::string_view head, std::string_view name) {
  std::size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    const std::size_t start = pos + 2;
    std::size_t eol = head.find("\r\n", start);
    if (eol == std::string_view::npos) eol = head.size();
    const std::string_view line = head.substr(start, eol - start);
    if (line.size() > name.size() && line[name.size()] == ':') {
      bool same = true;
      for (std::size_t i = 0; i < name.size() && same; ++i) same = lower(line[i]) == name[i];
      if (same) {
        std::string_view v = line.substr(name.size() + 1);
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
        return v;
      }
    }
    pos = eol;
  }
  return std::nullopt;
}

int parse_status(std::string_view head) {
  // "HTTP/1.1 101 Switching Protocols"
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return 0;
  const std::size_t sp = head.find(' ');
  if (sp == std::string_view::npos || sp + 4 > head.size()) return 0;
  int status = 0;
  const auto r = std::from_chars(head.data() + sp + 1, head.data() + sp + 4, status);
  return r.ec == std::errc{} ? status : 0;
}

}  // namespace

std::string make_ws_key(std::uint64_t& state) {
  unsigned char raw[16];
  for (int i = 0; i < 2; ++i) {
    const std::uint64_t v = xorshift(state);
    std::memcpy(raw + 8 * i, &v, 8);
  }
  return base64(raw, sizeof raw);
}

std::string ws_accept_for(std::string_view key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input(key);
  input += kGuid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return base64(digest, sizeof digest);
}

Url parse_url(const std::string& url) {
  Url u;
  std::string_view rest = url;
  if (rest.starts_with("ws://")) {
    rest.remove_prefix(5);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    throw std::runtime_error("unsupported URL (want ws:// or http://): " + url);
  }
  const std::size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  u.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  const std::size_t colon = hostport.rfind(':');
  if (colon != std::string_view::npos) {
    unsigned port = 0;
    const auto r = std::from_chars(hostport.data() + colon + 1, hostport.data() + hostport.size(), port);
    if (r.ec != std::errc{} || r.ptr != hostport.data() + hostport.size() || port == 0 || port > 65535) {
      throw std::runtime_error("bad port in URL: " + url);
    }
    u.port = static_cast<std::uint16_t>(port);
    hostport = hostport.substr(0, colon);
  }
  if (hostport.empty()) throw std::runtime_error("no host in URL: " + url);
  u.host = std::string(hostport);
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(u.host.c_str(), nullptr, &hints, &res) != 0 || !res) {
    throw std::runtime_error("cannot resolve " + u.host + " (IPv4 only)");
  }
  std::memcpy(&u.addr, res->ai_addr, sizeof(sockaddr_in));
  freeaddrinfo(res);
  u.addr.sin_port = htons(u.port);
  return u;
}

namespace {

std::string dechunk(std::string_view body) {
  std::string out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    const std::size_t eol = body.find("\r\n", pos);
    if (eol == std::string_view::npos) break;
    std::size_t len = 0;
    std::from_chars(body.data() + pos, body.data() + eol, len, 16);
    if (len == 0) break;
    out.append(body.substr(eol + 2, len));
    pos = eol + 2 + len + 2;
  }
  return out;
}

}  // namespace

HttpResult http_request(const Url& base, std::string_view method, std::string_view path, std::string_view body,
                        int timeout_s) {
  HttpResult r;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    r.error = std::string("socket: ") + std::strerror(errno);
    return r;
  }
  timeval tv{timeout_s, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&base.addr), sizeof base.addr) != 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return r;
  }
  std::string req;
  req.append(method).append(" ").append(path).append(" HTTP/1.1\r\nHost: ").append(base.host_header());
  req.append("\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ");
  req.append(std::to_string(body.size())).append("\r\n\r\n").append(body);
  std::size_t off = 0;
  while (off < req.size()) {
    const ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      r.error = std::string("send: ") + std::strerror(errno);
      ::close(fd);
      return r;
    }
    off += static_cast<std::size_t>(n);
  }
  std::string in;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      in.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) r.error = std::string("recv: ") + std::strerror(errno);
    break;
  }
  ::close(fd);
  const std::size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (r.error.empty()) r.error = "incomplete HTTP answer";
    return r;
  }
  const std::string_view head(in.data(), end);
  r.status = parse_status(head);
  const auto te = header_value(head, "transfer-encoding");
  const std::string_view raw = std::string_view(in).substr(end + 4);
  r.body = te && te->find("chunked") != std::string_view::npos ? dechunk(raw) : std::string(raw);
  return r;
}

std::optional<std::string> json_string_field(std::string_view json, std::string_view key) {
  std::string needle = "\"";
  needle.append(key).append("\"");
  std::size_t pos = json.find(needle);
  if (pos == std::string_view::npos) return std::nullopt;
  pos += needle.size();
  while (pos < json.size() && (json[pos] == ' ' || json[pos] == ':')) ++pos;
  if (pos >= json.size() || json[pos] != '"') return std::nullopt;
  const std::size_t close = json.find('"', pos + 1);
  if (close == std::string_view::npos) return std::nullopt;
  return std::string(json.substr(pos + 1, close - pos - 1));
}

// ---------------------------------------------------------------------------------
// ClientLoop

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
