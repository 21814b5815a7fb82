#pragma once
// The gateway's end of its links to the chat nodes (net/link.hpp): each loop keeps a
// few links to each node, and a viewer that reaches the node through one is a session
// of the link instead of a tunnel of its own. The node then writes many viewers' frames
// in one system call, and the gateway reads them in one; what remains per viewer is the
// write to the viewer itself.
//
// - NodeLinkSet: one loop's links to one node. It keeps them up (reconnecting after a
//   failure, more slowly after a refusal: a node that does not trust this gateway
//   answers 403) and puts a new viewer on the link with the fewest.
// - LinkedViewer: one viewer on a link. Its handshake goes to the node as an `open`
//   record and the node's answer comes back as data; after a 101, the viewer's bytes go
//   to the node as they are read, and the node's are written to the viewer once the
//   link's read is done: what several of the node's writes brought a viewer leaves in
//   one, so a gateway that falls behind writes more per system call, as the node does.
//   What the viewer's socket does not take waits, at most link::kWindow, as the node
//   sends no more than the gateway has credited. A viewer's reads stop while the link is
//   congested, so a fast sender cannot fill the gateway's memory either.
// A link that fails closes its viewers: they reconnect, as after a node's death.
//
// Threading: everything here belongs to one event loop.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/http_types.hpp"

namespace chatorbit::gateway {

class GatewayLink;

class LinkedViewer : public std::enable_shared_from_this<LinkedViewer> {
 public:
  LinkedViewer(boost::asio::ip::tcp::socket client, std::chrono::seconds close_grace);
  ~LinkedViewer();

  /// How the node answered the handshake.
  struct Answer {
    enum class Kind : std::uint8_t {
      accepted,  ///< the 101 is written to the viewer: start_relay() next
      refused,   ///< the node's refusal, whole (head and body), in `bytes`
      failed,    ///< no answer (the link failed, or the time ran out): why, in `bytes`
      gone,      ///< accepted, but the viewer went away, or the link did, while the 101 was on its way
    } kind = Kind::failed;
    std::string bytes;
  };
  /// Sends `request` (the upgrade as the node should see it) and `client_bytes` (what
  /// the viewer sent after it) over `link`, waits at most `timeout` for the answer and
  /// writes a 101 on to the viewer. Call once.
  boost::asio::awaitable<Answer> open(std::shared_ptr<GatewayLink> link, std::string request, std::string client_bytes,
                                      std::chrono::milliseconds timeout);
  /// After an accepted open(): relays both ways until either side ends, then calls on_end.
  void start_relay();
  /// Called once, when a relayed viewer is gone (its accounting). Set before start_relay().
  std::function<void()> on_end;

  /// The viewer's socket, back (after an answer that was not accepted).
  boost::asio::ip::tcp::socket take_socket() { return std::move(client_); }
  /// Ends the viewer at once (a link that failed, a gateway that stops, a stuck viewer).
  void close();

  /// For the gateway's sweep: when something was last read from either side, and since
  /// when a write to the viewer waits (nullopt if none).
  std::chrono::steady_clock::time_point last_read() const { return last_read_; }
  std::optional<std::chrono::steady_clock::time_point> writing_since() const;

 private:
  friend class GatewayLink;
  // From the link.
  void from_node(std::string_view bytes);
  void node_shut();
  void node_ended();
  void link_gone();
  /// Writes what from_node() gathered (the link's read is done).
  void write_gathered();

  boost::asio::awaitable<void> read_viewer();
  void write_viewer(std::string_view bytes);
  void flush_viewer();
  void after_drain();
  /// Bytes written to the viewer: credited to the node in steps of link::kCreditStep.
  void credit(std::size_t written);
  void finish();

  boost::asio::ip::tcp::socket client_;
  std::shared_ptr<GatewayLink> link_;
  std::uint64_t session_ = 0;
  boost::asio::steady_timer signal_;  ///< the handshake's wait, and the close grace
  boost::asio::steady_timer drain_;   ///< the viewer's reads wait here while the link is congested
  std::chrono::seconds close_grace_;
  enum class State : std::uint8_t { handshake, open, closing, closed } state_ = State::handshake;
  std::string answer_;  ///< the node's bytes before the handshake's answer is complete
  bool node_ended_ = false;
  bool node_shut_ = false;
  bool answered_ = false;   ///< the answer's head is complete (or the node ended)
  bool link_lost_ = false;  ///< the link failed under this session (link_gone())
  std::string out_;         ///< the node's bytes the viewer's socket has not taken yet
  std::size_t out_sent_ = 0;
  bool waiting_writable_ = false;
  bool dirty_ = false;  ///< on its link's list of viewers to write at the end of the read
  std::chrono::steady_clock::time_point write_since_{};
  std::size_t uncredited_ = 0;  ///< bytes written to the viewer and not yet credited
  std::chrono::steady_clock::time_point last_read_ = std::chrono::steady_clock::now();
  bool ended_ = false;
};

/// One loop's links to one chat node.
class NodeLinkSet : public std::enable_shared_from_this<NodeLinkSet> {
 public:
  /// Opens a connection to the node (the gateway's own connect, which also marks the
  /// node when it cannot be reached).
  using Connector = std::function<boost::asio::awaitable<std::optional<boost::beast::tcp_stream>>()>;

  /// `count` links, each retried `retry` after it failed; `open` counts those open (the
  /// gateway's gauge, shared by every set).
  NodeLinkSet(boost::asio::any_io_executor ex, std::string node_name, int count, Connector connect,
              std::chrono::milliseconds retry, std::atomic<std::int64_t>& open);
  /// Starts keeping the links up.
  void start();
  /// Closes the links (and their viewers) and stops reconnecting.
  void stop();
  /// The open link with the fewest viewers, or null if none is open.
  std::shared_ptr<GatewayLink> pick() const;
  int open_links() const;

 private:
  boost::asio::awaitable<void> keep(std::size_t slot);

  boost::asio::any_io_executor ex_;
  std::string node_;
  Connector connect_;
  std::chrono::milliseconds retry_;
  std::atomic<std::int64_t>& open_;
  std::vector<std::shared_ptr<GatewayLink>> links_;  ///< by slot; null while down
  std::vector<boost::asio::steady_timer*> waits_;    ///< each slot's wait, to cut short on stop()
  bool stopped_ = false;
};

}  // namespace chatorbit::gateway
