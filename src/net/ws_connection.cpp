#include "net/ws_connection.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/socket.h>
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

Connection::Connection(asio::any_io_executor ex, std::shared_ptr<Channel> channel, ConnectionHandler& handler,
                       ConnectionLimits limits, std::vector<char>& loop_buffer)
    : socket_(ex),
      channel_(std::move(channel)),
      handler_(handler),
      loop_buffer_(loop_buffer),
      reader_(limits.max_message_bytes),
      max_queue_bytes_(limits.max_queue_bytes),
      last_activity_ms_(steady_ms()) {}

Connection::~Connection() { leave_stream(false); }

void Connection::start(std::string_view leftover) {
  if (!leftover.empty()) {
    reader_.feed(leftover);
    handle_events();
  }
  arm_read();
}

void Connection::arm_read() {
  if (reading_ || state_ == State::closed || channel_) return;
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

void Connection::receive(std::string_view bytes) {
  if (state_ == State::closed) return;
  last_activity_ms_ = steady_ms();
  if (half_closed_) return;  // read only to be discarded, as on_readable() does
  reader_.feed(bytes);
  handle_events();
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
  if (waiting_writable_ && queued_bytes() + frame->size() > max_queue_bytes_) {
    drop_as_slow();  // its socket takes no more and it is this far behind: nobody waits for it
    return false;
  }
  queue_.push_back(Own{frame, stream_ ? stream_->end() : 0});
  own_bytes_ += frame->size();
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

std::size_t Connection::queued_bytes() const {
  const std::size_t behind =
      stream_ ? static_cast<std::size_t>(stream_->offset(stream_->end()) - stream_->offset(cursor_)) : 0;
  return own_bytes_ + behind - head_offset_;
}

void Connection::subscribe(std::shared_ptr<Stream> stream) {
  leave_stream(true);
  if (state_ != State::open || !stream) return;
  stream_ = std::move(stream);
  cursor_ = stream_->subscribe();
}

void Connection::unsubscribe() { leave_stream(true); }

void Connection::leave_stream(bool keep) {
  if (!stream_) return;
  if (keep && cursor_ < stream_->end()) {
    // The stream's frames join the own queue where they stand, so nothing changes order.
    std::vector<Own> merged;
    std::size_t q = 0;
    for (std::uint64_t pos = cursor_; pos < stream_->end(); ++pos) {
      for (; q < queue_.size() && queue_[q].at <= pos; ++q) merged.push_back(Own{std::move(queue_[q].frame), 0});
      merged.push_back(Own{stream_->frame_at(pos), 0});
      own_bytes_ += stream_->at(pos).size();
    }
    for (; q < queue_.size(); ++q) merged.push_back(Own{std::move(queue_[q].frame), 0});
    queue_ = std::move(merged);
  } else {
    for (auto& own : queue_) own.at = 0;
  }
  stream_->unsubscribe(cursor_);
  stream_.reset();
  cursor_ = 0;
}

void Connection::drop_as_slow() {
  // Drop what it has not read, tell it why, and go. A frame already partly on the wire
  // must be finished, or the close frame would be read as the rest of its payload.
  std::vector<Own> keep;
  if (head_offset_ > 0) {
    if (!queue_.empty() && (!stream_ || queue_.front().at <= cursor_)) {
      keep.push_back(Own{queue_.front().frame, 0});
    } else {
      keep.push_back(Own{stream_->frame_at(cursor_), 0});
    }
  }
  leave_stream(false);
  queue_ = std::move(keep);
  own_bytes_ = queue_.empty() ? 0 : queue_.front().frame->size();
  close(close_code::slow_consumer, "too slow");
}

void Connection::flush() {
  dirty_ = false;
  if (state_ == State::closed) return;
  if (waiting_writable_) {
    // Only a connection whose socket is full falls behind its stream.
    if (state_ == State::open && queued_bytes() > max_queue_bytes_) drop_as_slow();
    return;
  }
  for (;;) {
    // One send for as many waiting frames as fit: this is where coalescing pays.
    std::array<iovec, 64> iov;
    const std::size_t count = gather(iov);
    if (count == 0) break;
    if (channel_) {
      if (!take_result(channel_->write(std::span<const iovec>(iov.data(), count)))) return;
      continue;
    }
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = count;
    const ssize_t n = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (!take_result(n < 0 ? -errno : n)) return;
  }
  if (state_ == State::closing && !half_closed_) {
    half_closed_ = true;
    closing_since_ms_ = steady_ms();
    if (channel_) {
      channel_->shutdown_send();
      return;  // the peer's end arrives as peer_ended(), or the owner's sweep gives up on it
    }
    boost::system::error_code ec;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    arm_read();  // until the peer's EOF, or the owner's sweep gives up on it
  }
}

std::size_t Connection::gather(std::span<iovec> iov) const {
  if (state_ == State::closed || waiting_writable_) return 0;
  // The own frames go before the stream frame they were queued ahead of. Frames that lie
  // side by side in memory (the stream's, in its chunks) share one buffer.
  std::size_t count = 0;
  std::size_t bytes = 0;
  std::size_t q = 0;
  std::uint64_t pos = cursor_;
  const std::uint64_t end = stream_ ? stream_->end() : 0;
  while (bytes < kMaxWriteBytes) {
    std::string_view f;
    if (q < queue_.size() && queue_[q].at <= pos) {
      f = *queue_[q++].frame;
    } else if (pos < end) {
      f = stream_->at(pos++);
    } else {
      break;
    }
    if (count == 0) f.remove_prefix(head_offset_);
    iovec* last = count > 0 ? &iov[count - 1] : nullptr;
    if (last && static_cast<const char*>(last->iov_base) + last->iov_len == f.data()) {
      last->iov_len += f.size();
    } else if (count < iov.size()) {
      iov[count++] = {const_cast<char*>(f.data()), f.size()};
    } else {
      break;
    }
    bytes += f.size();
  }
  return count;
}

void Connection::sent(long result) {
  // Most batched writes take everything: nothing is left to flush, no close to finish.
  if (take_result(result) && (pending() || state_ == State::closing)) flush();
}

bool Connection::take_result(long n) {
  if (n == -EINTR) return true;
  if (n == -EAGAIN || n == -EWOULDBLOCK) {
    waiting_writable_ = true;
    if (channel_) {
      channel_->wait_writable([self = shared_from_this()] {
        self->waiting_writable_ = false;
        self->flush();
      });
      return false;
    }
    socket_.async_wait(asio::socket_base::wait_write, [self = shared_from_this()](boost::system::error_code wec) {
      self->waiting_writable_ = false;
      if (wec) {
        if (wec != asio::error::operation_aborted) self->finish(false);
        return;
      }
      self->flush();
    });
    return false;
  }
  if (n < 0) {
    finish(false);
    return false;
  }
  if (writes_ && n > 0) writes_->store(writes_->load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  consume(static_cast<std::size_t>(n));
  return true;
}

void Connection::consume(std::size_t sent) {
  // The same walk as flush(): own frames before the stream frame they were queued ahead of.
  std::size_t left = sent + head_offset_;
  head_offset_ = 0;
  std::size_t q = 0;
  std::uint64_t pos = cursor_;
  while (left > 0) {
    const bool own = q < queue_.size() && queue_[q].at <= pos;
    const std::size_t size = own ? queue_[q].frame->size() : stream_->at(pos).size();
    if (left < size) {
      head_offset_ = left;
      break;
    }
    left -= size;
    if (own) {
      own_bytes_ -= size;
      ++q;
    } else {
      ++pos;
    }
  }
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(q));
  if (queue_.capacity() > 64) queue_.shrink_to_fit();  // nothing idle keeps a big queue
  if (pos != cursor_) {
    stream_->advance(cursor_, pos);
    cursor_ = pos;
  }
}

void Connection::close(std::uint16_t code, std::string_view reason) {
  if (state_ != State::open) return;
  // What the stream had for it still goes out, then nothing more.
  leave_stream(true);
  auto frame = std::make_shared<const std::string>(make_close_frame(code, reason));
  own_bytes_ += frame->size();
  queue_.push_back(Own{std::move(frame), 0});
  state_ = State::closing;
  dirty_ = false;
  flush();
}

void Connection::abort() { finish(false); }

void Connection::finish(bool graceful) {
  if (state_ == State::closed) return;
  state_ = State::closed;
  boost::system::error_code ec;
  if (channel_) {
    channel_->close();  // the transport is not this connection's to close
  } else {
    if (graceful) socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    if (background_) {
      // The socket leaves the connection now (it reads as closed from here on); an
      // operation still pending on it ends, aborted, when it is closed.
      background_->execute([socket = std::move(socket_)]() mutable {
        boost::system::error_code ignored;
        socket.close(ignored);
      });
    } else {
      socket_.close(ec);
    }
  }
  leave_stream(false);
  queue_.clear();
  queue_.shrink_to_fit();
  own_bytes_ = 0;
  head_offset_ = 0;
  handler_.on_closed(*this);
}

}  // namespace chatorbit::ws
