"""Bad client frames: typed `invalid` errors and a connection that survives, or the close
code RFC 6455 asks for when the frame breaks the protocol itself."""
import json
import struct

import pytest

from conftest import Api
from wsclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, ChatClient, RawWs, unique_room)


@pytest.fixture
def chat(server, api: Api):
    token, me = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=2) as c:
        c.wait_welcome()
        c.me, c.api = me, api
        yield c


def survives(c: ChatClient) -> None:
    """The connection still works, and the bad frame stored nothing."""
    room = c.room
    assert c.say("still alive")["content"] == "still alive"
    assert [m["content"] for m in c.api.get(f"/chat/history/{room}").json()] == ["still alive"]


@pytest.mark.parametrize("raw", [
    "not json",
    "{\"content\": \"unterminated",
    "[\"a\", \"list\"]",
    "\"just a string\"",
    "42",
    "null",
    "",
])
def test_non_object_frames_are_invalid(chat, raw):
    chat.send_raw(raw)
    err = chat.recv_error("invalid")
    assert err["type"] == "error" and isinstance(err["message"], str) and err["message"]
    survives(chat)


def test_binary_frame_is_invalid(chat):
    chat.send_raw(json.dumps({"content": "as binary"}).encode())
    chat.recv_error("invalid")
    survives(chat)


@pytest.mark.parametrize("frame", [
    {},
    {"type": "message"},
    {"content": None},
    {"content": 5},
    {"content": ["hi"]},
    {"content": {"text": "hi"}},
    {"content": True},
    {"content": "hi", "room_id": {}},
    {"content": "hi", "room_id": 7},
    {"content": "hi", "room_id": "bad room"},
    {"content": "hi", "cid": 12},
    {"type": 5, "content": "hi"},
], ids=lambda f: json.dumps(f))
def test_bad_fields_are_invalid(chat, frame):
    chat.send_json(frame)
    chat.recv_error("invalid")
    survives(chat)


@pytest.mark.parametrize("content", ["", " ", "   \t\n  "])
def test_empty_or_whitespace_content_is_invalid(chat, content):
    chat.send_message(content)
    chat.recv_error("invalid")
    survives(chat)


@pytest.mark.parametrize("content", ["bell\u0007", "nul\u0000byte", "esc\u001b[31m", "del\u007f", "csi\u009b31m"],
                         ids=["bell", "nul", "esc", "del", "c1"])
def test_control_characters_are_invalid(chat, content):
    chat.send_message(content)
    chat.recv_error("invalid")
    survives(chat)


def test_unknown_type_is_invalid(chat):
    chat.send_json({"type": "teleport", "content": "hi"})
    chat.recv_error("invalid")
    survives(chat)


def test_invalid_error_in_v1(server, api: Api):
    token, _ = api.new_user()
    room = unique_room()
    with ChatClient(server, token, room, v=1) as c:
        c.send_raw("not json")
        err = c.recv_json()
        assert err.get("code") == "invalid" and "content" not in err, err
        assert c.say("fine")["content"] == "fine"


def test_invalid_utf8_in_text_frame_closes_1007(server, api: Api):
    token, _ = api.new_user()
    room = unique_room()
    with RawWs(server, token=token, room=room, v=2) as ws:
        ws.send_frame(OP_TEXT, b'{"content":"bad \xff\xfe byte"}')
        assert ws.recv_close()[0] == 1007
    assert api.get(f"/chat/history/{room}").json() == []


def test_overlong_utf8_encoding_closes_1007(server, api: Api):
    token, _ = api.new_user()
    with RawWs(server, token=token, room=unique_room(), v=2) as ws:
        ws.send_frame(OP_TEXT, b'{"content":"\xc0\xaf"}')  # overlong "/"
        assert ws.recv_close()[0] == 1007


def test_utf16_surrogate_in_utf8_closes_1007(server, api: Api):
    token, _ = api.new_user()
    with RawWs(server, token=token, room=unique_room(), v=2) as ws:
        ws.send_frame(OP_TEXT, b'{"content":"\xed\xa0\x80"}')
        assert ws.recv_close()[0] == 1007


def test_invalid_utf8_in_binary_frame_is_invalid(server, api: Api):
    token, _ = api.new_user()
    room = unique_room()
    with RawWs(server, token=token, room=room, v=2) as ws:
        ws.send_frame(OP_BINARY, b'{"content":"bad \xff byte"}')
        assert ws.recv_json()["code"] == "invalid"
        ws.send_json({"content": "after"})
        assert ws.recv_json()["content"] == "after"


def test_lone_surrogate_escape_in_json_is_invalid(server, api: Api):
    token, _ = api.new_user()
    room = unique_room()
    with RawWs(server, token=token, room=room, v=2) as ws:
        ws.send_text('{"content":"half \\ud800 pair"}')
        assert ws.recv_json()["code"] == "invalid"
        ws.send_json({"content": "after"})
        assert ws.recv_json()["content"] == "after"
    assert [m["content"] for m in api.get(f"/chat/history/{room}").json()] == ["after"]


def test_fragmented_message_is_reassembled(server, api: Api):
    token, _ = api.new_user()
    with RawWs(server, token=token, room=unique_room(), v=2) as ws:
        data = json.dumps({"content": "in three parts"}).encode()
        ws.send_frame(OP_TEXT, data[:5], fin=False)
        ws.send_frame(OP_PING, b"mid")  # control frames may come between fragments
        ws.send_frame(OP_CONT, data[5:12], fin=False)
        ws.send_frame(OP_CONT, data[12:], fin=True)
        while True:
            fin, op, payload = ws.recv_frame()
            if op == OP_PONG:
                assert payload == b"mid"
                continue
            obj = json.loads(payload)
            if obj.get("type") in ("welcome", "presence"):
                continue
            assert obj["content"] == "in three parts"
            break


def test_client_ping_is_answered_with_pong(server, api: Api):
    token, _ = api.new_user()
    with RawWs(server, token=token, room=unique_room(), v=2) as ws:
        ws.send_frame(OP_PING, b"are you there")
        while True:
            fin, op, payload = ws.recv_frame()
            if op == OP_TEXT:
                continue
            assert (op, payload) == (OP_PONG, b"are you there")
            break


def test_unmasked_client_frame_closes_1002(server, api: Api):
    token, _ = api.new_user()
    with RawWs(server, token=token, room=unique_room(), v=2) as ws:
        ws.send_frame(OP_TEXT, b'{"content":"naked"}', mask=False)
        assert ws.recv_close()[0] == 1002


def test_reserved_opcode_closes_1002(server, api: Api):
    token, _ = api.new_user()
    with RawWs(server, token=token, room=unique_room(), v=2) as ws:
        ws.send_frame(0x3, b"what is this")
        assert ws.recv_close()[0] == 1002


def test_client_close_is_echoed(server, api: Api):
    token, _ = api.new_user()
    ws = RawWs(server, token=token, room=unique_room(), v=2)
    try:
        ws.send_frame(OP_CLOSE, struct.pack("!H", 1000) + b"bye")
        assert ws.recv_close()[0] == 1000
    finally:
        ws.sock.close()
