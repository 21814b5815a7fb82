"""The WebSocket handshake: who may connect, and the HTTP refusals before the upgrade."""
import json

import pytest
import requests

from conftest import Api, auth, wait_until
import jwt_util
from wsclient import ChatClient, HandshakeRefused, RawWs, refused, unique_room, ws_url


def test_invalid_token_is_refused(server, api: Api):
    token, _ = api.new_user()
    good = jwt_util.claims(token)
    for bad in ("garbage", token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
                jwt_util.forge({"alg": "none", "typ": "JWT"}, good, None),
                jwt_util.forge({"alg": "HS256", "typ": "JWT"}, good, b"not-the-secret")):
        status, body, _ = refused(server, token=bad, room=unique_room())
        assert (status, body["error"]) == (401, "invalid token"), bad


def test_invalid_bearer_header_is_refused(server):
    status, body, _ = refused(server, url=ws_url(server, None, unique_room()), headers=auth("not.a.jwt"))
    assert (status, body["error"]) == (401, "invalid token")


def test_revoked_token_is_refused(server, api: Api):
    token, _ = api.new_user()
    assert api.post("/logout", headers=auth(token)).status_code == 200
    status, body, _ = refused(server, token=token, room=unique_room())
    assert (status, body["error"]) == (401, "invalid token")


def test_anonymous_viewers_can_be_disabled(start_server):
    s = start_server({"CHATORBIT_ANONYMOUS_VIEWERS": "false"})
    status, body, _ = refused(s, token=None, room=unique_room())
    assert (status, body["error"]) == (401, "missing token")
    token, me = Api(s).new_user()
    with ChatClient(s, token, unique_room(), v=2) as c:
        assert c.wait_welcome()["user_id"] == me["id"]


@pytest.mark.parametrize("room", ["bad room", "x" * 65, "semi;colon", "ünï", "dot.dot"])
def test_bad_room_id_is_refused(server, api: Api, room):
    token, _ = api.new_user()
    status, body, _ = refused(server, token=token, room=room)
    assert status == 400
    assert body["error"] == "invalid room_id"
    assert isinstance(body.get("detail"), str) and body["detail"]


def test_refusal_body_is_json(server):
    try:
        RawWs(server, token="garbage", room=unique_room())
    except HandshakeRefused as e:
        assert e.status == 401
        assert e.headers["content-type"].startswith("application/json")
        assert b'"invalid token"' in e.body
    else:
        raise AssertionError("accepted")


def test_plain_get_needs_upgrade(server):
    r = requests.get(f"{server.url}/ws/chat?room_id=general", timeout=10)
    assert r.status_code == 426
    assert r.json()["error"] == "websocket upgrade required"


def test_unsupported_websocket_version_is_refused(server):
    try:
        RawWs(server, room=unique_room(), version="8")
    except HandshakeRefused as e:
        assert e.status == 426
        assert json.loads(e.body)["error"] == "websocket upgrade required"
    else:
        raise AssertionError("version 8 accepted")


def test_raw_handshake_accepts_version_13(server, api: Api):
    token, me = api.new_user()
    with RawWs(server, token=token, room=unique_room(), v=2) as ws:
        w = ws.recv_json(skip=("presence",))
        assert (w["type"], w["user_id"]) == ("welcome", me["id"])


def test_foreign_origin_is_refused(start_server):
    s = start_server({"CHATORBIT_CORS_ORIGINS": "http://allowed.example"})
    status, body, _ = refused(s, token=None, room=unique_room(), origin="http://evil.example")
    assert (status, body["error"]) == (403, "origin not allowed")
    with ChatClient(s, None, unique_room(), v=2, origin="http://allowed.example") as c:
        assert c.wait_welcome()["read_only"] is True


def test_origin_check_is_exact(start_server):
    s = start_server({"CHATORBIT_CORS_ORIGINS": "http://allowed.example,https://app.example"})
    for origin in ("http://allowed.example.evil.com", "https://allowed.example", "http://allowed.example:81",
                   "null"):
        status, body, _ = refused(s, token=None, room=unique_room(), origin=origin)
        assert (status, body["error"]) == (403, "origin not allowed"), origin
    with ChatClient(s, None, unique_room(), v=2, origin="https://app.example") as c:
        c.wait_welcome()


def test_connections_per_address_are_capped(start_server):
    s = start_server({"CHATORBIT_MAX_CONNECTIONS_PER_IP": "3"})
    room = unique_room()
    clients = [ChatClient(s, None, room, v=2) for _ in range(3)]
    try:
        for c in clients:
            c.wait_welcome()
        status, body, headers = refused(s, token=None, room=room)
        assert (status, body["error"]) == (429, "too many connections")
        assert int(headers["Retry-After"]) >= 0
        clients.pop().close()

        def can_connect():
            try:
                clients.append(ChatClient(s, None, room, v=2))
                return True
            except Exception:
                return False
        assert wait_until(can_connect, timeout=5, interval=0.1), "a slot frees when a connection closes"
    finally:
        for c in clients:
            c.close()


def test_connect_rate_per_address_is_limited(start_server):
    s = start_server({"CHATORBIT_CONNECT_RATE_PER_IP": "5/2s"})
    room = unique_room()
    for _ in range(5):
        ChatClient(s, None, room, v=2).close()
    status, body, headers = refused(s, token=None, room=room)
    assert (status, body["error"]) == (429, "too many connections")
    assert 1 <= int(headers["Retry-After"]) <= 2

    def can_connect():
        try:
            ChatClient(s, None, room, v=2).close()
            return True
        except Exception:
            return False
    assert wait_until(can_connect, timeout=5, interval=0.2), "the window slides"


def test_shutdown_tells_viewers_to_reconnect_with_1012(start_server):
    s = start_server()
    token, _ = Api(s).new_user()
    c = ChatClient(s, token, unique_room(), v=2)
    anon = ChatClient(s, None, unique_room(), v=1)
    c.wait_welcome()
    c.drain(0.2)  # unread frames would hold up the client's side of the closing handshake
    assert s.stop() == 0
    c.expect_close(1012)
    anon.expect_close(1012)
