// The multi-node conformance suite (see multi_node_conformance.hpp): real nodes over one
// engine backend, driven by the clients of multi_node_client.hpp.

#include "engine/multi_node_conformance.hpp"

#include <filesystem>

#include "app/app.hpp"
#include "engine/multi_node_client.hpp"

namespace chatorbit::engine {

using namespace node_client;  // NOLINT: the clients are what every case speaks

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

// A node whose subscription dropped (its broker link lost while others posted) fills its
// viewers' gap from the store once it is back: every acked message reaches them once, in
// seq order, those posted during the outage included.
TEST_P(MultiNodeConformance, ANodeWhoseSubscriptionDroppedFillsTheGapFromTheStore) {
  start(2);
  const std::size_t a = 0, b = 1;
  const std::string room = unique("mn-");
  const Account alice = new_account(port(a));
  WsClient poster(port(a), Join{room, alice.token, {}});
  WsClient viewer_b(port(b), Join{room, {}, {}});
  ASSERT_TRUE(poster.recv_type("welcome"));
  ASSERT_TRUE(viewer_b.recv_type("welcome"));

  const Posted before = post_n(poster, "before", 5, 5);
  set_broker_down(b, true);
  const Posted during = post_n(poster, "during", 10, 5);
  set_broker_down(b, false);
  const Posted after = post_n(poster, "after", 5, 5);
  for (const Posted* p : {&before, &during, &after}) ASSERT_TRUE(p->errors.empty()) << p->errors.front();

  std::vector<std::uint64_t> acked = before.acked;
  acked.insert(acked.end(), during.acked.begin(), during.acked.end());
  acked.insert(acked.end(), after.acked.begin(), after.acked.end());
  std::atomic<bool> finished{true};
  const auto seen = collect(
      viewer_b, [&](const std::vector<std::uint64_t>& s) { return s.size() >= acked.size(); }, kWait, finished);
  EXPECT_EQ(seen, sorted(acked)) << describe(seen, sorted(acked));
}

// Failed logins count on every node together (auth::LoginThrottle over the engine): an
// attacker alternating nodes meets the same limit as on one node.
TEST_P(MultiNodeConformance, FailedLoginsAlternatingNodesMeetOneLimit) {
  start(2, [](Config& c) { c.login_max_failures = 3; });
  const Account victim = new_account(port(0));
  json::value wrong = json::object{{"email", victim.email}, {"password", "wrong-password-1"}};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(post(port(i % 2), "/login", wrong).status, 401u) << "attempt " << i;
  }
  for (std::size_t node : {0u, 1u}) {
    const auto refused = post(port(node), "/login", wrong);
    EXPECT_EQ(refused.status, 429u) << "node " << node << ": " << json::serialize(refused.body);
  }
}

}  // namespace chatorbit::engine
