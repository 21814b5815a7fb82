#include "chat/address_caps.hpp"

namespace chatorbit::chat {

bool AddressCaps::try_acquire(const std::string& address) {
  std::lock_guard lock(mu_);
  int& n = open_[address];
  if (n >= max_) {
    if (n == 0) open_.erase(address);  // a cap of 0 keeps no entry behind
    return false;
  }
  ++n;
  return true;
}

void AddressCaps::release(const std::string& address) {
  std::lock_guard lock(mu_);
  const auto it = open_.find(address);
  if (it != open_.end() && --it->second <= 0) open_.erase(it);
}

int AddressCaps::open(const std::string& address) const {
  std::lock_guard lock(mu_);
  const auto it = open_.find(address);
  return it == open_.end() ? 0 : it->second;
}

}  // namespace chatorbit::chat
