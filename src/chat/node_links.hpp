#pragma once
// The chat node's end of gateways' links (net/link.hpp): many viewers' sessions over one
// connection from a gateway.
//
// A gateway asks for a link with an upgrade on link::kPath ("Upgrade: chatorbit-link"),
// taken only from an address in CHATORBIT_TRUSTED_PROXIES (403 otherwise). Each `open`
// record then starts the chat handshake (ChatService::upgrade, the same checks as for a
// viewer of its own), and an accepted session is an ordinary hub session whose
// ws::Connection writes into the link (a LinkChannel) instead of a socket: the hub, its
// passes, the slow-viewer rule and the close handshake do not know the difference. What
// the sessions write in one turn of the loop leaves in one write.
//
// Flow control: a session may have at most link::kWindow bytes written that its gateway
// has not credited (written on to its viewer). With the window spent, or the link
// congested, the connection sees what a full socket looks like (EAGAIN), and its own
// backlog bound (CHATORBIT_WS_MAX_QUEUE_BYTES, close 4008) decides about a viewer that
// stopped reading. A link that fails ends its sessions; their viewers reconnect.
//
// Threading: a link and its sessions belong to the loop that accepted it.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_set>

#include "net/client_address.hpp"
#include "net/http_types.hpp"
#include "net/router.hpp"

namespace chatorbit::chat {

class ChatService;
class NodeLink;

class NodeLinks {
 public:
  NodeLinks(ChatService& chat, net::AddressSet trusted);
  ~NodeLinks();
  NodeLinks(const NodeLinks&) = delete;
  NodeLinks& operator=(const NodeLinks&) = delete;

  /// The HttpServer's upgrade handler for link::kPath.
  void upgrade(boost::beast::tcp_stream stream, boost::beast::flat_buffer buffer, http::Request req,
               http::Context& ctx);
  /// Closes every link (their sessions end). Thread-safe; call before the loops stop.
  void close_all();
  /// Open links. Thread-safe.
  std::int64_t links() const { return open_.load(std::memory_order_relaxed); }

 private:
  friend class NodeLink;
  void opened(const std::shared_ptr<NodeLink>& l);
  void closed(NodeLink* l);

  ChatService& chat_;
  const net::AddressSet trusted_;
  std::atomic<std::int64_t> open_{0};
  std::mutex mu_;
  std::unordered_set<std::shared_ptr<NodeLink>> all_;  ///< guarded by mu_
};

}  // namespace chatorbit::chat
