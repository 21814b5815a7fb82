#include "engine/redis/redis_scripts.hpp"

#include <openssl/sha.h>

#include <cstdio>

namespace chatorbit::engine::redis {

namespace {

std::string sha1_hex(const std::string& text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  std::string hex;
  char two[3];
  for (unsigned char b : digest) {
    std::snprintf(two, sizeof two, "%02x", b);
    hex += two;
  }
  return hex;
}

// The sliding window: a sorted set of accepted hits scored by time. An entry leaves the
// window once score + window <= now.
constexpr const char* kWindow = R"lua(
local function window_wait(key, now, limit, window)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n < limit then return 0 end
  local e = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
  local w = tonumber(e[2]) + window - now
  if w < 1 then w = 1 end
  return w
end
local function window_record(key, now, window, member)
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
end
)lua";

// KEYS: room ban, global ban, last post, post window.
// ARGV: now, slow-mode ms (0 = off), limit, window ms, nonce.
// -> {0} ok | {1, 1 room / 2 global, expires_at, reason} | {2, retry} slow | {3, retry} rate
constexpr const char* kAdmit = R"lua(
local now = tonumber(ARGV[1])
local which, best_exp, reason = nil, 0, ''
for i = 1, 2 do
  local v = redis.call('GET', KEYS[i])
  if v then
    local sep = string.find(v, '|', 1, true)
    local exp = tonumber(string.sub(v, 1, sep - 1))
    if exp == 0 or exp > now then
      if which == nil or (best_exp ~= 0 and (exp == 0 or exp > best_exp)) then
        which, best_exp, reason = i, exp, string.sub(v, sep + 1)
      end
    end
  end
end
if which then return {1, which, best_exp, reason} end
local slow = tonumber(ARGV[2])
if slow > 0 then
  local last = redis.call('GET', KEYS[3])
  if last and tonumber(last) + slow > now then return {2, tonumber(last) + slow - now} end
end
local limit, window = tonumber(ARGV[3]), tonumber(ARGV[4])
if limit > 0 and window > 0 then
  local w = window_wait(KEYS[4], now, limit, window)
  if w > 0 then return {3, w} end
  window_record(KEYS[4], now, window, ARGV[5])
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', math.max(slow, 3600000))
return {0}
)lua";

// KEYS: window. ARGV: now, limit, window ms, nonce. -> 0 ok | retry ms
constexpr const char* kRateHit = R"lua(
local now, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local w = window_wait(KEYS[1], now, limit, window)
if w > 0 then return w end
window_record(KEYS[1], now, window, ARGV[4])
return 0
)lua";

// KEYS: ban. ARGV: now. -> 1 if a ban in force was lifted
constexpr const char* kUnban = R"lua(
local v = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
if not v then return 0 end
local exp = tonumber(string.sub(v, 1, string.find(v, '|', 1, true) - 1))
if exp == 0 or exp > tonumber(ARGV[1]) then return 1 end
return 0
)lua";

// KEYS: anonymous connections, signed-in users (both sorted sets scored by expiry).
// ARGV: now, ttl ms, per-user key prefix, then (conn, user) pairs; user '' = anonymous.
constexpr const char* kPresenceRefresh = R"lua(
local exp = tonumber(ARGV[1]) + tonumber(ARGV[2])
for i = 4, #ARGV, 2 do
  local conn, user = ARGV[i], ARGV[i + 1]
  if user == '' then
    redis.call('ZADD', KEYS[1], exp, conn)
  else
    local k = ARGV[3] .. user
    redis.call('ZADD', k, exp, conn)
    redis.call('PEXPIRE', k, ARGV[2])
    redis.call('ZADD', KEYS[2], 'GT', exp, user)
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 0
)lua";

// KEYS: as kPresenceRefresh. ARGV: now, per-user key prefix, then (conn, user) pairs.
// A user stays online while another of their connections lives (two tabs, one closed).
constexpr const char* kPresenceRemove = R"lua(
for i = 3, #ARGV, 2 do
  local conn, user = ARGV[i], ARGV[i + 1]
  if user == '' then
    redis.call('ZREM', KEYS[1], conn)
  else
    local k = ARGV[2] .. user
    redis.call('ZREM', k, conn)
    redis.call('ZREMRANGEBYSCORE', k, '-inf', ARGV[1])
    local last = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
    if #last == 0 then
      redis.call('ZREM', KEYS[2], user)
    else
      redis.call('ZADD', KEYS[2], last[2], user)
    end
  end
end
return 0
)lua";

