#include "engine/redis/redis_connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <random>

#include "core/log.hpp"
#include "engine/engine.hpp"

namespace chatorbit::engine::redis {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

std::exception_ptr unavailable(const std::string& why) {
  return std::make_exception_ptr(EngineUnavailable("redis unavailable: " + why));
}

constexpr std::size_t kReadChunk = 64 * 1024;

}  // namespace

Connection::Connection(asio::io_context& io, RedisEndpoint endpoint, RedisSettings settings, Mode mode,
                       std::string name, Events events)
    : io_(io),
      endpoint_(std::move(endpoint)),
      settings_(std::move(settings)),
      mode_(mode),
      name_(std::move(name)),
      events_(std::move(events)),
      resolver_(io),
      socket_(io),
      connect_timer_(io),
      watchdog_(io),
      backoff_timer_(io) {}

Connection::~Connection() = default;

bool Connection::up() const {
  std::lock_guard lock(mu_);
  return up_;
}

bool Connection::connecting() const {
  std::lock_guard lock(mu_);
  return connecting_;
}

void Connection::start() {
  {
    std::lock_guard lock(mu_);
    if (started_) return;
    started_ = true;
    connecting_ = true;  // commands sent from now on wait for the first attempt
  }
  asio::post(io_, [self = shared_from_this()] { self->connect(); });
}

void Connection::stop() {
  asio::post(io_, [self = shared_from_this()] {
    {
      std::lock_guard lock(self->mu_);
      if (self->stopped_) return;
      self->stopped_ = true;
    }
    self->fail("connection closed by its engine");
    self->backoff_timer_.cancel();
  });
}

void Connection::send(std::string encoded, ReplyCallback done) {
  std::vector<std::pair<std::string, ReplyCallback>> one;
  one.emplace_back(std::move(encoded), std::move(done));
  send_all(std::move(one));
}

void Connection::send_all(std::vector<std::pair<std::string, ReplyCallback>> commands) {
  bool post = false;
  {
    std::lock_guard lock(mu_);
    if (queued_.empty()) {
      queued_ = std::move(commands);
    } else {
      for (auto& c : commands) queued_.push_back(std::move(c));
    }
    if (!flush_posted_) flush_posted_ = post = true;
  }
  if (post) asio::post(io_, [self = shared_from_this()] { self->flush(); });
}

// --- connecting -----------------------------------------------------------------------

void Connection::connect() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    connecting_ = true;
  }
  const auto gen = generation_;
  connect_timer_.expires_after(settings_.connect_timeout);
  connect_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
    if (!ec && gen == self->generation_ && !self->connected_) self->fail("connect timed out");
    if (!ec && gen == self->generation_ && self->handshaking_) self->fail("handshake timed out");
  });
  resolver_.async_resolve(
      endpoint_.host, std::to_string(endpoint_.port),
      [self = shared_from_this(), gen](error_code ec, asio::ip::tcp::resolver::results_type results) {
        if (gen != self->generation_) return;
        if (ec) return self->fail("resolve " + self->endpoint_.host + ": " + ec.message());
        asio::async_connect(self->socket_, results, [self, gen](error_code ec2, const asio::ip::tcp::endpoint&) {
          if (gen != self->generation_) return;
          if (ec2) return self->fail("connect: " + ec2.message());
          self->on_connected();
        });
      });
}

