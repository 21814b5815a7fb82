// Fuzz target: the start-up configuration parser (core/config.hpp): parse_config over an
// environment map and an argument vector, and parse_rate / parse_duration directly.
//
// Input: lines. Lines before a line "--" are environment entries "NAME=VALUE" (a line
// without '=' is a name with an empty value); the lines after it are the arguments, one
// per line. Every line is also given to parse_rate and parse_duration on its own.
//
// Oracles, beyond the sanitizers: the only exception that may leave the parser is
// ConfigError (anything else escaping is a bug: std::out_of_range, std::invalid_argument
// from a std::stoi, ...); a duration is never negative; a rate has a count in
// [1, 1000000] and a window of at least one second; an accepted config respects the
// bounds the table declares for the fields checked below, and the components built from
// it at start-up accept it: a value they refuse must be refused here, as a ConfigError
// that names the setting (config.hpp's promise), not later as a bare std::exception.
// Checked for the JWT codec, whose constructor is cheap and has no side effects.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jwt.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/random.hpp"
#include "fuzz_check.hpp"

namespace {

void check(bool ok, const char* what) { chatorbit::fuzz::check(ok, "config_fuzz", what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace chatorbit;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> env;
  std::vector<std::string> args;
  std::vector<std::string> lines;
  bool in_args = false;
  std::size_t pos = 0;
  while (pos <= in.size()) {
    const std::size_t nl = in.find('\n', pos);
    const std::string line(in.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    pos = nl == std::string_view::npos ? in.size() + 1 : nl + 1;
    lines.push_back(line);
    if (!in_args && line == "--") {
      in_args = true;
    } else if (in_args) {
      args.push_back(line);
    } else {
      const std::size_t eq = line.find('=');
      env[line.substr(0, eq)] = eq == std::string::npos ? std::string{} : line.substr(eq + 1);
    }
  }

  for (const std::string& line : lines) {
    try {
      const auto d = parse_duration(line, "FUZZ");
      check(d.count() >= 0, "negative duration");
    } catch (const ConfigError&) {
    }
    try {
      const RateSpec r = parse_rate(line, "FUZZ");
      check(r.count >= 1 && r.count <= 1'000'000, "rate count out of range");
      check(r.window.count() >= 1, "rate window under one second");
    } catch (const ConfigError&) {
    }
  }

  try {
    const ParsedArgs parsed = parse_config(env, args);
    const Config& c = parsed.config;
    check(c.port >= 0 && c.port <= 65535, "port out of range");
    check(c.threads >= 0 && c.threads <= 256, "threads out of range");
    check(c.max_body_bytes >= 1, "max_body_bytes zero");
    check(c.ws_max_frame_bytes >= 128, "ws_max_frame_bytes under 128");
    check(c.rate_limit.count >= 1 && c.rate_limit.window.count() >= 1, "bad rate_limit");
    check(c.mod_rate_limit.count >= 1 && c.mod_rate_limit.window.count() >= 1, "bad mod_rate_limit");
    check(c.connect_rate_per_ip.count >= 1 && c.connect_rate_per_ip.window.count() >= 1, "bad connect rate");
    check(c.fanout_flush.count() >= 0 && c.fanout_flush.count() <= 1000, "fanout_flush out of range");
    check(!c.roles.empty(), "no roles");
    // The role accessors split the list again; they must cope with whatever was accepted.
    (void)c.all_roles();
    (void)c.has_role("chat");
    // What App does with token_ttl (src/app/app.cpp), with a fixed secret.
    try {
      static SeededRandom random{1};
      const auth::JwtCodec codec(auth::JwtConfig{"fuzz-secret", "chatorbit", "chatorbit", std::chrono::seconds{30},
                                                 c.token_ttl, c.accept_legacy_tokens},
                                 SystemClock::instance(), random);
    } catch (const std::invalid_argument&) {
      check(false, "the JWT codec refuses a token_ttl the config accepted");
    }
  } catch (const ConfigError&) {
  }
  return 0;
}
