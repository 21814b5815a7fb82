// Fuzz target: the WebSocket opening handshake's header checks (net/ws_handshake.hpp) and
// the query parameters the chat handshake reads (http::find_query_param).
//
// Input: byte 0 picks the method and HTTP version; bytes 1.. are lines:
//   1: Upgrade   2: Connection   3: Sec-WebSocket-Version   4: Sec-WebSocket-Key
//   5: a query string   6: a parameter name to look up in it
// (CR, LF and NUL cannot occur in a parsed header value, so they are dropped.)
//
// Oracles, beyond the sanitizers: a key passes valid_client_key() exactly when it is the
// canonical base64 of 16 bytes (decoded here independently); a request passes
// check_upgrade_headers() only with GET, HTTP/1.1+, the upgrade and connection tokens,
// version 13 and a valid key; a refusal always names its status, error and detail; a
// query parameter that is found is either decoded or reported as malformed, never both.

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "net/router.hpp"
#include "net/ws_handshake.hpp"

namespace {

namespace http = chatorbit::http;
namespace ws = chatorbit::ws;
using boost::beast::http::field;
using boost::beast::http::verb;

void check(bool ok, const char* what) { chatorbit::fuzz::check(ok, "ws_handshake_fuzz", what); }

std::vector<std::string> lines_of(std::string_view data) {
  std::vector<std::string> out(1);
  for (char c : data) {
    if (c == '\n') {
      out.emplace_back();
    } else if (c != '\r' && c != '\0') {
      out.back().push_back(c);
    }
  }
  return out;
}

// An independent decoder: the 16 bytes `key` encodes, if it is canonical base64 of 16.
std::optional<std::array<unsigned char, 16>> decode16(std::string_view key) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (key.size() != 24 || key.substr(22) != "==") return std::nullopt;
  std::array<unsigned char, 16> out{};
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t n = 0;
  for (char c : key.substr(0, 22)) {
    const auto v = kAlphabet.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n < out.size()) out[n++] = static_cast<unsigned char>(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (n != 16 || acc != 0) return std::nullopt;  // leftover bits must be zero (canonical)
  return out;
}

bool has_token(std::string_view list, std::string_view token) { return ws::header_has_token(list, token); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto lines = lines_of(input);
  auto line = [&](std::size_t i) -> std::string_view { return i < lines.size() ? lines[i] : std::string_view{}; };

  static constexpr std::array<verb, 4> kMethods = {verb::get, verb::post, verb::head, verb::options};
  const verb method = kMethods[data[0] & 3];
  const unsigned version = (data[0] & 4) ? 10 : 11;
  http::Request req{method, "/ws/chat", version};
  const std::array<std::pair<field, std::string_view>, 4> headers = {{{field::upgrade, line(0)},
                                                                      {field::connection, line(1)},
                                                                      {field::sec_websocket_version, line(2)},
                                                                      {field::sec_websocket_key, line(3)}}};
  for (const auto& [f, v] : headers) {
    if (!v.empty() || (data[0] & 8)) req.set(f, v);
  }

  const std::string_view key = req[field::sec_websocket_key];
  const bool key_ok = ws::valid_client_key(key);
  check(key_ok == decode16(key).has_value(), "valid_client_key agrees with an independent base64 decoder");

  const auto refused = ws::check_upgrade_headers(req);
  const bool should_pass = method == verb::get && version >= 11 && has_token(req[field::upgrade], "websocket") &&
                           has_token(req[field::connection], "upgrade") && req[field::sec_websocket_version] == "13" &&
                           key_ok;
  check(refused.has_value() != should_pass, "check_upgrade_headers passes exactly the valid handshakes");
  if (refused) {
    check(!refused->error.empty() && !refused->detail.empty(), "a refusal names its error and detail");
    check(refused->status == http::Status::bad_request || refused->status == http::Status::upgrade_required,
          "a refusal is 400 or 426");
  }

  const auto found = http::find_query_param(line(4), line(5));
  check(found.present || !found.value, "an absent parameter has no value");
  if (found.value) check(found.value->size() <= line(4).size(), "decoding never grows the text");
  return 0;
}
