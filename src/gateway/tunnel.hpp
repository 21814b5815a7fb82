#pragma once
// A viewer's WebSocket connection relayed byte for byte to a chat node over a TCP
// connection of its own: what the gateway does when it has no link to the node
// (CHATORBIT_GATEWAY_LINKS=0, a node that refuses links, a link that is down). The
// gateway has already passed the node's 101 on; from here the bytes are the two
// sides' business, and the tunnel only copies them, with backpressure: a direction
// reads again only when its last write is done.
//
// The sockets are used bare, without a tcp_stream's per-operation timer (two timer
// updates per relayed write cost as much as the write). Each direction notes when it
// last read and since when it writes, and the gateway's sweep closes what is stuck.
//
// Threading: everything here belongs to one event loop.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

namespace chatorbit::gateway {

class Tunnel : public std::enable_shared_from_this<Tunnel> {
 public:
  /// `client` and `node` are the viewer's and the node's sockets, on one loop, the
  /// handshake done. After one direction ended cleanly, the other has `close_grace` to
  /// finish the closing handshake.
  Tunnel(boost::asio::ip::tcp::socket client, boost::asio::ip::tcp::socket node, std::chrono::seconds close_grace);

  /// Relays both ways until both directions have ended, then calls on_end. Call once.
  void start();
  /// Called once, when both directions are done (the tunnel's accounting). Set before start().
  std::function<void()> on_end;
  /// Ends both sides at once (a gateway that stops, a stuck tunnel). Idempotent.
  void close();

  /// For the gateway's sweep, as LinkedViewer's: when something was last read from
  /// either side, and since when a write waits (nullopt if none).
  std::chrono::steady_clock::time_point last_read() const;
  std::optional<std::chrono::steady_clock::time_point> writing_since() const;

 private:
  /// Copies one direction until it ends. One that ends cleanly passes the end on (the
  /// other side's sending half is shut) and starts the grace; one that fails closes both.
  boost::asio::awaitable<void> relay(bool downstream);

  struct Progress {
    std::chrono::steady_clock::time_point last_read = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point write_since;
    bool writing = false;
  };

  boost::asio::ip::tcp::socket client_;
  boost::asio::ip::tcp::socket node_;
  boost::asio::steady_timer grace_;
  std::chrono::seconds close_grace_;
  std::array<Progress, 2> progress_;  ///< by direction: 0 client to node, 1 node to client
  int relays_done_ = 0;
  bool closed_ = false;
};

}  // namespace chatorbit::gateway
