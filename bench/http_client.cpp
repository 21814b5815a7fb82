// The tiny blocking HTTP/1.1 client of chatorbit-bench, and the parsing of HTTP response
// heads.

#include "http_client.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace chatorbit::bench {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

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

int parse_status(std::string_view head) {
  // "HTTP/1.1 101 Switching Protocols"
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return 0;
  const std::size_t sp = head.find(' ');
  if (sp == std::string_view::npos || sp + 4 > head.size()) return 0;
  int status = 0;
  const auto r = std::from_chars(head.data() + sp + 1, head.data() + sp + 4, status);
  return r.ec == std::errc{} ? status : 0;
}

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

}  // namespace chatorbit::bench
