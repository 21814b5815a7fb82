#include "gateway/gateway.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <mutex>
#include <ostream>
#include <sstream>
#include <unordered_map>

#include "chat/address_caps.hpp"
#include "core/log.hpp"
#include "gateway/chat_links.hpp"
#include "gateway/routes.hpp"
#include "gateway/tunnel.hpp"
#include "net/http_server.hpp"
#include "net/use_nothrow.hpp"

namespace chatorbit::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using http::Status;

namespace {

using net::use_nothrow;
constexpr std::size_t kPoolPerUpstream = 64;  ///< idle kept-alive connections per loop and upstream
/// A kept-alive connection idle for longer is not reused: the service closes idle ones
/// after CHATORBIT_HTTP_IDLE_TIMEOUT (60 s by default), and reusing one as it closes
/// would cost a retry.
constexpr std::chrono::seconds kPoolIdle{20};
/// After one direction of a relayed viewer ended cleanly, how long the other may take to
/// finish its closing handshake.
constexpr std::chrono::seconds kCloseGrace{5};

/// Headers that describe one connection, not the message (RFC 9110 7.6.1), and those
/// the gateway sets itself.
bool hop_by_hop(std::string_view name) {
  static constexpr std::string_view kNames[] = {"connection",
                                                "keep-alive",
                                                "proxy-connection",
                                                "proxy-authenticate",
                                                "proxy-authorization",
                                                "te",
                                                "trailer",
                                                "transfer-encoding",
                                                "upgrade",
                                                "content-length",
                                                "expect"};
  for (auto n : kNames) {
    if (beast::iequals(name, n)) return true;
  }
  return false;
}

/// Headers a service sets that the gateway's own server sets for the client instead
/// (CORS follows the gateway's allowlist; the request id is the one the gateway logged).
bool set_by_gateway(std::string_view name) {
  return beast::iequals(name, "x-request-id") || beast::iequals(name, "vary") ||
         (name.size() > 15 && beast::iequals(name.substr(0, 15), "access-control-"));
}

/// True if the Connection header of `msg` lists `name` (those are hop-by-hop too).
template <class Fields>
bool named_by_connection(const Fields& fields, std::string_view name) {
  const auto it = fields.find(bhttp::field::connection);
  if (it == fields.end()) return false;
  std::string_view list = it->value();
  while (!list.empty()) {
    const auto comma = list.find(',');
    const auto token = http::trim_ows(list.substr(0, comma));
    if (beast::iequals(token, name)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

http::Response gateway_error(Status status, std::string_view error, std::string_view service) {
  auto res = http::error_response(status, error, {{"service", service}});
  if (status == Status::service_unavailable) res.set(bhttp::field::retry_after, "1");
  return res;
}

http::Response too_many(std::chrono::milliseconds retry_after, std::string_view error) {
  const auto ms = retry_after.count();
  auto res = http::error_response(Status::too_many_requests, error, {{"retry_after_ms", ms}});
  res.set(bhttp::field::retry_after, std::to_string(std::max<std::int64_t>(1, (ms + 999) / 1000)));
  return res;
}

}  // namespace

GatewayOptions GatewayOptions::from(const Config& c) {
  GatewayOptions o;
  if (c.auth_url.empty()) throw ConfigError("CHATORBIT_AUTH_URL is required for the gateway role");
  if (c.user_url.empty()) throw ConfigError("CHATORBIT_USER_URL is required for the gateway role");
  if (c.chat_urls.empty()) throw ConfigError("CHATORBIT_CHAT_URLS is required for the gateway role");
  o.auth = parse_endpoint(c.auth_url, "CHATORBIT_AUTH_URL");
  o.user = parse_endpoint(c.user_url, "CHATORBIT_USER_URL");
  for (const auto& u : c.chat_urls) o.chat.push_back(parse_endpoint(u, "CHATORBIT_CHAT_URLS"));
  o.upstream_timeout = c.upstream_timeout;
  o.health_interval = c.health_interval;
  o.request_rate = c.edge_request_rate;
  o.connect_rate = c.connect_rate_per_ip;
  o.max_tunnels_per_address = c.max_connections_per_ip;
  o.links_per_node = c.gateway_links;
  // Quiet for three pings and then some: the path is dead.
  o.tunnel_idle = std::max(std::chrono::seconds{30}, c.ping_interval * 3 + c.idle_drop);
  return o;
}

struct GatewayService::Impl : std::enable_shared_from_this<Impl> {
  struct Pooled {
    beast::tcp_stream stream;
    std::chrono::steady_clock::time_point since;
  };
  /// What one loop owns: its idle connections per upstream, its links, and its relayed
  /// viewers (each map keyed by the object its value owns).
  struct LoopState {
    std::vector<std::vector<Pooled>> pool;  ///< by Upstream index (upstreams below)
    std::unordered_map<Tunnel*, std::shared_ptr<Tunnel>> tunnels;
    std::vector<std::shared_ptr<NodeLinkSet>> links;  ///< by chat node index (chat.all()); empty: none
    std::unordered_map<LinkedViewer*, std::shared_ptr<LinkedViewer>> linked;  ///< viewers on those links
  };
  /// How an exchange with an upstream ended, when it gave no response.
  enum class Failure : std::uint8_t { none, unreachable, broken, timed_out };
  struct Exchange {
    std::optional<http::Response> response;
    Failure failure = Failure::none;
  };

  GatewayOptions options;
  GatewayDeps d;
  Upstream auth;
  Upstream user;
  ChatNodes chat;
  std::vector<Upstream*> upstreams;  ///< auth, user, then the chat nodes: the pools' index
  std::vector<LoopState> per_loop;   ///< by loop index; touched only on that loop
  chat::AddressCaps caps;
  std::atomic<std::int64_t> open_tunnels{0};  ///< tunnels and linked viewers
  std::atomic<std::int64_t> open_links{0};
  std::atomic<std::uint64_t> edge_refusals{0};
  std::atomic<bool> stopping{false};
  std::mutex checks_mu;
  std::vector<asio::steady_timer*> check_timers;  ///< health checks' and sweepers'; guarded by checks_mu

  Impl(GatewayOptions o, GatewayDeps deps)
      : options(std::move(o)),
        d(deps),
        auth("auth", options.auth),
        user("user", options.user),
        chat(options.chat),
        per_loop(deps.loops.size()),
        caps(options.max_tunnels_per_address) {
    upstreams = {&auth, &user};
    for (const auto& n : chat.all()) upstreams.push_back(n.get());
    for (auto& l : per_loop) l.pool.resize(upstreams.size());
  }

  std::size_t index_of(const Upstream& u) const {
    return static_cast<std::size_t>(std::find(upstreams.begin(), upstreams.end(), &u) - upstreams.begin());
  }

  void note_unreachable(Upstream& u, std::string_view why) {
    u.failed();
    if (u.mark(false)) {
      log::warn("upstream_down", {{"service", u.service()}, {"upstream", u.endpoint().name()}, {"why", why}});
    }
  }

  // --- connections ---------------------------------------------------------------------

  /// A new connection to `u` on the current loop; nullopt (and `u` marked) if none.
  asio::awaitable<std::optional<beast::tcp_stream>> connect(Upstream& u) {
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, results] = co_await resolver.async_resolve(u.endpoint().host, u.endpoint().port, use_nothrow);
    if (rec) {
      note_unreachable(u, rec.message());
      co_return std::nullopt;
    }
    beast::tcp_stream stream(ex);
    stream.expires_after(options.connect_timeout);
    auto [cec, ep] = co_await stream.async_connect(results, use_nothrow);
    (void)ep;
    if (cec) {
      note_unreachable(u, cec.message());
      co_return std::nullopt;
    }
    beast::error_code ignored;
    stream.socket().set_option(tcp::no_delay(true), ignored);
    co_return std::optional<beast::tcp_stream>(std::move(stream));
  }

  std::optional<beast::tcp_stream> take_pooled(std::size_t loop, const Upstream& u) {
    auto& idle = per_loop[loop].pool[index_of(u)];
    const auto now = std::chrono::steady_clock::now();
    while (!idle.empty()) {
      Pooled p = std::move(idle.back());
      idle.pop_back();
      if (now - p.since < kPoolIdle) return std::move(p.stream);
    }
    return std::nullopt;
  }

  void give_back(std::size_t loop, const Upstream& u, beast::tcp_stream stream) {
    auto& idle = per_loop[loop].pool[index_of(u)];
    if (idle.size() >= kPoolPerUpstream || stopping.load(std::memory_order_relaxed)) return;
    idle.push_back(Pooled{std::move(stream), std::chrono::steady_clock::now()});
  }

  // --- REST ----------------------------------------------------------------------------

  /// The request as the service receives it: the client's headers less the hop-by-hop
  /// ones, the client's address and the request id added, kept alive.
  http::Request upstream_request(const http::Context& ctx) const {
    const auto& in = ctx.req;
    http::Request out{in.method(), in.target(), 11};
    for (const auto& f : in) {
      const auto name = f.name_string();
      if (hop_by_hop(name) || named_by_connection(in, name) || beast::iequals(name, "x-forwarded-for") ||
          beast::iequals(name, "x-request-id")) {
        continue;
      }
      out.insert(name, f.value());
    }
    // ctx.client_ip is already the client, as far as this gateway's trusted proxies
    // tell: the services trust the gateway, and take it from here.
    out.set("X-Forwarded-For", ctx.client_ip);
    out.set("X-Request-Id", ctx.request_id);
    out.keep_alive(true);
    out.body() = in.body();
    out.prepare_payload();
    return out;
  }

  static http::Response client_response(bhttp::response<bhttp::string_body>&& in) {
    http::Response out{in.result(), 11};
    for (const auto& f : in) {
      const auto name = f.name_string();
      if (hop_by_hop(name) || named_by_connection(in, name) || set_by_gateway(name)) continue;
      out.insert(name, f.value());
    }
    out.body() = std::move(in.body());
    return out;
  }

  using ResponseParser = bhttp::response_parser<bhttp::string_body>;

  /// Writes `req` on `stream` and reads the answer into `parser`, its head only if
  /// `head_only` (an upgrade: what follows a 101 is the tunnel's), all within
  /// options.upstream_timeout and the response limits.
  asio::awaitable<beast::error_code> ask(beast::tcp_stream& stream, const http::Request& req,
                                         beast::flat_buffer& buffer, ResponseParser& parser, bool head_only) {
    parser.header_limit(64 * 1024);
    parser.body_limit(options.max_response_bytes);
    stream.expires_after(options.upstream_timeout);
    auto [wec, wn] = co_await bhttp::async_write(stream, req, use_nothrow);
    (void)wn;
    if (wec) co_return wec;
    auto [rec, rn] = head_only ? co_await bhttp::async_read_header(stream, buffer, parser, use_nothrow)
                               : co_await bhttp::async_read(stream, buffer, parser, use_nothrow);
    (void)rn;
    co_return rec;
  }

  /// One request to `u` on a pooled connection or a new one. A pooled connection that
  /// turns out to be closed (the service closed it while idle) is replaced once; past
  /// that, a failure is reported, not retried: the request may have been acted on.
  asio::awaitable<Exchange> exchange(const http::Context& ctx, Upstream& u) {
    const auto req = upstream_request(ctx);
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto stream = take_pooled(ctx.loop, u);
      const bool reused = stream.has_value();
      if (!stream) {
        auto fresh = co_await connect(u);
        if (!fresh) co_return Exchange{std::nullopt, Failure::unreachable};
        stream.emplace(std::move(*fresh));
      }
      beast::flat_buffer buffer;
      ResponseParser parser;
      const auto ec = co_await ask(*stream, req, buffer, parser, false);
      if (ec) {
        if (reused && !parser.got_some() && ec != beast::error::timeout) continue;
        u.failed();
        log::warn("upstream_failed", {{"request_id", ctx.request_id},
                                      {"service", u.service()},
                                      {"upstream", u.endpoint().name()},
                                      {"why", ec.message()}});
        co_return Exchange{std::nullopt, ec == beast::error::timeout ? Failure::timed_out : Failure::broken};
      }
      auto res = parser.release();
      const bool keep = res.keep_alive() && buffer.size() == 0;
      auto out = client_response(std::move(res));
      if (keep) give_back(ctx.loop, u, std::move(*stream));
      co_return Exchange{std::move(out), Failure::none};
    }
    co_return Exchange{std::nullopt, Failure::broken};
  }

  asio::awaitable<std::optional<http::Response>> edge_rate(const std::string& key, RateSpec rate,
                                                           std::string_view error) {
    if (rate.count <= 0) co_return std::nullopt;
    engine::Admission verdict;
    try {
      verdict = co_await d.engine.rate_hit(key, rate);
    } catch (const engine::EngineUnavailable& e) {
      // The services' own limits still hold; the edge does not fail closed.
      log::warn("edge_rate_unchecked", {{"key", key}, {"why", e.what()}});
    }
    if (verdict.verdict == engine::Admission::Verdict::ok) co_return std::nullopt;
    edge_refusals.fetch_add(1, std::memory_order_relaxed);
    co_return too_many(verdict.retry_after, error);
  }

  asio::awaitable<http::Response> forward(http::Context& ctx, const RouteSpec& route) {
    if (route.needs_caller) (void)d.authenticator.require(ctx);  // 401 here, not at the service
    if (auto refused = co_await edge_rate("edge_request:" + ctx.client_ip, options.request_rate, "too many requests")) {
      co_return std::move(*refused);
    }
    const auto service = service_name(route.service);
    std::vector<const Upstream*> tried;
    for (;;) {
      Upstream* u = nullptr;
      if (route.service == Service::chat) {
        u = chat.next(tried);
      } else if (tried.empty()) {
        // One instance (or one Service in front of several): always worth a try.
        u = route.service == Service::auth ? &auth : &user;
      }
      if (!u) co_return gateway_error(Status::service_unavailable, "service unavailable", service);
      auto result = co_await exchange(ctx, *u);
      if (result.response) co_return std::move(*result.response);
      switch (result.failure) {
        case Failure::unreachable:
          tried.push_back(u);  // nothing was sent: another node may take it
          continue;
        case Failure::timed_out: co_return gateway_error(Status::gateway_timeout, "service timed out", service);
        default: co_return gateway_error(Status::bad_gateway, "service failed", service);
      }
    }
  }

  // --- viewers (tunnels: gateway/tunnel.hpp) --------------------------------------------

  /// A viewer's upgrade on its way to a chat node: the tunnel or linked viewer it becomes
  /// takes the socket.
  struct Upgrade {
    beast::tcp_stream client;
    std::string client_ip;
    std::size_t loop = 0;
  };

  /// Counts `r` (a tunnel or a linked viewer of `ip`, relayed to `node`) as open and
  /// keeps it in `open`, its loop's map, until its on_end gives all of it back.
  template <class Relayed>
  void keep_open(std::unordered_map<Relayed*, std::shared_ptr<Relayed>>& open, const std::shared_ptr<Relayed>& r,
                 Upstream& node, const std::string& ip) {
    node.tunnel_opened();
    open_tunnels.fetch_add(1, std::memory_order_relaxed);
    open.emplace(r.get(), r);
    r->on_end = [this, &open, raw = r.get(), &node, ip] {
      node.tunnel_closed();
      caps.release(ip);
      open_tunnels.fetch_sub(1, std::memory_order_relaxed);
      open.erase(raw);  // last: it may hold the last reference to `r`
    };
  }

  /// Refuses an upgrade with `res` (JSON, "Connection: close"); the caller has given
  /// back what the viewer had claimed.
  asio::awaitable<void> refuse(beast::tcp_stream& client, http::Response res, const std::string& request_id) {
    res.set("X-Request-Id", request_id);
    co_await http::write_and_close(client, std::move(res));
  }

  /// Takes the viewer to the least loaded chat node that answers: on a link if this
  /// loop has one to it, on a tunnel of its own if not. Refuses with the node's answer,
  /// or 503 when no node is left to try.
  asio::awaitable<void> open_viewer(std::shared_ptr<Upgrade> t, beast::flat_buffer client_bytes, http::Request req,
                                    std::string request_id) {
    if (auto refused =
            co_await edge_rate("edge_connect:" + t->client_ip, options.connect_rate, "too many connections")) {
      caps.release(t->client_ip);
      co_await refuse(t->client, std::move(*refused), request_id);
      co_return;
    }
    // The upgrade as the chat node receives it: every header (the WebSocket ones
    // included), the client's address and the request id.
    req.erase("X-Forwarded-For");
    req.set("X-Forwarded-For", t->client_ip);
    req.set("X-Request-Id", request_id);
    std::vector<const Upstream*> tried;
    for (;;) {
      Upstream* node = chat.least_loaded(tried);
      if (!node) {
        caps.release(t->client_ip);
        co_await refuse(t->client, gateway_error(Status::service_unavailable, "no chat node available", "chat"),
                        request_id);
        co_return;
      }
      tried.push_back(node);
      if (auto link = link_to(t->loop, *node)) {
        const auto outcome = co_await open_linked(t, std::move(link), *node, req, client_bytes, request_id, tried);
        if (outcome == Linked::done) co_return;
        continue;
      }
      auto upstream = co_await connect(*node);
      if (!upstream) continue;
      beast::flat_buffer from_node;
      ResponseParser parser;
      const auto ec = co_await ask(*upstream, req, from_node, parser, true);
      if (ec) {
        // Connected but no answer: the node is failing (or stopping); another may do.
        note_unreachable(*node, ec.message());
        continue;
      }
      if (parser.get().result() != Status::switching_protocols) {
        if (!parser.is_done()) {
          auto [bec, bn] = co_await bhttp::async_read(*upstream, from_node, parser, use_nothrow);
          (void)bn;
          if (bec) {
            note_unreachable(*node, bec.message());
            continue;
          }
        }
        beast::error_code ignored;
        upstream->socket().close(ignored);
        // A node at capacity or on its way down: the next one may take the viewer.
        if (parser.get().result() == Status::service_unavailable && tried.size() < chat.all().size()) continue;
        caps.release(t->client_ip);
        auto res = client_response(parser.release());
        co_await refuse(t->client, std::move(res), request_id);
        co_return;
      }
      // 101: the node's answer, as it sent it, then the relays.
      std::ostringstream head;
      head << parser.get().base();
      const std::string head_bytes = head.str();
      t->client.expires_after(options.write_timeout);
      auto [hwec, hwn] = co_await asio::async_write(t->client, asio::buffer(head_bytes), use_nothrow);
      (void)hwn;
      if (!hwec && from_node.size() > 0) {
        auto [fec, fn] = co_await asio::async_write(t->client, from_node.data(), use_nothrow);
        (void)fn;
        hwec = fec;
      }
      if (!hwec && client_bytes.size() > 0) {
        upstream->expires_after(options.write_timeout);
        auto [cec, cn] = co_await asio::async_write(*upstream, client_bytes.data(), use_nothrow);
        (void)cn;
        hwec = cec;
      }
      if (hwec) {
        caps.release(t->client_ip);
        co_return;  // the sockets close as they go
      }
      // From here the tunnel uses the bare sockets; sweep() keeps the time.
      t->client.expires_never();
      upstream->expires_never();
      auto tunnel = std::make_shared<Tunnel>(t->client.release_socket(), upstream->release_socket(), kCloseGrace);
      keep_open(per_loop[t->loop].tunnels, tunnel, *node, t->client_ip);
      tunnel->start();
      if (stopping.load(std::memory_order_relaxed)) tunnel->close();
      co_return;
    }
  }

  // --- viewers on links (gateway/chat_links.hpp) ---------------------------------------

  /// A link of this loop to `node` that is open, or null (the viewer gets a tunnel).
  std::shared_ptr<GatewayLink> link_to(std::size_t loop, const Upstream& node) {
    auto& links = per_loop[loop].links;
    const auto i = index_of(node) - 2;  // upstreams: auth, user, then the chat nodes
    return i < links.size() && links[i] ? links[i]->pick() : nullptr;
  }

  enum class Linked : std::uint8_t { done, next_node };

  /// The upgrade over `link`: the viewer relayed on it, or refused with the node's
  /// answer (done), or another node to try (no answer, or a 503 with nodes left).
  asio::awaitable<Linked> open_linked(const std::shared_ptr<Upgrade>& t, std::shared_ptr<GatewayLink> link,
                                      Upstream& node, const http::Request& req, const beast::flat_buffer& client_bytes,
                                      const std::string& request_id, const std::vector<const Upstream*>& tried) {
    std::ostringstream request;
    request << req;
    auto v = std::make_shared<LinkedViewer>(t->client.release_socket(), kCloseGrace);
    auto answer = co_await v->open(std::move(link), request.str(), beast::buffers_to_string(client_bytes.data()),
                                   options.upstream_timeout);
    switch (answer.kind) {
      case LinkedViewer::Answer::Kind::accepted: {
        keep_open(per_loop[t->loop].linked, v, node, t->client_ip);
        v->start_relay();
        if (stopping.load(std::memory_order_relaxed)) v->close();
        co_return Linked::done;
      }
      case LinkedViewer::Answer::Kind::gone: caps.release(t->client_ip); co_return Linked::done;
      case LinkedViewer::Answer::Kind::failed:
        note_unreachable(node, answer.bytes);
        t->client.socket() = v->take_socket();
        co_return Linked::next_node;
      case LinkedViewer::Answer::Kind::refused: break;
    }
    t->client.socket() = v->take_socket();
    ResponseParser parser;
    parser.eager(true);
    beast::error_code ec;
    parser.put(asio::buffer(answer.bytes), ec);
    if (!ec && !parser.is_done()) parser.put_eof(ec);
    if (ec || !parser.is_done()) {
      note_unreachable(node, "malformed handshake answer");
      co_return Linked::next_node;
    }
    // A node at capacity or on its way down: the next one may take the viewer.
    if (parser.get().result() == Status::service_unavailable && tried.size() < chat.all().size()) {
      co_return Linked::next_node;
    }
    caps.release(t->client_ip);
    co_await refuse(t->client, client_response(parser.release()), request_id);
    co_return Linked::done;
  }

  /// Closes what in `open` (a loop's tunnels or linked viewers) is stuck: nothing read
  /// either way for options.tunnel_idle, or a write waiting for options.write_timeout (a
  /// viewer that stopped reading). Logs `event` for each.
  template <class Relayed>
  void close_stuck(const std::unordered_map<Relayed*, std::shared_ptr<Relayed>>& open,
                   std::chrono::steady_clock::time_point now, std::string_view event, std::size_t loop) const {
    std::vector<std::shared_ptr<Relayed>> stuck;
    for (const auto& [raw, r] : open) {
      const auto since = r->writing_since();
      if ((since && now - *since > options.write_timeout) || now - r->last_read() > options.tunnel_idle) {
        stuck.push_back(r);
      }
    }
    for (const auto& r : stuck) {
      log::info(event, {{"loop", loop}});
      r->close();
    }
  }

  void sweep(std::size_t i) {
    const auto now = std::chrono::steady_clock::now();
    close_stuck(per_loop[i].tunnels, now, "tunnel_closed_stuck", i);
    close_stuck(per_loop[i].linked, now, "linked_viewer_closed_stuck", i);
  }

  asio::awaitable<void> sweeper(std::size_t i) {
    auto self = shared_from_this();
    asio::steady_timer timer(co_await asio::this_coro::executor);
    {
      std::lock_guard lock(checks_mu);
      check_timers.push_back(&timer);
    }
    const auto every =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::min(options.tunnel_idle, options.write_timeout) / 4);
    while (!stopping.load(std::memory_order_relaxed)) {
      timer.expires_after(std::max(every, std::chrono::milliseconds{100}));
      auto [ec] = co_await timer.async_wait(use_nothrow);
      if (ec) break;
      sweep(i);
    }
    std::lock_guard lock(checks_mu);
    check_timers.erase(std::find(check_timers.begin(), check_timers.end(), &timer));
  }

