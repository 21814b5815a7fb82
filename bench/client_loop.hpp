#pragma once
// The connection loop of chatorbit-bench: one epoll loop that drives many non-blocking
// WebSocket client connections from one thread, and the bench's clock.
//
// Cost matters more than generality here: the bench must spend far less per delivered
// message than the server does, so
// - reads go into one fixed buffer per loop, and a frame is copied only when it
//   straddles two reads (ServerFrameParser keeps that partial frame per connection);
// - frames are handed over as views into that buffer, and the scenario looks only at
//   the frames it cares about;
// - pings are answered inside the loop; nothing else is parsed here.
// Plain POSIX + epoll, one loop per thread, no locks.

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ws_codec.hpp"

namespace chatorbit::bench {

/// CLOCK_MONOTONIC in nanoseconds: the clock of every timestamp the bench takes.
std::uint64_t mono_ns();

struct ConnectSpec {
  sockaddr_in server{};
  in_addr source{};         ///< s_addr 0: let the kernel choose
  std::string host_header;  ///< "127.0.0.1:8080"
  std::string target;       ///< "/ws/chat?room_id=x"
  std::uint32_t tag = 0;    ///< the scenario's own (who this connection is)
};

/// Why a connection ended.
enum class EndReason : std::uint8_t {
  connect_failed,  ///< connect() or the socket failed before the upgrade (err)
  refused,         ///< the server answered the upgrade with http_status != 101
  bad_handshake,   ///< malformed answer or wrong Sec-WebSocket-Accept
  timeout,         ///< no upgrade within the handshake timeout
  server_close,    ///< the server sent a close frame (ws_code)
  eof,             ///< the server closed the TCP connection without a close frame
  io_error,        ///< read or write failed after the upgrade (err)
  protocol_error,  ///< a frame the client codec refuses
  local,           ///< closed by this side
};
const char* to_string(EndReason r);

struct ConnEnd {
  EndReason reason = EndReason::local;
  int http_status = 0;
  std::uint16_t ws_code = 0;
  int err = 0;
  bool was_open = false;  ///< the upgrade had completed
};

class ClientLoop;

/// The scenario's side of a loop. Callbacks run on the loop's thread, from poll().
class ConnHandler {
 public:
  virtual ~ConnHandler() = default;
  /// The upgrade completed (101 with the right accept key).
  virtual void on_open(ClientLoop& loop, std::uint32_t id, std::uint64_t now_ns) = 0;
  /// A text frame. `now_ns` is taken once per read, not per frame.
  virtual void on_text(ClientLoop& loop, std::uint32_t id, std::string_view payload, std::uint64_t now_ns) = 0;
  /// The connection ended (whether it had opened or not). The id is free for reuse
  /// once this returns.
  virtual void on_end(ClientLoop& loop, std::uint32_t id, const ConnEnd& end) = 0;
};

struct LoopCounters {
  std::uint64_t bytes_in = 0;
  std::uint64_t reads = 0;
  std::uint64_t frames_in = 0;
  std::uint64_t pings = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t write_blocked = 0;  ///< a send() could not take everything at once
};

class ClientLoop {
 public:
  enum class State : std::uint8_t { free, connecting, handshaking, open, closing };
  enum class CloseMode : std::uint8_t {
    rst,       ///< close frame, then close() with SO_LINGER 0: no TIME_WAIT anywhere
    graceful,  ///< close frame, wait for the server's close (or EOF), then close()
    drop,      ///< no close frame: close() at once (FIN)
  };

  explicit ClientLoop(ConnHandler& handler, std::size_t read_buffer_bytes = 64U << 10, bool verify_accept = true);
  /// Resets (RST) every connection still open: no TIME_WAIT is left behind.
  ~ClientLoop();
  ClientLoop(const ClientLoop&) = delete;
  ClientLoop& operator=(const ClientLoop&) = delete;

  /// Ask the kernel to delay ACKs (TCP_QUICKACK off, re-armed after every read): by
  /// default Linux acknowledges each small pushed segment as soon as it is read, and
  /// on loopback that ACK (and the server socket's processing of it) runs in the
  /// reader's context: about half of what a recv() costs here. Diagnostic only: the
  /// peer's unacknowledged data then stays in its send buffer longer.
  void set_delayed_ack(bool on) { delayed_ack_ = on; }

  /// Starts a non-blocking connect and queues the upgrade request. Returns the id, or
  /// nullopt with errno set if the socket could not even be created or connected
  /// (EMFILE, EADDRNOTAVAIL, ...); no callback is made for it.
  std::optional<std::uint32_t> open(const ConnectSpec& spec);

  /// Sends a masked text frame; buffers what the socket does not take. False if the
  /// connection is not open.
  bool send_text(std::uint32_t id, std::string_view payload);
  /// Closes: on_end(local) is called before this returns (graceful: when it ends).
  void close(std::uint32_t id, std::uint16_t code, CloseMode mode);

  /// Waits up to `timeout_ms` for readiness and handles it. Returns the events handled.
  int poll(int timeout_ms);
  /// Ends every connection that has not completed its upgrade within `timeout_ns` of
  /// open() (and every graceful close pending that long), with EndReason::timeout.
  void expire(std::uint64_t now_ns, std::uint64_t timeout_ns);

  State state(std::uint32_t id) const { return conns_[id].state; }
  std::uint32_t tag(std::uint32_t id) const { return conns_[id].tag; }
  std::uint64_t opened_at(std::uint32_t id) const { return conns_[id].started_ns; }
  std::size_t live() const { return live_; }
  const LoopCounters& counters() const { return counters_; }
  std::uint32_t next_mask() {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return static_cast<std::uint32_t>(rng_ >> 16);
  }

 private:
  struct Conn {
    int fd = -1;
    State state = State::free;
    bool want_write = false;
    std::uint32_t gen = 0;
    std::uint32_t tag = 0;
    std::uint64_t started_ns = 0;
    std::string out;    ///< bytes not yet taken by the socket (upgrade request first)
    std::string inbuf;  ///< the upgrade answer while it is incomplete
    std::string key;    ///< Sec-WebSocket-Key, until the answer is checked
    ServerFrameParser parser;
  };

  void on_event(std::uint32_t id, std::uint32_t events);
  void on_writable(std::uint32_t id);
  void on_readable(std::uint32_t id, bool hangup);
  /// False if the connection ended while handling the bytes.
  bool on_bytes(std::uint32_t id, const char* data, std::size_t n, std::uint64_t now);
  bool on_handshake_bytes(std::uint32_t id, const char* data, std::size_t n, std::uint64_t now);
  bool on_frames(std::uint32_t id, std::string_view data, std::uint64_t now);
  bool send_raw(std::uint32_t id, std::string_view bytes);
  void update_interest(std::uint32_t id, bool want_write);
  void end(std::uint32_t id, ConnEnd e, bool rst = false);
  std::uint64_t key_of(std::uint32_t id) const { return (static_cast<std::uint64_t>(conns_[id].gen) << 32) | id; }

  ConnHandler& handler_;
  int epfd_ = -1;
  bool verify_accept_;
  bool delayed_ack_ = false;
  std::vector<char> buf_;
  std::deque<Conn> conns_;  // stable addresses; ids index it
  std::vector<std::uint32_t> free_;
  std::vector<std::uint32_t> pending_free_;  ///< ended this round; reusable from the next poll()
  std::size_t live_ = 0;
  std::uint64_t rng_;
  LoopCounters counters_;
  std::string scratch_;
};

}  // namespace chatorbit::bench