void Connection::on_connected() {
  connected_ = true;
  handshaking_ = true;
  socket_.set_option(asio::ip::tcp::no_delay(true));
  reader_ = std::make_unique<RespReader>();
  read_buf_.resize(kReadChunk);
  last_traffic_ = Clock::now();
  read_some();
  arm_watchdog();

  // The handshake goes straight to the wire, ahead of anything callers queued.
  std::vector<std::vector<std::string>> steps;
  if (!endpoint_.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!endpoint_.username.empty()) auth.push_back(endpoint_.username);
    auth.push_back(endpoint_.password);
    steps.push_back(std::move(auth));
  }
  if (endpoint_.db != 0) steps.push_back({"SELECT", std::to_string(endpoint_.db)});
  steps.push_back({"PING"});  // proves the server answers before we say "up"
  next_.clear();
  auto remaining = std::make_shared<std::size_t>(steps.size());
  for (const auto& step : steps) {
    encode_command(next_, step);
    Pending p;
    p.sent = Clock::now();
    p.done = [self = shared_from_this(), remaining, gen = generation_](std::exception_ptr e, Reply r) {
      if (gen != self->generation_ || e) return;
      if (r.is_error() && r.str.rfind("LOADING", 0) != 0) {
        return self->fail("handshake refused: " + r.str);
      }
      if (r.is_error()) return self->fail("server is loading its data");
      if (--*remaining == 0) self->handshake_done();
    };
    waiting_next_.push_back(std::move(p));
  }
  write_some();
}

void Connection::handshake_done() {
  handshaking_ = false;
  connect_timer_.cancel();
  backoff_ = std::chrono::milliseconds{0};
  {
    std::lock_guard lock(mu_);
    up_ = true;
    connecting_ = false;
  }
  if (events_.state) events_.state(true, {});
  flush();
}

void Connection::fail(const std::string& why) {
  bool was_up = false;
  bool stopped = false;
  {
    std::lock_guard lock(mu_);
    was_up = up_;
    stopped = stopped_;
    up_ = false;
    connecting_ = false;
  }
  ++generation_;
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  resolver_.cancel();
  connect_timer_.cancel();
  watchdog_.cancel();
  connected_ = handshaking_ = writing_ = false;
  out_.clear();
  next_.clear();
  reader_.reset();
  fail_all(inflight_, why);
  fail_all(waiting_next_, why);
  flush();  // what callers queued meanwhile fails now, not later
  if (stopped) return;
  if (was_up) {
    log::warn("redis_connection_lost", {{"connection", name_}, {"why", why}});
  } else if (backoff_.count() == 0 || backoff_ >= settings_.backoff_max) {
    log::warn("redis_connect_failed", {{"connection", name_}, {"why", why}});
  }
  if (events_.state) events_.state(false, why);
  schedule_reconnect();
}

void Connection::fail_all(std::deque<Pending>& list, const std::string& why) {
  auto failed = std::move(list);
  list.clear();
  for (auto& p : failed) {
    if (p.done) p.done(unavailable(why), Reply{});
  }
}

void Connection::schedule_reconnect() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
  }
  backoff_ = backoff_.count() == 0 ? settings_.backoff_min : std::min(backoff_ * 2, settings_.backoff_max);
  thread_local std::minstd_rand jitter{std::random_device{}()};
  // +-25%: nodes that lost the same server do not all come back in the same millisecond.
  const auto spread = std::max<std::int64_t>(1, backoff_.count() / 2);
  const auto delay = std::chrono::milliseconds{backoff_.count() - spread / 2 +
                                               static_cast<std::int64_t>(jitter() % static_cast<unsigned>(spread))};
  backoff_timer_.expires_after(delay);
  backoff_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (!ec) self->connect();
  });
}

// --- writing --------------------------------------------------------------------------

void Connection::flush() {
  std::vector<std::pair<std::string, ReplyCallback>> batch;
  bool is_up = false;
  {
    std::lock_guard lock(mu_);
    flush_posted_ = false;
    is_up = up_;
    if (!is_up && connecting_) return;  // an attempt is under way: its outcome decides
    if (!is_up || inflight_.size() + waiting_next_.size() < settings_.pipeline_depth) {
      batch.swap(queued_);
    } else if (!queued_.empty()) {
      held_back_ = true;
    }
  }
  if (batch.empty()) return;
  if (!is_up) {
    for (auto& [cmd, done] : batch) {
      if (done) done(unavailable("not connected to " + name_), Reply{});
    }
    return;
  }
  std::size_t taken = 0;
  const auto now = Clock::now();
  for (auto& [cmd, done] : batch) {
    if (inflight_.size() + waiting_next_.size() >= settings_.pipeline_depth) break;
    next_ += cmd;
    // pubsub mode: SUBSCRIBE and friends answer with pushes, not replies; nothing waits.
    if (mode_ == Mode::commands) waiting_next_.push_back(Pending{std::move(done), now, false});
    ++taken;
  }
  if (taken < batch.size()) {  // over the pipeline depth: the rest waits for replies
    held_back_ = true;
    std::lock_guard lock(mu_);
    queued_.insert(queued_.begin(), std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(taken)),
                   std::make_move_iterator(batch.end()));
  }
  write_some();
}

