#include "gateway/chat_links.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <unordered_map>

#include "core/log.hpp"
#include "net/link.hpp"
#include "net/use_nothrow.hpp"

namespace chatorbit::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace {

using net::use_nothrow;
constexpr std::size_t kViewerRead = 16 * 1024;
/// A node that refused a link (it does not trust this gateway) is asked again this late.
constexpr std::chrono::seconds kRefusedRetry{30};

/// The status of a response whose head is `head` ("HTTP/1.1 101 ..."), or 0.
unsigned status_of(std::string_view head) {
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return 0;
  const auto sp = head.find(' ');
  if (sp == std::string_view::npos || sp + 4 > head.size()) return 0;
  unsigned v = 0;
  for (std::size_t i = sp + 1; i < sp + 4; ++i) {
    if (head[i] < '0' || head[i] > '9') return 0;
    v = v * 10 + static_cast<unsigned>(head[i] - '0');
  }
  return v;
}

}  // namespace

/// One link to a chat node: its records, dispatched to the viewers on it.
class GatewayLink final : public link::Handler, public std::enable_shared_from_this<GatewayLink> {
 public:
  GatewayLink(tcp::socket socket, asio::any_io_executor ex) : closed_signal_(ex) {
    socket_ = std::make_shared<link::Socket>(std::move(socket), *this);
  }
  ~GatewayLink() override { socket_->detach(); }

  void start(std::string_view leftover) { socket_->start(leftover); }
  link::Socket& socket() { return *socket_; }
  bool open() const { return socket_->open(); }
  void close() { socket_->close(); }
  std::size_t viewers() const { return viewers_.size(); }

  std::uint64_t add(std::shared_ptr<LinkedViewer> v) {
    const auto id = next_++;
    viewers_.emplace(id, std::move(v));
    return id;
  }
  void remove(std::uint64_t id) { viewers_.erase(id); }
  /// `v` has bytes to write: written once this read's records are all in, so that what
  /// several of the node's writes brought it leaves in one.
  void mark_dirty(std::shared_ptr<LinkedViewer> v) { dirty_.push_back(std::move(v)); }

  void on_read_done() override {
    auto dirty = std::move(dirty_);
    dirty_.clear();
    for (auto& v : dirty) v->write_gathered();
  }

  /// Completes once the link has closed.
  asio::awaitable<void> wait_closed() {
    if (!socket_->open()) co_return;
    closed_signal_.expires_at(asio::steady_timer::time_point::max());
    co_await closed_signal_.async_wait(use_nothrow);
  }

  void on_record(const link::Record& r) override {
    if (r.kind == link::Kind::open || r.kind == link::Kind::credit) {
      // Gateway to node only: a node that sends them does not speak this protocol.
      log::warn("link_broken", {{"why", "a gateway-only record from the node"}, {"kind", static_cast<int>(r.kind)}});
      socket_->close();
      return;
    }
    const auto it = viewers_.find(r.session);
    if (it == viewers_.end()) return;  // a viewer this side has ended already
    switch (r.kind) {
      case link::Kind::data: {
        const auto v = it->second;  // from_node() may end it, and take it off the map
        v->from_node(r.payload);
        return;
      }
      case link::Kind::shut: {
        const auto v = it->second;
        v->node_shut();
        return;
      }
      case link::Kind::end: {
        auto v = std::move(it->second);
        viewers_.erase(it);
        v->node_ended();
        return;
      }
      case link::Kind::open:
      case link::Kind::credit: return;  // refused above
    }
  }

  void on_link_closed() override {
    auto viewers = std::move(viewers_);
    viewers_.clear();
    for (auto& [id, v] : viewers) v->link_gone();
    closed_signal_.cancel();
  }

 private:
  std::shared_ptr<link::Socket> socket_;
  std::unordered_map<std::uint64_t, std::shared_ptr<LinkedViewer>> viewers_;
  std::uint64_t next_ = 1;
  std::vector<std::shared_ptr<LinkedViewer>> dirty_;
  asio::steady_timer closed_signal_;
};

// --- LinkedViewer ----------------------------------------------------------------------