  // --- health --------------------------------------------------------------------------

  /// One /readyz of `u`: true if it answered 200 within the time.
  asio::awaitable<bool> check(Upstream& u) {
    auto stream = co_await connect(u);
    if (!stream) co_return false;
    http::Request req{bhttp::verb::get, "/readyz", 11};
    req.set(bhttp::field::host, u.endpoint().name());
    req.keep_alive(false);
    stream->expires_after(std::max(options.health_interval, std::chrono::milliseconds{1000}));
    auto [wec, wn] = co_await bhttp::async_write(*stream, req, use_nothrow);
    (void)wn;
    if (wec) co_return false;
    beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    auto [rec, rn] = co_await bhttp::async_read(*stream, buffer, res, use_nothrow);
    (void)rn;
    beast::error_code ignored;
    stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return !rec && res.result() == Status::ok;
  }

  asio::awaitable<void> watch(Upstream& u) {
    auto self = shared_from_this();
    asio::steady_timer timer(co_await asio::this_coro::executor);
    {
      std::lock_guard lock(checks_mu);
      check_timers.push_back(&timer);
    }
    while (!stopping.load(std::memory_order_relaxed)) {
      const bool up = co_await check(u);
      if (!up) {
        note_unreachable(u, "readiness check failed");
      } else if (u.mark(true)) {
        log::info("upstream_up", {{"service", u.service()}, {"upstream", u.endpoint().name()}});
      }
      timer.expires_after(options.health_interval);
      auto [ec] = co_await timer.async_wait(use_nothrow);
      if (ec) break;
    }
    std::lock_guard lock(checks_mu);
    check_timers.erase(std::find(check_timers.begin(), check_timers.end(), &timer));
  }
};

