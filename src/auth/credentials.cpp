#include "auth/credentials.hpp"

namespace chatorbit::auth {
namespace {

// Code points in valid UTF-8 (the JSON parser has already rejected invalid UTF-8).
std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

bool has_control(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

std::string check_email(std::string_view email) {
  // Lengths count characters, as the OpenAPI document's maxLength and pattern do.
  const auto length = code_points(email);
  if (length < 3 || length > 254) return "email must be 3 to 254 characters";
  const auto at = email.find('@');
  if (at == std::string_view::npos || at == 0 || email.find('@', at + 1) != std::string_view::npos) {
    return "email must be an email address";
  }
  const auto local = email.substr(0, at);
  const auto domain = email.substr(at + 1);
  if (code_points(local) > 64) return "email must be an email address";
  for (unsigned char c : local) {
    if (c <= 0x20 || c == 0x7f || c == '"' || c == '(' || c == ')' || c == ',' || c == ':' || c == ';' || c == '<' ||
        c == '>' || c == '[' || c == '\\' || c == ']') {
      return "email must be an email address";
    }
  }
  if (domain.empty() || domain.find('.') == std::string_view::npos || domain.front() == '.' || domain.back() == '.' ||
      domain.find("..") != std::string_view::npos) {
    return "email must be an email address";
  }
  for (unsigned char c : domain) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c >= 0x80;  // internationalised domain names
    if (!ok) return "email must be an email address";
  }
  return {};
}

std::string check_username(std::string_view username) {
  const auto n = code_points(username);
  if (n < 2 || n > 100) return "username must be 2 to 100 characters";
  if (has_control(username)) return "username must not contain control characters";
  return {};
}

std::string check_password(std::string_view password) {
  if (code_points(password) < kMinPassword) return "password must be at least 6 characters";
  if (password.size() > kMaxPassword) return "password must be at most 1024 bytes";
  return {};
}

}  // namespace chatorbit::auth
