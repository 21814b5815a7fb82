#pragma once
// One WebSocket connection after the upgrade, on the data path the server owns:
// reads are readiness-driven into the loop's shared buffer (an idle connection holds
// no read buffer), frames are parsed by ws::FrameReader, and writes gather waiting
// frames (shared, already framed, unmasked) into one send per flush: the connection's
// own frames and those of the ws::Stream it follows, in the order they were queued.
//
// Threading: a connection belongs to one event loop; every method must be called on
// that loop's thread. Lifetime: shared_ptr, held by its owner's registry and by
// pending asynchronous operations.

#include <boost/asio/ip/tcp.hpp>

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/background.hpp"
#include "net/ws_frame.hpp"
#include "net/ws_stream.hpp"

namespace chatorbit::ws {

class Connection;

/// Receives what a connection reads. Called on the connection's loop.
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  /// A complete text message (valid UTF-8).
  virtual void on_text(Connection& c, std::string text) = 0;
  /// A complete binary message.
  virtual void on_binary(Connection& c, std::string data) = 0;
  /// The connection is gone (closed by either side or failed); called exactly once.
  virtual void on_closed(Connection& c) = 0;
  /// A frame was queued. `first`: the queue had nothing waiting for a flush before (the
  /// connection wants one); otherwise a flush is already due and the call only lets the
  /// owner hurry it (e.g. an ack queued behind fan-out frames that may wait).
  virtual void on_dirty(Connection& c, bool first) = 0;
};

/// A transport that is not a socket of the connection's own: a session carried by a
/// gateway's link (net/link.hpp). The connection writes through it and is fed what it
/// reads (Connection::receive(), peer_ended()).
class Channel {
 public:
  virtual ~Channel() = default;
  /// Takes what it can of `iov` now: the bytes taken, or -EAGAIN if none (then
  /// wait_writable() follows), or another -errno if the transport is gone.
  virtual long write(std::span<const iovec> iov) = 0;
  /// Calls `ready` once, when write() may take bytes again (or the transport is gone).
  virtual void wait_writable(std::function<void()> ready) = 0;
  /// The close frame is out: nothing more will be written.
  virtual void shutdown_send() = 0;
  /// The connection is over (once, at its end).
  virtual void close() = 0;
};

struct ConnectionLimits {
  std::size_t max_message_bytes = 64 * 1024;
  std::size_t max_queue_bytes = 1024 * 1024;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  /// The most one write gathers: a viewer far behind catches up in writes of this size,
  /// without walking its whole backlog for what the socket may not take.
  static constexpr std::size_t kMaxWriteBytes = 256 * 1024;

  Connection(boost::asio::ip::tcp::socket socket, ConnectionHandler& handler, ConnectionLimits limits,
             std::vector<char>& loop_buffer);
  /// A connection over `channel` instead of a socket; `ex` is its loop's.
  Connection(boost::asio::any_io_executor ex, std::shared_ptr<Channel> channel, ConnectionHandler& handler,
             ConnectionLimits limits, std::vector<char>& loop_buffer);
  ~Connection();

  /// Starts reading; `leftover` are bytes that arrived with the upgrade request.
  void start(std::string_view leftover);
  /// Where the socket is closed once the connection ends: as `b`'s background work
  /// (net/background.hpp) instead of at once. Closing a TCP socket and taking it out of
  /// epoll is two system calls of some 30 µs together; a crowd that leaves at once
  /// (10,000 viewers) would put them all ahead of the live rooms' traffic. Everything
  /// else about the end (on_closed(), the queue) still happens at once. Call before start().
  void close_in(net::Background& b) { background_ = &b; }
  /// Adds one to `writes` for every write that sends data (a sendmsg, on its own or in a
  /// batch): its owner's count, so that frames per write can be told. Relaxed: only
  /// this connection's loop writes it.
  void count_writes_in(std::atomic<std::uint64_t>& writes) { writes_ = &writes; }

  /// Queues an already framed message (see ws::make_frame) and tells the handler
  /// (on_dirty); it leaves at the next flush. A viewer whose socket takes no more and
  /// whose backlog would exceed max_queue_bytes is closed with 4008.
  void send(const Frame& frame);
  /// Queues like send() but tells nobody: for broadcasts, whose owner schedules the
  /// flush itself. True if the connection now wants a flush it did not want before.
  bool queue(const Frame& frame);
  /// Frames `text` as a text message and queues it.
  void send_text(std::string_view text);
  /// Sends as much of what waits as the socket takes now, without blocking. While the
  /// socket takes nothing, checks instead that no more than max_queue_bytes wait (the
  /// stream grows without asking); a viewer further behind is closed with 4008.
  void flush();