GatewayService::GatewayService(GatewayOptions options, GatewayDeps deps)
    : impl_(std::make_shared<Impl>(std::move(options), deps)) {
  auto& m = deps.metrics;
  auto* impl = impl_.get();
  m.add_gauge("chatorbit_gateway_tunnels", "WebSocket connections relayed to chat nodes.",
              [impl] { return static_cast<double>(impl->open_tunnels.load(std::memory_order_relaxed)); });
  m.add_gauge("chatorbit_gateway_links", "Links open to chat nodes (each carries many viewers' sessions).",
              [impl] { return static_cast<double>(impl->open_links.load(std::memory_order_relaxed)); });
  m.add_gauge("chatorbit_gateway_chat_nodes_healthy", "Chat nodes in service (passing /readyz).",
              [impl] { return static_cast<double>(impl->chat.healthy_count()); });
  m.add_counter("chatorbit_gateway_upstream_failures_total",
                "Requests, tunnels and checks that found a service unreachable, failing or slow.", [impl] {
                  double n = 0;
                  for (const auto* u : impl->upstreams) n += static_cast<double>(u->failures());
                  return n;
                });
  m.add_counter("chatorbit_gateway_edge_refusals_total",
                "Requests and connections refused at the edge by the per-address limits.",
                [impl] { return static_cast<double>(impl->edge_refusals.load(std::memory_order_relaxed)); });
}

