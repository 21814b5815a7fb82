// The multi-node conformance suite (see multi_node_conformance.hpp): real nodes over one
// engine backend, driven by small synchronous clients (test-only; kept in this one
// translation unit because Beast's WebSocket client is heavy to compile).

#include "engine/multi_node_conformance.hpp"

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

#include "app/app.hpp"
#include "core/random.hpp"

namespace chatorbit::engine {

namespace {

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

std::string unique(const std::string& prefix) { return prefix + OsRandom::instance().hex(5); }

tcp::endpoint local(int port) { return {asio::ip::address_v4::loopback(), static_cast<unsigned short>(port)}; }

// --- HTTP -------------------------------------------------------------------------------

struct Reply {
  unsigned status = 0;
  json::value body;  ///< null when the body is not JSON
};

/// One request on a fresh connection; throws if it cannot be made within kWait.
Reply request(int port, bhttp::verb verb, const std::string& target, const json::value* body = nullptr,
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

Reply post(int port, const std::string& target, const json::value& body, const std::string& bearer = {}) {
  return request(port, bhttp::verb::post, target, &body, bearer);
}

std::string str(const json::value& v, const char* key) {
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
Account new_account(int port, std::string email = {}) {
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

std::string ws_target(const Join& j) {
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

std::uint64_t seq_of(const json::object& f) {
  const auto* s = f.if_contains("seq");
  return s && s->is_int64() ? static_cast<std::uint64_t>(s->as_int64()) : (s && s->is_uint64() ? s->as_uint64() : 0);
}

std::string type_of(const json::object& f) {
  const auto* t = f.if_contains("type");
  return t && t->is_string() ? std::string(t->as_string()) : std::string{};
}

std::string field(const json::object& f, const char* key) {
  const auto* v = f.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

json::object message(const std::string& content, const std::string& cid) {
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

Posted post_n(WsClient& c, const std::string& tag, std::size_t n, std::size_t window) {
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
std::thread guarded(std::vector<std::string>& failures, std::mutex& mu, F f) {
  return std::thread([&failures, &mu, f = std::move(f)]() mutable {
    try {
      f();
    } catch (const std::exception& e) {
      std::lock_guard lock(mu);
      failures.push_back(e.what());
    }
  });
}

std::size_t distinct(const std::vector<std::uint64_t>& seqs) { return std::set(seqs.begin(), seqs.end()).size(); }

/// What went wrong in a stream of seqs, for failure messages: where the order breaks,
/// which seqs came twice, which of `want` never came.
std::string describe(const std::vector<std::uint64_t>& seqs, const std::vector<std::uint64_t>& want) {
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

std::vector<std::uint64_t> sorted(std::vector<std::uint64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

// --- fixture ------------------------------------------------------------------------------

MultiNodeConformance::MultiNodeConformance() = default;
MultiNodeConformance::~MultiNodeConformance() = default;

void MultiNodeConformance::SetUp() {
  dir_ = std::filesystem::temp_directory_path() / ("chatorbit-multinode-" + OsRandom::instance().hex(6));
  std::filesystem::create_directories(dir_);
  backend_ = GetParam().make();
  ASSERT_NE(backend_, nullptr) << "factory " << GetParam().name << " returned no backend";
}

void MultiNodeConformance::TearDown() {
  // Every node stops (loops, pipeline) before any is destroyed: a destroyed node's hub
  // must not be the target of another node's publication.
  for (auto& n : nodes_) n.app->shutdown();
  nodes_.clear();
  backend_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::size_t MultiNodeConformance::start(std::size_t n, const std::function<void(Config&)>& adjust) {
  const std::size_t first = nodes_.size();
  for (std::size_t i = 0; i < n; ++i) {
    Config config;
    config.data_dir = dir_.string();  // one SQLite file for every node
    config.bind = "127.0.0.1";
    config.port = 0;
    config.threads = 2;
    config.log_level = "warn";
    config.cors_origins = {"http://127.0.0.1"};  // none of the cases uses cookies
    config.jwt_secret = "multi-node-conformance-secret-0123456789abcdef";
    config.admins = {kAdminEmail};
    // The cases post hundreds of messages from one user and connect many clients from
    // one address: no limit may refuse them.
    config.rate_limit = {1'000'000, seconds{1}};
    config.mod_rate_limit = {1'000'000, seconds{1}};
    config.connect_rate_per_ip = {1'000'000, seconds{1}};
    config.login_ip_max_failures = 1'000'000;
    if (adjust) adjust(config);
    auto engine = backend_->make_node();
    Node node;
    node.engine = engine.get();
    node.app = std::make_unique<App>(std::move(config), std::move(engine));
    node.port = node.app->start();
    nodes_.push_back(std::move(node));
  }
  return first;
}

namespace {

/// The server closed `c` with `close_code`, after an error frame with `code`.
void expect_closed_after_error(WsClient& c, const std::string& code, int close_code) {
  const auto frames = c.until_closed();
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(c.close_code(), close_code);
  const bool told = std::any_of(frames.begin(), frames.end(), [&](const json::object& f) {
    return type_of(f) == "error" && field(f, "code") == code;
  });
  EXPECT_TRUE(told) << "no `" << code << "` error frame before the close";
}

}  // namespace

// --- cases ----------------------------------------------------------------------------------

// Posts from two nodes at once reach a third node's viewers (and the first node's) exactly
// once and in seq order, with no gap: each viewer sees exactly the sorted acked seqs.
TEST_P(MultiNodeConformance, ConcurrentPostsFromTwoNodesReachAThirdNodesViewersOnceInSeqOrder) {
  start(3);
  const std::size_t a = 0, b = 1, c = 2;
  constexpr std::size_t kEach = 150;
  const std::string room = unique("mn-");
  const Account alice = new_account(port(a));
  const Account bob = new_account(port(b));

  std::vector<std::unique_ptr<WsClient>> viewers;
  for (const std::size_t node : {c, c, a}) {
    viewers.push_back(std::make_unique<WsClient>(port(node), Join{room, {}, {}}));
    ASSERT_TRUE(viewers.back()->recv_type("welcome"));
  }
  WsClient on_a(port(a), Join{room, alice.token, {}});
  WsClient on_b(port(b), Join{room, bob.token, {}});
  ASSERT_TRUE(on_a.recv_type("welcome"));
  ASSERT_TRUE(on_b.recv_type("welcome"));

  std::vector<std::vector<std::uint64_t>> seen(viewers.size());
  std::atomic<bool> posting_done{false};
  std::vector<std::string> failures;
  std::mutex failures_mu;
  std::vector<std::thread> threads;
  for (std::size_t v = 0; v < viewers.size(); ++v) {
    threads.push_back(guarded(failures, failures_mu, [&, v] {
      const auto all = [](const std::vector<std::uint64_t>& s) { return distinct(s) >= 2 * kEach; };
      seen[v] = collect(*viewers[v], all, seconds{20}, posting_done);
    }));
  }
  Posted from_a, from_b;
  std::atomic<int> ready{0};
  const auto go = [&ready] {
    ready.fetch_add(1);
    while (ready.load() < 2) std::this_thread::yield();
  };
  threads.push_back(guarded(failures, failures_mu, [&] {
    go();
    from_a = post_n(on_a, "a", kEach, 16);
  }));
  threads.push_back(guarded(failures, failures_mu, [&] {
    go();
    from_b = post_n(on_b, "b", kEach, 16);
  }));
  threads[threads.size() - 1].join();
  threads[threads.size() - 2].join();
  posting_done = true;
  for (std::size_t v = 0; v < viewers.size(); ++v) threads[v].join();
  ASSERT_TRUE(failures.empty()) << failures.front();

  EXPECT_TRUE(from_a.errors.empty()) << from_a.errors.front();
  EXPECT_TRUE(from_b.errors.empty()) << from_b.errors.front();
  std::vector<std::uint64_t> acked = from_a.acked;
  acked.insert(acked.end(), from_b.acked.begin(), from_b.acked.end());
  acked = sorted(acked);
  ASSERT_EQ(acked.size(), 2 * kEach);
  for (std::size_t i = 1; i < acked.size(); ++i) ASSERT_LT(acked[i - 1], acked[i]) << "a seq was acked twice";
  const char* names[] = {"viewer 1 on C", "viewer 2 on C", "viewer on A"};
  for (std::size_t v = 0; v < viewers.size(); ++v) {
    EXPECT_TRUE(seen[v] == acked) << names[v] << ": " << describe(seen[v], acked);
  }
}

// A client resuming on a node that did not follow the room, while two other nodes keep
// posting, gets every seq above its last_seq exactly once and in order: replay, then live.
TEST_P(MultiNodeConformance, ANodeJoiningABusyRoomMissesNothingBetweenReplayAndLive) {
  start(3);
  const std::size_t a = 0, b = 1, c = 2;
  constexpr std::uint64_t kSeenBeforeJoin = 40;
  constexpr std::size_t kAfterJoin = 60;  // each poster's messages after the join
  const std::string room = unique("mn-");
  const Account alice = new_account(port(a));
  const Account bob = new_account(port(b));
  WsClient watcher(port(a), Join{room, {}, {}});
  ASSERT_TRUE(watcher.recv_type("welcome"));
  WsClient on_a(port(a), Join{room, alice.token, {}});
  WsClient on_b(port(b), Join{room, bob.token, {}});
  ASSERT_TRUE(on_a.recv_type("welcome"));
  ASSERT_TRUE(on_b.recv_type("welcome"));

  // Posters go on until the joiner is in, then post kAfterJoin more each.
  std::atomic<bool> joined{false};
  std::atomic<bool> posting_done{false};
  Posted from_a, from_b;
  auto poster = [&](WsClient& client, const std::string& tag, Posted& out) {
    std::optional<std::size_t> stop_at;
    auto more = [&](std::size_t i) {
      if (!stop_at && joined.load()) stop_at = i + kAfterJoin;
      return i < stop_at.value_or(std::numeric_limits<std::size_t>::max()) && i < 2000;
    };
    // At most ~400 messages a second together, so that the joiner's replay (the newest
    // 200 above k, docs/protocol.md) reaches back to k.
    out = post_while(client, tag, 4, more, milliseconds{5});
  };
  std::vector<std::string> failures;
  std::mutex failures_mu;
  std::thread ta = guarded(failures, failures_mu, [&] { poster(on_a, "a", from_a); });
  std::thread tb = guarded(failures, failures_mu, [&] { poster(on_b, "b", from_b); });

  // The watcher's k: the first seq it sees at or above kSeenBeforeJoin.
  std::uint64_t k = 0;
  const auto deadline = steady::now() + kWait;
  while (k < kSeenBeforeJoin && steady::now() < deadline) {
    if (auto f = watcher.recv(milliseconds{200}); f && type_of(*f) == "message") k = std::max(k, seq_of(*f));
  }
  // Then up to the live edge: a node holds messages for its order wait when it cannot
  // yet tell their order, so what the watcher saw first may be old by now.
  const auto edge = steady::now() + 2 * Config{}.order_wait;
  while (steady::now() < edge) {
    if (auto f = watcher.recv(milliseconds{50}); f && type_of(*f) == "message") k = std::max(k, seq_of(*f));
  }
  std::unique_ptr<WsClient> joiner;
  std::vector<std::uint64_t> got;
  std::atomic<std::size_t> expected{0};  // known once the posters are done
  if (k >= kSeenBeforeJoin) {
    try {
      joiner = std::make_unique<WsClient>(port(c), Join{room, {}, k});
    } catch (const std::exception& e) {
      std::lock_guard lock(failures_mu);
      failures.push_back(std::string("joiner: ") + e.what());
    }
  }
  joined = true;
  std::thread tj;
  if (joiner) {
    tj = guarded(failures, failures_mu, [&] {
      const auto all = [&](const std::vector<std::uint64_t>& s) {
        const auto want = expected.load();
        return want > 0 && distinct(s) >= want;
      };
      got = collect(*joiner, all, seconds{20}, posting_done);
    });
  }
  ta.join();
  tb.join();

  std::vector<std::uint64_t> acked = from_a.acked;
  acked.insert(acked.end(), from_b.acked.begin(), from_b.acked.end());
  std::vector<std::uint64_t> want;
  for (auto s : sorted(acked)) {
    if (s > k) want.push_back(s);
  }
  expected = std::max<std::size_t>(want.size(), 1);
  posting_done = true;
  if (tj.joinable()) tj.join();

  ASSERT_TRUE(failures.empty()) << failures.front();
  ASSERT_GE(k, kSeenBeforeJoin) << "the watcher never saw seq " << kSeenBeforeJoin;
  EXPECT_TRUE(from_a.errors.empty()) << from_a.errors.front();
  EXPECT_TRUE(from_b.errors.empty()) << from_b.errors.front();
  EXPECT_TRUE(got == want) << "resumed after " << k << " on C: " << describe(got, want);
}

// A ban issued through one node closes the user's connection on another (error `banned`,
// then 4003), and that node refuses the user's new handshake and move into the room.
TEST_P(MultiNodeConformance, ABanIssuedOnOneNodeIsAppliedOnAnother) {
  start(2);
  const std::size_t a = 0, b = 1;
  const std::string room = unique("mn-");
  const std::string lobby = unique("lobby-");
  const Account admin = new_account(port(a), kAdminEmail);
  const Account x = new_account(port(b));
  WsClient in_room(port(b), Join{room, x.token, {}});
  WsClient in_lobby(port(b), Join{lobby, x.token, {}});
  ASSERT_TRUE(in_room.recv_type("welcome"));
  ASSERT_TRUE(in_lobby.recv_type("welcome"));

  const json::value ban = {{"user_id", x.id}, {"reason", "spam"}};
  const auto r = post(port(a), "/chat/rooms/" + room + "/bans", ban, admin.token);
  ASSERT_EQ(r.status, 200u) << json::serialize(r.body);

  expect_closed_after_error(in_room, "banned", 4003);

  Reply refused;
  WsClient again(port(b), Join{room, x.token, {}}, &refused);
  EXPECT_EQ(refused.status, 403u);
  EXPECT_EQ(str(refused.body, "error"), "banned") << json::serialize(refused.body);

  // A move from the lobby into the room, on node B, is refused; the lobby connection stays.
  in_lobby.send({{"type", "join"}, {"room_id", room}});
  const auto error = in_lobby.recv_type("error");
  ASSERT_TRUE(error) << "the move into the room was not refused";
  EXPECT_EQ(field(*error, "code"), "banned");
  in_lobby.send({{"type", "ping"}});
  EXPECT_TRUE(in_lobby.recv_type("pong")) << "the lobby connection did not stay open";
}

// A token logged out on one node is closed (4001) and refused (401) on another.
TEST_P(MultiNodeConformance, ARevokedTokenIsRefusedOnAnotherNode) {
  start(2);
  const std::size_t a = 0, b = 1;
  const std::string room = unique("mn-");
  const Account y = new_account(port(a));
  WsClient live(port(b), Join{room, y.token, {}});
  ASSERT_TRUE(live.recv_type("welcome"));

  const auto r = post(port(a), "/logout", json::object{}, y.token);
  ASSERT_EQ(r.status, 200u) << json::serialize(r.body);

  expect_closed_after_error(live, "unauthorized", 4001);

  Reply refused;
  WsClient again(port(b), Join{room, y.token, {}}, &refused);
  EXPECT_EQ(refused.status, 401u) << json::serialize(refused.body);
}

// One address's WebSocket sessions are counted on every node together.
TEST_P(MultiNodeConformance, APerAddressCapHoldsAcrossNodes) {
  start(2, [](Config& c) { c.max_connections_per_ip = 3; });
  const std::size_t a = 0, b = 1;
  const std::string room = unique("mn-");
  auto one_on_a = std::make_unique<WsClient>(port(a), Join{room, {}, {}});
  WsClient two_on_a(port(a), Join{room, {}, {}});
  WsClient one_on_b(port(b), Join{room, {}, {}});
  ASSERT_TRUE(one_on_a->recv_type("welcome"));
  ASSERT_TRUE(two_on_a.recv_type("welcome"));
  ASSERT_TRUE(one_on_b.recv_type("welcome"));
  for (const std::size_t node : {a, b}) {
    Reply refused;
    WsClient fourth(port(node), Join{room, {}, {}}, &refused);
    EXPECT_EQ(refused.status, 429u) << "node " << node << ": " << json::serialize(refused.body);
  }
  one_on_a.reset();  // closes; node A gives its slot back once it has seen the close
  Reply reply;
  std::unique_ptr<WsClient> again;
  for (const auto deadline = steady::now() + kWait; steady::now() < deadline;) {
    reply = {};
    again = std::make_unique<WsClient>(port(b), Join{room, {}, {}}, &reply);
    if (reply.status != 429u) break;
    std::this_thread::sleep_for(milliseconds{20});
  }
  EXPECT_EQ(reply.status, 101u) << "refused after a slot was freed on the other node: " << json::serialize(reply.body);
  EXPECT_TRUE(again->recv_type("welcome"));
}

// After the backend forgets its counters, posts on both nodes get seqs above everything
// stored, none twice.
TEST_P(MultiNodeConformance, ABackendThatForgetsItsCountersContinuesAboveTheStoredMaximum) {
  start(2);
  const std::size_t a = 0, b = 1;
  const std::string room = unique("mn-");
  const Account alice = new_account(port(a));
  const Account bob = new_account(port(b));
  WsClient on_a(port(a), Join{room, alice.token, {}});
  WsClient on_b(port(b), Join{room, bob.token, {}});
  ASSERT_TRUE(on_a.recv_type("welcome"));
  ASSERT_TRUE(on_b.recv_type("welcome"));

  const Posted before = post_n(on_a, "before", 10, 4);
  ASSERT_TRUE(before.errors.empty()) << before.errors.front();
  ASSERT_EQ(before.acked.size(), 10u);
  const std::uint64_t stored_max = *std::max_element(before.acked.begin(), before.acked.end());

  forget_sequences();

  Posted after_a, after_b;
  std::vector<std::string> failures;
  std::mutex failures_mu;
  std::thread ta = guarded(failures, failures_mu, [&] { after_a = post_n(on_a, "a", 20, 8); });
  std::thread tb = guarded(failures, failures_mu, [&] { after_b = post_n(on_b, "b", 20, 8); });
  ta.join();
  tb.join();
  ASSERT_TRUE(failures.empty()) << failures.front();
  EXPECT_TRUE(after_a.errors.empty()) << after_a.errors.front();
  EXPECT_TRUE(after_b.errors.empty()) << after_b.errors.front();
  std::vector<std::uint64_t> after = after_a.acked;
  after.insert(after.end(), after_b.acked.begin(), after_b.acked.end());
  EXPECT_EQ(after.size(), 40u);
  for (auto s : after) EXPECT_GT(s, stored_max);
  EXPECT_EQ(distinct(after), after.size()) << "a seq was handed out twice: " << describe(sorted(after), {});
}

// A node whose broker is down says so: its post is stored but answered `unavailable`,
// its /readyz is 503, other nodes' viewers do not get the post live; other nodes work on.
TEST_P(MultiNodeConformance, APublishToABrokerThatIsDownFailsVisibly) {
  start(2);
  const std::size_t a = 0, b = 1;
  const std::string room = unique("mn-");
  const Account alice = new_account(port(a));
  const Account bob = new_account(port(b));
  WsClient on_a(port(a), Join{room, alice.token, {}});
  WsClient on_b(port(b), Join{room, bob.token, {}});
  WsClient viewer_b(port(b), Join{room, {}, {}});
  ASSERT_TRUE(on_a.recv_type("welcome"));
  ASSERT_TRUE(on_b.recv_type("welcome"));
  ASSERT_TRUE(viewer_b.recv_type("welcome"));
  EXPECT_EQ(request(port(a), bhttp::verb::get, "/readyz").status, 200u);

  set_broker_down(a, true);
  EXPECT_EQ(request(port(a), bhttp::verb::get, "/readyz").status, 503u);
  EXPECT_EQ(request(port(b), bhttp::verb::get, "/readyz").status, 200u);

  on_a.send(message("lost live", "lost-1"));
  std::optional<json::object> unavailable;
  std::optional<std::uint64_t> stored_seq;
  const auto deadline = steady::now() + kWait;
  while (!unavailable && steady::now() < deadline) {
    auto f = on_a.recv(deadline - steady::now());
    if (!f) break;
    if (type_of(*f) == "ack") stored_seq = seq_of(*f);
    if (type_of(*f) == "error") unavailable = f;
  }
  ASSERT_TRUE(unavailable) << "the post on a node without broker got no error";
  EXPECT_EQ(field(*unavailable, "code"), "unavailable");
  EXPECT_EQ(field(*unavailable, "cid"), "lost-1");

  // Node B works on: its post reaches its viewer, and the lost one did not come before it
  // (it was never published, so it cannot come after it either).
  const Posted on_b_posted = post_n(on_b, "b-up", 1, 1);
  ASSERT_TRUE(on_b_posted.errors.empty()) << on_b_posted.errors.front();
  std::vector<std::string> contents;
  while (auto f = viewer_b.recv()) {
    if (type_of(*f) != "message") continue;
    contents.push_back(field(*f, "content"));
    if (contents.back() == "b-up 0") break;
  }
  EXPECT_EQ(contents, std::vector<std::string>{"b-up 0"}) << "viewer on B, while A's broker was down";

  // The lost post is in the room's history.
  const auto history = request(port(b), bhttp::verb::get, "/chat/history/" + room);
  ASSERT_EQ(history.status, 200u);
  bool in_history = false;
  for (const auto& m : history.body.as_array()) in_history |= str(m, "content") == "lost live";
  EXPECT_TRUE(in_history) << json::serialize(history.body);
  EXPECT_TRUE(stored_seq) << "the post was not acked (it was stored)";

  set_broker_down(a, false);
  EXPECT_EQ(request(port(a), bhttp::verb::get, "/readyz").status, 200u);
  const Posted after = post_n(on_a, "a-up", 1, 1);
  EXPECT_TRUE(after.errors.empty()) << after.errors.front();
  while (auto f = viewer_b.recv()) {
    if (type_of(*f) != "message") continue;
    EXPECT_EQ(field(*f, "content"), "a-up 0") << "viewer on B, after A's broker came back";
    break;
  }
}

}  // namespace chatorbit::engine
