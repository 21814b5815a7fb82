#pragma once
// The user service: GET /user/{id} (the original's public profile), GET /users/me,
// and PUT /users/{id}/role for admins.

#include "auth/account_events.hpp"
#include "auth/authenticator.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "net/router.hpp"
#include "store/store_worker.hpp"

namespace chatorbit::user {

struct UserDeps {
  store::StoreWorker& store;
  const auth::Authenticator& authenticator;
  auth::AccountEvents& events;  ///< role changes reach live connections through it
  ObjectIdGenerator& ids;
  const Clock& clock;
};

class UserService {
 public:
  explicit UserService(UserDeps deps) : d_(deps) {}
  void register_routes(http::Router& router);

 private:
  boost::asio::awaitable<http::Response> get_user(http::Context& ctx);
  boost::asio::awaitable<http::Response> me(http::Context& ctx);
  boost::asio::awaitable<http::Response> set_role(http::Context& ctx);

  UserDeps d_;
};

}  // namespace chatorbit::user
