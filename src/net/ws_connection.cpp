#include "net/ws_connection.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/uio.h>

#include <cerrno>

#include <array>
#include <chrono>

namespace chatorbit::ws {

namespace asio = boost::asio;

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string accept_key(std::string_view client_key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input(client_key);
  input += kGuid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
}

Connection::Connection(asio::ip::tcp::socket socket, ConnectionHandler& handler, ConnectionLimits limits,
                       std::vector<char>& loop_buffer)
    : socket_(std::move(socket)),
      handler_(handler),
      loop_buffer_(loop_buffer),
      reader_(limits.max_message_bytes),
      max_queue_bytes_(limits.max_queue_bytes),
      last_activity_ms_(steady_ms()) {
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
}

Connection::~Connection() = default;

void Connection::start(std::string_view leftover) {
  if (!leftover.empty()) {
    reader_.feed(leftover);
    handle_events();
  }
  arm_read();
}

void Connection::arm_read() {
  if (reading_ || state_ == State::closed) return;
  reading_ = true;
  socket_.async_wait(asio::socket_base::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
    self->reading_ = false;
    if (ec) {
      if (ec != asio::error::operation_aborted) self->finish(false);
      return;
    }
    self->on_readable();
  });
}

void Connection::on_readable() {
  // A few reads per wake-up, then yield to other connections on the loop.
  for (int i = 0; i < 4 && state_ != State::closed; ++i) {
    boost::system::error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(loop_buffer_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) {
      finish(false);
      return;
    }
    last_activity_ms_ = steady_ms();
    // After our close frame went out, input is read only to be discarded: closing a
    // socket with unread data would reset the connection and could lose the close
    // frame (and its code) before the client reads it.
    if (half_closed_) continue;
    reader_.feed(std::string_view(loop_buffer_.data(), n));
    handle_events();
    if (n < loop_buffer_.size()) break;
  }
  if (state_ != State::closed) arm_read();
}

void Connection::handle_events() {
  for (;;) {
    if (state_ == State::closed) return;
    Event ev = reader_.next();
    switch (ev.kind) {
      case Event::Kind::need_more: return;
      case Event::Kind::text:
        if (state_ == State::open) handler_.on_text(*this, std::move(ev.payload));
        break;
      case Event::Kind::binary:
        if (state_ == State::open) handler_.on_binary(*this, std::move(ev.payload));
        break;
      case Event::Kind::ping: send(std::make_shared<const std::string>(make_frame(Opcode::pong, ev.payload))); break;
      case Event::Kind::pong: break;
      case Event::Kind::close:
        if (state_ == State::open) {
          // Echo the peer's code (RFC 6455 5.5.1); 1005 means none was given.
          close(ev.code == close_code::no_status ? close_code::normal : ev.code, {});
        } else {
          finish(true);
        }
        return;
      case Event::Kind::error: close(ev.code, ev.reason); return;
    }
  }
}

bool Connection::append(const Frame& frame) {
  if (state_ != State::open) return false;
  if (queued_bytes_ + frame->size() > max_queue_bytes_) {
    // This viewer cannot keep up: drop what it has not read, tell it why, and go.
    // Nobody else waits for it. A frame already partly on the wire must be finished,
    // or the close frame would be read as the rest of its payload.
    const std::size_t keep = head_offset_ > 0 ? 1 : 0;
    queue_.resize(keep);
    queued_bytes_ = keep ? queue_.front()->size() - head_offset_ : 0;
    close(close_code::slow_consumer, "too slow");
    return false;
  }
  queue_.push_back(frame);
  queued_bytes_ += frame->size();
  return true;
}

void Connection::send(const Frame& frame) {
  if (!append(frame) || waiting_writable_) return;  // the writable wait flushes everything queued
  const bool first = !dirty_;
  dirty_ = true;
  handler_.on_dirty(*this, first);
}

bool Connection::queue(const Frame& frame) {
  if (!append(frame) || waiting_writable_ || dirty_) return false;
  dirty_ = true;
  return true;
}

void Connection::send_text(std::string_view text) {
  send(std::make_shared<const std::string>(make_frame(Opcode::text, text)));
}

void Connection::flush() {
  dirty_ = false;
  if (state_ == State::closed || waiting_writable_) return;
  while (!queue_.empty()) {
    // One writev for as many queued frames as fit: this is where coalescing pays.
    std::array<iovec, 64> iov;
    std::size_t count = 0;
    for (; count < iov.size() && count < queue_.size(); ++count) {
      const auto& f = *queue_[count];
      const std::size_t skip = count == 0 ? head_offset_ : 0;
      iov[count].iov_base = const_cast<char*>(f.data() + skip);
      iov[count].iov_len = f.size() - skip;
    }
    const ssize_t n = ::writev(socket_.native_handle(), iov.data(), static_cast<int>(count));
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (errno == EINTR) continue;
      waiting_writable_ = true;
      socket_.async_wait(asio::socket_base::wait_write, [self = shared_from_this()](boost::system::error_code wec) {
        self->waiting_writable_ = false;
        if (wec) {
          if (wec != asio::error::operation_aborted) self->finish(false);
          return;
        }
        self->flush();
      });
      return;
    }
    if (n < 0) {
      finish(false);
      return;
    }
    std::size_t sent = static_cast<std::size_t>(n);
    queued_bytes_ -= sent;
    std::size_t done = 0;
    while (done < queue_.size() && sent > 0) {
      const std::size_t left = queue_[done]->size() - head_offset_;
      if (sent >= left) {
        sent -= left;
        head_offset_ = 0;
        ++done;
      } else {
        head_offset_ += sent;
        sent = 0;
      }
    }
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(done));
  }
  if (queue_.capacity() > 64) queue_.shrink_to_fit();  // nothing idle keeps a big queue
  if (state_ == State::closing && !half_closed_) {
    half_closed_ = true;
    closing_since_ms_ = steady_ms();
    boost::system::error_code ec;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    arm_read();  // until the peer's EOF, or the owner's sweep gives up on it
  }
}

void Connection::close(std::uint16_t code, std::string_view reason) {
  if (state_ != State::open) return;
  auto frame = std::make_shared<const std::string>(make_close_frame(code, reason));
  queue_.push_back(frame);
  queued_bytes_ += frame->size();
  state_ = State::closing;
  dirty_ = false;
  flush();
}

void Connection::abort() { finish(false); }

void Connection::finish(bool graceful) {
  if (state_ == State::closed) return;
  state_ = State::closed;
  boost::system::error_code ec;
  if (graceful) socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  queue_.clear();
  queue_.shrink_to_fit();
  queued_bytes_ = 0;
  handler_.on_closed(*this);
}

}  // namespace chatorbit::ws
