"""Sessions end when the account says so: a role change reaches open WebSockets at
once, a password change revokes every older token, a logout closes that token's
connections. (Issue: hardening, defects 1 and 2.)"""
import time

from conftest import Api, auth
from wsclient import ChatClient, admin_token, new_moderator, refused, unique_room


def test_demoted_moderator_loses_moderator_powers_on_open_and_new_websockets(server, api: Api):
    room = unique_room()
    adm = admin_token(api)
    mod, me = new_moderator(api)
    assert api.post(f"/chat/rooms/{room}/slow", headers=auth(adm), json={"seconds": 60}).status_code == 200
    with ChatClient(server, mod, room) as c:
        assert c.wait_welcome()["role"] == "moderator"
        c.say("one")
        c.say("two")  # moderators are not held by slow mode
        r = api.put(f"/users/{me['id']}/role", headers=auth(adm), json={"role": "user"})
        assert r.status_code == 200, r.text
        assert c.recv_type("role")["role"] == "user"
        c.send_message("three")
        assert c.recv_error("slow_mode")["retry_after_ms"] > 0
    # The token still says "moderator"; the account does not.
    with ChatClient(server, mod, room) as c2:
        assert c2.wait_welcome()["role"] == "user"


def test_promotion_reaches_an_open_websocket(server, api: Api):
    room = unique_room()
    adm = admin_token(api)
    token, me = api.new_user()
    assert api.post(f"/chat/rooms/{room}/slow", headers=auth(adm), json={"seconds": 60}).status_code == 200
    with ChatClient(server, token, room) as c:
        assert c.wait_welcome()["role"] == "user"
        assert api.put(f"/users/{me['id']}/role", headers=auth(adm), json={"role": "moderator"}).status_code == 200
        assert c.recv_type("role")["role"] == "moderator"
        c.say("one")
        c.say("two")


def test_password_change_revokes_every_older_token(server, api: Api):
    email, _, password = api.register()
    old_a = api.login(email, password)
    old_b = api.login(email, password)
    room = unique_room()
    with ChatClient(server, old_b, room) as live:
        live.wait_welcome()
        r = api.post("/change-password", headers=auth(old_a),
                     json={"old_password": password, "new_password": "brand-new-pw"})
        assert r.status_code == 200, r.text
        assert r.json() == {"message": "Password changed successfully"}
        frames = live.expect_close(4001)
        assert any(f.get("code") == "unauthorized" for f in frames), frames
    for old in (old_a, old_b):
        assert api.get("/users/me", headers=auth(old)).status_code == 401
        status, body, _ = refused(server, token=old, room=room)
        assert (status, body["error"]) == (401, "invalid token")
    # The cookie set by the change, and a login in the same second, are good.
    fresh_cookie = r.cookies["token"]
    assert api.get("/users/me", cookies={"token": fresh_cookie}).status_code == 200
    new = api.login(email, "brand-new-pw")
    assert api.get("/users/me", headers=auth(new)).status_code == 200
    with ChatClient(server, new, room) as c:
        c.wait_welcome()


def test_password_change_revocation_survives_a_restart(start_server, tmp_path):
    s = start_server(data_dir=str(tmp_path))
    api = Api(s)
    email, _, password = api.register()
    old = api.login(email, password)
    assert api.post("/change-password", headers=auth(old),
                    json={"old_password": password, "new_password": "brand-new-pw"}).status_code == 200
    s.stop()
    s2 = start_server(data_dir=str(tmp_path))
    assert Api(s2).get("/users/me", headers=auth(old)).status_code == 401
    assert Api(s2).get("/users/me", headers=auth(Api(s2).login(email, "brand-new-pw"))).status_code == 200


def test_logout_closes_that_tokens_websockets_only(server, api: Api):
    email, _, password = api.register()
    first = api.login(email, password)
    second = api.login(email, password)
    room = unique_room()
    with ChatClient(server, first, room) as a, ChatClient(server, second, room) as b:
        a.wait_welcome()
        b.wait_welcome()
        assert api.post("/logout", headers=auth(first)).status_code == 200
        a.expect_close(4001)
        time.sleep(0.2)
        assert b.say("still here")["content"] == "still here"
