#include "core/config.hpp"

#include <gtest/gtest.h>

namespace chatorbit {
namespace {

Config parse(std::map<std::string, std::string> env, std::vector<std::string> args = {}) {
  return parse_config(env, args).config;
}

TEST(Config, Defaults) {
  const auto c = parse({});
  EXPECT_EQ(c.port, 8080);
  EXPECT_EQ(c.roles, "all");
  EXPECT_TRUE(c.all_roles());
  EXPECT_TRUE(c.has_role("auth"));
  EXPECT_EQ(c.data_dir, "./data");
  EXPECT_TRUE(c.jwt_secret.empty());
  EXPECT_EQ(c.token_ttl, std::chrono::hours{24});
}

TEST(Config, EnvironmentThenFlagsWin) {
  const auto c = parse({{"PORT", "9000"}, {"LOG_LEVEL", "DEBUG"}}, {"--port", "9100"});
  EXPECT_EQ(c.port, 9100);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(parse({}, {"--port=0"}).port, 0);
}

TEST(Config, ListsAreSplitTrimmedAndAdminsLowerCased) {
  const auto c = parse({{"CHATORBIT_ADMINS", " Boss@Example.com, ,mod@x.io "},
                        {"CHATORBIT_CORS_ORIGINS", "http://localhost:8080,https://App.example"}});
  EXPECT_EQ(c.admins, (std::vector<std::string>{"boss@example.com", "mod@x.io"}));
  EXPECT_EQ(c.cors_origins, (std::vector<std::string>{"http://localhost:8080", "https://App.example"}));
}

TEST(Config, RolesAreChecked) {
  const auto c = parse({{"CHATORBIT_ROLE", "auth,user"}});
  EXPECT_FALSE(c.all_roles());
  EXPECT_TRUE(c.has_role("user"));
  EXPECT_FALSE(c.has_role("chat"));
  EXPECT_THROW(parse({{"CHATORBIT_ROLE", "auth,bogus"}}), ConfigError);
}

TEST(Config, BadValuesNameTheSetting) {
  try {
    parse({{"PORT", "80x"}});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("PORT"), std::string::npos);
  }
  EXPECT_THROW(parse({{"PORT", "70000"}}), ConfigError);
  EXPECT_THROW(parse({}, {"--no-such-flag", "1"}), ConfigError);
  EXPECT_THROW(parse({}, {"--port"}), ConfigError);
  EXPECT_THROW(parse({}, {"positional"}), ConfigError);
  EXPECT_THROW(parse({{"LOG_LEVEL", "loud"}}), ConfigError);
}

// Found by fuzz/config_fuzz: 0 and 10000000h were accepted, then auth::JwtCodec threw
// std::invalid_argument at start-up, with a message that named no setting.
TEST(Config, TokenTtlOutsideWhatTheJwtCodecAcceptsIsAConfigError) {
  for (const char* bad : {"0", "0s", "0ms", "876001h", "10000000h"}) {
    try {
      parse({}, {std::string("--token-ttl=") + bad});
      ADD_FAILURE() << "accepted --token-ttl=" << bad;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("--token-ttl"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse({{"CHATORBIT_TOKEN_TTL", "0"}}), ConfigError);
  EXPECT_EQ(parse({}, {"--token-ttl=1s"}).token_ttl, std::chrono::seconds{1});
  EXPECT_EQ(parse({}, {"--token-ttl=1ms"}).token_ttl, std::chrono::seconds{1});  // rounded up
  EXPECT_EQ(parse({}, {"--token-ttl=876000h"}).token_ttl, std::chrono::hours{876000});
}

TEST(Config, LegacyTokensAreRefusedUnlessTurnedOn) {
  EXPECT_FALSE(parse({}).accept_legacy_tokens);
  EXPECT_TRUE(parse({{"CHATORBIT_ACCEPT_LEGACY_TOKENS", "true"}}).accept_legacy_tokens);
  EXPECT_TRUE(parse({}, {"--accept-legacy-tokens=on"}).accept_legacy_tokens);
  EXPECT_FALSE(
      parse({{"CHATORBIT_ACCEPT_LEGACY_TOKENS", "true"}}, {"--accept-legacy-tokens", "0"}).accept_legacy_tokens);
  try {
    parse({{"CHATORBIT_ACCEPT_LEGACY_TOKENS", "sometimes"}});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("CHATORBIT_ACCEPT_LEGACY_TOKENS"), std::string::npos) << e.what();
  }
  EXPECT_NE(config_help().find("--accept-legacy-tokens"), std::string::npos);
}

TEST(Config, HelpIsAFlagNotAnError) {
  EXPECT_TRUE(parse_config({}, {"--help"}).help);
  const auto help = config_help();
  for (const char* name : {"PORT", "JWT_SECRET", "LOG_LEVEL", "CHATORBIT_ROLE", "CHATORBIT_DATA_DIR",
                           "CHATORBIT_ADMINS", "CHATORBIT_CORS_ORIGINS", "--port", "--data-dir"}) {
    EXPECT_NE(help.find(name), std::string::npos) << name;
  }
}

TEST(Config, DurationsAndRates) {
  EXPECT_EQ(parse_duration("30", "x"), std::chrono::seconds{30});
  EXPECT_EQ(parse_duration("30s", "x"), std::chrono::seconds{30});
  EXPECT_EQ(parse_duration("5m", "x"), std::chrono::seconds{300});
  EXPECT_EQ(parse_duration("2h", "x"), std::chrono::seconds{7200});
  EXPECT_EQ(parse_duration("1500ms", "x"), std::chrono::seconds{2});
  EXPECT_THROW(parse_duration("", "x"), ConfigError);
  EXPECT_THROW(parse_duration("5y", "x"), ConfigError);
  const auto r = parse_rate("20/30s", "x");
  EXPECT_EQ(r.count, 20);
  EXPECT_EQ(r.window, std::chrono::seconds{30});
  EXPECT_EQ(parse_rate("100/m", "x").window, std::chrono::seconds{60});
  EXPECT_THROW(parse_rate("20", "x"), ConfigError);
  EXPECT_THROW(parse_rate("0/30s", "x"), ConfigError);
  EXPECT_THROW(parse_rate("5/0s", "x"), ConfigError);
}

TEST(Config, TrustedProxiesAreValidatedNamingTheBadEntry) {
  EXPECT_TRUE(parse({}).trusted_proxies.empty()) << "nobody is trusted by default";
  const auto c = parse({{"CHATORBIT_TRUSTED_PROXIES", "10.0.0.0/8, ::1 ,192.168.1.7"}});
  EXPECT_EQ(c.trusted_proxies, (std::vector<std::string>{"10.0.0.0/8", "::1", "192.168.1.7"}));
  try {
    parse({}, {"--trusted-proxies", "10.0.0.0/8,10.0.0.300"});
    FAIL() << "a bad entry must be refused";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("--trusted-proxies"), std::string::npos) << what;
    EXPECT_NE(what.find("'10.0.0.300'"), std::string::npos) << what;
  }
  EXPECT_THROW(parse({{"CHATORBIT_TRUSTED_PROXIES", "10.0.0.0/33"}}), ConfigError);
}

}  // namespace
}  // namespace chatorbit
