#pragma once
// The header checks of a WebSocket opening handshake (RFC 6455 §4.2.1), apart from who
// the client is and which room it wants: those are the chat service's. Pure functions of
// the request, so the fuzzer and the unit tests drive them without a socket.

#include <optional>
#include <string>
#include <string_view>

#include "net/http_types.hpp"

namespace chatorbit::ws {

/// Why an upgrade request is refused before anything is created.
struct HandshakeRefusal {
  http::Status status;
  std::string error;   ///< the JSON body's `error`
  std::string detail;  ///< the JSON body's `detail`: which header is wrong, and how
};

/// True if `key` is the base64 encoding of exactly 16 bytes (24 characters, "==" padded,
/// canonical: the unused low bits of the last character are zero).
bool valid_client_key(std::string_view key);

/// True if the comma-separated header value `list` holds `token` (case-insensitive,
/// surrounding white space ignored), as "Connection: keep-alive, Upgrade" does.
bool header_has_token(std::string_view list, std::string_view token);

/// Checks method GET, HTTP/1.1 or later, `Upgrade: websocket`, `Connection: Upgrade`,
/// `Sec-WebSocket-Version: 13` (else 426, as §4.4 asks) and a valid `Sec-WebSocket-Key`.
/// Returns the refusal, or nullopt if the handshake may go on. Never throws on any input.
std::optional<HandshakeRefusal> check_upgrade_headers(const http::Request& req);

}  // namespace chatorbit::ws
