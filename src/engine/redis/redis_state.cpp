// RedisEngine's shared state: presence, bans, admission, token revocations, counting
// slots and sequence numbers. Each operation is one script or command per hash slot,
// all of a call's requests pipelined together (RedisEngine::execute). Key names are in
// docs/redis.md.

#include <algorithm>
#include <charconv>
#include <map>

#include "engine/redis/redis_engine.hpp"

namespace chatorbit::engine::redis {

namespace asio = boost::asio;

namespace {

std::string ms(std::chrono::seconds d) { return std::to_string(std::chrono::milliseconds{d}.count()); }

// A reply that must not be an error: a script that failed did nothing we can count on.
const Reply& checked(const Reply& r) {
  if (r.is_error()) throw EngineUnavailable("redis: " + r.str);
  return r;
}

std::int64_t int_of(const Reply& r) { return checked(r).as_int(); }

std::int64_t parse_i64(const std::string& s) {
  // Scores come back as strings, possibly "1.7e+12"-style for large ones.
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc{} && end == s.data() + s.size()) return v;
  return static_cast<std::int64_t>(std::stod(s));
}

// "<expires_at_ms>|<reason>", the value of a ban key.
std::optional<BanState> parse_ban(const Reply& r, const std::string& scope, std::int64_t now) {
  if (r.type != Reply::Type::string) return std::nullopt;
  const auto bar = r.str.find('|');
  if (bar == std::string::npos) return std::nullopt;
  BanState b{scope, r.str.substr(bar + 1), parse_i64(r.str.substr(0, bar))};
  if (b.expires_at_ms != 0 && b.expires_at_ms <= now) return std::nullopt;
  return b;
}

Admission refused(Admission::Verdict verdict, std::int64_t retry_ms) {
  Admission a;
  a.verdict = verdict;
  a.retry_after = std::chrono::milliseconds{retry_ms};
  return a;
}

}  // namespace

// --- key names (docs/redis.md) -------------------------------------------------------------

namespace {

struct RoomKeys {
  std::string anon, users, user_prefix;
};

RoomKeys room_keys(const RedisEngine& e, const std::string& room) {
  const std::string base = e.key("presence:room:{" + room + "}");
  return {base + ":anon", base + ":users", base + ":user:"};
}

std::string ban_key(const RedisEngine& e, const std::string& user, const std::string& scope) {
  return e.key("ban:{" + user + "}:" + (scope.empty() ? std::string("global") : "room:" + scope));
}

std::vector<std::string> revocation_keys(const RedisEngine& e) {
  return {e.key("revoked:{rv}"), e.key("token_floors:{rv}"), e.key("token_floors:{rv}:nb")};
}

}  // namespace

// --- presence ------------------------------------------------------------------------------

namespace {

// One script call per room: `script` with the room's keys, `head` then each entry's
// (conn_id, user_id).
std::vector<Request> per_room(const RedisEngine& e, const std::vector<PresenceEntry>& entries, const char* script,
                              const std::vector<std::string>& head_before_prefix) {
  std::map<std::string, std::vector<const PresenceEntry*>> by_room;
  for (const auto& entry : entries) by_room[entry.room_id].push_back(&entry);
  std::vector<Request> requests;
  for (const auto& [room, list] : by_room) {
    auto k = room_keys(e, room);
    std::vector<std::string> args = head_before_prefix;
    args.push_back(k.user_prefix);
    for (const auto* entry : list) {
      args.push_back(entry->conn_id);
      args.push_back(entry->user_id);
    }
    requests.push_back(e.eval(script, {k.anon, k.users}, std::move(args)));
  }
  return requests;
}

}  // namespace

asio::awaitable<void> RedisEngine::presence_refresh(std::vector<PresenceEntry> entries, std::chrono::seconds ttl) {
  auto requests = per_room(*this, entries, "presence_refresh", {std::to_string(now_ms()), ms(ttl)});
  for (const auto& r : co_await execute(std::move(requests))) checked(r);
}