void Connection::write_some() {
  if (writing_ || next_.empty() || !connected_) return;
  writing_ = true;
  out_.swap(next_);
  next_.clear();
  for (auto& p : waiting_next_) inflight_.push_back(std::move(p));
  waiting_next_.clear();
  asio::async_write(socket_, asio::buffer(out_),
                    [self = shared_from_this(), gen = generation_](error_code ec, std::size_t) {
                      if (gen != self->generation_) return;
                      self->writing_ = false;
                      if (ec) return self->fail("write: " + ec.message());
                      self->out_.clear();
                      self->write_some();
                    });
}

// --- reading --------------------------------------------------------------------------

void Connection::read_some() {
  socket_.async_read_some(
      asio::buffer(read_buf_), [self = shared_from_this(), gen = generation_](error_code ec, std::size_t n) {
        if (gen != self->generation_) return;
        if (ec) return self->fail(ec == asio::error::eof ? "closed by the server" : "read: " + ec.message());
        self->last_traffic_ = Clock::now();
        try {
          self->reader_->feed(self->read_buf_.data(), n);
          while (gen == self->generation_) {
            auto reply = self->reader_->next();
            if (!reply) break;
            self->on_reply(std::move(*reply));
          }
        } catch (const ProtocolError& e) {
          return self->fail(e.what());
        }
        if (gen == self->generation_) self->read_some();
      });
}

void Connection::on_reply(Reply&& reply) {
  if (mode_ == Mode::pubsub && !handshaking_) {
    // A probe's answer in subscribed mode is ["pong", ""], and +PONG on a connection that
    // holds no subscription; everything else is the owner's.
    const bool pong =
        (reply.type == Reply::Type::array && !reply.elements.empty() && reply.elements[0].str == "pong") ||
        (reply.type == Reply::Type::status && reply.str == "PONG");
    if (pong) {
      if (!inflight_.empty() && inflight_.front().probe) inflight_.pop_front();
      return;
    }
    if (events_.push) events_.push(std::move(reply));
    return;
  }
  if (inflight_.empty()) return fail("reply with no command waiting for it: " + reply.describe());
  auto p = std::move(inflight_.front());
  inflight_.pop_front();
  if (p.done) p.done(nullptr, std::move(reply));
  if (held_back_) {  // room in the pipeline again: what the depth held back may go now
    held_back_ = false;
    flush();
  }
}

void Connection::arm_watchdog() {
  const auto tick =
      std::max(std::chrono::milliseconds{10}, std::min(settings_.probe_interval, settings_.command_timeout) / 4);
  watchdog_.expires_after(tick);
  watchdog_.async_wait([self = shared_from_this(), gen = generation_](error_code ec) {
    if (!ec && gen == self->generation_) self->on_watchdog();
  });
}

void Connection::on_watchdog() {
  const auto now = Clock::now();
  // Silence while a request waits, not a slow reply: a busy connection that keeps
  // reading (a long pipeline, a burst of pushes) is alive.
  if (!inflight_.empty() && now - std::max(inflight_.front().sent, last_traffic_) > settings_.command_timeout) {
    return fail("no reply within " + std::to_string(settings_.command_timeout.count()) + " ms");
  }
  const bool idle = inflight_.empty() && waiting_next_.empty();
  if (!handshaking_ && idle && now - last_traffic_ >= settings_.probe_interval) {
    std::string ping;
    encode_command(ping, {"PING"});
    next_ += ping;
    waiting_next_.push_back(Pending{{}, now, true});
    write_some();
  }
  arm_watchdog();
}

}  // namespace chatorbit::engine::redis
