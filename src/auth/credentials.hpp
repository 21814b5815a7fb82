#pragma once
// Input rules for registration, as the original enforced them (email must be an email,
// username 2-100 characters, password at least 6), made precise.

#include <string>
#include <string_view>

namespace chatorbit::auth {

inline constexpr std::size_t kMinPassword = 6;
inline constexpr std::size_t kMaxPassword = 1024;  ///< bytes; bounds hashing work per request

/// Empty if acceptable, else what is wrong.
std::string check_email(std::string_view email);
std::string check_username(std::string_view username);
std::string check_password(std::string_view password);

/// ASCII lower-case: the canonical form used for uniqueness and throttling keys.
std::string lower_ascii(std::string_view s);

}  // namespace chatorbit::auth