asio::awaitable<void> RedisEngine::presence_remove(std::vector<PresenceEntry> entries) {
  auto requests = per_room(*this, entries, "presence_remove", {std::to_string(now_ms())});
  for (const auto& r : co_await execute(std::move(requests))) checked(r);
}

asio::awaitable<std::vector<PresenceCounts>> RedisEngine::presence_counts(std::vector<std::string> rooms) {
  std::vector<Request> requests;
  const std::string now = std::to_string(now_ms());
  for (const auto& room : rooms) {
    auto k = room_keys(*this, room);
    requests.push_back(eval("presence_counts", {k.anon, k.users}, {now}));
  }
  std::vector<PresenceCounts> out;
  for (const auto& r : co_await execute(std::move(requests))) {
    const auto& pair = checked(r);
    if (pair.elements.size() != 2) throw EngineUnavailable("redis: presence_counts: unexpected " + pair.describe());
    out.push_back(PresenceCounts{pair.elements[0].as_int(), pair.elements[1].as_int()});
  }
  co_return out;
}

// --- bans ----------------------------------------------------------------------------------

asio::awaitable<void> RedisEngine::ban(std::string scope, std::string user_id, std::string reason,
                                       std::optional<std::chrono::seconds> ttl) {
  const std::int64_t expires = ttl ? now_ms() + std::chrono::milliseconds{*ttl}.count() : 0;
  Request r;
  r.slot_key = ban_key(*this, user_id, scope);
  r.args = {"SET", r.slot_key, std::to_string(expires) + "|" + reason};
  if (ttl) {
    r.args.push_back("PX");
    r.args.push_back(std::to_string(std::max<std::int64_t>(1, std::chrono::milliseconds{*ttl}.count())));
  }
  std::vector<Request> one;
  one.push_back(std::move(r));
  checked((co_await execute(std::move(one))).at(0));
}

asio::awaitable<bool> RedisEngine::unban(std::string scope, std::string user_id) {
  std::vector<Request> one;
  one.push_back(eval("unban", {ban_key(*this, user_id, scope)}, {std::to_string(now_ms())}));
  co_return int_of((co_await execute(std::move(one))).at(0)) == 1;
}

asio::awaitable<std::optional<BanState>> RedisEngine::ban_state(std::string room_id, std::string user_id) {
  const std::string room_key = ban_key(*this, user_id, room_id);
  std::vector<Request> one;
  one.push_back(Request{room_key, {"MGET", room_key, ban_key(*this, user_id, "")}});
  const Reply reply = checked((co_await execute(std::move(one))).at(0));
  const std::int64_t now = now_ms();
  if (reply.elements.size() != 2) throw EngineUnavailable("redis: MGET: unexpected " + reply.describe());
  auto room = parse_ban(reply.elements[0], room_id, now);
  auto global = room_id.empty() ? std::nullopt : parse_ban(reply.elements[1], "", now);
  // Of two, the one lasting longer; the room's wins a tie.
  if (room && global && room->expires_at_ms != 0 &&
      (global->expires_at_ms == 0 || global->expires_at_ms > room->expires_at_ms)) {
    co_return global;
  }
  co_return room ? room : global;
}

// --- admission -----------------------------------------------------------------------------

asio::awaitable<Admission> RedisEngine::admit(AdmitRequest request) {
  const std::string& u = request.user_id;
  const std::string tag = "{" + u + "}:" + request.room_id;
  const bool limited = request.rate.count > 0 && request.rate.window.count() > 0;
  std::vector<Request> one;
  one.push_back(eval(
      "admit",
      {ban_key(*this, u, request.room_id), ban_key(*this, u, ""), key("last_post:" + tag), key("posts:" + tag)},
      {std::to_string(now_ms()), std::to_string(request.slow_mode_seconds > 0 ? request.slow_mode_seconds * 1000LL : 0),
       std::to_string(limited ? request.rate.count : 0), limited ? ms(request.rate.window) : "0", nonce()}));
  const Reply r = checked((co_await execute(std::move(one))).at(0));
  if (r.elements.empty()) throw EngineUnavailable("redis: admit: unexpected " + r.describe());
  switch (r.elements[0].as_int()) {
    case 0: co_return Admission{};
    case 1: {
      if (r.elements.size() < 4) break;
      BanState ban{r.elements[1].as_int() == 1 ? request.room_id : std::string{}, r.elements[3].str,
                   r.elements[2].as_int()};
      const auto left = ban.retry_after_ms(now_ms());
      Admission a = refused(Admission::Verdict::banned, left ? std::max<std::int64_t>(*left, 1) : 0);
      a.ban = std::move(ban);
      co_return a;
    }
    case 2:
      if (r.elements.size() >= 2) co_return refused(Admission::Verdict::slow_mode, r.elements[1].as_int());
      break;
    case 3:
      if (r.elements.size() >= 2) co_return refused(Admission::Verdict::rate_limited, r.elements[1].as_int());
      break;
    default: break;
  }
  throw EngineUnavailable("redis: admit: unexpected " + r.describe());
}

