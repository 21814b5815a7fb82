#pragma once
// The auth service: POST /register, /login, /change-password, /logout, compatible with
// the original's wire contract, with argon2id hashing off the event loop, bcrypt
// hashes upgraded on login, failed-login throttling and logout that revokes the token.

#include <boost/asio/thread_pool.hpp>

#include <string>
#include <vector>

#include "auth/account_events.hpp"
#include "auth/authenticator.hpp"
#include "auth/jwt.hpp"
#include "auth/login_throttle.hpp"
#include "auth/password.hpp"
#include "auth/revocations.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "engine/engine.hpp"
#include "net/router.hpp"
#include "store/store_worker.hpp"

namespace chatorbit::auth {

struct AuthDeps {
  store::StoreWorker& store;
  boost::asio::thread_pool& cpu;  ///< password hashing runs here
  const JwtCodec& jwt;
  RevocationList& revocations;  ///< this node's cache
  engine::Engine& engine;       ///< the shared copy of revocations, for other nodes' refills
  const Authenticator& authenticator;
  AccountEvents& events;            ///< revocations reach live connections through it
  LoginThrottle& pair_throttle;     ///< one account from one address: locked past its limit
  LoginThrottle& account_throttle;  ///< one account from anywhere: growing delays, never a lock
  LoginThrottle& address_throttle;  ///< one address, any account: locked past its limit
  ObjectIdGenerator& ids;
  const Clock& clock;
  std::vector<std::string> admins;  ///< lower-cased emails that get the admin role
  Argon2Params argon2;
};

class AuthService {
 public:
  explicit AuthService(AuthDeps deps) : d_(std::move(deps)) {}
  void register_routes(http::Router& router);

  /// The role an account should have: admin if its email is listed, else `stored`.
  std::string effective_role(const std::string& email_lower, const std::string& stored) const;

 private:
  boost::asio::awaitable<http::Response> register_user(http::Context& ctx);
  boost::asio::awaitable<http::Response> login(http::Context& ctx);
  boost::asio::awaitable<http::Response> change_password(http::Context& ctx);
  boost::asio::awaitable<http::Response> logout(http::Context& ctx);

  /// Throws 429 with Retry-After if `key` is blocked by `throttle`.
  /// Throws 429 (with Retry-After) if `key` is blocked by `throttle`.
  boost::asio::awaitable<void> enforce(LoginThrottle& throttle, std::string key) const;
  /// The pair throttle's key for an account (lower-cased email) and a client address.
  static std::string pair_key(const std::string& account, const std::string& address);
  boost::asio::awaitable<bool> verify(std::string password, std::string hash);
  boost::asio::awaitable<std::string> hash(std::string password);
  /// Writes a revocation (already stored) to the engine. An engine that cannot be
  /// reached is logged, not answered: the store has the revocation, and every refill
  /// (when this node's broker is back) puts it into the engine.
  boost::asio::awaitable<void> share(AccountEvents::Revocation revocation);

  AuthDeps d_;
};

}  // namespace chatorbit::auth