LinkedViewer::LinkedViewer(tcp::socket client, std::chrono::seconds close_grace)
    : client_(std::move(client)),
      signal_(client_.get_executor()),
      drain_(client_.get_executor()),
      close_grace_(close_grace) {}

LinkedViewer::~LinkedViewer() = default;

std::optional<std::chrono::steady_clock::time_point> LinkedViewer::writing_since() const {
  if (!waiting_writable_) return std::nullopt;
  return write_since_;
}

asio::awaitable<LinkedViewer::Answer> LinkedViewer::open(std::shared_ptr<GatewayLink> link, std::string request,
                                                         std::string client_bytes, std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  link_ = std::move(link);
  session_ = link_->add(self);
  link_->socket().send(link::Kind::open, session_, request);
  if (!client_bytes.empty()) link_->socket().send(link::Kind::data, session_, client_bytes);

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // The answer is complete at a 101's head, or at the node's end of the session (a
  // refusal: head and body, then end).
  while (!answered_ && link_ && std::chrono::steady_clock::now() < deadline) {
    signal_.expires_at(deadline);
    co_await signal_.async_wait(use_nothrow);
  }
  // A link lost after the answer came is lost all the same: the node has dropped the
  // session, and the viewer, who has seen nothing yet, may still try the next node.
  if (!answered_ || link_lost_) {
    const bool lost = link_lost_ || !link_;
    if (link_) {
      link_->socket().send(link::Kind::end, session_, {});
      link_->remove(session_);
      link_.reset();
    }
    co_return Answer{Answer::Kind::failed, lost ? "link lost" : "no answer in time"};
  }
  const auto head_end = answer_.find("\r\n\r\n");
  if (head_end == std::string::npos || status_of(answer_) != 101) {
    link_.reset();  // the node ended the session
    co_return Answer{Answer::Kind::refused, std::move(answer_)};
  }
  // Accepted: the 101 to the viewer. What came after it (frames, perhaps the node's
  // end) waits in answer_ for start_relay().
  const std::string head = answer_.substr(0, head_end + 4);
  answer_.erase(0, head_end + 4);
  auto [wec, wn] = co_await asio::async_write(client_, asio::buffer(head), use_nothrow);
  (void)wn;
  if (wec || link_lost_) {
    // The viewer went away, or the link did while its 101 was on the way: either way
    // the viewer's connection ends here (it reconnects, as after a node's death).
    if (link_) {
      link_->socket().send(link::Kind::end, session_, {});
      link_->remove(session_);
      link_.reset();
    }
    boost::system::error_code ec;
    client_.close(ec);
    ended_ = true;
    state_ = State::closed;
    co_return Answer{Answer::Kind::gone, wec ? "viewer gone" : "link lost"};
  }
  co_return Answer{Answer::Kind::accepted, {}};
}

void LinkedViewer::start_relay() {
  state_ = State::open;
  boost::system::error_code ec;
  client_.non_blocking(true, ec);
  const std::string rest = std::move(answer_);
  answer_.clear();
  answer_.shrink_to_fit();
  write_viewer(rest);
  if (state_ == State::open && (node_shut_ || node_ended_) && out_.empty()) after_drain();
  if (state_ != State::closed) asio::co_spawn(client_.get_executor(), read_viewer(), asio::detached);
}

void LinkedViewer::from_node(std::string_view bytes) {
  last_read_ = std::chrono::steady_clock::now();
  if (state_ == State::handshake) {
    answer_.append(bytes);
    const auto head_end = answer_.find("\r\n\r\n");
    if (head_end != std::string::npos && status_of(answer_) == 101) {
      answered_ = true;
      signal_.cancel();
    }
    return;
  }
  if (state_ == State::closed) return;
  out_.append(bytes);
  if (!waiting_writable_ && !dirty_ && link_) {
    dirty_ = true;
    link_->mark_dirty(shared_from_this());
  }
}

void LinkedViewer::write_gathered() {
  dirty_ = false;
  if (!waiting_writable_) flush_viewer();
}