asio::awaitable<Admission> RedisEngine::rate_hit(std::string name, RateSpec rate) {
  if (rate.count <= 0 || rate.window.count() <= 0) co_return Admission{};
  std::vector<Request> one;
  one.push_back(eval("rate_hit", {key("rate:{" + name + "}")},
                     {std::to_string(now_ms()), std::to_string(rate.count), ms(rate.window), nonce()}));
  const std::int64_t wait = int_of((co_await execute(std::move(one))).at(0));
  if (wait > 0) co_return refused(Admission::Verdict::rate_limited, wait);
  co_return Admission{};
}

// --- token revocations ---------------------------------------------------------------------

asio::awaitable<void> RedisEngine::revoke_token(std::string jti, std::chrono::seconds ttl) {
  if (ttl.count() <= 0) co_return;
  std::vector<Request> one;
  one.push_back(eval("revoke_token", revocation_keys(*this), {std::to_string(now_ms()), ms(ttl), jti}));
  checked((co_await execute(std::move(one))).at(0));
}

asio::awaitable<void> RedisEngine::put_token_floor(std::string user_id, std::int64_t not_before_s,
                                                   std::chrono::seconds ttl) {
  if (ttl.count() <= 0) co_return;
  std::vector<Request> one;
  one.push_back(eval("put_token_floor", revocation_keys(*this),
                     {std::to_string(now_ms()), ms(ttl), user_id, std::to_string(not_before_s)}));
  checked((co_await execute(std::move(one))).at(0));
}

asio::awaitable<TokenRevocations> RedisEngine::token_revocations() {
  std::vector<Request> one;
  one.push_back(eval("token_revocations", revocation_keys(*this), {std::to_string(now_ms())}));
  const Reply r = checked((co_await execute(std::move(one))).at(0));
  if (r.elements.size() != 3) throw EngineUnavailable("redis: token_revocations: unexpected " + r.describe());
  TokenRevocations out;
  const auto& jtis = r.elements[0].elements;
  for (std::size_t i = 0; i + 1 < jtis.size(); i += 2) {
    out.tokens.push_back(RevokedToken{jtis[i].str, parse_i64(jtis[i + 1].str)});
  }
  std::map<std::string, std::int64_t> not_before;
  const auto& nb = r.elements[2].elements;
  for (std::size_t i = 0; i + 1 < nb.size(); i += 2) not_before[nb[i].str] = parse_i64(nb[i + 1].str);
  const auto& floors = r.elements[1].elements;
  for (std::size_t i = 0; i + 1 < floors.size(); i += 2) {
    auto it = not_before.find(floors[i].str);
    if (it == not_before.end()) continue;
    out.floors.push_back(TokenFloor{floors[i].str, it->second, parse_i64(floors[i + 1].str)});
  }
  co_return out;
}

asio::awaitable<bool> RedisEngine::is_token_revoked(std::string jti, std::string user_id, std::int64_t iat) {
  std::vector<Request> one;
  one.push_back(
      eval("is_token_revoked", revocation_keys(*this), {std::to_string(now_ms()), jti, user_id, std::to_string(iat)}));
  co_return int_of((co_await execute(std::move(one))).at(0)) == 1;
}

// --- counting slots ------------------------------------------------------------------------

