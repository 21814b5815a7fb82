#include "auth/shared_revocations.hpp"

#include "core/run_blocking.hpp"

namespace chatorbit::auth {

std::chrono::seconds revocation_ttl(std::int64_t expires_at_s, const Clock& clock) {
  const std::int64_t left_ms = expires_at_s * 1000 - clock.unix_millis();
  return std::chrono::seconds{left_ms <= 0 ? 0 : (left_ms + 999) / 1000};
}

boost::asio::awaitable<void> share_revocation(engine::Engine& engine, AccountEvents::Revocation r, const Clock& clock) {
  const auto ttl = revocation_ttl(r.expires_at_s, clock);
  if (ttl.count() <= 0) co_return;
  if (!r.jti.empty()) {
    co_await engine.revoke_token(std::move(r.jti), ttl);
  } else if (r.not_before_s > 0) {
    co_await engine.put_token_floor(std::move(r.user_id), r.not_before_s, ttl);
  }
}

void add_to_cache(const engine::TokenRevocations& held, RevocationList& cache) {
  // Rounded up to whole seconds: the cache must not let an entry go before the engine.
  const auto seconds = [](std::int64_t ms) { return (ms + 999) / 1000; };
  for (const auto& t : held.tokens) cache.add(t.jti, seconds(t.expires_at_ms));
  for (const auto& f : held.floors) cache.add_floor(f.user_id, f.not_before_s, seconds(f.expires_at_ms));
}

void restore_revocations(store::Store& store, engine::Engine& engine, const Clock& clock) {
  const auto now_s = clock.unix_seconds();
  for (auto& [jti, expires_at_s] : store.active_revocations(now_s)) {
    const auto ttl = revocation_ttl(expires_at_s, clock);
    if (ttl.count() <= 0) continue;
    run_blocking(engine.revoke_token(std::move(jti), ttl));
  }
  for (auto& f : store.active_token_floors(now_s)) {
    const auto ttl = revocation_ttl(f.expires_at_s, clock);
    if (ttl.count() <= 0) continue;
    run_blocking(engine.put_token_floor(std::move(f.user_id), f.not_before_s, ttl));
  }
}

void refill_revocations(store::Store& store, engine::Engine& engine, RevocationList& cache, const Clock& clock) {
  restore_revocations(store, engine, clock);
  add_to_cache(run_blocking(engine.token_revocations()), cache);
}

}  // namespace chatorbit::auth
