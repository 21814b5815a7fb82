#pragma once
// For unit tests: connected TCP sockets on 127.0.0.1, reading what one holds without
// waiting, and a bounded way to run a loop until something happened.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <string>
#include <utility>

namespace chatorbit::loopback {

/// A connected pair: the first on `first_ctx` (its receive buffer set to `first_rcvbuf`
/// bytes before connecting, if not 0), the second on `second_ctx`.
inline std::pair<boost::asio::ip::tcp::socket, boost::asio::ip::tcp::socket> pair(boost::asio::io_context& first_ctx,
                                                                                  boost::asio::io_context& second_ctx,
                                                                                  int first_rcvbuf = 0) {
  using boost::asio::ip::tcp;
  tcp::acceptor acc(second_ctx, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket first(first_ctx);
  first.open(tcp::v4());
  if (first_rcvbuf > 0) first.set_option(boost::asio::socket_base::receive_buffer_size(first_rcvbuf));
  first.connect(acc.local_endpoint());
  tcp::socket second(second_ctx);
  acc.accept(second);
  return {std::move(first), std::move(second)};
}

/// What `s` (in non-blocking mode) holds now, read without waiting; `*eof` is set once
/// the other side has ended (or reset) the connection.
inline std::string take(boost::asio::ip::tcp::socket& s, bool* eof = nullptr) {
  std::string out;
  char buf[65536];
  for (;;) {
    boost::system::error_code ec;
    const auto n = s.read_some(boost::asio::buffer(buf), ec);
    if (ec) {
      if (eof && ec != boost::asio::error::would_block) *eof = true;
      return out;
    }
    out.append(buf, n);
  }
}

/// Runs `ctx` until `done()` holds or `limit` has passed; returns what `done()` said last.
/// `done` is called once per turn, so it may consume what it checks (read, accept).
template <class Pred>
bool run_until(boost::asio::io_context& ctx, Pred done, std::chrono::milliseconds limit = std::chrono::seconds{10}) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  bool ok = done();
  while (!ok && std::chrono::steady_clock::now() < deadline) {
    ctx.run_for(std::chrono::milliseconds{5});
    ctx.restart();
    ok = done();
  }
  return ok;
}

}  // namespace chatorbit::loopback
