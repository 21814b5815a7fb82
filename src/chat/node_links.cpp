#include "chat/node_links.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/write.hpp>

#include <sstream>
#include <unordered_map>

#include "chat/chat_service.hpp"
#include "core/log.hpp"
#include "net/http_server.hpp"
#include "net/link.hpp"
#include "net/use_nothrow.hpp"

namespace chatorbit::chat {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using http::Status;

namespace {

using net::use_nothrow;
/// Viewer bytes a session may receive before its handshake is done (a gateway sends
/// none: it waits for the 101); more means a broken gateway.
constexpr std::size_t kMaxEarlyBytes = 64 * 1024;

std::string serialized(const http::Response& res) {
  std::ostringstream out;
  out << res;
  return std::move(out).str();
}

/// A refusal of the node's own, as the gateway reads a handshake's answer.
std::string refusal(Status status, std::string_view error) {
  auto res = http::error_response(status, error);
  res.version(11);
  res.keep_alive(false);
  res.prepare_payload();
  return serialized(res);
}

}  // namespace

/// A session's transport: its records on the link, within the credit window.
class LinkChannel final : public ws::Channel {
 public:
  LinkChannel(NodeLink* link, std::uint64_t session, asio::any_io_executor ex)
      : link_(link), session_(session), ex_(std::move(ex)) {}

  long write(std::span<const iovec> iov) override;
  void wait_writable(std::function<void()> ready) override;
  void shutdown_send() override;
  void close() override;

  /// The gateway wrote `bytes` of this session to its viewer.
  void credit(std::size_t bytes) {
    unacked_ -= std::min(unacked_, bytes);
    wake();
  }
  /// The link is gone: writes fail from here on.
  void link_gone() {
    link_ = nullptr;
    wake();
  }

 private:
  bool may_write() const;
  void wake();

  NodeLink* link_;
  const std::uint64_t session_;
  asio::any_io_executor ex_;  ///< the link's loop
  std::size_t unacked_ = 0;   ///< bytes sent that the gateway has not credited
  std::function<void()> waiting_;
  bool drain_armed_ = false;  ///< a when_drained() of the link will wake it
  bool closed_ = false;
};

class NodeLink final : public link::Handler, public std::enable_shared_from_this<NodeLink> {
 public:
  struct Entry {
    std::shared_ptr<LinkChannel> channel;
    std::shared_ptr<ws::Connection> conn;  ///< once the handshake handed it to the hub
    std::string early;                     ///< bytes that came before that
    bool gone = false;                     ///< the viewer left during the handshake
  };

  NodeLink(NodeLinks& owner, tcp::socket socket, std::size_t loop, std::string peer)
      : owner_(owner), loop_(loop), peer_(std::move(peer)) {
    socket_ = std::make_shared<link::Socket>(std::move(socket), *this);
  }

  void start(std::string_view leftover) { socket_->start(leftover); }
  void close() { socket_->close(); }
  link::Socket& socket() { return *socket_; }
  Entry* find(std::uint64_t session) {
    const auto it = sessions_.find(session);
    return it == sessions_.end() ? nullptr : &it->second;
  }
  void forget(std::uint64_t session) { sessions_.erase(session); }

  void on_record(const link::Record& r) override {
    switch (r.kind) {
      case link::Kind::open:
        // Ids are never reused while open: a second open of one is a broken gateway.
        if (sessions_.count(r.session)) return broken("a second open of a session");
        open(r.session, r.payload);
        return;
      case link::Kind::data: {
        Entry* e = find(r.session);
        if (!e) return;  // a session this side has ended already
        if (e->conn) {
          const auto conn = e->conn;  // receive() may end it, and the entry with it
          conn->receive(r.payload);
        } else if (e->early.size() + r.payload.size() <= kMaxEarlyBytes) {
          e->early.append(r.payload);
        } else {
          end_now(r.session);
        }
        return;
      }
      case link::Kind::end: {
        Entry* e = find(r.session);
        if (!e) return;
        if (e->conn) {
          const auto conn = e->conn;
          conn->peer_ended();
        } else {
          e->gone = true;  // the handshake sees it at its answer
        }
        return;
      }
      case link::Kind::credit: {
        if (r.payload.size() != 4) return broken("a credit that is not 4 bytes");
        Entry* e = find(r.session);
        if (!e) return;
        const auto* p = reinterpret_cast<const unsigned char*>(r.payload.data());
        e->channel->credit((std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3]);
        return;
      }
      case link::Kind::shut: return broken("a node-only record from the gateway");
    }
  }

