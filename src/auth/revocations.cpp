#include "auth/revocations.hpp"

#include <mutex>

namespace chatorbit::auth {

namespace {
// Entries are kept for 5 minutes beyond the last exp they cover, so that the verifier's
// clock leeway can never revive a token.
constexpr std::int64_t kKeepAfterExpiry = 300;
}  // namespace

void RevocationList::add(std::string jti, std::int64_t expires_at_s) {
  std::unique_lock lock(mu_);
  maybe_prune_locked(clock_.unix_seconds());
  auto& exp = revoked_[std::move(jti)];
  exp = std::max(exp, expires_at_s);
}

void RevocationList::add_floor(std::string user_id, std::int64_t not_before_s, std::int64_t expires_at_s) {
  std::unique_lock lock(mu_);
  maybe_prune_locked(clock_.unix_seconds());
  auto [it, fresh] = floors_.try_emplace(std::move(user_id), Floor{not_before_s, expires_at_s});
  if (!fresh) {
    // Floors only rise: an older change replayed (from the store, or a late event) must
    // not lower a newer one.
    it->second.not_before_s = std::max(it->second.not_before_s, not_before_s);
    it->second.expires_at_s = std::max(it->second.expires_at_s, expires_at_s);
  }
}

std::int64_t RevocationList::floor_of(std::string_view user_id) const {
  std::shared_lock lock(mu_);
  const auto it = floors_.find(std::string(user_id));
  return it == floors_.end() ? 0 : it->second.not_before_s;
}

bool RevocationList::is_revoked(std::string_view jti) const {
  std::shared_lock lock(mu_);
  // A token past its exp is rejected as expired anyway; keep answering "revoked" until
  // pruned so that the leeway window cannot resurrect it.
  return revoked_.find(std::string(jti)) != revoked_.end();
}

bool RevocationList::is_revoked(const Claims& claims) const {
  std::shared_lock lock(mu_);
  if (!claims.jti.empty() && revoked_.find(claims.jti) != revoked_.end()) return true;
  const auto it = floors_.find(claims.user_id);
  return it != floors_.end() && claims.iat < it->second.not_before_s;
}

std::size_t RevocationList::size() const {
  std::shared_lock lock(mu_);
  return revoked_.size() + floors_.size();
}

void RevocationList::maybe_prune_locked(std::int64_t now_s) {
  if (now_s < next_prune_s_) return;
  next_prune_s_ = now_s + 60;
  std::erase_if(revoked_, [&](const auto& kv) { return kv.second + kKeepAfterExpiry < now_s; });
  std::erase_if(floors_, [&](const auto& kv) { return kv.second.expires_at_s + kKeepAfterExpiry < now_s; });
}

}  // namespace chatorbit::auth
