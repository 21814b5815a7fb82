#pragma once
// The clients of the multi-node conformance suite (multi_node_conformance_test.cpp): they
// talk to nodes as real clients do, over HTTP (register, log in, REST) and WebSocket
// (/ws/chat, protocol v2), synchronously, every wait bounded. Test-only, included by that
// one translation unit: Beast's WebSocket client is heavy to compile.

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/random.hpp"

namespace chatorbit::engine::node_client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::seconds;
using steady = std::chrono::steady_clock;

// The bound on any one wait for the server. Generous: the happy path never comes near it.
constexpr seconds kWait{10};

inline std::string unique(const std::string& prefix) { return prefix + OsRandom::instance().hex(5); }

inline tcp::endpoint local(int port) { return {asio::ip::address_v4::loopback(), static_cast<unsigned short>(port)}; }

// --- HTTP -------------------------------------------------------------------------------

struct Reply {
  unsigned status = 0;
  json::value body;  ///< null when the body is not JSON
};

/// One request on a fresh connection; throws if it cannot be made within kWait.
inline Reply request(int port, bhttp::verb verb, const std::string& target, const json::value* body = nullptr,
                     const std::string& bearer = {}) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  bhttp::request<bhttp::string_body> req{verb, target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  if (body) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = json::serialize(*body);
  }
  if (!bearer.empty()) req.set(bhttp::field::authorization, "Bearer " + bearer);
  req.prepare_payload();
  bhttp::response<bhttp::string_body> res;
  beast::flat_buffer buffer;
  beast::error_code result = asio::error::timed_out;
  stream.expires_after(kWait);
  stream.async_connect(local(port), [&](beast::error_code ec) {
    if (ec) {
      result = ec;
      return;
    }
    bhttp::async_write(stream, req, [&](beast::error_code ec2, std::size_t) {
      if (ec2) {
        result = ec2;
        return;
      }
      bhttp::async_read(stream, buffer, res, [&](beast::error_code ec3, std::size_t) { result = ec3; });
    });
  });
  io.run();
  if (result) throw std::runtime_error(std::string(bhttp::to_string(verb)) + " " + target + ": " + result.message());
  Reply out{res.result_int(), nullptr};
  beast::error_code ignored;
  out.body = json::parse(res.body(), ignored);
  if (ignored) out.body = nullptr;
  return out;
}

inline Reply post(int port, const std::string& target, const json::value& body, const std::string& bearer = {}) {
  return request(port, bhttp::verb::post, target, &body, bearer);
}

inline std::string str(const json::value& v, const char* key) {
  if (!v.is_object()) return {};
  const auto* f = v.as_object().if_contains(key);
  return f && f->is_string() ? std::string(f->as_string()) : std::string{};
}

struct Account {
  std::string email;
  std::string token;
  std::string id;
};

/// Registers and logs in on node `port`; the account exists on every node (one store).
inline Account new_account(int port, std::string email = {}) {
  if (email.empty()) email = unique("u") + "@multinode.test";
  const std::string password = "secret123";
  const json::value reg = {{"email", email}, {"username", unique("user")}, {"password", password}};
  const auto r = post(port, "/register", reg);
  if (r.status != 200)
    throw std::runtime_error("register: " + std::to_string(r.status) + " " + json::serialize(r.body));
  const json::value creds = {{"email", email}, {"password", password}};
  const auto l = post(port, "/login", creds);
  if (l.status != 200) throw std::runtime_error("login: " + std::to_string(l.status));
  Account a{email, str(l.body, "token"), {}};
  a.id = str(request(port, bhttp::verb::get, "/users/me", nullptr, a.token).body, "id");
  return a;
}

// --- WebSocket --------------------------------------------------------------------------

/// What /ws/chat is asked for.
struct Join {
  std::string room;
  std::string token;  ///< empty: an anonymous viewer
  std::optional<std::uint64_t> last_seq;
};

inline std::string ws_target(const Join& j) {
  std::string t = "/ws/chat?v=2&room_id=" + j.room;
  if (!j.token.empty()) t += "&token=" + j.token;
  if (j.last_seq) t += "&last_seq=" + std::to_string(*j.last_seq);
  return t;
}