GatewayService::~GatewayService() {
  stop();
  // The loops have stopped (App joins them before its members go). What Impl holds on
  // them goes now, while their io_contexts are alive: handlers those destroy later may
  // hold the last reference to Impl, and a socket must not outlive its io_context.
  for (auto& l : impl_->per_loop) {
    l.pool.clear();
    l.tunnels.clear();
    l.links.clear();
    l.linked.clear();
  }
}

void GatewayService::register_routes(http::Router& router) {
  for (const auto& route : forwarded_routes()) {
    router.add(route.method, std::string(route.pattern),
               [impl = impl_.get(), &route](http::Context& ctx) { return impl->forward(ctx, route); });
  }
}

void GatewayService::upgrade(beast::tcp_stream stream, beast::flat_buffer buffer, http::Request req,
                             http::Context& ctx) {
  auto ex = stream.get_executor();
  auto t = std::make_shared<Impl::Upgrade>(Impl::Upgrade{std::move(stream), ctx.client_ip, ctx.loop});
  // The token, wherever the chat service would look (query, bearer header, cookie): one
  // that is present must be valid. None at all is the node's call (anonymous viewers).
  const auto query_token = http::find_query_param(ctx.query_string, "token");
  std::optional<std::string> token = query_token.value;
  if (!token || token->empty()) token = auth::Authenticator::token_of(ctx);
  std::optional<http::Response> refused;
  if ((query_token.present && !query_token.value) ||
      (token && !token->empty() && !impl_->d.authenticator.verify(*token))) {
    refused = http::error_response(Status::unauthorized, "invalid token");
  } else if (impl_->stopping.load(std::memory_order_relaxed)) {
    refused = gateway_error(Status::service_unavailable, "gateway shutting down", "gateway");
  } else if (!impl_->caps.try_acquire(t->client_ip)) {
    impl_->edge_refusals.fetch_add(1, std::memory_order_relaxed);
    refused = http::error_response(Status::too_many_requests, "too many connections");
  }
  if (refused) {
    asio::co_spawn(
        ex,
        [impl = impl_, t, res = std::move(*refused), id = ctx.request_id]() mutable -> asio::awaitable<void> {
          co_await impl->refuse(t->client, std::move(res), id);
        },
        asio::detached);
    return;
  }
  asio::co_spawn(ex, impl_->open_viewer(t, std::move(buffer), std::move(req), ctx.request_id), asio::detached);
}

