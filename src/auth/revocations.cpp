#include "auth/revocations.hpp"

#include <mutex>

namespace chatorbit::auth {

void RevocationList::add(std::string jti, std::int64_t expires_at_s) {
  const auto now = clock_.unix_seconds();
  std::unique_lock lock(mu_);
  if (now >= next_prune_s_) {
    prune_locked(now);
    next_prune_s_ = now + 60;
  }
  auto& exp = revoked_[std::move(jti)];
  exp = std::max(exp, expires_at_s);
}

bool RevocationList::is_revoked(std::string_view jti) const {
  std::shared_lock lock(mu_);
  const auto it = revoked_.find(std::string(jti));
  // A token past its exp is rejected as expired anyway; keep answering "revoked" until
  // pruned so that the leeway window cannot resurrect it.
  return it != revoked_.end();
}

std::size_t RevocationList::size() const {
  std::shared_lock lock(mu_);
  return revoked_.size();
}

void RevocationList::prune_locked(std::int64_t now_s) {
  // Entries are kept for an extra 5 minutes beyond exp so clock leeway never revives a token.
  std::erase_if(revoked_, [&](const auto& kv) { return kv.second + 300 < now_s; });
}

}  // namespace chatorbit::auth