/// A synchronous v2 chat client. It always keeps one read outstanding and drives its
/// own io_context only inside send() and recv(), each bounded: nothing here can hang.
/// Use one client from one thread at a time.
class WsClient {
 public:
  /// Connects; a refused handshake is reported in `refused` (then the client is closed).
  WsClient(int port, const Join& join, Reply* refused = nullptr) : ws_(io_) {
    ws_.next_layer().connect(local(port));
    websocket::response_type res;
    bool done = false;
    beast::error_code result;
    ws_.async_handshake(res, "127.0.0.1", ws_target(join), [&](beast::error_code ec) {
      result = ec;
      done = true;
    });
    run_until([&] { return done; }, kWait);
    if (!done) throw std::runtime_error("websocket handshake timed out");
    if (result) {
      closed_ = true;
      if (!refused) throw std::runtime_error("websocket handshake refused: " + std::to_string(res.result_int()));
      refused->status = res.result_int();
      beast::error_code ignored;
      refused->body = json::parse(res.body(), ignored);
      return;
    }
    if (refused) refused->status = 101;
    read();
  }
  ~WsClient() {
    beast::error_code ignored;
    ws_.next_layer().close(ignored);
    io_.restart();
    io_.run_for(milliseconds{50});  // lets the outstanding read finish (aborted)
  }
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  void send(const json::object& frame) {
    const std::string text = json::serialize(frame);
    bool done = false;
    beast::error_code result;
    ws_.async_write(asio::buffer(text), [&](beast::error_code ec, std::size_t) {
      result = ec;
      done = true;
    });
    run_until([&] { return done; }, kWait);
    if (!done) throw std::runtime_error("websocket write timed out");
    if (result) throw std::runtime_error("websocket write: " + result.message());
  }

  /// The next frame, waiting at most `wait`; nullopt on timeout or once closed.
  std::optional<json::object> recv(steady::duration wait = kWait) {
    run_until([this] { return !inbox_.empty() || closed_; }, wait);
    if (inbox_.empty()) return std::nullopt;
    auto f = std::move(inbox_.front());
    inbox_.pop_front();
    return f;
  }

  /// Reads until a frame of `type` arrives (kept frames before it are discarded).
  std::optional<json::object> recv_type(const std::string& type, steady::duration wait = kWait) {
    const auto deadline = steady::now() + wait;
    while (auto f = recv(deadline - steady::now())) {
      if (str(*f, "type") == type) return f;
    }
    return std::nullopt;
  }

  /// Reads until the server closes the connection; returns the frames before the close.
  std::vector<json::object> until_closed(steady::duration wait = kWait) {
    std::vector<json::object> frames;
    const auto deadline = steady::now() + wait;
    while (auto f = recv(deadline - steady::now())) frames.push_back(std::move(*f));
    return frames;
  }

  bool closed() const { return closed_ && inbox_.empty(); }
  /// The close code the server sent (0 if none, or not closed yet).
  int close_code() const { return close_code_; }

 private:
  static std::string str(const json::object& o, const char* key) {
    const auto* f = o.if_contains(key);
    return f && f->is_string() ? std::string(f->as_string()) : std::string{};
  }

  void read() {
    ws_.async_read(buffer_, [this](beast::error_code ec, std::size_t) {
      if (ec) {
        closed_ = true;
        close_code_ = ws_.reason().code;
        return;
      }
      beast::error_code bad;
      auto v = json::parse(beast::buffers_to_string(buffer_.data()), bad);
      buffer_.consume(buffer_.size());
      if (!bad && v.is_object()) inbox_.push_back(std::move(v.as_object()));
      read();
    });
  }

  template <class Pred>
  void run_until(Pred done, steady::duration wait) {
    const auto deadline = steady::now() + std::max<steady::duration>(wait, steady::duration::zero());
    while (!done()) {
      if (io_.stopped()) io_.restart();
      if (io_.run_one_until(deadline) == 0 && steady::now() >= deadline) return;
      if (io_.stopped() && !done()) return;  // out of work: nothing more can come
    }
  }

  asio::io_context io_;
  websocket::stream<tcp::socket> ws_;
  beast::flat_buffer buffer_;
  std::deque<json::object> inbox_;
  bool closed_ = false;
  int close_code_ = 0;
};

inline std::uint64_t seq_of(const json::object& f) {
  const auto* s = f.if_contains("seq");
  return s && s->is_int64() ? static_cast<std::uint64_t>(s->as_int64()) : (s && s->is_uint64() ? s->as_uint64() : 0);
}

inline std::string type_of(const json::object& f) {
  const auto* t = f.if_contains("type");
  return t && t->is_string() ? std::string(t->as_string()) : std::string{};
}