void GatewayService::start() {
  auto& impl = *impl_;
  if (impl.options.links_per_node > 0) {
    for (std::size_t i = 0; i < impl.per_loop.size(); ++i) {
      auto ex = impl.d.loops.loop(i).get_executor();
      for (const auto& node : impl.chat.all()) {
        // Impl outlives the loops' work (the destructor below), so the sets hold it bare.
        auto connector = [raw = impl_.get(), n = node.get()] { return raw->connect(*n); };
        auto set = std::make_shared<NodeLinkSet>(ex, node->endpoint().name(), impl.options.links_per_node,
                                                 std::move(connector), impl.options.health_interval, impl.open_links);
        impl.per_loop[i].links.push_back(set);
        asio::post(ex, [set] { set->start(); });
      }
    }
  }
  for (std::size_t i = 0; i < impl_->chat.all().size(); ++i) {
    auto& loop = impl_->d.loops.loop(i % impl_->d.loops.size());
    asio::co_spawn(loop, impl_->watch(*impl_->chat.all()[i]), asio::detached);
  }
  for (std::size_t i = 0; i < impl_->per_loop.size(); ++i) {
    asio::co_spawn(impl_->d.loops.loop(i), impl_->sweeper(i), asio::detached);
  }
}

void GatewayService::stop() {
  if (impl_->stopping.exchange(true)) return;
  {
    std::lock_guard lock(impl_->checks_mu);
    for (auto* timer : impl_->check_timers) {
      asio::post(timer->get_executor(), [impl = impl_, timer] {
        std::lock_guard inner(impl->checks_mu);
        if (std::find(impl->check_timers.begin(), impl->check_timers.end(), timer) != impl->check_timers.end()) {
          timer->cancel();
        }
      });
    }
  }
  for (std::size_t i = 0; i < impl_->per_loop.size(); ++i) {
    asio::post(impl_->d.loops.loop(i), [impl = impl_, i] {
      auto& state = impl->per_loop[i];
      std::vector<std::shared_ptr<Tunnel>> tunnels;
      for (const auto& [raw, t] : state.tunnels) tunnels.push_back(t);
      for (const auto& t : tunnels) t->close();
      for (auto& idle : state.pool) idle.clear();
      for (const auto& set : state.links) set->stop();  // their viewers close with them
      std::vector<std::shared_ptr<LinkedViewer>> linked;
      for (const auto& [raw, v] : state.linked) linked.push_back(v);
      for (const auto& v : linked) v->close();
    });
  }
}

std::int64_t GatewayService::tunnels() const { return impl_->open_tunnels.load(std::memory_order_relaxed); }

const ChatNodes& GatewayService::chat_nodes() const { return impl_->chat; }

}  // namespace chatorbit::gateway
