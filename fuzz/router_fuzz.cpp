// Fuzz target: HTTP routing and request parsing helpers (net/router.hpp): Router::match
// over the product's route table, percent_decode, and Context::query / cookie / bearer.
//
// Input: byte 0 picks the method; bytes 1.. are lines:
//   1: the request target ("/path?query"), split at the first '?' like the server does
//   2: the Cookie header value     3: the Authorization header value
//   4: a query parameter name to look up    5: a cookie name to look up
//   6..: extra route patterns, added to the table before matching
// (CR, LF and NUL cannot occur in a parsed header value, so they are dropped from 2-3.)
//
// Oracles, beyond the sanitizers: a match is for the requested method and lists it as
// allowed, with one decoded parameter per parameter segment of its pattern; decoding
// never grows the text; decoding what was percent-encoded gives the bytes back.

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "net/router.hpp"

namespace {

namespace http = chatorbit::http;
using boost::beast::http::verb;

void check(bool ok, const char* what) { chatorbit::fuzz::check(ok, "router_fuzz", what); }

// The product's routes (ops, auth, user and chat services), which is what real paths are
// matched against; plus a catch-all like the test suite's.
const char* const kRoutes[][2] = {
    {"GET", "/healthz"},
    {"GET", "/readyz"},
    {"GET", "/metrics"},
    {"GET", "/swagger/doc.json"},
    {"GET", "/swagger/index.html"},
    {"GET", "/swagger"},
    {"GET", "/swagger/{file}"},
    {"POST", "/register"},
    {"POST", "/login"},
    {"POST", "/change-password"},
    {"POST", "/logout"},
    {"GET", "/user/{id}"},
    {"GET", "/users/me"},
    {"PUT", "/users/{id}/role"},
    {"POST", "/chat/rooms"},
    {"GET", "/chat/rooms"},
    {"GET", "/chat/history/{room}"},
    {"GET", "/chat/rooms/{room}/presence"},
    {"GET", "/ws/chat"},
    {"GET", "/files/{*rest}"},
};

std::string percent_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    out += '%';
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

std::string header_value(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c != '\r' && c != '\n' && c != '\0') out += c;
  }
  return out;
}

// Parameters a match of `pattern` yields: one per {name} segment, up to and including
// the first {*rest}, which takes the remainder of the path.
std::size_t param_segments(std::string_view pattern) {
  if (!pattern.empty() && pattern.front() == '/') pattern.remove_prefix(1);
  std::size_t n = 0;
  for (;;) {
    const std::size_t slash = pattern.find('/');
    const std::string_view seg = pattern.substr(0, slash);
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
      ++n;
      if (seg.size() >= 3 && seg[1] == '*') return n;
    }
    if (slash == std::string_view::npos) return n;
    pattern.remove_prefix(slash + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static constexpr verb kMethods[] = {verb::get, verb::post, verb::put, verb::delete_, verb::head, verb::options};
  const verb method = kMethods[data[0] % std::size(kMethods)];
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string_view> lines;
  for (std::size_t pos = 0; pos <= in.size();) {
    const std::size_t nl = in.find('\n', pos);
    lines.push_back(in.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  auto line = [&](std::size_t i) { return i < lines.size() ? lines[i] : std::string_view{}; };

  http::Router router;
  for (const auto& r : kRoutes) router.add(boost::beast::http::string_to_verb(r[0]), r[1], {});
  for (std::size_t i = 5; i < lines.size() && i < 12; ++i) {
    try {
      router.add(verb::get, std::string(lines[i]), {});
    } catch (const std::logic_error&) {  // a duplicate: documented
    }
  }

  const std::string_view target = line(0);
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);

  const http::Router::Match m = router.match(method, path);
  if (m.route != nullptr) {
    check(m.route->method == method, "matched a route of another method");
    check(std::find(m.allowed.begin(), m.allowed.end(), method) != m.allowed.end(), "match not in allowed");
    check(m.params.size() == param_segments(m.route->pattern), "parameter count differs from the pattern");
  }

  for (const bool plus : {false, true}) {
    for (const std::string_view s : {path, query, line(1)}) {
      const auto d = http::percent_decode(s, plus);
      check(!d || d->size() <= s.size(), "percent_decode grew the text");
    }
    const auto back = http::percent_decode(percent_encode(target), plus);
    check(back && *back == target, "percent_decode(percent_encode(x)) != x");
  }

  http::Request req;
  if (!line(1).empty()) req.set(boost::beast::http::field::cookie, header_value(line(1)));
  if (!line(2).empty()) req.set(boost::beast::http::field::authorization, header_value(line(2)));
  http::Context ctx{req};
  ctx.path = std::string(path);
  ctx.query_string = std::string(query);
  ctx.params = m.params;
  for (const auto& [name, value] : m.params) check(ctx.param(name).data() != nullptr, "param lookup failed");
  (void)ctx.query(line(3));
  (void)ctx.query("room");
  (void)ctx.cookie(line(4));
  (void)ctx.cookie("token");
  if (const auto b = ctx.bearer()) check(!b->empty() && b->front() != ' ', "bearer token empty or padded");
  return 0;
}
