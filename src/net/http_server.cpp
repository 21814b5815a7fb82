#include "net/http_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <list>

#include "core/log.hpp"
#include "core/random.hpp"
#include "engine/engine.hpp"
#include "net/use_nothrow.hpp"
#include "store/store.hpp"

namespace chatorbit::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;
using net::use_nothrow;

struct HttpServer::LoopState {
  LoopState(asio::io_context& c, std::size_t i) : ctx(c), index(i) {}
  asio::io_context& ctx;
  std::size_t index;
  std::unique_ptr<tcp::acceptor> acceptor;
  // Connections waiting for their next request; closed at once when draining.
  // Touched only on this loop's thread.
  std::list<beast::tcp_stream*> idle;
  std::int64_t accept_failures = 0;
  std::chrono::steady_clock::time_point last_accept_log{};
  std::int64_t refusals = 0;  ///< since the last connection_refused line
  std::chrono::steady_clock::time_point last_refusal_log{};

  /// Counts a refusal; true at most once a second, when it is time to log (with `refusals`).
  bool refusal_log_due() {
    ++refusals;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_refusal_log < std::chrono::seconds{1}) return false;
    last_refusal_log = now;
    return true;
  }
};

namespace {

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

std::string allow_header(const std::vector<bhttp::verb>& allowed) {
  std::string out;
  for (auto v : allowed) {
    if (out.find(bhttp::to_string(v)) != std::string::npos) continue;
    if (!out.empty()) out += ", ";
    out += bhttp::to_string(v);
  }
  return out;
}

}  // namespace

HttpServer::HttpServer(ServerOptions options, net::EventLoops& loops, const Router& router, Metrics& metrics)
    : options_(std::move(options)), loops_(loops), router_(router), metrics_(metrics) {}

HttpServer::~HttpServer() = default;

void HttpServer::add_upgrade(std::string path, UpgradeHandler handler, std::string protocol) {
  upgrades_.push_back(Upgrade{std::move(path), std::move(protocol), std::move(handler)});
}

int HttpServer::start() {
  const auto address = asio::ip::make_address(options_.bind);
  int port = options_.port;
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    auto state = std::make_unique<LoopState>(loops_.loop(i), i);
    auto acc = std::make_unique<tcp::acceptor>(state->ctx);
    const tcp::endpoint ep{address, static_cast<unsigned short>(port)};
    acc->open(ep.protocol());
    acc->set_option(asio::socket_base::reuse_address(true));
    // Every loop binds the same port; the kernel balances new connections among them.
    int one = 1;
    if (::setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      throw std::system_error(errno, std::generic_category(), "SO_REUSEPORT");
    }
    acc->bind(ep);
    acc->listen(asio::socket_base::max_listen_connections);
    if (port == 0) port = acc->local_endpoint().port();
    state->acceptor = std::move(acc);
    states_.push_back(std::move(state));
  }
  for (auto& s : states_) asio::co_spawn(s->ctx, accept_loop(*s), asio::detached);
  return port;
}

void HttpServer::begin_drain() {
  if (draining_.exchange(true)) return;
  for (auto& s : states_) {
    asio::post(s->ctx, [state = s.get()] {
      beast::error_code ignored;
      if (state->acceptor) state->acceptor->close(ignored);
      for (auto* stream : state->idle) stream->socket().close(ignored);
    });
  }
}

