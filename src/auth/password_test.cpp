#include "auth/password.hpp"

#include <sodium.h>

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace chatorbit::auth {
namespace {

// Cheap parameters where the cost itself is not under test, to keep the suite fast.
constexpr Argon2Params kFast{1, 8 * 1024 * 1024};

// Produced with golang.org/x/crypto/bcrypt v0.58.0 (the library the Go service used):
//   bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), 10)
// run in a scratch module outside the repository.
constexpr std::string_view kGoPassword = "correct horse battery staple";
constexpr std::string_view kGoHash = "$2a$10$qvuDAALRrdbEewtV/MSdT.eDfAylQrDcD9E8.STGX7U7BnOYU2HAy";
// Same tool: bcrypt.GenerateFromPassword([]byte(strings.Repeat("x", 72)), 4).
constexpr std::string_view kGo72Hash = "$2a$04$ReIvNQRifblq//Su4R./ReiMiOte9Zz5fiaBE3S.KW5S1cQ6.dZ.a";
// Same tool, a UTF-8 password: bcrypt.GenerateFromPassword([]byte("pässwörd-ünïcødé-✓"), 4).
constexpr std::string_view kGoUtf8Password = "pässwörd-ünïcødé-✓";  // UTF-8 source text.
constexpr std::string_view kGoUtf8Hash = "$2a$04$nZEb0MlYlv1oQKp3qXQqP.xKXd1vr8Tujx/yt87boD6o.UogiknSy";
// Produced with the Python `bcrypt` package 5.0.0 (pyca, Rust implementation):
//   bcrypt.hashpw(b"Tr0ub4dor&3", bcrypt.gensalt(rounds=10, prefix=b"2b"))
constexpr std::string_view kPyPassword = "Tr0ub4dor&3";
constexpr std::string_view kPy2bHash = "$2b$10$JsgAlhWIALcoLZSyurucruECNf2MhMO7XY1yYFhFNhU1oMItTXN3W";

std::string with_prefix(std::string_view hash, std::string_view prefix) {
  return std::string(prefix) + std::string(hash.substr(prefix.size()));
}

TEST(Password, HashVerifyRoundTrip) {
  const std::string h = hash_password("hunter2");
  EXPECT_TRUE(verify_password("hunter2", h));
  EXPECT_FALSE(verify_password("hunter3", h));
  EXPECT_FALSE(verify_password("", h));
  EXPECT_FALSE(verify_password("hunter2 ", h));
}

TEST(Password, HashUsesOwaspArgon2idParameters) {
  const std::string h = hash_password("hunter2");
  EXPECT_TRUE(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")) << h;
}

TEST(Password, HashesAreSalted) {
  const std::string a = hash_password("same", kFast);
  const std::string b = hash_password("same", kFast);
  EXPECT_NE(a, b);
  EXPECT_TRUE(verify_password("same", a));
  EXPECT_TRUE(verify_password("same", b));
}

TEST(Password, ArbitraryBytesIncludingNulWorkWithArgon2) {
  const std::string with_nul("ab\0cd", 5);
  const std::string h = hash_password(with_nul, kFast);
  EXPECT_TRUE(verify_password(with_nul, h));
  EXPECT_FALSE(verify_password("ab", h));  // Not silently truncated at the NUL.
  const std::string empty = hash_password("", kFast);
  EXPECT_TRUE(verify_password("", empty));
  EXPECT_TRUE(verify_password(std::string_view{}, empty));
  EXPECT_FALSE(verify_password("x", empty));
}

TEST(Password, InvalidParametersThrow) {
  EXPECT_THROW(hash_password("x", Argon2Params{0, 19 * 1024 * 1024}), std::runtime_error);
  EXPECT_THROW(hash_password("x", Argon2Params{2, 1024}), std::runtime_error);
}

TEST(Password, NeedsRehash) {
  const std::string fresh = hash_password("pw");
  EXPECT_FALSE(needs_rehash(fresh));
  const std::string weak = hash_password("pw", kFast);
  EXPECT_TRUE(needs_rehash(weak));
  EXPECT_FALSE(needs_rehash(weak, kFast));
  // Fewer passes alone, or less memory alone, is weaker.
  EXPECT_TRUE(needs_rehash(hash_password("pw", Argon2Params{1, 19 * 1024 * 1024})));
  EXPECT_TRUE(needs_rehash(hash_password("pw", Argon2Params{3, 8 * 1024 * 1024})));
  // Stronger than the target is left alone.
  EXPECT_FALSE(needs_rehash(hash_password("pw", Argon2Params{3, 19 * 1024 * 1024})));
  EXPECT_FALSE(needs_rehash(hash_password("pw", Argon2Params{2, 32 * 1024 * 1024})));

  EXPECT_TRUE(needs_rehash(kGoHash));
  EXPECT_TRUE(needs_rehash(kPy2bHash));
  EXPECT_TRUE(needs_rehash(""));
  EXPECT_TRUE(needs_rehash("$argon2id$v=19$m=19456,t=2,p=1$garbage"));
  EXPECT_TRUE(needs_rehash("plaintext"));
}

TEST(Password, Argon2iIsVerifiedButUpgraded) {
  ASSERT_GE(sodium_init(), 0);
  char out[crypto_pwhash_STRBYTES];
  ASSERT_EQ(crypto_pwhash_str_alg(out, "legacy", 6, 3, 8 * 1024 * 1024, crypto_pwhash_ALG_ARGON2I13), 0);
  const std::string h(out);
  ASSERT_TRUE(h.starts_with("$argon2i$")) << h;
  EXPECT_TRUE(verify_password("legacy", h));
  EXPECT_FALSE(verify_password("legacy!", h));
  EXPECT_TRUE(needs_rehash(h, Argon2Params{1, 8 * 1024 * 1024}));
}

TEST(Password, VerifiesRealGoBcryptHash) {
  EXPECT_TRUE(verify_password(kGoPassword, kGoHash));
  EXPECT_FALSE(verify_password("correct horse battery stapler", kGoHash));
  EXPECT_FALSE(verify_password("Correct horse battery staple", kGoHash));
  EXPECT_FALSE(verify_password("", kGoHash));
  EXPECT_TRUE(verify_password(kGoUtf8Password, kGoUtf8Hash));
  EXPECT_FALSE(verify_password("passwoerd", kGoUtf8Hash));
}

TEST(Password, VerifiesReal2bHash) {
  EXPECT_TRUE(verify_password(kPyPassword, kPy2bHash));
  EXPECT_FALSE(verify_password("Tr0ub4dor&4", kPy2bHash));
}

TEST(Password, BcryptPrefixVariantsAgreeForOrdinaryPasswords) {
  // $2a$, $2b$ and $2y$ differ only in historical bugs that do not touch short ASCII
  // passwords, so relabelling a hash keeps it valid. $2y$ is PHP's name for $2b$.
  EXPECT_TRUE(verify_password(kGoPassword, with_prefix(kGoHash, "$2b$")));
  EXPECT_TRUE(verify_password(kGoPassword, with_prefix(kGoHash, "$2y$")));
  EXPECT_FALSE(verify_password("nope", with_prefix(kGoHash, "$2y$")));
  // $2x$ is the deliberately broken legacy mode: refused.
  EXPECT_FALSE(verify_password(kGoPassword, with_prefix(kGoHash, "$2x$")));
}

TEST(Password, BcryptUsesOnlyFirst72BytesLikeGo) {
  const std::string x72(72, 'x');
  EXPECT_TRUE(verify_password(x72, kGo72Hash));
  // Go's CompareHashAndPassword accepts these too (checked against the same library).
  EXPECT_TRUE(verify_password(x72 + "tail", kGo72Hash));
  EXPECT_TRUE(verify_password(x72 + std::string(1000, 'y'), kGo72Hash));
  EXPECT_FALSE(verify_password(std::string(71, 'x'), kGo72Hash));
}

TEST(Password, BcryptRejectsPasswordsWithNul) {
  // A C implementation would see only "correct horse battery staple" and accept.
  std::string pw(kGoPassword);
  pw += std::string("\0extra", 6);
  EXPECT_FALSE(verify_password(pw, kGoHash));
  EXPECT_FALSE(verify_password(std::string("\0", 1), kGoHash));
}

TEST(Password, MalformedHashesAreRejectedWithoutThrowing) {
  const std::string go(kGoHash);
  const std::string tail = go.substr(7);  // Salt and hash characters.
  std::string bad_char = go;
  bad_char[30] = '!';
  std::string flipped = go;
  flipped.back() = flipped.back() == 'y' ? 'z' : 'y';
  const std::vector<std::string> hashes = {
      "",
      "$",
      "$2a$",
      "$2a$10$short",
      "$2a$99$" + tail,
      "$2a$32$" + tail,
      "$2a$03$" + tail,
      "$2a$1a$" + tail,
      "$2a$10#" + tail,
      "$2$10$" + tail,
      "$2c$10$" + tail,
      go.substr(0, go.size() - 1),
      go + "A",
      go + std::string("\0", 1),
      bad_char,
      flipped,
      go.substr(0, 20) + std::string("\0", 1) + go.substr(21),
      "$argon2id$",
      "$argon2id$v=19$m=19456,t=2,p=1$garbage",
      "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
      "$argon2d$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
      "$argon2i$",
      "$1$saltsalt$hash",
      "$6$rounds=5000$salt$hash",
      "correct horse battery staple",
      std::string(100000, '$'),
  };
  for (const std::string& h : hashes) {
    bool ok = true;
    EXPECT_NO_THROW(ok = verify_password(kGoPassword, h)) << h.substr(0, 80);
    EXPECT_FALSE(ok) << h.substr(0, 80);
    EXPECT_NO_THROW((void)needs_rehash(h));
  }
  // A truncated or corrupted Argon2id hash is refused too.
  const std::string a = hash_password("pw", kFast);
  EXPECT_FALSE(verify_password("pw", a.substr(0, a.size() - 1)));
  EXPECT_FALSE(verify_password("pw", a + std::string("\0", 1)));
  EXPECT_FALSE(verify_password("pw", a.substr(0, 20)));
}

TEST(Password, ConcurrentUseIsSafe) {
  const std::string h = hash_password("shared", kFast);
  std::vector<std::thread> threads;
  std::vector<int> results(4, 0);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      bool ok = verify_password("shared", h) && verify_password(kGoPassword, kGo72Hash) == false &&
                verify_password(kPyPassword, kPy2bHash) && verify_password("x", hash_password("x", kFast));
      results[static_cast<std::size_t>(i)] = ok ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  for (int r : results) EXPECT_EQ(r, 1);
}

}  // namespace
}  // namespace chatorbit::auth