void LinkedViewer::node_shut() {
  node_shut_ = true;
  if (state_ == State::open && !waiting_writable_) flush_viewer();  // then half-closes
}

void LinkedViewer::node_ended() {
  node_ended_ = true;
  link_.reset();  // the link has forgotten this session
  if (state_ == State::handshake) {
    answered_ = true;
    signal_.cancel();
    return;
  }
  if (state_ == State::open && !waiting_writable_) flush_viewer();  // then half-closes
}

void LinkedViewer::link_gone() {
  link_lost_ = true;
  link_.reset();
  if (state_ == State::handshake) {
    signal_.cancel();
    return;
  }
  close();
}

asio::awaitable<void> LinkedViewer::read_viewer() {
  auto self = shared_from_this();
  std::array<char, kViewerRead> buf;
  for (;;) {
    if (link_ && link_->socket().congested()) {
      // The node does not read its link fast enough: this viewer waits, and so the
      // gateway's buffer is bounded whatever the viewers send.
      drain_.expires_at(asio::steady_timer::time_point::max());
      link_->socket().when_drained([self] { self->drain_.cancel(); });
      co_await drain_.async_wait(use_nothrow);
      if (state_ == State::closed) break;
    }
    auto [ec, n] = co_await client_.async_read_some(asio::buffer(buf), use_nothrow);
    if (ec || state_ == State::closed) break;
    last_read_ = std::chrono::steady_clock::now();
    // After the node's close frame (shut) or end, what the viewer sends is dropped, as
    // the node would drop it.
    if (link_ && !node_shut_) link_->socket().send(link::Kind::data, session_, std::string_view(buf.data(), n));
  }
  if (link_) {
    link_->socket().send(link::Kind::end, session_, {});
    link_->remove(session_);
    link_.reset();
  }
  finish();
}

void LinkedViewer::write_viewer(std::string_view bytes) {
  if (state_ == State::closed || bytes.empty()) return;
  if (!waiting_writable_) {
    const ssize_t n = ::send(client_.native_handle(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      close();
      return;
    }
    const auto written = static_cast<std::size_t>(std::max<ssize_t>(n, 0));
    credit(written);
    if (written == bytes.size()) return;
    bytes.remove_prefix(written);
  }
  out_.append(bytes);
  if (waiting_writable_) return;
  waiting_writable_ = true;
  write_since_ = std::chrono::steady_clock::now();
  client_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](boost::system::error_code ec) {
    self->waiting_writable_ = false;
    if (ec) {
      if (ec != asio::error::operation_aborted) self->close();
      return;
    }
    self->flush_viewer();
  });
}

void LinkedViewer::flush_viewer() {
  if (state_ == State::closed) return;
  // What waits goes through write_viewer() again: what the socket does not take now
  // waits once more.
  std::string waiting = std::move(out_);
  const std::size_t from = out_sent_;
  out_.clear();
  out_sent_ = 0;
  write_viewer(std::string_view(waiting).substr(from));
  if (out_.empty() && !waiting_writable_ && (node_shut_ || node_ended_)) after_drain();
}

void LinkedViewer::credit(std::size_t written) {
  uncredited_ += written;
  if (uncredited_ < link::kCreditStep || !link_) return;
  const auto n = static_cast<std::uint32_t>(std::min<std::size_t>(uncredited_, 0xffffffffu));
  const char bytes[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                         static_cast<char>(n)};
  link_->socket().send(link::Kind::credit, session_, std::string_view(bytes, 4));
  uncredited_ -= n;
}

void LinkedViewer::after_drain() {
  if (state_ != State::open) return;
  // The node's close frame is out, all of it written: half-close, as the node would
  // have, and give the viewer the grace to answer before the socket goes.
  state_ = State::closing;
  boost::system::error_code ec;
  client_.shutdown(tcp::socket::shutdown_send, ec);
  signal_.expires_after(close_grace_);
  signal_.async_wait([self = shared_from_this()](boost::system::error_code wec) {
    if (!wec) self->close();
  });
}

void LinkedViewer::close() {
  if (link_) {
    link_->socket().send(link::Kind::end, session_, {});
    link_->remove(session_);
    link_.reset();
  }
  finish();
}