  /// Follows `stream` from its end on (leaving the one it followed): its frames are
  /// written with this connection's own, in the order the two were queued. Nobody is
  /// told when the stream grows: its owner schedules the flushes.
  void subscribe(std::shared_ptr<Stream> stream);
  /// Stops following the stream; its frames not yet written still are.
  void unsubscribe();
  /// Writing through a batch (net::SendBatch), the steps of flush() apart: gather() fills
  /// `iov` with what waits, in order (frames adjacent in memory in one buffer, at most
  /// kMaxWriteBytes), and returns how many buffers it used: 0 when
  /// nothing waits or the socket is not to be written now (flush() then does what is
  /// due). The batch's result (bytes sent, or -errno) goes to sent(), and the data must
  /// not change in between; sent() writes any remainder and finishes a close itself.
  std::size_t gather(std::span<iovec> iov) const;
  void sent(long result);
  int native_handle() { return socket_.native_handle(); }
  /// Whether it may be written through a net::SendBatch (it has a socket of its own);
  /// a connection over a Channel is written by flush().
  bool batchable() const { return !channel_; }
  /// For a connection over a Channel: bytes it read, and the end of its input.
  void receive(std::string_view bytes);
  void peer_ended() { finish(false); }
  /// Something waits to be written.
  bool pending() const { return !queue_.empty() || (stream_ && cursor_ < stream_->end()); }
  /// Queues a close frame, then closes the socket once it is sent (or soon after).
  void close(std::uint16_t code, std::string_view reason);
  /// Drops the connection at once, without a close frame.
  void abort();

  bool open() const { return state_ == State::open; }
  /// When the close frame was sent and the socket half-closed (0 if not closing).
  std::int64_t closing_since_ms() const { return closing_since_ms_; }
  std::int64_t last_activity_ms() const { return last_activity_ms_; }
  /// Bytes waiting to be written: its own frames and the stream's not yet written.
  std::size_t queued_bytes() const;

  /// Set by the owner: arbitrary per-connection data (the chat session).
  void* user_data = nullptr;

 private:
  enum class State : std::uint8_t { open, closing, closed };
  void arm_read();
  void on_readable();
  void handle_events();
  void finish(bool graceful);
  /// Appends `frame` unless the connection is no longer open or would overflow (it is
  /// then closed as too slow); false if nothing was queued.
  bool append(const Frame& frame);
  /// Closes with 4008, dropping what waits except a frame already partly sent.
  void drop_as_slow();
  /// Takes `sent` bytes off the front of what waits.
  void consume(std::size_t sent);
  /// Applies a send's result (bytes, or -errno); true if the socket may be written again
  /// at once, false if the connection now waits for it or has failed.
  bool take_result(long result);
  /// Stops following the stream; with `keep`, its unwritten frames join the own queue.
  void leave_stream(bool keep);

  /// A frame of this connection's own, written before stream frame `at` (see flush()).
  struct Own {
    Frame frame;
    std::uint64_t at;
  };

  boost::asio::ip::tcp::socket socket_;  ///< unopened for a connection over a Channel
  std::shared_ptr<Channel> channel_;
  net::Background* background_ = nullptr;         ///< where the socket is closed (close_in()); null: at once
  std::atomic<std::uint64_t>* writes_ = nullptr;  ///< count_writes_in(); null: not counted
  ConnectionHandler& handler_;
  std::vector<char>& loop_buffer_;
  FrameReader reader_;
  std::vector<Own> queue_;
  std::shared_ptr<Stream> stream_;
  std::uint64_t cursor_ = 0;     ///< next frame of stream_ to write
  std::size_t head_offset_ = 0;  ///< bytes of the first waiting frame already sent
  std::size_t own_bytes_ = 0;    ///< bytes of queue_
  std::size_t max_queue_bytes_;
  std::int64_t last_activity_ms_ = 0;
  State state_ = State::open;
  std::int64_t closing_since_ms_ = 0;
  bool reading_ = false;
  bool half_closed_ = false;
  bool waiting_writable_ = false;
  bool dirty_ = false;
};

/// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 section 4.2.2).
std::string accept_key(std::string_view client_key);

/// Milliseconds on a monotonic clock, for heartbeats.
std::int64_t steady_ms();

}  // namespace chatorbit::ws
