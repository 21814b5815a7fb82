"""Tokens of the original Go ChatOrbit during a switch from it: HS256 over the same
JWT_SECRET with user_id, email and exp only. Refused unless CHATORBIT_ACCEPT_LEGACY_TOKENS
is on; then they open /ws/chat and call REST routes, and logout and password changes
revoke them as they revoke ours."""
import time

from conftest import Api, auth
import jwt_util
from wsclient import ChatClient, refused, unique_room

SECRET = "legacy-tokens-system-test-secret-0123456789"
ON = {"JWT_SECRET": SECRET, "CHATORBIT_ACCEPT_LEGACY_TOKENS": "true", "CHATORBIT_ADMINS": "boss@example.com"}


def go_token(user_id: str, email: str, exp_in: int = 24 * 3600, secret: str = SECRET,
             alg: str = "HS256") -> str:
    """What the original's POST /login returned: jwt.MapClaims{user_id, email, exp}, signed HS256."""
    claims = {"email": email, "exp": int(time.time()) + exp_in, "user_id": user_id}
    return jwt_util.forge({"alg": alg, "typ": "JWT"}, claims, None if alg == "none" else secret.encode())


def account(api: Api, email: str | None = None) -> tuple[str, str, str]:
    """A registered account (as migrated from the original): (id, email, password)."""
    email, _, password = api.register(email=email)
    me = api.get("/users/me", headers=auth(api.login(email, password))).json()
    return me["id"], email, password


def test_legacy_token_is_refused_by_default(start_server):
    s = start_server({"JWT_SECRET": SECRET})
    api = Api(s)
    user_id, email, _ = account(api)
    legacy = go_token(user_id, email)
    r = api.get("/users/me", headers=auth(legacy))
    assert (r.status_code, r.json()) == (401, {"error": "Unauthorized"})
    status, body, _ = refused(s, token=legacy, room=unique_room())
    assert (status, body["error"]) == (401, "invalid token")
    assert not s.events("legacy_tokens_accepted")


def test_legacy_token_connects_and_calls_rest_when_turned_on(start_server):
    s = start_server(ON)
    warned = s.events("legacy_tokens_accepted")
    assert len(warned) == 1 and warned[0]["level"] == "warn", warned
    assert "CHATORBIT_ACCEPT_LEGACY_TOKENS=false" in warned[0]["advice"] and "24 h" in warned[0]["advice"]
    api = Api(s)
    user_id, email, _ = account(api, email="boss@example.com")
    legacy = go_token(user_id, email)

    r = api.get("/users/me", headers=auth(legacy))
    assert r.status_code == 200, r.text
    # The role is the account's, from the store: the original's tokens carry none.
    assert (r.json()["id"], r.json()["role"]) == (user_id, "admin")
    assert api.get("/users/me", cookies={"token": legacy}).status_code == 200

    room = unique_room()
    with ChatClient(s, legacy, room) as c:
        welcome = c.wait_welcome()
        assert (welcome["user_id"], welcome["role"]) == (user_id, "admin")
        assert c.say("from the original's session")["user_id"] == user_id
    # As the original's front end connects: v1, token in the query, no room.
    with ChatClient(s, legacy, None, v=1) as c:
        c.send_json({"room_id": room, "content": "v1 too"})
        assert c.recv_message(content="v1 too")["user_id"] == user_id


def test_legacy_token_is_still_checked_when_turned_on(start_server):
    s = start_server(ON)
    api = Api(s)
    user_id, email, _ = account(api)
    for bad in (go_token(user_id, email, alg="none"),
                go_token(user_id, email, alg="HS512"),
                go_token(user_id, email, secret="not-the-secret-not-the-secret-not"),
                go_token(user_id, email, exp_in=-3600),
                go_token(user_id.upper(), email),
                go_token("42", email),
                jwt_util.forge({"alg": "HS256", "typ": "JWT"}, {"email": email, "user_id": user_id},
                               SECRET.encode())):
        assert api.get("/users/me", headers=auth(bad)).status_code == 401, jwt_util.claims(bad)
        status, body, _ = refused(s, token=bad, room=unique_room())
        assert (status, body["error"]) == (401, "invalid token")
    # Ours still work beside them, and the setting changes nothing for them.
    token, me = api.new_user()
    assert me["id"] and api.get("/users/me", headers=auth(token)).status_code == 200


def test_logout_revokes_that_legacy_token_and_a_password_change_all_of_them(start_server):
    s = start_server(ON)
    api = Api(s)
    user_id, email, password = account(api)
    first, second = go_token(user_id, email), go_token(user_id, email, exp_in=24 * 3600 - 60)
    room = unique_room()
    with ChatClient(s, first, room) as live:
        live.wait_welcome()
        r = api.post("/logout", headers=auth(first))
        assert (r.status_code, r.json()) == (200, {"message": "Logged out successfully"})
        assert "Max-Age=0" in r.headers["Set-Cookie"]
        live.expect_close(4001)
    assert api.get("/users/me", headers=auth(first)).status_code == 401
    assert api.get("/users/me", headers=auth(second)).status_code == 200, "another browser stays signed in"

    r = api.post("/change-password", headers=auth(second),
                 json={"old_password": password, "new_password": "brand-new-pw"})
    assert r.status_code == 200, r.text
    assert api.get("/users/me", headers=auth(second)).status_code == 401
    # Even one the original signed after the change: it carries no iat, so it predates the floor.
    assert api.get("/users/me", headers=auth(go_token(user_id, email))).status_code == 401
    assert api.get("/users/me", cookies={"token": r.cookies["token"]}).status_code == 200
