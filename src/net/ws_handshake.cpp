#include "net/ws_handshake.hpp"

#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <cctype>

namespace chatorbit::ws {

namespace {

bool is_base64_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/'; }

}  // namespace

bool valid_client_key(std::string_view key) {
  // 16 bytes are 128 bits: 21 full characters and 2 bits in the 22nd, whose 4 low bits
  // must then be zero (A, Q, g or w), followed by two pad characters.
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  if (!std::all_of(key.begin(), key.begin() + 22, is_base64_char)) return false;
  const char last = key[21];
  return last == 'A' || last == 'Q' || last == 'g' || last == 'w';
}

bool header_has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (boost::beast::iequals(http::trim_ows(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

std::optional<HandshakeRefusal> check_upgrade_headers(const http::Request& req) {
  using http::Status;
  namespace f = http::bhttp;
  if (req.method() != f::verb::get) {
    return HandshakeRefusal{Status::bad_request, "invalid websocket handshake", "the method must be GET"};
  }
  if (req.version() < 11) {
    return HandshakeRefusal{Status::bad_request, "invalid websocket handshake", "HTTP/1.1 or later is required"};
  }
  if (!header_has_token(req[f::field::upgrade], "websocket")) {
    return HandshakeRefusal{Status::upgrade_required, "websocket upgrade required", "Upgrade must be websocket"};
  }
  if (!header_has_token(req[f::field::connection], "upgrade")) {
    return HandshakeRefusal{Status::bad_request, "invalid websocket handshake", "Connection must include Upgrade"};
  }
  if (req[f::field::sec_websocket_version] != "13") {
    return HandshakeRefusal{Status::upgrade_required, "websocket upgrade required", "Sec-WebSocket-Version must be 13"};
  }
  if (!valid_client_key(req[f::field::sec_websocket_key])) {
    return HandshakeRefusal{Status::bad_request, "invalid websocket handshake",
                            "Sec-WebSocket-Key must be the base64 encoding of 16 bytes"};
  }
  return std::nullopt;
}

}  // namespace chatorbit::ws