namespace {

bool is_probe_path(std::string_view path) { return path == "/healthz" || path == "/readyz" || path == "/metrics"; }

// A refusal written straight to a just-accepted socket, without a coroutine or a read:
// it must cost next to nothing, since a flood is when it runs. What the client already
// sent is read and dropped first, so that the close sends a FIN after the response
// rather than a reset that could destroy it.
void refuse_now(tcp::socket& socket, Status status, std::string_view error) {
  const std::string body = std::string("{\"error\":\"") + std::string(error) + "\"}";
  const std::string head = "HTTP/1.1 " + std::to_string(static_cast<unsigned>(status)) + " " +
                           std::string(bhttp::obsolete_reason(status)) +
                           "\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
                           "Content-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body;
  const int fd = socket.native_handle();
  char sink[4096];
  while (::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
  }
  [[maybe_unused]] const auto sent = ::send(fd, head.data(), head.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  beast::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  socket.close(ignored);
}

}  // namespace

asio::awaitable<void> write_and_close(beast::tcp_stream& stream, Response res) {
  res.keep_alive(false);
  res.prepare_payload();
  stream.expires_after(std::chrono::seconds{5});
  auto [ec, n] = co_await bhttp::async_write(stream, res, use_nothrow);
  (void)n;
  if (ec) co_return;
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  char sink[4096];
  std::size_t drained = 0;
  stream.expires_after(std::chrono::seconds{1});
  while (drained < (1u << 20)) {
    auto [rec, got] = co_await stream.async_read_some(asio::buffer(sink), use_nothrow);
    if (rec) break;
    drained += got;
  }
}

HttpServer::Admission HttpServer::admit(const std::string& ip) {
  const std::int64_t elsewhere = external_connections_ ? external_connections_() : 0;
  std::lock_guard lock(admit_mu_);
  if (options_.max_connections > 0 && open_ + elsewhere >= options_.max_connections) {
    if (probes_open_ >= options_.probe_slots) return Admission::refused_capacity;
    ++probes_open_;
    return Admission::probe;
  }
  // A trusted proxy (the gateway) carries many clients on its connections: the
  // per-address cap is for the clients it names, not for it.
  if (options_.max_connections_per_ip > 0 && !options_.trusted_proxies.contains(ip)) {
    auto& n = open_per_ip_[ip];
    if (n >= options_.max_connections_per_ip) return Admission::refused_address;
    ++n;
  }
  ++open_;
  return Admission::full;
}

void HttpServer::release(const std::string& ip, Admission how) {
  std::lock_guard lock(admit_mu_);
  if (how == Admission::probe) {
    --probes_open_;
    return;
  }
  --open_;
  if (options_.max_connections_per_ip > 0 && !options_.trusted_proxies.contains(ip)) {
    const auto it = open_per_ip_.find(ip);
    if (it != open_per_ip_.end() && --it->second <= 0) open_per_ip_.erase(it);
  }
}

asio::awaitable<void> HttpServer::accept_loop(LoopState& state) {
  for (;;) {
    auto [ec, socket] = co_await state.acceptor->async_accept(use_nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || draining()) co_return;
      // EMFILE and friends: back off briefly instead of spinning, and log at most once
      // a second (with how many were skipped) so a full fd table cannot flood the log.
      const auto now = std::chrono::steady_clock::now();
      ++state.accept_failures;
      if (now - state.last_accept_log >= std::chrono::seconds{1}) {
        log::warn("accept_failed", {{"error", ec.message()}, {"count", state.accept_failures}});
        state.accept_failures = 0;
        state.last_accept_log = now;
      }
      asio::steady_timer t(state.ctx, std::chrono::milliseconds{50});
      co_await t.async_wait(use_nothrow);
      continue;
    }
    const auto remote = socket.remote_endpoint(ec);
    std::string client_ip = ec ? std::string("unknown") : remote.address().to_string();
    const auto how = admit(client_ip);
    if (how == Admission::refused_capacity || how == Admission::refused_address) {
      const bool capacity = how == Admission::refused_capacity;
      metrics_.observe_request("refused", "-", capacity ? 503 : 429, 0);
      if (state.refusal_log_due()) {
        log::warn("connection_refused",
                  {{"client", client_ip}, {"why", capacity ? "capacity" : "address cap"}, {"count", state.refusals}});
        state.refusals = 0;
      }
      refuse_now(socket, capacity ? Status::service_unavailable : Status::too_many_requests,
                 capacity ? "server at capacity" : "too many connections");
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    // Accepting stays live work (it is one cheap step, and it is what admits or refuses);
    // everything the connection then asks for is background work.
    asio::co_spawn(loops_.background(state.index).executor(),
                   session(state, std::move(socket), std::move(client_ip), how), asio::detached);
  }
}

asio::awaitable<void> HttpServer::session(LoopState& state, tcp::socket socket, std::string client_ip, Admission how) {
  metrics_.connection_opened();
  struct Closed {
    HttpServer& server;
    const std::string& ip;
    Admission how;
    bool counted = true;
    void now() {
      if (!counted) return;
      counted = false;
      server.metrics_.connection_closed();
      server.release(ip, how);
    }
    ~Closed() { now(); }
  } closed{*this, client_ip, how};
  const bool probe = how == Admission::probe;

  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;

  for (;;) {
    if (draining()) break;
    if (buffer.size() == 0) {
      // Idle between requests: bounded by the idle timeout, and closed at once on drain.
      stream.expires_after(probe ? options_.probe_timeout : options_.idle_timeout);
      state.idle.push_front(&stream);
      const auto it = state.idle.begin();
      auto [rec, n] = co_await stream.async_read_some(buffer.prepare(4096), use_nothrow);
      state.idle.erase(it);
      if (rec) break;
      buffer.commit(n);
    }

    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
    parser.body_limit(options_.max_body_bytes);
    stream.expires_after(probe ? options_.probe_timeout : options_.read_timeout);
    auto [hec, hn] = co_await bhttp::async_read_header(stream, buffer, parser, use_nothrow);
    (void)hn;
    beast::error_code rec = hec;
    if (!rec) {
      const auto& head = parser.get();
      if (beast::iequals(head[bhttp::field::expect], "100-continue")) {
        // Clients such as curl wait for this before sending larger bodies.
        Response cont{Status::continue_, head.version()};
        auto [cec, cn] = co_await bhttp::async_write(stream, cont, use_nothrow);
        (void)cn;
        if (cec) break;
      }
      if (!parser.is_done()) {
        auto [bec, bn] = co_await bhttp::async_read(stream, buffer, parser, use_nothrow);
        (void)bn;
        rec = bec;
      }
    }
    if (rec) {
      if (rec == bhttp::error::end_of_stream || rec == beast::error::timeout || rec == asio::error::eof ||
          rec == asio::error::connection_reset || rec == asio::error::operation_aborted) {
        break;
      }
      Status status = Status::bad_request;
      std::string message = "malformed HTTP request";
      if (rec == bhttp::error::body_limit) {
        status = Status::payload_too_large;
        message = "request body too large (limit " + std::to_string(options_.max_body_bytes) + " bytes)";
      } else if (rec == bhttp::error::header_limit) {
        status = Status::request_header_fields_too_large;
        message = "request header too large";
      }
      metrics_.observe_request("unmatched", "-", static_cast<unsigned>(status), 0);
      log::info("http_bad_request",
                {{"client", client_ip}, {"status", static_cast<int>(status)}, {"why", rec.message()}});
      co_await write_and_close(stream, error_response(status, message));
      co_return;
    }

    Request req = parser.release();
    const auto started = std::chrono::steady_clock::now();
    const std::string_view target = req.target();
    const auto qpos = target.find('?');
    std::string request_id(req["X-Request-Id"]);
    if (!valid_request_id(request_id)) {
      const auto n = request_counter_.fetch_add(1, std::memory_order_relaxed);
      static const std::string prefix = OsRandom::instance().hex(4);
      char buf[24];
      std::snprintf(buf, sizeof buf, "%08llx", static_cast<unsigned long long>(n));
      request_id = prefix + buf;
    }
    // The peer may be a trusted proxy; handlers want the client it names.
    std::vector<std::string_view> forwarded_for;
    if (!options_.trusted_proxies.empty()) {
      for (auto [it, end] = req.equal_range("X-Forwarded-For"); it != end; ++it) forwarded_for.push_back(it->value());
    }
    Context ctx{req,
                std::string(target.substr(0, qpos)),
                qpos == std::string_view::npos ? std::string{} : std::string(target.substr(qpos + 1)),
                {},
                net::client_address(client_ip, forwarded_for, options_.trusted_proxies),
                request_id,
                {},
                state.index};

    if (probe && !is_probe_path(ctx.path)) {
      // Over capacity: this connection was let in for monitoring only.
      metrics_.observe_request("refused", req.method_string(), 503, 0);
      co_await write_and_close(stream, error_response(Status::service_unavailable, "server at capacity"));
      co_return;
    }
    if (req.method() == bhttp::verb::get && !req[bhttp::field::upgrade].empty()) {
      for (auto& [path, protocol, handler] : upgrades_) {
        if (path != ctx.path || !beast::iequals(req[bhttp::field::upgrade], protocol)) continue;
        ctx.route = path;
        // The WebSocket side counts its own connections from here on.
        closed.now();
        stream.expires_never();
        handler(std::move(stream), std::move(buffer), std::move(req), ctx);
        co_return;
      }
    }

    Response res = co_await dispatch(ctx);
    const bool keep = req.keep_alive() && !draining() && !probe;
    finish_response(ctx, res, keep);
    const unsigned status = res.result_int();
    // Counted before the response leaves: a client that has read it and then asks for
    // /metrics (on any connection, served by any loop) must find it there. The duration is
    // the time until the response was ready; the log line below adds the write.
    const auto seconds_since = [&started] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    metrics_.observe_request(ctx.route.empty() ? "unmatched" : ctx.route, req.method_string(), status, seconds_since());
    stream.expires_after(options_.read_timeout);
    auto [wec, wn] = co_await bhttp::async_write(stream, res, use_nothrow);
    (void)wn;

    const double secs = seconds_since();
    // The query string is never logged: it may carry a token.
    log::info("http_request", {{"request_id", ctx.request_id},
                               {"method", std::string_view(req.method_string())},
                               {"path", ctx.path},
                               {"route", ctx.route},
                               {"status", status},
                               {"ms", secs * 1000.0},
                               {"client", ctx.client_ip},
                               {"peer", client_ip}});
    if (wec || !keep) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream.socket().close(ignored);
}

asio::awaitable<Response> HttpServer::dispatch(Context& ctx) {
  auto m = router_.match(ctx.req.method(), ctx.path);
  const bool cors_request = ctx.req.find(bhttp::field::origin) != ctx.req.end();
  if (ctx.req.method() == bhttp::verb::options && cors_request && !m.allowed.empty() &&
      ctx.req.find(bhttp::field::access_control_request_method) != ctx.req.end()) {
    ctx.route = "preflight";
    co_return preflight(ctx, m.allowed);
  }
  if (!m.route) {
    if (m.bad_encoding) co_return error_response(Status::bad_request, "malformed percent-encoding in path");
    if (m.allowed.empty()) co_return error_response(Status::not_found, "not found");
    auto res = error_response(Status::method_not_allowed, "method not allowed");
    res.set(bhttp::field::allow, allow_header(m.allowed));
    co_return res;
  }
  ctx.params = std::move(m.params);
  ctx.route = m.route->pattern;
  if (auto refused = refuse_cookie_write(ctx)) co_return std::move(*refused);
  try {
    co_return co_await m.route->handler(ctx);
  } catch (const HttpError& e) {
    auto res = error_response(e.status(), e.what(), e.extra());
    for (const auto& [k, v] : e.headers) res.set(k, v);
    co_return res;
  } catch (const store::StoreUnavailable& e) {
    // The database is unreachable: nothing was done, and the request may be retried.
    log::warn("store_unavailable", {{"request_id", ctx.request_id}, {"route", ctx.route}, {"what", e.what()}});
    auto res = error_response(Status::service_unavailable, "storage unavailable", {{"retry_after_ms", 1000}});
    res.set(bhttp::field::retry_after, "1");
    co_return res;
  } catch (const store::StoreError& e) {
    log::error("store_error", {{"request_id", ctx.request_id}, {"route", ctx.route}, {"what", e.what()}});
    co_return error_response(Status::service_unavailable, "storage unavailable");
  } catch (const engine::EngineUnavailable& e) {
    // Redis is gone or stalled: the request did nothing, and may be retried shortly.
    log::warn("engine_unavailable", {{"request_id", ctx.request_id}, {"route", ctx.route}, {"what", e.what()}});
    auto res = error_response(Status::service_unavailable, "unavailable", {{"retry_after_ms", 1000}});
    res.set(bhttp::field::retry_after, "1");
    co_return res;
  } catch (const std::exception& e) {
    log::error("handler_exception", {{"request_id", ctx.request_id}, {"route", ctx.route}, {"what", e.what()}});
    co_return error_response(Status::internal_server_error, "internal error");
  }
}

std::optional<Response> HttpServer::refuse_cookie_write(const Context& ctx) const {
  const auto method = ctx.req.method();
  if (method == bhttp::verb::get || method == bhttp::verb::head || method == bhttp::verb::options) return std::nullopt;
  if (options_.session_cookie.empty() || ctx.bearer()) return std::nullopt;  // the bearer token is what counts
  const auto cookie = ctx.cookie(options_.session_cookie);
  if (!cookie || cookie->empty()) return std::nullopt;
  if (!cookie_origin_ok(ctx.req, options_.cors_origins)) {
    return error_response(Status::forbidden, "origin not allowed",
                          {{"detail", "a request authenticated by cookie must come from an allowed Origin"}});
  }
  // A body a page could send without a preflight (text/plain, a form) is refused; a
  // bodyless POST from an origin just checked is fine (the original's front end logs out
  // that way).
  if (!ctx.req.body().empty() && !is_json_content_type(ctx.req[bhttp::field::content_type])) {
    return error_response(Status::unsupported_media_type, "unsupported media type",
                          {{"detail", "a request authenticated by cookie must send Content-Type: application/json"}});
  }
  return std::nullopt;
}

Response HttpServer::preflight(Context& ctx, const std::vector<bhttp::verb>& allowed) const {
  Response res{Status::no_content, 11};
  if (cors_origin_allowed(ctx.req[bhttp::field::origin], options_.cors_origins)) {
    res.set(bhttp::field::access_control_allow_methods, allow_header(allowed) + ", OPTIONS");
    res.set(bhttp::field::access_control_allow_headers, "Content-Type, Authorization, X-Request-Id");
    res.set(bhttp::field::access_control_max_age, "600");
  }
  return res;
}

void HttpServer::finish_response(Context& ctx, Response& res, bool keep_alive) const {
  res.version(ctx.req.version());
  res.keep_alive(keep_alive);
  res.set("X-Request-Id", ctx.request_id);
  res.set("X-Content-Type-Options", "nosniff");
  const auto origin = ctx.req.find(bhttp::field::origin);
  if (origin != ctx.req.end()) {
    // The answer depends on the Origin, whether it is allowed or not.
    res.set(bhttp::field::vary, "Origin");
    if (cors_origin_allowed(origin->value(), options_.cors_origins)) {
      res.set(bhttp::field::access_control_allow_origin, origin->value());
      res.set(bhttp::field::access_control_allow_credentials, "true");
    }
  }
  res.prepare_payload();
}

}  // namespace chatorbit::http
