#include "auth/authenticator.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <gtest/gtest.h>

#include <string>

#include "auth/revocations.hpp"
#include "core/clock.hpp"
#include "core/random.hpp"

namespace chatorbit::auth {
namespace {

using namespace std::chrono_literals;

const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";
constexpr std::string_view kUser = "507f1f77bcf86cd799439011";

// Test-side base64url and HS256, so that the original's tokens are made without the code under test.
std::string b64url(std::string_view in) {
  static constexpr char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  auto at = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(in[k])); };
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
  }
  if (in.size() - i == 1) {
    const unsigned v = at(i) << 16;
    out += {a[v >> 18], a[(v >> 12) & 63]};
  } else if (in.size() - i == 2) {
    const unsigned v = (at(i) << 16) | (at(i + 1) << 8);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63]};
  }
  return out;
}

std::string sign_hs256(std::string_view payload) {
  std::string input = b64url(R"({"alg":"HS256","typ":"JWT"})") + "." + b64url(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + b64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

// The revocation side of accepting the original's tokens: what logout and a password
// change do to them, through the same Authenticator every route uses.
class AuthenticatorTest : public ::testing::Test {
 protected:
  static JwtConfig config(bool legacy) {
    JwtConfig c;
    c.secret = kSecret;
    c.accept_legacy = legacy;
    return c;
  }
  std::int64_t now() const { return clock_.unix_seconds(); }
  // What the original's auth service signs at login: user_id, email, exp (24 h).
  std::string go_token(std::int64_t exp_in = 24 * 3600) const {
    return sign_hs256(R"({"email":"bob@example.com","exp":)" + std::to_string(now() + exp_in) + R"(,"user_id":")" +
                      std::string(kUser) + "\"}");
  }

  ManualClock clock_;
  SeededRandom random_{7};
  RevocationList revocations_{clock_};
  JwtCodec strict_{config(false), clock_, random_};
  JwtCodec legacy_{config(true), clock_, random_};
  Authenticator by_default_{strict_, revocations_};
  Authenticator migrating_{legacy_, revocations_};
};

TEST_F(AuthenticatorTest, LegacyTokenOnlyWhenTurnedOn) {
  const auto token = go_token();
  EXPECT_FALSE(by_default_.verify(token));
  const auto claims = migrating_.verify(token);
  ASSERT_TRUE(claims);
  EXPECT_TRUE(claims->legacy);
  EXPECT_EQ(claims->user_id, kUser);
}

TEST_F(AuthenticatorTest, LogoutRevokesThatLegacyTokenOnly) {
  const auto token = go_token();
  const auto other = go_token(24 * 3600 - 5);  // the same user's, from another browser
  const auto claims = migrating_.verify(token);
  ASSERT_TRUE(claims);
  // What AuthService::logout does with the claims it verified.
  revocations_.add(claims->jti, claims->exp + legacy_.config().leeway.count());
  EXPECT_FALSE(migrating_.verify(token));
  EXPECT_TRUE(migrating_.verify(other));
}

TEST_F(AuthenticatorTest, PasswordChangeFloorRevokesLegacyTokensButNotLaterOnes) {
  const auto token = go_token();
  ASSERT_TRUE(migrating_.verify(token));
  clock_.advance(10min);
  // What AuthService::change_password does: a floor one second ahead, kept as long as
  // any token accepted now may live.
  const auto not_before = now() + 1;
  revocations_.add_floor(std::string(kUser), not_before,
                         not_before + legacy_.max_token_lifetime().count() + legacy_.config().leeway.count());
  EXPECT_FALSE(migrating_.verify(token)) << "a token without iat predates every floor";
  EXPECT_FALSE(migrating_.verify(go_token())) << "even one the original signed after the change";
  const auto fresh = legacy_.issue({std::string(kUser), "bob@example.com", "bob", "user"}, not_before);
  const auto ours = migrating_.verify(fresh);
  ASSERT_TRUE(ours);
  EXPECT_FALSE(ours->legacy);
}

TEST_F(AuthenticatorTest, FloorOutlivesLegacyTokensWhenOurTtlIsShorter) {
  JwtConfig c = config(true);
  c.ttl = 1h;
  JwtCodec short_lived(c, clock_, random_);
  Authenticator auth(short_lived, revocations_);
  const auto token = go_token();  // 24 h left
  const auto not_before = now() + 1;
  revocations_.add_floor(std::string(kUser), not_before,
                         not_before + short_lived.max_token_lifetime().count() + c.leeway.count());
  // Past our own ttl, the legacy token has hours left: the floor must still hold it.
  clock_.advance(23h);
  revocations_.add("unrelated", now() + 60);  // pruning runs on writes
  EXPECT_FALSE(auth.verify(token));
}

TEST_F(AuthenticatorTest, OurTokensAreUnaffectedBySetting) {
  const Identity id{std::string(kUser), "bob@example.com", "bob", "user"};
  const auto mine = legacy_.issue(id);
  for (const Authenticator* a : {&by_default_, &migrating_}) {
    const auto claims = a->verify(mine);
    ASSERT_TRUE(claims);
    EXPECT_FALSE(claims->legacy);
    EXPECT_EQ(claims->jti.size(), 32u);
  }
  revocations_.add(migrating_.verify(mine)->jti, now() + 24 * 3600);
  EXPECT_FALSE(by_default_.verify(mine));
  EXPECT_FALSE(migrating_.verify(mine));
}

}  // namespace
}  // namespace chatorbit::auth
