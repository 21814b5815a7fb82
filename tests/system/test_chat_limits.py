"""Limits: per-user rate limits, message length, frame size."""
import json
import time

import pytest

from conftest import Api
from wsclient import OP_TEXT, ChatClient, RawWs, new_moderator, unique_room


@pytest.fixture(scope="module")
def limited(binary):
    """A server with a 3 messages / 2 s user limit and 6 / 2 s for moderators."""
    from conftest import Server
    s = Server({"CHATORBIT_RATE_LIMIT": "3/2s", "CHATORBIT_MOD_RATE_LIMIT": "6/2s",
                "CHATORBIT_ADMINS": "admin@example.com"}).start()
    yield s
    code = s.stop()
    s.cleanup()
    assert code == 0, "\n".join(s.logs[-40:])


def test_rate_limit_refuses_with_retry_after(limited):
    api = Api(limited)
    token, _ = api.new_user()
    room = unique_room()
    with ChatClient(limited, token, room, v=2) as c:
        for i in range(3):
            c.say(f"ok {i}")
        c.send_message("one too many", cid="over")
        err = c.recv_error("rate_limited")
        assert 0 < err["retry_after_ms"] <= 2000
        assert isinstance(err["message"], str)
        assert [m["content"] for m in api.get(f"/chat/history/{room}").json()] == ["ok 2", "ok 1", "ok 0"]
        # Recovery once the window has slid past the oldest message.
        time.sleep(err["retry_after_ms"] / 1000 + 0.05)
        assert c.say("after the window")["content"] == "after the window"
    assert len(api.get(f"/chat/history/{room}").json()) == 4


def test_rate_limited_error_carries_cid(limited):
    api = Api(limited)
    token, _ = api.new_user()
    with ChatClient(limited, token, unique_room(), v=2) as c:
        for i in range(3):
            c.say(f"ok {i}")
        c.send_message("over", cid="cid-over")
        assert c.recv_error("rate_limited")["cid"] == "cid-over"


def test_rate_limit_is_per_user_and_per_room(limited):
    api = Api(limited)
    t1, _ = api.new_user()
    t2, _ = api.new_user()
    room, other_room = unique_room(), unique_room()
    with ChatClient(limited, t1, room, v=2) as a, ChatClient(limited, t2, room, v=2) as b:
        for i in range(3):
            a.say(f"a{i}")
        a.send_message("a over")
        a.recv_error("rate_limited")
        assert b.say("b is fine")["content"] == "b is fine"
    with ChatClient(limited, t1, other_room, v=2) as a2:
        assert a2.say("another room")["content"] == "another room"


def test_rate_limit_spans_connections_of_one_user(limited):
    api = Api(limited)
    token, _ = api.new_user()
    room = unique_room()
    with ChatClient(limited, token, room, v=2) as tab1, ChatClient(limited, token, room, v=2) as tab2:
        tab1.say("1")
        tab2.say("2")
        tab1.say("3")
        tab2.send_message("4")
        err = tab2.recv_type("error")  # tab2 also hears tab1's messages
        assert err["code"] == "rate_limited" and err["retry_after_ms"] > 0


def test_moderators_have_their_own_rate_limit(limited):
    api = Api(limited)
    mod, _ = new_moderator(api)
    with ChatClient(limited, mod, unique_room(), v=2) as m:
        for i in range(6):
            m.say(f"mod {i}")
        m.send_message("mod over")
        assert 0 < m.recv_error("rate_limited")["retry_after_ms"] <= 2000


def test_500_characters_accepted_501_too_long(server, api: Api):
    token, _ = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=2) as c:
        assert c.say("a" * 500)["content"] == "a" * 500
        c.send_message("a" * 501, cid="long")
        err = c.recv_error("too_long")
        assert err["cid"] == "long"
        assert c.say("still open")["content"] == "still open"
    assert [len(m["content"]) for m in api.get(f"/chat/history/{room}").json()] == [10, 500]


def test_length_counts_characters_not_bytes(server, api: Api):
    token, _ = api.new_user()
    with ChatClient(server, token, unique_room(), v=2) as c:
        assert c.say("é" * 250 + "世" * 250)["content"] == "é" * 250 + "世" * 250
        c.send_message("é" * 501)
        c.recv_error("too_long")


def test_length_is_measured_after_trimming(server, api: Api):
    token, _ = api.new_user()
    with ChatClient(server, token, unique_room(), v=2) as c:
        c.send_message("   " + "b" * 500 + "\n\n ")
        assert c.recv_message()["content"] == "b" * 500


def test_max_message_chars_is_configurable(start_server):
    s = start_server({"CHATORBIT_MAX_MESSAGE_CHARS": "10"})
    token, _ = Api(s).new_user()
    with ChatClient(s, token, unique_room(), v=2) as c:
        assert c.say("0123456789")["content"] == "0123456789"
        c.send_message("0123456789x")
        c.recv_error("too_long")


def _frame_of(n: int) -> bytes:
    """A JSON message frame of exactly n bytes."""
    skeleton = json.dumps({"type": "message", "content": ""})
    body = json.dumps({"type": "message", "content": "z" * (n - len(skeleton))}).encode()
    assert len(body) == n
    return body


def test_frame_at_the_limit_is_read(server, api: Api):
    token, _ = api.new_user()
    with RawWs(server, token=token, room=unique_room(), v=2) as ws:
        ws.send_frame(OP_TEXT, _frame_of(65536))
        err = ws.recv_json()
        assert (err["type"], err["code"]) == ("error", "too_long")
        ws.send_json({"type": "message", "content": "small"})
        assert ws.recv_json()["content"] == "small"


def test_frame_over_the_limit_closes_1009(server, api: Api):
    token, _ = api.new_user()
    with RawWs(server, token=token, room=unique_room(), v=2) as ws:
        try:
            ws.send_frame(OP_TEXT, _frame_of(65537))
        except OSError:
            pass  # the server may stop reading once it has seen the header
        assert ws.recv_close()[0] == 1009


def test_oversized_frame_header_closes_1009_without_the_payload(server, api: Api):
    token, _ = api.new_user()
    with RawWs(server, token=token, room=unique_room(), v=2) as ws:
        ws.sock.sendall(RawWs.frame(OP_TEXT, b'{"content":"', declared_len=10 * 1024 * 1024))
        assert ws.recv_close()[0] == 1009


def test_frame_limit_is_configurable(start_server):
    s = start_server({"CHATORBIT_WS_MAX_FRAME_BYTES": "1024"})
    token, _ = Api(s).new_user()
    with ChatClient(s, token, unique_room(), v=2) as c:
        c.wait_welcome()
        c.send_raw(_frame_of(1024).decode())
        c.recv_error("too_long")
        c.send_raw(_frame_of(1025).decode())
        c.expect_close(1009)