inline std::string field(const json::object& f, const char* key) {
  const auto* v = f.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

inline json::object message(const std::string& content, const std::string& cid) {
  return {{"type", "message"}, {"content", content}, {"cid", cid}};
}

/// What one poster's messages became.
struct Posted {
  std::vector<std::uint64_t> acked;  ///< seqs, in ack order
  std::vector<std::string> errors;   ///< "<code> (cid)" of refused messages
};

/// Posts messages "<tag> <i>" (cid "<tag>-<i>") with at most `window` unacknowledged,
/// until `more(i)` says stop; waits for every ack. `pause` between sends keeps a room busy.
template <class More>
Posted post_while(WsClient& c, const std::string& tag, std::size_t window, More more,
                  milliseconds pause = milliseconds{0}) {
  Posted out;
  std::size_t sent = 0;
  auto answered = [&] { return out.acked.size() + out.errors.size(); };
  bool sending = true;
  while (sending || answered() < sent) {
    if (sending && sent - answered() < window) {
      if (!more(sent)) {
        sending = false;
        continue;
      }
      c.send(message(tag + " " + std::to_string(sent), tag + "-" + std::to_string(sent)));
      ++sent;
      if (pause.count() > 0) std::this_thread::sleep_for(pause);
      continue;
    }
    auto f = c.recv();
    if (!f) {
      out.errors.push_back("no answer within the wait (" + std::to_string(sent - answered()) + " unanswered)");
      break;
    }
    if (type_of(*f) == "ack") {
      out.acked.push_back(seq_of(*f));
    } else if (type_of(*f) == "error") {
      out.errors.push_back(field(*f, "code") + " (" + field(*f, "cid") + ")");
    }
  }
  return out;
}

inline Posted post_n(WsClient& c, const std::string& tag, std::size_t n, std::size_t window) {
  return post_while(c, tag, window, [n](std::size_t i) { return i < n; });
}

/// Collects the seqs of message frames in arrival order until `enough(seqs)`, or the
/// deadline, or (once `finished` is set: nothing more is being posted) nothing has come
/// for a few seconds, so that a case that misses messages ends well before its deadline.
template <class Enough>
std::vector<std::uint64_t> collect(WsClient& c, Enough enough, steady::duration wait,
                                   const std::atomic<bool>& finished) {
  constexpr seconds kQuiet{3};
  std::vector<std::uint64_t> seqs;
  const auto deadline = steady::now() + wait;
  auto last = steady::now();
  while (!enough(seqs) && steady::now() < deadline) {
    auto f = c.recv(std::min<steady::duration>(deadline - steady::now(), milliseconds{200}));
    if (!f) {
      if (c.closed() || (finished.load() && steady::now() - last >= kQuiet)) break;
      continue;
    }
    last = steady::now();
    if (type_of(*f) == "message") seqs.push_back(seq_of(*f));
  }
  return seqs;
}

/// Runs `f` on a new thread; an exception there is kept for the test to report
/// rather than ending the process.
template <class F>
inline std::thread guarded(std::vector<std::string>& failures, std::mutex& mu, F f) {
  return std::thread([&failures, &mu, f = std::move(f)]() mutable {
    try {
      f();
    } catch (const std::exception& e) {
      std::lock_guard lock(mu);
      failures.push_back(e.what());
    }
  });
}

inline std::size_t distinct(const std::vector<std::uint64_t>& seqs) {
  return std::set(seqs.begin(), seqs.end()).size();
}

/// What went wrong in a stream of seqs, for failure messages: where the order breaks,
/// which seqs came twice, which of `want` never came.
inline std::string describe(const std::vector<std::uint64_t>& seqs, const std::vector<std::uint64_t>& want) {
  constexpr std::size_t kShown = 8;
  std::ostringstream os;
  os << seqs.size() << " frames, " << distinct(seqs) << " distinct, " << want.size() << " wanted";
  std::size_t breaks = 0;
  for (std::size_t i = 1; i < seqs.size(); ++i) {
    if (seqs[i] <= seqs[i - 1] && ++breaks <= kShown) os << "; at #" << i << ": " << seqs[i - 1] << " then " << seqs[i];
  }
  if (breaks > kShown) os << "; ...";
  os << " (" << breaks << " order breaks)";
  std::map<std::uint64_t, int> count;
  for (auto s : seqs) ++count[s];
  std::vector<std::uint64_t> twice, missing;
  for (const auto& [s, n] : count) {
    if (n > 1) twice.push_back(s);
  }
  for (auto s : want) {
    if (!count.contains(s)) missing.push_back(s);
  }
  const auto list = [&os](const char* what, const std::vector<std::uint64_t>& v) {
    os << "; " << v.size() << " " << what;
    for (std::size_t i = 0; i < v.size() && i < kShown; ++i) os << (i ? ", " : ": ") << v[i];
    if (v.size() > kShown) os << ", ...";
  };
  list("more than once", twice);
  list("missing", missing);
  return os.str();
}

inline std::vector<std::uint64_t> sorted(std::vector<std::uint64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

/// The server closed `c` with `close_code`, after an error frame with `code`.
inline void expect_closed_after_error(WsClient& c, const std::string& code, int close_code) {
  const auto frames = c.until_closed();
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(c.close_code(), close_code);
  const bool told = std::any_of(frames.begin(), frames.end(), [&](const json::object& f) {
    return type_of(f) == "error" && field(f, "code") == code;
  });
  EXPECT_TRUE(told) << "no `" << code << "` error frame before the close";
}

}  // namespace chatorbit::engine::node_client
