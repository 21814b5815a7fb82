#include "gateway/routes.hpp"

namespace chatorbit::gateway {

const std::vector<RouteSpec>& forwarded_routes() {
  using enum boost::beast::http::verb;
  using enum Service;
  static const std::vector<RouteSpec> table = {
      {post, "/register", auth, false},
      {post, "/login", auth, false},
      {post, "/change-password", auth, true},
      // Logout clears the cookie whatever the token says: the service decides.
      {post, "/logout", auth, false},
      {get, "/user/{id}", user, false},
      {get, "/users/me", user, true},
      {put, "/users/{id}/role", user, true},
      {post, "/chat/rooms", chat, false},
      {get, "/chat/rooms", chat, false},
      {get, "/chat/history/{room}", chat, false},
      {get, "/chat/rooms/{room}/presence", chat, false},
      // Without an Upgrade header: the chat service's own explanation.
      {get, "/ws/chat", chat, false},
      {post, "/chat/rooms/{room}/bans", chat, true},
      {get, "/chat/rooms/{room}/bans", chat, true},
      {delete_, "/chat/rooms/{room}/bans/{user_id}", chat, true},
      {post, "/chat/bans", chat, true},
      {get, "/chat/bans", chat, true},
      {delete_, "/chat/bans/{user_id}", chat, true},
      {delete_, "/chat/rooms/{room}/messages/{id}", chat, true},
      {post, "/chat/rooms/{room}/slow", chat, true},
      {post, "/chat/rooms/{room}/clear", chat, true},
      {get, "/chat/rooms/{room}/moderation", chat, true},
  };
  return table;
}

std::string_view service_name(Service s) {
  switch (s) {
    case Service::auth: return "auth";
    case Service::user: return "user";
    case Service::chat: return "chat";
  }
  return "?";
}

}  // namespace chatorbit::gateway
