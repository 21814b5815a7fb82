"""Input the server used to take too kindly: a room_id or token that is present but
empty or undecodable, a wrongly typed history field, a handshake that RFC 6455 §4.2.1
says to refuse. (Issue: hardening, defect 7.)"""
import base64
import os
import socket

import pytest

from conftest import Api
from wsclient import TIMEOUT, ChatClient, refused, unique_room


def raw_handshake(server, path="/ws/chat", connection="Upgrade", key=None, version="13") -> tuple[int, bytes]:
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Upgrade: websocket",
             f"Sec-WebSocket-Version: {version}"]
    if connection is not None:
        lines.append(f"Connection: {connection}")
    if key:
        lines.append(f"Sec-WebSocket-Key: {key}")
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]), data


@pytest.mark.parametrize("query", ["room_id=%ZZ", "room_id=", "roomId=", "room_id=a%2", "roomId=%zz"])
def test_present_but_bad_room_id_is_refused(server, query):
    status, body, _ = refused(server, url=f"ws://127.0.0.1:{server.port}/ws/chat?{query}")
    assert (status, body["error"]) == (400, "invalid room_id"), query


def test_undecodable_token_is_refused_not_anonymous(server):
    status, body, _ = refused(server, url=f"ws://127.0.0.1:{server.port}/ws/chat?token=%ZZ&room_id=general")
    assert (status, body["error"]) == (401, "invalid token")


def test_malformed_last_seq_is_refused(server, api: Api):
    token, _ = api.new_user()
    status, body, _ = refused(server, token=token, room=unique_room(), last_seq="seven")
    assert (status, body["error"]) == (400, "invalid last_seq")


@pytest.mark.parametrize("frame", [
    {"type": "history", "limit": "5"},
    {"type": "history", "limit": 2.5},
    {"type": "history", "before": "3"},
    {"type": "history", "before": 0},
    {"type": "history", "limit": 0},
])
def test_wrongly_typed_history_fields_are_invalid(server, api: Api, frame):
    token, _ = api.new_user()
    with ChatClient(server, token, unique_room()) as c:
        c.wait_welcome()
        c.send_json(frame)
        err = c.recv_error("invalid")
        assert "before" in err["message"] or "limit" in err["message"], err


def test_upgrade_without_connection_upgrade_is_refused(server):
    for connection in (None, "keep-alive", "close"):
        status, data = raw_handshake(server, connection=connection)
        assert status == 400, (connection, data)
        assert b"Connection must include Upgrade" in data or b"invalid websocket handshake" in data
    status, _ = raw_handshake(server, connection="keep-alive, Upgrade")
    assert status == 101


@pytest.mark.parametrize("key", ["c2hvcnQ=", base64.b64encode(os.urandom(17)).decode(), "not base64 at all!!!!!!=",
                                 "dGhlIHNhbXBsZSBub25jZR==", ""])
def test_key_that_is_not_16_bytes_is_refused(server, key):
    status, data = raw_handshake(server, key=key)
    assert status == 400, (key, data)
