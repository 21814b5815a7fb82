#pragma once
// One TCP connection to one Redis server, on the engine's io_context (one network thread
// for every connection of an engine). Two modes:
//
//   commands  every command from every thread is queued, and whatever queued while the
//             previous write was on the wire leaves in the next single write (always
//             pipelined: no command waits for another's reply). Replies complete the
//             commands in order.
//   pubsub    the subscriber connection: SUBSCRIBE/UNSUBSCRIBE and their confirmations,
//             and the pushed messages, go to the owner's `push` callback.
//
// Faults: the connection is "up" from the end of its handshake (AUTH, SELECT) until it
// fails. It fails when the socket errors or closes, when the server sends something that
// is not RESP, and when the server stops answering without closing (stalled by SIGSTOP,
// a half-open link): every connection sends a PING after `probe_interval` without
// traffic, and if the oldest request it waits on (a command or a probe) has had no
// answer for `command_timeout`, the connection is dropped. On a failure every command
// waiting for a reply completes with EngineUnavailable (its outcome is unknown), the
// owner learns it (`state`), and the connection reconnects with exponential backoff
// (backoff_min doubling to backoff_max, with jitter). Commands sent during a connect
// attempt wait for its outcome; sent between attempts, they fail at once: a caller is
// told `unavailable` without waiting.
//
// Thread-safety: send() may be called from any thread; everything else runs on the
// io_context's thread. Callbacks run on that thread and must not block.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "engine/engine_factory.hpp"
#include "engine/redis/resp.hpp"

namespace chatorbit::engine::redis {

/// Receives a command's reply (an error reply is a reply: `-ERR ...`, `-MOVED ...`), or
/// an exception (EngineUnavailable) when none will come. On the connection's thread.
using ReplyCallback = std::function<void(std::exception_ptr, Reply)>;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class Mode { commands, pubsub };
  struct Events {
    /// The connection came up (true), or went down or failed an attempt (false, with why).
    std::function<void(bool up, const std::string& detail)> state;
    /// pubsub mode: every pushed array (message, smessage, subscribe, unsubscribe, ...).
    std::function<void(Reply&&)> push;
  };

  /// `name` is for logs ("command 127.0.0.1:6379"). Call start() to connect.
  Connection(boost::asio::io_context& io, RedisEndpoint endpoint, RedisSettings settings, Mode mode, std::string name,
             Events events);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Connects, and keeps reconnecting after failures, until stop(). Any thread.
  void start();
  /// Closes for good: pending commands complete with EngineUnavailable. Any thread;
  /// completes on the io thread.
  void stop();

  /// Queues one encoded command (commands mode: `done` gets its reply; pubsub mode: pass
  /// an empty `done`, what comes back is pushed). Any thread. While the connection is down
  /// `done` gets EngineUnavailable at once (on the io thread).
  void send(std::string encoded, ReplyCallback done);
  /// Queues several commands to leave together, in order (e.g. ASKING + the command).
  void send_all(std::vector<std::pair<std::string, ReplyCallback>> commands);

  bool up() const;
  /// A connect attempt is under way (commands sent now wait for its outcome).
  bool connecting() const;
  const RedisEndpoint& endpoint() const { return endpoint_; }
  const std::string& name() const { return name_; }

 private:
  struct Pending {
    ReplyCallback done;
    std::chrono::steady_clock::time_point sent{};
    bool probe = false;  ///< a PING of ours (pubsub: its pong), not the caller's
  };
  using Clock = std::chrono::steady_clock;

  void connect();
  void on_connected();
  void handshake_done();
  void fail(const std::string& why);
  void schedule_reconnect();
  void flush();
  void write_some();
  void read_some();
  void on_reply(Reply&& reply);
  void arm_watchdog();
  void on_watchdog();
  void fail_all(std::deque<Pending>& list, const std::string& why);

  boost::asio::io_context& io_;
  const RedisEndpoint endpoint_;
  const RedisSettings settings_;
  const Mode mode_;
  const std::string name_;
  Events events_;

  // Shared with send() callers on other threads.
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, ReplyCallback>> queued_;
  bool flush_posted_ = false;
  bool up_ = false;  ///< also read by up() on other threads
  /// A connect attempt is under way: commands wait for it (at most connect_timeout)
  /// instead of failing, so that a starting engine or a quick reconnect loses nothing.
  bool connecting_ = false;
  bool started_ = false;
  bool stopped_ = false;

  // The io thread's own.
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer watchdog_;
  boost::asio::steady_timer backoff_timer_;
  std::chrono::milliseconds backoff_{0};
  std::uint64_t generation_ = 0;  ///< bumped on each failure: stale handlers see a new value
  bool connected_ = false;        ///< socket open and handshake started
  bool handshaking_ = false;
  bool writing_ = false;
  bool held_back_ = false;            ///< commands wait in queued_ for room in the pipeline
  std::string out_;                   ///< on the wire
  std::string next_;                  ///< leaves after out_
  std::deque<Pending> waiting_next_;  ///< the replies next_ will bring, in order
  std::deque<Pending> inflight_;      ///< sent, reply not yet read
  std::unique_ptr<RespReader> reader_;
  std::vector<char> read_buf_;
  Clock::time_point last_traffic_{};
};

}  // namespace chatorbit::engine::redis