  void on_link_closed() override {
    // Its viewers lose their node, as if it had died: they reconnect.
    auto sessions = std::move(sessions_);
    sessions_.clear();
    for (auto& [id, e] : sessions) {
      e.channel->link_gone();
      if (e.conn) e.conn->abort();
    }
    owner_.closed(this);
  }

 private:
  /// The gateway broke the link's protocol: the link fails, and its viewers reconnect.
  void broken(std::string_view why) {
    log::warn("link_broken", {{"peer", peer_}, {"why", why}});
    socket_->close();
  }
  void end_now(std::uint64_t session) {
    socket_->send(link::Kind::end, session, {});
    Entry* e = find(session);
    if (e && e->conn) {
      const auto conn = e->conn;
      conn->abort();
    }
    forget(session);
  }

  void open(std::uint64_t session, std::string_view request);

  NodeLinks& owner_;
  const std::size_t loop_;
  const std::string peer_;
  std::shared_ptr<link::Socket> socket_;
  std::unordered_map<std::uint64_t, Entry> sessions_;
};

bool LinkChannel::may_write() const {
  return link_ && link_->socket().open() && !link_->socket().congested() && unacked_ < link::kWindow;
}

long LinkChannel::write(std::span<const iovec> iov) {
  if (closed_ || !link_ || !link_->socket().open()) return -EPIPE;
  if (!may_write()) return -EAGAIN;
  std::size_t total = 0;
  for (const auto& v : iov) total += v.iov_len;
  const std::size_t take = std::min(total, link::kWindow - unacked_);
  link_->socket().send(session_, iov, take);
  unacked_ += take;
  return static_cast<long>(take);
}

void LinkChannel::wait_writable(std::function<void()> ready) {
  waiting_ = std::move(ready);
  if (!link_ || !link_->socket().open()) {
    // Gone already: the writer hears it (its next write fails) from the loop, not from
    // inside the write that just failed.
    asio::post(ex_, [w = std::move(waiting_)] { w(); });
    waiting_ = nullptr;
    return;
  }
  wake();
}

void LinkChannel::wake() {
  if (!waiting_) return;
  if (link_ && link_->socket().open()) {
    if (unacked_ >= link::kWindow) return;  // a credit wakes it
    if (link_->socket().congested()) {
      // Whichever of the two it waited for first, it is the link now: wait for it to
      // drain (once, however often it is woken meanwhile).
      if (!drain_armed_) {
        drain_armed_ = true;
        link_->socket().when_drained([keep = link_->shared_from_this(), session = session_] {
          if (auto* e = keep->find(session)) {
            e->channel->drain_armed_ = false;
            e->channel->wake();
          }
        });
      }
      return;
    }
  }
  auto ready = std::move(waiting_);
  waiting_ = nullptr;
  ready();
}

void LinkChannel::shutdown_send() {
  if (link_) link_->socket().send(link::Kind::shut, session_, {});
}

void LinkChannel::close() {
  if (closed_) return;
  closed_ = true;
  waiting_ = nullptr;
  if (!link_) return;
  auto* link = std::exchange(link_, nullptr);
  link->socket().send(link::Kind::end, session_, {});
  link->forget(session_);  // the entry may hold the last other reference to this channel
}

namespace {

/// Where a handshake that came over a link answers: records of its session.
class LinkPeer final : public HandshakePeer {
 public:
  LinkPeer(std::shared_ptr<NodeLink> link, std::uint64_t session) : link_(std::move(link)), session_(session) {}
  ~LinkPeer() override {
    // A handshake that ended without a session leaves nothing on the link, and tells
    // the gateway so unless its refusal did: one cut short after its 101 (or, at
    // shutdown, before any answer) must not leave the gateway waiting on the session.
    auto* e = link_->find(session_);
    if (!e || e->conn) return;
    if (!e->gone && !ended_) link_->socket().send(link::Kind::end, session_, {});
    link_->forget(session_);
  }

  asio::awaitable<void> refuse(http::Response res) override {
    if (auto* e = link_->find(session_); e && !e->gone) {
      link_->socket().send(link::Kind::data, session_, serialized(res));
      link_->socket().send(link::Kind::end, session_, {});
    }
    ended_ = true;
    co_return;
  }

  asio::awaitable<bool> accept(const http::Response& res) override {
    auto* e = link_->find(session_);
    if (!e || e->gone || !link_->socket().open()) co_return false;
    link_->socket().send(link::Kind::data, session_, serialized(res));
    co_return true;
  }

  Session& hand_over(Hub& hub, std::size_t loop, Session proto,
                     std::chrono::steady_clock::time_point state_read_at) override {
    auto* e = link_->find(session_);  // accept() found it, and nothing ran in between
    const std::string early = std::move(e->early);
    Session& s = hub.add(loop, e->channel, std::move(proto), early, state_read_at);
    if (auto* still = link_->find(session_)) still->conn = s.conn;  // unless the early bytes ended it
    return s;
  }

