#pragma once
// A link: one TCP connection between a gateway and a chat node that carries many
// viewers' WebSocket sessions at once, so that one system call moves the bytes of
// hundreds of them (docs/architecture.md, "One link per chat node").
//
// On the wire a link is a sequence of records, each `[u32 length][u8 kind][u64 session]`
// (big-endian; the length counts the kind, the session and the payload) and `length - 9`
// bytes of payload:
// - gateway to node: `open` (the viewer's upgrade request, as the gateway would forward
//   it), `data` (the viewer's bytes: masked WebSocket frames), `end` (the viewer is gone),
//   `credit` (a u32: bytes of the session the gateway has written to its viewer);
// - node to gateway: `data` (the handshake's answer, then frames), `shut` (the node's
//   close frame is out: half-close the viewer), `end` (the session is over).
// A session id is chosen by the gateway and never reused on a link.
//
// link::Socket moves records over the connection: what is sent during a turn of the
// loop leaves in one write at its end, and reads are parsed straight out of the read
// buffer. Threading: a socket and its handler belong to one event loop.

#include <boost/asio/ip/tcp.hpp>

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace chatorbit::link {

enum class Kind : std::uint8_t { open = 1, data = 2, end = 3, credit = 4, shut = 5 };

/// The upgrade a gateway asks for on the chat node's port ("Upgrade: chatorbit-link").
inline constexpr std::string_view kPath = "/internal/link";
inline constexpr std::string_view kProtocol = "chatorbit-link";
/// Bytes of a session a node may have sent that its gateway has not credited yet: what
/// the gateway holds at most for one viewer that stopped reading.
inline constexpr std::size_t kWindow = 64 * 1024;
/// The gateway credits what it has written in steps of at least this much.
inline constexpr std::size_t kCreditStep = 16 * 1024;

struct Record {
  Kind kind;
  std::uint64_t session;
  std::string_view payload;
};

inline constexpr std::size_t kHeaderBytes = 13;
/// Largest payload a record may carry; a longer one means the peer is broken.
inline constexpr std::size_t kMaxPayload = 1024 * 1024;

/// Appends a record's header for `payload_bytes` of payload, which the caller appends.
void append_header(std::string& out, Kind kind, std::uint64_t session, std::size_t payload_bytes);
void append_record(std::string& out, Kind kind, std::uint64_t session, std::string_view payload);

/// Splits a byte stream into records. Records wholly inside the bytes given are handed
/// out as views of them; only a record cut by the end of a read is copied.
class RecordReader {
 public:
  /// Calls on_record(const Record&) for each complete record, in order; false (and it
  /// stays so) if the stream is malformed: an unknown kind or an oversized record.
  template <class F>
  bool feed(std::string_view bytes, F&& on_record) {
    if (failed_) return false;
    if (!partial_.empty()) {
      // Complete the record that the last read cut, from the front of this one (its
      // header first, if that was cut too, then as much as the header says).
      for (;;) {
        const std::size_t want = needed(partial_);
        if (failed_) return false;
        if (want == 0) break;
        if (bytes.empty()) return true;
        const std::size_t take = std::min(want, bytes.size());
        partial_.append(bytes.data(), take);
        bytes.remove_prefix(take);
      }
      Record r;
      if (!parse(partial_, r)) return false;
      on_record(r);
      partial_.clear();
    }
    while (!bytes.empty()) {
      Record r;
      const std::size_t size = complete_size(bytes);
      if (failed_) return false;
      if (size == 0) {
        partial_.assign(bytes);
        break;
      }
      if (!parse(bytes.substr(0, size), r)) return false;
      on_record(r);
      bytes.remove_prefix(size);
    }
    return true;
  }
  bool failed() const { return failed_; }

 private:
  /// Bytes still missing from the record begun in `b` (0 if complete).
  std::size_t needed(std::string_view b);
  /// The size of the complete record at the front of `b`, or 0 if it is incomplete.
  std::size_t complete_size(std::string_view b);
  bool parse(std::string_view whole, Record& r);

  std::string partial_;
  bool failed_ = false;
};

/// Receives what a link reads. Called on the link's loop.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void on_record(const Record& r) = 0;
  /// The records of one wake-up (up to a few reads) have all been handed over: where a
  /// handler that gathers what they carry writes it out.
  virtual void on_read_done() {}
  /// The link is gone (closed by either side, failed, or malformed); called once.
  virtual void on_link_closed() = 0;
};

class Socket : public std::enable_shared_from_this<Socket> {
 public:
  /// Past this many unwritten bytes the link is congested: writers of sessions wait
  /// (when_drained) instead of adding more.
  static constexpr std::size_t kHighWater = 1024 * 1024;
  static constexpr std::size_t kLowWater = 256 * 1024;

  Socket(boost::asio::ip::tcp::socket socket, Handler& handler);
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  /// Starts reading; `leftover` arrived with the upgrade.
  void start(std::string_view leftover);
  /// Queues a record; everything queued in one turn of the loop leaves in one write.
  void send(Kind kind, std::uint64_t session, std::string_view payload);
  /// Queues a data record of the first `bytes` bytes of `iov`.
  void send(std::uint64_t session, std::span<const iovec> iov, std::size_t bytes);
  bool congested() const { return out_.size() - out_sent_ >= kHighWater; }
  /// Calls `ready` once the unwritten bytes are below kLowWater (or the link closed).
  void when_drained(std::function<void()> ready);
  /// Unwritten bytes.
  std::size_t backlog() const { return out_.size() - out_sent_; }
  /// Closes the connection; the handler hears of it (on_link_closed) unless detached.
  void close();
  /// The handler is told nothing more (its owner is going away).
  void detach() { handler_ = nullptr; }
  bool open() const { return open_; }
  boost::asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  void arm_read();
  void on_readable();
  void want_flush();
  void flush();
  void drained();
  void fail();

  boost::asio::ip::tcp::socket socket_;
  Handler* handler_;
  RecordReader reader_;
  std::vector<char> in_;
  std::string out_;
  std::size_t out_sent_ = 0;
  std::vector<std::function<void()>> drain_waiters_;
  bool open_ = true;
  bool flush_posted_ = false;
  bool waiting_writable_ = false;
};

}  // namespace chatorbit::link
