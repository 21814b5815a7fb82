"""Cookie-authenticated writes cannot be forged from another page: a state-changing
request that a browser sent with the session cookie must be declared JSON and come
from an allowed Origin. Bearer tokens are unaffected. (Issue: hardening, defect 3.)"""
import pytest

from conftest import Api, auth
from wsclient import ChatClient, admin_token, refused, unique_room

GOOD = "http://good.example"
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def guarded(binary):
    from conftest import Server
    s = Server({"CHATORBIT_CORS_ORIGINS": GOOD, "CHATORBIT_ADMINS": "admin@example.com"}).start()
    yield s
    code = s.stop()
    s.cleanup()
    assert code == 0


def slow(api: Api, room: str, **kw):
    return api.post(f"/chat/rooms/{room}/slow", **kw)


def test_text_plain_cookie_post_from_a_foreign_origin_is_refused(guarded):
    api = Api(guarded)
    room = unique_room()
    cookie = {"token": admin_token(api)}
    r = slow(api, room, cookies=cookie, data='{"seconds": 30}',
             headers={"Content-Type": "text/plain", "Origin": EVIL})
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "origin not allowed"
    # No Origin at all (a form from an old browser, or a script) is not an allowed one.
    r = slow(api, room, cookies=cookie, data='{"seconds": 30}', headers={"Content-Type": "application/json"})
    assert r.status_code == 403
    assert api.get("/chat/rooms").json() == [] or all(
        x["slow_mode_seconds"] == 0 for x in api.get("/chat/rooms").json() if x["room_id"] == room)


def test_cookie_post_from_the_allowed_origin_must_be_json(guarded):
    api = Api(guarded)
    room = unique_room()
    cookie = {"token": admin_token(api)}
    r = slow(api, room, cookies=cookie, data='{"seconds": 30}', headers={"Content-Type": "text/plain", "Origin": GOOD})
    assert r.status_code == 415, r.text
    assert r.json()["error"] == "unsupported media type"
    r = slow(api, room, cookies=cookie, json={"seconds": 30}, headers={"Origin": GOOD})
    assert r.status_code == 200, r.text
    r = slow(api, room, cookies=cookie, data='{"seconds": 0}',
             headers={"Content-Type": "Application/JSON; charset=utf-8", "Origin": GOOD})
    assert r.status_code == 200, r.text


def test_forged_logout_keeps_the_session(guarded):
    api = Api(guarded)
    _, _, _ = email_pw = api.register()
    token = api.login(email_pw[0], email_pw[2])
    r = api.post("/logout", cookies={"token": token}, headers={"Content-Type": "text/plain", "Origin": EVIL})
    assert r.status_code == 403
    assert api.get("/users/me", headers=auth(token)).status_code == 200
    # The original's front end logs out with a bodyless POST from its own origin.
    r = api.post("/logout", cookies={"token": token}, headers={"Origin": GOOD})
    assert r.status_code == 200
    assert api.get("/users/me", headers=auth(token)).status_code == 401


def test_bearer_requests_are_unaffected(guarded):
    api = Api(guarded)
    room = unique_room()
    adm = admin_token(api)
    r = slow(api, room, data='{"seconds": 0}', headers={**auth(adm), "Content-Type": "text/plain", "Origin": EVIL})
    assert r.status_code == 200, r.text


def test_websocket_handshake_by_cookie_needs_an_allowed_origin(guarded):
    api = Api(guarded)
    token, _ = api.new_user()
    room = unique_room()
    for origin in (EVIL, None):
        status, body, _ = refused(guarded, token=None, room=room, origin=origin, headers={"Cookie": f"token={token}"})
        assert (status, body["error"]) == (403, "origin not allowed"), origin
    with ChatClient(guarded, None, room, origin=GOOD, headers={"Cookie": f"token={token}"}) as c:
        assert c.wait_welcome()["read_only"] is False
    # A token in the query is not something a foreign page can attach on its own.
    with ChatClient(guarded, token, room) as c:
        assert c.wait_welcome()["read_only"] is False


def test_without_an_allowlist_a_cookie_write_must_come_from_this_host(start_server):
    s = start_server({"CHATORBIT_ADMINS": "admin@example.com"})
    api = Api(s)
    room = unique_room()
    cookie = {"token": admin_token(api)}
    # A sibling site (same site for SameSite=Lax) forging a bodyless POST.
    r = api.post(f"/chat/rooms/{room}/clear", cookies=cookie, headers={"Origin": EVIL})
    assert r.status_code == 403, r.text
    r = api.post(f"/chat/rooms/{room}/clear", cookies=cookie, headers={"Origin": f"http://127.0.0.1:{s.port}"})
    assert r.status_code == 200, r.text
    # No Origin: not a browser, so not a forgery (curl, the original's Go client).
    assert api.post(f"/chat/rooms/{room}/clear", cookies=cookie).status_code == 200
    # A body must still be declared JSON.
    r = slow(api, room, cookies=cookie, data='{"seconds": 5}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    token, _ = api.new_user()
    status, body, _ = refused(s, token=None, room=room, origin=EVIL, headers={"Cookie": f"token={token}"})
    assert (status, body["error"]) == (403, "origin not allowed")