// KEYS: as kPresenceRefresh. ARGV: now. -> {chatters, viewers}; stale entries swept.
constexpr const char* kPresenceCounts = R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
return {redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[1])}
)lua";

// Token revocations, all under one hash tag. KEYS: revoked jtis (jti -> expiry), floors
// (user -> expiry), floor values (hash user -> not_before_s).
constexpr const char* kRevocationSweep = R"lua(
local function sweep(now)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
  if #gone > 0 then redis.call('HDEL', KEYS[3], unpack(gone)) end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
end
)lua";

// ARGV: now, ttl ms, jti. The later expiry wins.
constexpr const char* kRevokeToken = R"lua(
sweep(ARGV[1])
redis.call('ZADD', KEYS[1], 'GT', tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[3])
return 0
)lua";

// ARGV: now, ttl ms, user, not_before_s. The floor never moves down; the later expiry wins.
constexpr const char* kPutTokenFloor = R"lua(
sweep(ARGV[1])
local old = redis.call('HGET', KEYS[3], ARGV[3])
local nb = tonumber(ARGV[4])
if old and tonumber(old) > nb then nb = tonumber(old) end
redis.call('HSET', KEYS[3], ARGV[3], string.format('%d', nb))
redis.call('ZADD', KEYS[2], 'GT', tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[3])
return 0
)lua";

// ARGV: now. -> {jti/expiry pairs, user/expiry pairs, user/not_before_s pairs}
constexpr const char* kTokenRevocations = R"lua(
sweep(ARGV[1])
return {redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES'),
        redis.call('HGETALL', KEYS[3])}
)lua";

// ARGV: now, jti, user, iat. -> 1 if revoked
constexpr const char* kIsTokenRevoked = R"lua(
local now = tonumber(ARGV[1])
local s = redis.call('ZSCORE', KEYS[1], ARGV[2])
if s and tonumber(s) > now then return 1 end
local f = redis.call('ZSCORE', KEYS[2], ARGV[3])
if f and tonumber(f) > now then
  local nb = redis.call('HGET', KEYS[3], ARGV[3])
  if nb and tonumber(ARGV[4]) < tonumber(nb) then return 1 end
end
return 0
)lua";

// KEYS: slot set (member -> expiry). ARGV: now, member, limit, ttl ms. -> 1 claimed | 0
constexpr const char* kClaimSlot = R"lua(
if tonumber(ARGV[3]) <= 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[2]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[4]), ARGV[2])
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
  return 1
end
return 0
)lua";

// KEYS: slot set. ARGV: now, ttl ms, members... Members without a live slot get none.
constexpr const char* kRefreshSlots = R"lua(
local now, exp = tonumber(ARGV[1]), tonumber(ARGV[1]) + tonumber(ARGV[2])
for i = 3, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) > now then redis.call('ZADD', KEYS[1], exp, ARGV[i]) end
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
)lua";

// KEYS: a key's failures (sorted set scored by time). ARGV: now, window ms, nonce.
constexpr const char* kRecordFailure = R"lua(
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
)lua";

// KEYS: the room's counter. ARGV: count, floor ('' = none). -> first number | 0
constexpr const char* kReserve = R"lua(
local cur = redis.call('GET', KEYS[1])
if ARGV[2] ~= '' then
  if not cur or tonumber(cur) < tonumber(ARGV[2]) then redis.call('SET', KEYS[1], ARGV[2]) end
elseif not cur then
  return 0
end
return redis.call('INCRBY', KEYS[1], ARGV[1]) - tonumber(ARGV[1]) + 1
)lua";

}  // namespace

Scripts::Scripts() {
  const auto add = [this](const char* name, std::string source) { by_name[name] = Script{source, sha1_hex(source)}; };
  add("admit", std::string(kWindow) + kAdmit);
  add("rate_hit", std::string(kWindow) + kRateHit);
  add("unban", kUnban);
  add("presence_refresh", kPresenceRefresh);
  add("presence_remove", kPresenceRemove);
  add("presence_counts", kPresenceCounts);
  add("revoke_token", std::string(kRevocationSweep) + kRevokeToken);
  add("put_token_floor", std::string(kRevocationSweep) + kPutTokenFloor);
  add("token_revocations", std::string(kRevocationSweep) + kTokenRevocations);
  add("is_token_revoked", kIsTokenRevoked);
  add("claim_slot", kClaimSlot);
  add("refresh_slots", kRefreshSlots);
  add("reserve", kReserve);
  add("record_failure", kRecordFailure);
}

}  // namespace chatorbit::engine::redis
