// Fuzz target: ws::Connection's read path — what it does with each event FrameReader
// returns (deliver text/binary, answer pings, echo a close, close on a protocol error)
// — without a network.
//
// How it is driven without a socket: Connection::start(leftover) feeds bytes that came
// with the upgrade request straight to the reader and handles the events, the same code
// the readable-socket path runs per read. The connection is given a socket that was
// never opened, so every write fails at once (EBADF) and every wait completes with an
// error when the io_context is polled: the write and teardown paths run too, and the
// connection must still end cleanly. What this does not reach is the socket-readiness
// loop itself (on_readable), which needs a real socket.
//
// Input: the bytes the client sent after its upgrade request.
//
// Oracles, beyond the sanitizers: on_closed is called exactly once, after which no
// message is delivered; delivered text is valid UTF-8; nothing is delivered once the
// connection is no longer open.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "net/utf8.hpp"
#include "net/ws_connection.hpp"

namespace {

namespace asio = boost::asio;
using chatorbit::ws::Connection;

void check(bool ok, const char* what) { chatorbit::fuzz::check(ok, "ws_connection_fuzz", what); }

struct Handler final : chatorbit::ws::ConnectionHandler {
  int closed = 0;
  std::size_t messages = 0;
  void on_text(Connection& c, std::string text) override {
    check(closed == 0 && c.open(), "text delivered to a connection that is not open");
    check(chatorbit::ws::is_valid_utf8(text), "delivered text is not UTF-8");
    ++messages;
  }
  void on_binary(Connection& c, std::string) override {
    check(closed == 0 && c.open(), "binary delivered to a connection that is not open");
    ++messages;
  }
  void on_closed(Connection& c) override {
    check(!c.open(), "on_closed while open");
    ++closed;
  }
  // The owner flushes on its next turn; here, once all of the input has been handled, so
  // that several events (pings, messages) are dealt with before the first write fails.
  void on_dirty(Connection&, bool) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static asio::io_context ctx;
  static std::vector<char> loop_buffer(64 * 1024);
  Handler handler;
  {
    auto conn = std::make_shared<Connection>(asio::ip::tcp::socket(ctx), handler,
                                             chatorbit::ws::ConnectionLimits{1024, 64 * 1024}, loop_buffer);
    conn->start(std::string_view(reinterpret_cast<const char*>(data), size));
    conn->flush();
    // The pending wait (read, or write after EAGAIN) fails on the closed socket.
    ctx.restart();
    ctx.poll();
    if (conn->open()) conn->abort();
    check(!conn->open(), "connection still open after abort()");
  }
  ctx.restart();
  ctx.poll();
  check(handler.closed == 1, "on_closed not called exactly once");
  return 0;
}