asio::awaitable<bool> RedisEngine::claim_slot(std::string name, std::string member, std::int64_t limit,
                                              std::chrono::seconds ttl) {
  std::vector<Request> one;
  one.push_back(eval("claim_slot", {key("slots:{" + name + "}")},
                     {std::to_string(now_ms()), member, std::to_string(limit), ms(ttl)}));
  co_return int_of((co_await execute(std::move(one))).at(0)) == 1;
}

asio::awaitable<void> RedisEngine::release_slot(std::string name, std::string member) {
  const std::string k = key("slots:{" + name + "}");
  std::vector<Request> one;
  one.push_back(Request{k, {"ZREM", k, member}});
  checked((co_await execute(std::move(one))).at(0));
}

asio::awaitable<void> RedisEngine::refresh_slots(std::vector<SlotRef> slots, std::chrono::seconds ttl) {
  std::map<std::string, std::vector<std::string>> by_key;
  for (auto& s : slots) by_key[s.key].push_back(std::move(s.member));
  std::vector<Request> requests;
  const std::string now = std::to_string(now_ms());
  for (auto& [name, members] : by_key) {
    std::vector<std::string> args{now, ms(ttl)};
    for (auto& m : members) args.push_back(std::move(m));
    requests.push_back(eval("refresh_slots", {key("slots:{" + name + "}")}, std::move(args)));
  }
  for (const auto& r : co_await execute(std::move(requests))) checked(r);
}

asio::awaitable<std::int64_t> RedisEngine::slots_in_use(std::string name) {
  const std::string k = key("slots:{" + name + "}");
  std::vector<Request> one;
  one.push_back(Request{k, {"ZCOUNT", k, "(" + std::to_string(now_ms()), "+inf"}});
  co_return int_of((co_await execute(std::move(one))).at(0));
}

// --- failure counters ----------------------------------------------------------------------

asio::awaitable<void> RedisEngine::record_failure(std::string name, std::chrono::seconds window) {
  std::vector<Request> one;
  one.push_back(eval("record_failure", {key("fails:{" + name + "}")}, {std::to_string(now_ms()), ms(window), nonce()}));
  checked((co_await execute(std::move(one))).at(0));
}

asio::awaitable<std::vector<std::int64_t>> RedisEngine::recent_failures(std::string name, std::chrono::seconds window,
                                                                        std::size_t limit) {
  const std::string k = key("fails:{" + name + "}");
  const std::int64_t since = now_ms() - std::chrono::milliseconds{window}.count();
  std::vector<Request> one;
  one.push_back(Request{
      k,
      {"ZREVRANGEBYSCORE", k, "+inf", "(" + std::to_string(since), "WITHSCORES", "LIMIT", "0", std::to_string(limit)}});
  const Reply r = checked((co_await execute(std::move(one))).at(0));
  std::vector<std::int64_t> times;
  for (std::size_t i = 1; i < r.elements.size(); i += 2) times.push_back(parse_i64(r.elements[i].str));
  std::reverse(times.begin(), times.end());
  co_return times;
}

asio::awaitable<void> RedisEngine::clear_failures(std::string name) {
  const std::string k = key("fails:{" + name + "}");
  std::vector<Request> one;
  one.push_back(Request{k, {"DEL", k}});
  checked((co_await execute(std::move(one))).at(0));
}

// --- sequences -----------------------------------------------------------------------------

asio::awaitable<std::vector<std::uint64_t>> RedisEngine::reserve_sequences(std::vector<SequenceRequest> requests) {
  std::vector<Request> out;
  out.reserve(requests.size());
  for (const auto& r : requests) {
    out.push_back(eval(
        "reserve", {key("seq:{" + r.room_id + "}")},
        {std::to_string(std::max<std::uint32_t>(1, r.count)), r.floor ? std::to_string(*r.floor) : std::string{}}));
  }
  std::vector<std::uint64_t> firsts;
  for (const auto& r : co_await execute(std::move(out))) firsts.push_back(static_cast<std::uint64_t>(int_of(r)));
  co_return firsts;
}

}  // namespace chatorbit::engine::redis
