#pragma once
// The services behind the gateway and what it knows of each: where it listens, whether
// it is in service, how many WebSocket tunnels it carries. Chat nodes are chosen here:
// a REST request goes to the next healthy node in turn, a WebSocket to the healthy node
// with the fewest open tunnels (viewers stay for hours, so connections, not requests,
// are the load to even out).
//
// Health is what the gateway saw last: a /readyz that failed, or a connection that
// could not be made, takes a node out; a /readyz that passed brings it back. A node is
// taken to be in service until the first sign otherwise, so that the gateway serves from
// its first second.
//
// Threading: every method may be called from any thread.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace chatorbit::gateway {

/// Where a service listens.
struct Endpoint {
  std::string host;
  std::string port;
  std::string name() const { return host + ":" + port; }
};

/// "http://host:port", "host:port" or "[v6]:port" (a trailing '/' is allowed). Anything
/// else (https, a path, user info, no port) throws ConfigError naming `setting`.
Endpoint parse_endpoint(std::string_view text, std::string_view setting);

class Upstream {
 public:
  Upstream(std::string service, Endpoint endpoint) : service_(std::move(service)), endpoint_(std::move(endpoint)) {}

  const std::string& service() const { return service_; }
  const Endpoint& endpoint() const { return endpoint_; }

  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  /// Records what a check or a connection attempt found; true if that changed the state.
  bool mark(bool up) { return healthy_.exchange(up, std::memory_order_relaxed) != up; }

  std::int64_t tunnels() const { return tunnels_.load(std::memory_order_relaxed); }
  void tunnel_opened() { tunnels_.fetch_add(1, std::memory_order_relaxed); }
  void tunnel_closed() { tunnels_.fetch_sub(1, std::memory_order_relaxed); }

  /// Requests or tunnels that failed for want of this upstream (refused, reset, timed out).
  std::uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  void failed() { failures_.fetch_add(1, std::memory_order_relaxed); }

 private:
  const std::string service_;
  const Endpoint endpoint_;
  std::atomic<bool> healthy_{true};
  std::atomic<std::int64_t> tunnels_{0};
  std::atomic<std::uint64_t> failures_{0};
};

/// The chat nodes. The set is fixed at start; only their health and load change.
class ChatNodes {
 public:
  explicit ChatNodes(const std::vector<Endpoint>& endpoints);

  /// For a REST request: the next healthy node in turn that is not in `tried`; null if none.
  Upstream* next(const std::vector<const Upstream*>& tried = {});
  /// For a WebSocket: the healthy node not in `tried` with the fewest tunnels (ties go
  /// in turn, so that an idle cluster fills evenly); null if none.
  Upstream* least_loaded(const std::vector<const Upstream*>& tried = {});

  const std::vector<std::unique_ptr<Upstream>>& all() const { return nodes_; }
  std::size_t healthy_count() const;

 private:
  /// The healthy nodes not in `tried`, in their configured order.
  std::vector<Upstream*> candidates(const std::vector<const Upstream*>& tried) const;

  std::vector<std::unique_ptr<Upstream>> nodes_;
  std::atomic<std::size_t> turn_{0};
};

}  // namespace chatorbit::gateway