 private:
  std::shared_ptr<NodeLink> link_;
  const std::uint64_t session_;
  bool ended_ = false;  ///< the refusal and the end are sent
};

}  // namespace

void NodeLink::open(std::uint64_t session, std::string_view request) {
  Entry& e = sessions_[session];
  e.channel = std::make_shared<LinkChannel>(this, session, socket_->executor());

  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.eager(true);
  beast::error_code ec;
  parser.put(asio::buffer(request.data(), request.size()), ec);
  std::optional<std::string> refused;
  if (ec || !parser.is_done()) refused = refusal(Status::bad_request, "malformed upgrade request");
  http::Request req;
  std::string path;
  std::string query;
  if (!refused) {
    req = parser.release();
    const std::string_view target = req.target();
    const auto q = target.find('?');
    path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) query = std::string(target.substr(q + 1));
    if (path != "/ws/chat") refused = refusal(Status::not_found, "not found");
  }
  if (refused) {
    socket_->send(link::Kind::data, session, *refused);
    socket_->send(link::Kind::end, session, {});
    forget(session);
    return;
  }
  std::vector<std::string_view> forwarded_for;
  for (auto [it, end] = req.equal_range("X-Forwarded-For"); it != end; ++it) forwarded_for.push_back(it->value());
  auto client_ip = net::client_address(peer_, forwarded_for, owner_.trusted_);
  owner_.chat_.upgrade(std::make_unique<LinkPeer>(shared_from_this(), session), std::move(req), std::move(query),
                       std::move(client_ip), loop_);
}

NodeLinks::NodeLinks(ChatService& chat, net::AddressSet trusted) : chat_(chat), trusted_(std::move(trusted)) {}

NodeLinks::~NodeLinks() {
  std::lock_guard lock(mu_);
  for (const auto& l : all_) l->socket().detach();
  all_.clear();
}

void NodeLinks::upgrade(beast::tcp_stream stream, beast::flat_buffer buffer, http::Request /*req*/,
                        http::Context& ctx) {
  beast::error_code ec;
  const auto remote = stream.socket().remote_endpoint(ec);
  std::string peer = ec ? std::string("unknown") : remote.address().to_string();
  std::optional<http::Response> refused;
  if (ec || !trusted_.contains(peer)) {
    refused = http::error_response(Status::forbidden, "not a trusted proxy",
                                   {{"detail", "links are taken only from CHATORBIT_TRUSTED_PROXIES"}});
  } else if (chat_.stopping()) {
    refused = http::error_response(Status::service_unavailable, "shutting down");
  }
  const std::size_t loop = ctx.loop;
  asio::co_spawn(
      stream.get_executor(),
      [this, stream = std::move(stream), buffer = std::move(buffer), refused = std::move(refused), loop,
       peer = std::move(peer)]() mutable -> asio::awaitable<void> {
        if (refused) {
          log::warn("link_refused", {{"peer", peer}, {"status", refused->result_int()}});
          co_await http::write_and_close(stream, std::move(*refused));
          co_return;
        }
        http::Response res{Status::switching_protocols, 11};
        res.set(bhttp::field::upgrade, link::kProtocol);
        res.set(bhttp::field::connection, "Upgrade");
        stream.expires_after(std::chrono::seconds{10});
        auto [wec, wn] = co_await bhttp::async_write(stream, res, use_nothrow);
        (void)wn;
        if (wec) co_return;
        stream.expires_never();
        const auto leftover = beast::buffers_to_string(buffer.data());
        auto l = std::make_shared<NodeLink>(*this, stream.release_socket(), loop, peer);
        opened(l);
        log::info("link_open", {{"peer", peer}, {"loop", loop}});
        l->start(leftover);
      },
      asio::detached);
}

void NodeLinks::opened(const std::shared_ptr<NodeLink>& l) {
  open_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  all_.insert(l);
}

void NodeLinks::closed(NodeLink* l) {
  open_.fetch_sub(1, std::memory_order_relaxed);
  std::shared_ptr<NodeLink> last;  // released outside the lock
  std::lock_guard lock(mu_);
  for (auto it = all_.begin(); it != all_.end(); ++it) {
    if (it->get() == l) {
      last = *it;
      all_.erase(it);
      break;
    }
  }
}

void NodeLinks::close_all() {
  std::lock_guard lock(mu_);
  for (const auto& l : all_) {
    asio::post(l->socket().executor(), [l] { l->close(); });
  }
}

}  // namespace chatorbit::chat
