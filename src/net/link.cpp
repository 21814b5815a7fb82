#include "net/link.hpp"

#include <boost/asio/post.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace chatorbit::link {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kLengthBytes = 4;
constexpr std::size_t kReadBytes = 64 * 1024;

std::uint32_t load_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::uint64_t load_u64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void store_be(char* p, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

}  // namespace

void append_header(std::string& out, Kind kind, std::uint64_t session, std::size_t payload_bytes) {
  char h[kHeaderBytes];
  store_be(h, payload_bytes + kHeaderBytes - kLengthBytes, 4);
  h[4] = static_cast<char>(kind);
  store_be(h + 5, session, 8);
  out.append(h, sizeof h);
}

void append_record(std::string& out, Kind kind, std::uint64_t session, std::string_view payload) {
  append_header(out, kind, session, payload.size());
  out.append(payload);
}

std::size_t RecordReader::needed(std::string_view b) {
  if (b.size() < kLengthBytes) return kHeaderBytes - b.size();  // at least the header
  const std::size_t whole = kLengthBytes + load_u32(b.data());
  if (whole < kHeaderBytes || whole - kHeaderBytes > kMaxPayload) {
    failed_ = true;
    return 0;
  }
  return whole > b.size() ? whole - b.size() : 0;
}

std::size_t RecordReader::complete_size(std::string_view b) {
  if (b.size() < kLengthBytes) return 0;
  const std::size_t whole = kLengthBytes + load_u32(b.data());
  if (whole < kHeaderBytes || whole - kHeaderBytes > kMaxPayload) {
    failed_ = true;
    return 0;
  }
  return whole <= b.size() ? whole : 0;
}

bool RecordReader::parse(std::string_view whole, Record& r) {
  const auto kind = static_cast<std::uint8_t>(whole[4]);
  if (kind < static_cast<std::uint8_t>(Kind::open) || kind > static_cast<std::uint8_t>(Kind::shut)) {
    failed_ = true;
    return false;
  }
  r.kind = static_cast<Kind>(kind);
  r.session = load_u64(whole.data() + 5);
  r.payload = whole.substr(kHeaderBytes);
  return true;
}

Socket::Socket(asio::ip::tcp::socket socket, Handler& handler)
    : socket_(std::move(socket)), handler_(&handler), in_(kReadBytes) {
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
}

Socket::~Socket() = default;

void Socket::start(std::string_view leftover) {
  if (!leftover.empty() && !reader_.feed(leftover, [this](const Record& r) {
        if (open_ && handler_) handler_->on_record(r);
      })) {
    fail();
    return;
  }
  if (!leftover.empty() && open_ && handler_) handler_->on_read_done();
  arm_read();
}

void Socket::arm_read() {
  if (!open_) return;
  socket_.async_wait(asio::socket_base::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
    if (!self->open_) return;
    if (ec) {
      self->fail();
      return;
    }
    self->on_readable();
  });
}

void Socket::on_readable() {
  for (int i = 0; i < 4 && open_; ++i) {
    boost::system::error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(in_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) {
      fail();
      return;
    }
    const bool ok = reader_.feed(std::string_view(in_.data(), n), [this](const Record& r) {
      if (open_ && handler_) handler_->on_record(r);
    });
    if (!ok) {
      fail();
      return;
    }
    if (n < in_.size()) break;
  }
  if (open_ && handler_) handler_->on_read_done();
  arm_read();
}

void Socket::send(Kind kind, std::uint64_t session, std::string_view payload) {
  if (!open_) return;
  append_record(out_, kind, session, payload);
  want_flush();
}

void Socket::send(std::uint64_t session, std::span<const iovec> iov, std::size_t bytes) {
  if (!open_) return;
  append_header(out_, Kind::data, session, bytes);
  for (const auto& v : iov) {
    const std::size_t take = std::min(bytes, v.iov_len);
    out_.append(static_cast<const char*>(v.iov_base), take);
    bytes -= take;
    if (bytes == 0) break;
  }
  want_flush();
}

void Socket::want_flush() {
  if (flush_posted_ || waiting_writable_) return;
  flush_posted_ = true;
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->flush();
  });
}

void Socket::flush() {
  while (open_ && out_sent_ < out_.size()) {
    const ssize_t n =
        ::send(socket_.native_handle(), out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      waiting_writable_ = true;
      socket_.async_wait(asio::socket_base::wait_write, [self = shared_from_this()](boost::system::error_code ec) {
        self->waiting_writable_ = false;
        if (!self->open_) return;
        if (ec) {
          self->fail();
          return;
        }
        self->flush();
      });
      break;
    }
    if (n < 0) {
      fail();
      return;
    }
    out_sent_ += static_cast<std::size_t>(n);
  }
  if (out_sent_ == out_.size()) {
    out_.clear();
    out_sent_ = 0;
    if (out_.capacity() > kLowWater) out_.shrink_to_fit();
  } else if (out_sent_ >= kLowWater) {
    out_.erase(0, out_sent_);
    out_sent_ = 0;
  }
  if (backlog() < kLowWater) drained();
}

void Socket::when_drained(std::function<void()> ready) {
  if (!open_ || backlog() < kLowWater) {
    ready();
    return;
  }
  drain_waiters_.push_back(std::move(ready));
}

void Socket::drained() {
  if (drain_waiters_.empty()) return;
  auto waiters = std::move(drain_waiters_);
  drain_waiters_.clear();
  for (auto& w : waiters) w();
}

void Socket::fail() {
  if (!open_) return;
  close();
}

void Socket::close() {
  if (!open_) return;
  open_ = false;
  boost::system::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  out_.clear();
  out_sent_ = 0;
  drained();
  if (auto* h = std::exchange(handler_, nullptr)) h->on_link_closed();
}

}  // namespace chatorbit::link
