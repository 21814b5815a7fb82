#include "gateway/tunnel.hpp"
#include "net/use_nothrow.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>

namespace chatorbit::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
using net::use_nothrow;
constexpr std::size_t kRelayBuffer = 16 * 1024;  ///< per direction
}  // namespace

Tunnel::Tunnel(tcp::socket client, tcp::socket node, std::chrono::seconds close_grace)
    : client_(std::move(client)), node_(std::move(node)), grace_(client_.get_executor()), close_grace_(close_grace) {}

void Tunnel::start() {
  auto ex = client_.get_executor();
  asio::co_spawn(ex, relay(true), asio::detached);
  asio::co_spawn(ex, relay(false), asio::detached);
}

void Tunnel::close() {
  if (closed_) return;
  closed_ = true;
  grace_.cancel();
  boost::system::error_code ignored;
  client_.shutdown(tcp::socket::shutdown_both, ignored);
  client_.close(ignored);
  node_.shutdown(tcp::socket::shutdown_both, ignored);
  node_.close(ignored);
}

std::chrono::steady_clock::time_point Tunnel::last_read() const {
  return std::max(progress_[0].last_read, progress_[1].last_read);
}

std::optional<std::chrono::steady_clock::time_point> Tunnel::writing_since() const {
  std::optional<std::chrono::steady_clock::time_point> since;
  for (const auto& p : progress_) {
    if (p.writing && (!since || p.write_since < *since)) since = p.write_since;
  }
  return since;
}

asio::awaitable<void> Tunnel::relay(bool downstream) {
  auto self = shared_from_this();
  auto& from = downstream ? node_ : client_;
  auto& to = downstream ? client_ : node_;
  auto& progress = progress_[downstream ? 1 : 0];
  std::array<char, kRelayBuffer> buf;
  bool clean = false;
  for (;;) {
    auto [rec, n] = co_await from.async_read_some(asio::buffer(buf), use_nothrow);
    if (rec) {
      clean = rec == asio::error::eof;
      break;
    }
    progress.last_read = progress.write_since = std::chrono::steady_clock::now();
    progress.writing = true;
    auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf.data(), n), use_nothrow);
    (void)wn;
    progress.writing = false;
    if (wec) break;
  }
  if (++relays_done_ == 2) {
    close();
    if (auto done = std::move(on_end)) done();
    co_return;
  }
  if (!clean || closed_) {
    close();
    co_return;
  }
  boost::system::error_code ignored;
  to.shutdown(tcp::socket::shutdown_send, ignored);
  grace_.expires_after(close_grace_);
  grace_.async_wait([self](boost::system::error_code ec) {
    if (!ec) self->close();
  });
}

}  // namespace chatorbit::gateway
