#pragma once
// FaultProxy: a TCP proxy to put between a client under test and a server (test support:
// included by *_test.cpp files only), which breaks every link through it on demand: cut
// (closed, as when the server dies) or stall (open but silent, as when it hangs, is
// SIGSTOPped, or the network drops packets without a reset).
//
// It forwards bytes and knows nothing of Redis. A Redis Cluster node's MOVED and ASK
// replies name the node's real address, so a client that follows them leaves the proxy.

#include <boost/asio/buffer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cstddef>
#include <future>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace chatorbit::engine::test_redis {

/// Listens on 127.0.0.1 (a free port) and forwards each accepted connection to the
/// target, on a thread and io_context of its own. Every public member is thread-safe;
/// cut(), stall() and restore() have taken effect when they return. Do not call them
/// from inside the proxy's own thread (there is no way to: it runs no user code).
class FaultProxy {
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::system::error_code;

 public:
  /// Forwards to target_host:target_port (a name is resolved once, here). Throws
  /// boost::system::system_error if it cannot resolve the target or listen.
  FaultProxy(const std::string& target_host, int target_port)
      : work_(boost::asio::make_work_guard(io_)), acceptor_(io_) {
    tcp::resolver resolver(io_);
    target_ = resolver.resolve(target_host, std::to_string(target_port)).begin()->endpoint();
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind({boost::asio::ip::address_v4::loopback(), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  /// Forwards to target, given as "host:port" (standalone_addr()'s form).
  explicit FaultProxy(const std::string& target) : FaultProxy(host_of(target), port_of(target)) {}

  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  /// Closes every connection and the listener, then joins the thread.
  ~FaultProxy() {
    boost::asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      close_all();
    });
    work_.reset();  // run() returns once the aborted operations have completed
    thread_.join();
  }

  /// The port it listens on (127.0.0.1).
  int port() const { return port_; }
  /// "127.0.0.1:<port()>": give this to the client under test instead of the target.
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }

  /// Closes every connection at once, both sides, and from now on closes each new one as
  /// soon as it is accepted, until restore().
  void cut() {
    on_io([this] {
      mode_ = Mode::cut;
      close_all();
    });
  }

  /// Keeps every connection open but forwards nothing, either way; new connections are
  /// accepted and held the same way. What arrives meanwhile (at most one read's worth
  /// per direction; the rest waits in the kernel) is delivered on restore(), and so is a
  /// close by either side.
  void stall() {
    on_io([this] { mode_ = Mode::stall; });
  }

  /// Back to forwarding. Stalled connections resume with what they held; cut ones stay
  /// closed.
  void restore() {
    on_io([this] {
      mode_ = Mode::forward;
      for (const auto& link : std::vector(links_.begin(), links_.end())) {
        pass(link, link->to_server);
        pass(link, link->to_client);
      }
    });
  }

  /// The connections open through the proxy (client and server side counted as one).
  std::size_t connections() const {
    return on_io([this] { return links_.size(); });
  }

 private:
  enum class Mode { forward, stall, cut };

  // One direction of a link: what it read from `from` and has not yet written to `to`.
  struct Pump {
    tcp::socket& from;
    tcp::socket& to;
    std::array<char, 16 * 1024> buf{};
    std::size_t held = 0;  ///< bytes in buf not yet forwarded
    bool eof = false;      ///< `from` closed (or failed); the link closes once this passes
    bool busy = false;     ///< a read or a write is in flight
  };

  // An accepted connection and the one the proxy opened to the target for it. Owned by
  // links_ while open and by the handlers of its pending operations.
  struct Link {
    explicit Link(tcp::socket accepted) : client(std::move(accepted)), server(client.get_executor()) {}
    tcp::socket client;
    tcp::socket server;
    Pump to_server{client, server};
    Pump to_client{server, client};
    bool connected = false;  ///< the target accepted `server`
    bool open = true;
  };
  using LinkPtr = std::shared_ptr<Link>;

  static std::string host_of(const std::string& addr) {
    const auto colon = addr.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("FaultProxy: expected host:port, got '" + addr + "'");
    return addr.substr(0, colon);
  }
  static int port_of(const std::string& addr) { return std::stoi(addr.substr(addr.rfind(':') + 1)); }

  // Runs f on the proxy's thread and waits for its result.
  template <class F>
  auto on_io(F f) const -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    // Not post(executor_, std::move(task)): Asio treats a packaged_task as a completion
    // token and takes its future itself.
    boost::asio::post(executor_, [&task] { task(); });
    return result.get();
  }

  // Everything below runs on the proxy's thread only.

  void accept() {
    acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (!ec) on_accepted(std::move(socket));
      accept();  // a failed accept (say, out of descriptors) affects that one only
    });
  }

  void on_accepted(tcp::socket socket) {
    if (mode_ == Mode::cut) {
      error_code ignored;
      socket.close(ignored);
      return;
    }
    auto link = std::make_shared<Link>(std::move(socket));
    links_.insert(link);
    link->server.async_connect(target_, [this, link](error_code ec) {
      if (!link->open) return;
      if (ec) return close(link);
      error_code ignored;
      link->client.set_option(tcp::no_delay(true), ignored);
      link->server.set_option(tcp::no_delay(true), ignored);
      link->connected = true;
      read(link, link->to_server);
      read(link, link->to_client);
    });
  }

  void read(const LinkPtr& link, Pump& pump) {
    pump.busy = true;
    pump.from.async_read_some(boost::asio::buffer(pump.buf), [this, link, &pump](error_code ec, std::size_t n) {
      pump.busy = false;
      if (!link->open) return;
      if (ec)
        pump.eof = true;
      else
        pump.held = n;
      pass(link, pump);
    });
  }

  // Moves the pump on, if the proxy is forwarding: writes what it holds, then reads again.
  void pass(const LinkPtr& link, Pump& pump) {
    if (mode_ != Mode::forward || !link->open || !link->connected || pump.busy) return;
    if (pump.eof) return close(link);  // one side gone: close the other, as the server would see it
    if (pump.held == 0) return read(link, pump);
    pump.busy = true;
    boost::asio::async_write(pump.to, boost::asio::buffer(pump.buf.data(), pump.held),
                             [this, link, &pump](error_code ec, std::size_t) {
                               pump.busy = false;
                               if (!link->open) return;
                               if (ec) return close(link);
                               pump.held = 0;
                               read(link, pump);
                             });
  }

  void close(const LinkPtr& link) {
    link->open = false;
    error_code ignored;
    link->client.close(ignored);  // pending operations complete with operation_aborted
    link->server.close(ignored);
    links_.erase(link);
  }

  void close_all() {
    for (const auto& link : std::vector(links_.begin(), links_.end())) close(link);
  }

  boost::asio::io_context io_;
  boost::asio::io_context::executor_type executor_ = io_.get_executor();
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  tcp::acceptor acceptor_;
  tcp::endpoint target_;
  int port_ = 0;
  Mode mode_ = Mode::forward;
  std::set<LinkPtr> links_;
  std::thread thread_;  // last: started once everything it touches exists
};

}  // namespace chatorbit::engine::test_redis