void LinkedViewer::finish() {
  if (ended_) return;
  const bool accepted = state_ != State::handshake;
  ended_ = true;
  state_ = State::closed;
  boost::system::error_code ec;
  if (accepted) {
    client_.shutdown(tcp::socket::shutdown_both, ec);
    client_.close(ec);
  }
  signal_.cancel();
  drain_.cancel();
  out_.clear();
  if (accepted && on_end) std::exchange(on_end, nullptr)();
}

// --- NodeLinkSet -----------------------------------------------------------------------

NodeLinkSet::NodeLinkSet(asio::any_io_executor ex, std::string node_name, int count, Connector connect,
                         std::chrono::milliseconds retry, std::atomic<std::int64_t>& open)
    : ex_(std::move(ex)),
      node_(std::move(node_name)),
      connect_(std::move(connect)),
      retry_(retry),
      open_(open),
      links_(static_cast<std::size_t>(std::max(count, 0))),
      waits_(links_.size(), nullptr) {}

void NodeLinkSet::start() {
  for (std::size_t i = 0; i < links_.size(); ++i) asio::co_spawn(ex_, keep(i), asio::detached);
}

void NodeLinkSet::stop() {
  stopped_ = true;
  for (auto* w : waits_) {
    if (w) w->cancel();
  }
  for (auto& l : links_) {
    if (l) l->close();
  }
}

std::shared_ptr<GatewayLink> NodeLinkSet::pick() const {
  std::shared_ptr<GatewayLink> best;
  for (const auto& l : links_) {
    if (l && l->open() && (!best || l->viewers() < best->viewers())) best = l;
  }
  return best;
}

int NodeLinkSet::open_links() const {
  int n = 0;
  for (const auto& l : links_) n += l && l->open() ? 1 : 0;
  return n;
}

asio::awaitable<void> NodeLinkSet::keep(std::size_t slot) {
  auto self = shared_from_this();
  asio::steady_timer wait(ex_);
  waits_[slot] = &wait;
  while (!stopped_) {
    auto pause = std::chrono::duration_cast<std::chrono::milliseconds>(retry_);
    auto stream = co_await connect_();
    if (stream && !stopped_) {
      http::Request req{bhttp::verb::get, std::string(link::kPath), 11};
      req.set(bhttp::field::host, node_);
      req.set(bhttp::field::upgrade, link::kProtocol);
      req.set(bhttp::field::connection, "Upgrade");
      stream->expires_after(std::chrono::seconds{5});
      auto [wec, wn] = co_await bhttp::async_write(*stream, req, use_nothrow);
      (void)wn;
      beast::flat_buffer buffer;
      bhttp::response_parser<bhttp::empty_body> parser;
      parser.skip(true);  // a refusal's body is not read
      beast::error_code rec = wec;
      if (!rec) std::tie(rec, std::ignore) = co_await bhttp::async_read_header(*stream, buffer, parser, use_nothrow);
      if (!rec && parser.get().result() == bhttp::status::switching_protocols && !stopped_) {
        stream->expires_never();
        auto l = std::make_shared<GatewayLink>(stream->release_socket(), ex_);
        links_[slot] = l;
        open_.fetch_add(1, std::memory_order_relaxed);
        l->start(beast::buffers_to_string(buffer.data()));
        log::debug("link_up", {{"upstream", node_}, {"slot", slot}});
        co_await l->wait_closed();
        open_.fetch_sub(1, std::memory_order_relaxed);
        links_[slot].reset();
        if (!stopped_) log::info("link_down", {{"upstream", node_}, {"slot", slot}});
      } else if (!rec) {
        log::warn("link_refused",
                  {{"upstream", node_}, {"status", parser.get().result_int()}, {"retry_s", kRefusedRetry.count()}});
        pause = kRefusedRetry;
      }
    }
    if (stopped_) break;
    wait.expires_after(pause);
    co_await wait.async_wait(use_nothrow);
  }
  waits_[slot] = nullptr;
}

}  // namespace chatorbit::gateway
