"""WebSocket helpers for the chat system tests.

`ChatClient` wraps the websockets library's sync client (what a real client does);
`RawWs` does the handshake itself and sends hand-built masked frames, for what the
library refuses to send (invalid UTF-8, arbitrary opcodes, oversized frames)."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import struct
import threading
import time
import uuid
from typing import Any, Callable
from urllib.parse import urlencode

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from conftest import SANITIZED, Api, Server, auth

# Generous waits under the sanitizers; the happy path never waits this long.
TIMEOUT = 15.0 if SANITIZED else 5.0
# How long to wait to be sure something does NOT arrive.
QUIET = 0.5

HEX24 = re.compile(r"^[0-9a-f]{24}$")
RFC3339_NANOS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")
V1_KEYS = ["id", "room_id", "user_id", "content", "timestamp", "username", "seq"]
NOISE = ("presence", "welcome", "pong")


def ws_url(server: Server, token: str | None = None, room: str | None = "general", v: int | None = 2,
           last_seq: int | None = None, room_param: str = "room_id", **extra) -> str:
    q: dict[str, Any] = {}
    if token is not None:
        q["token"] = token
    if room is not None:
        q[room_param] = room
    if v is not None and v != 1:
        q["v"] = v
    if last_seq is not None:
        q["last_seq"] = last_seq
    q.update(extra)
    return f"ws://127.0.0.1:{server.port}/ws/chat" + (("?" + urlencode(q)) if q else "")


def unique_room(prefix: str = "r") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class ChatClient:
    """One chat connection (sync). Frames that arrive while waiting for something else
    are kept in `seen` so that tests can look back at them."""

    def __init__(self, server: Server, token: str | None = None, room: str | None = "general", v: int = 2,
                 last_seq: int | None = None, headers: dict | None = None, origin: str | None = None,
                 subprotocols: list[str] | None = None, url: str | None = None, **query):
        self.server = server
        self.room = room
        self.v = v
        self.url = url or ws_url(server, token, room, v, last_seq, **query)
        self.ws = connect(self.url, additional_headers=headers, origin=origin, subprotocols=subprotocols,
                          open_timeout=TIMEOUT, close_timeout=2, compression=None, max_size=None)
        self.seen: list[dict] = []

    # -- sending ---------------------------------------------------------------
    def send_json(self, obj: Any) -> None:
        self.ws.send(json.dumps(obj))

    def send_raw(self, data: str | bytes) -> None:
        self.ws.send(data)

    def send_message(self, content: Any, cid: str | None = None, room_id: str | None = None,
                     typed: bool | None = None, resend: bool = False) -> None:
        frame: dict[str, Any] = {}
        if typed if typed is not None else self.v == 2:
            frame["type"] = "message"
        if room_id is not None:
            frame["room_id"] = room_id
        frame["content"] = content
        if cid is not None:
            frame["cid"] = cid
        if resend:
            frame["resend"] = True
        self.send_json(frame)

    def join(self, room_id: str) -> None:
        self.send_json({"type": "join", "room_id": room_id})

    # -- receiving -------------------------------------------------------------
    def recv_json(self, timeout: float = TIMEOUT) -> dict:
        data = self.ws.recv(timeout=timeout)
        assert isinstance(data, str), f"expected a text frame, got {data!r}"
        obj = json.loads(data)
        self.seen.append(obj)
        return obj

    def recv_until(self, predicate: Callable[[dict], bool], timeout: float = TIMEOUT,
                   skip: tuple[str, ...] | None = None) -> dict:
        """The first frame for which predicate holds. Frames whose type is in `skip`
        are ignored; any other frame that does not match fails the test (when `skip`
        is given) or is ignored (when skip is None)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching frame within {timeout}s; seen {self.seen[-10:]}")
            try:
                f = self.recv_json(left)
            except TimeoutError:
                raise AssertionError(f"no matching frame within {timeout}s; seen {self.seen[-10:]}") from None
            if predicate(f):
                return f
            if skip is not None and f.get("type") not in skip:
                raise AssertionError(f"unexpected frame {f}")

    def recv_type(self, type_: str, timeout: float = TIMEOUT, **fields) -> dict:
        return self.recv_until(lambda f: f.get("type") == type_ and all(f.get(k) == v for k, v in fields.items()),
                               timeout)

    def recv_message(self, timeout: float = TIMEOUT, content: str | None = None) -> dict:
        """Next chat message (v1: a frame with `content` and no `type`; v2: type message),
        skipping presence/welcome/pong/ack frames. With `content`, waits for that one."""
        def is_msg(f):
            if self.v == 2:
                ok = f.get("type") == "message"
            else:
                ok = "type" not in f and "content" in f
            if f.get("type") == "error":
                raise AssertionError(f"expected a chat message, got {f}")
            return ok and (content is None or f.get("content") == content)
        return self.recv_until(is_msg, timeout)

    def say(self, content: str, cid: str | None = None, room_id: str | None = None) -> dict:
        """Posts and returns the message as echoed back to the sender."""
        self.send_message(content, cid=cid, room_id=room_id)
        return self.recv_message(content=content.strip())

    def recv_error(self, code: str | None = None, timeout: float = TIMEOUT) -> dict:
        """Next error frame; fails if a chat message arrives first."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.recv_until(lambda f: True, max(0.01, deadline - time.monotonic()))
            if f.get("type") == "error":
                if code is not None:
                    assert f.get("code") == code, f
                return f
            if f.get("type") in NOISE or f.get("type") == "ack" or f.get("type") == "moderation":
                continue
            raise AssertionError(f"expected an error frame, got {f}")

    def drain(self, quiet: float = QUIET) -> list[dict]:
        """Every frame that arrives until the connection is quiet for `quiet` seconds."""
        out = []
        while True:
            try:
                out.append(self.recv_json(quiet))
            except TimeoutError:
                return out

    def assert_no_message(self, quiet: float = QUIET) -> None:
        msgs = [f for f in self.drain(quiet) if f.get("type") == "message" or ("type" not in f and "content" in f)]
        assert msgs == [], f"unexpected chat messages {msgs}"

    def expect_close(self, code: int, timeout: float = TIMEOUT) -> list[dict]:
        """Reads until the server closes; asserts the close code. Returns the frames read."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"connection not closed within {timeout}s; frames {frames}")
            try:
                data = self.ws.recv(timeout=left)
            except TimeoutError:
                raise AssertionError(f"connection not closed within {timeout}s; frames {frames}") from None
            except ConnectionClosed as e:
                got = e.rcvd.code if e.rcvd is not None else None
                assert got == code, f"closed with {got} ({e}), expected {code}; frames {frames}"
                return frames
            if isinstance(data, str):
                try:
                    frames.append(json.loads(data))
                except ValueError:
                    frames.append({"raw": data})

    def wait_welcome(self, timeout: float = TIMEOUT) -> dict:
        return self.recv_type("welcome", timeout)

    def close(self) -> None:
        close_ws(self.ws)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def close_ws(ws) -> None:
    """Closes a sync connection promptly. The library's reader thread hands over one
    message at a time, so unread frames would stall the closing handshake until
    close_timeout: keep reading while the close runs."""
    t = threading.Thread(target=lambda: _quietly(ws.close), daemon=True)
    t.start()
    while t.is_alive():
        try:
            ws.recv(timeout=0.05)
        except TimeoutError:
            continue
        except Exception:
            break
    t.join()


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:
        pass


def refused(server: Server, url: str | None = None, headers: dict | None = None, origin: str | None = None,
            **kw) -> tuple[int, dict, Any]:
    """Attempts a connection that must be refused; returns (status, json body, headers)."""
    url = url or ws_url(server, **kw)
    try:
        ws = connect(url, additional_headers=headers, origin=origin, open_timeout=TIMEOUT, compression=None)
    except InvalidStatus as e:
        body = e.response.body or b""
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {"raw": body.decode("utf-8", "replace")}
        return e.response.status_code, parsed, e.response.headers
    close_ws(ws)
    raise AssertionError(f"connection to {url} was accepted")


# ---------------------------------------------------------------------------------
# Accounts
# ---------------------------------------------------------------------------------

ADMIN_EMAIL = "admin@example.com"


def admin_token(api: Api, email: str = ADMIN_EMAIL) -> str:
    """Logs in the admin account (registering it the first time)."""
    r = api.post("/login", json={"email": email, "password": "secret123"})
    if r.status_code != 200:
        api.register(email=email, username="admin" + uuid.uuid4().hex[:4])
        return api.login(email)
    return r.json()["token"]


def new_moderator(api: Api, email: str = ADMIN_EMAIL) -> tuple[str, dict]:
    """A fresh account promoted to moderator by the admin; returns (token, profile)."""
    adm = admin_token(api, email)
    email_, _, pw = api.register()
    r = api.post("/login", json={"email": email_, "password": pw})
    me = api.get("/users/me", headers=auth(r.json()["token"])).json()
    r = api.put(f"/users/{me['id']}/role", headers=auth(adm), json={"role": "moderator"})
    assert r.status_code == 200, r.text
    token = api.login(email_, pw)
    me["role"] = "moderator"
    return token, me


# ---------------------------------------------------------------------------------
# Raw client
# ---------------------------------------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeRefused(Exception):
    def __init__(self, status: int, headers: dict, body: bytes):
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status, self.headers, self.body = status, headers, body


class RawWs:
    """A WebSocket client over a plain socket: sends MASKED frames built by hand and
    reads the server's (unmasked) frames, close frames included."""

    def __init__(self, server: Server, path: str | None = None, token: str | None = None,
                 room: str = "general", v: int | None = 2, extra_headers: dict | None = None,
                 version: str = "13", timeout: float = TIMEOUT, rcvbuf: int | None = None):
        if rcvbuf is None:
            self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
        else:  # a small receive window, set before the handshake fixes it
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect(("127.0.0.1", server.port))
        if path is None:
            path = ws_url(server, token, room, v).split(f":{server.port}", 1)[1]
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", f"Sec-WebSocket-Version: {version}"]
        for k, val in (extra_headers or {}).items():
            lines.append(f"{k}: {val}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        head = self._read_until(b"\r\n\r\n")
        status_line, *hdr_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split(" ")[1])
        self.headers = {}
        for line in hdr_lines:
            if ":" in line:
                k, val = line.split(":", 1)
                self.headers[k.strip().lower()] = val.strip()
        if self.status != 101:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
            body = self.buf[:n]
            self.sock.close()
            raise HandshakeRefused(self.status, self.headers, body)
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                                  .digest()).decode()
        assert self.headers.get("sec-websocket-accept") == accept, self.headers

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed during handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(marker, 1)
        return head

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    @staticmethod
    def frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True, rsv: int = 0,
              declared_len: int | None = None) -> bytes:
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload) if declared_len is None else declared_len
        m = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, m | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, m | 126, n)
        else:
            head = struct.pack("!BBQ", b0, m | 127, n)
        if not mask:
            return head + payload
        key = os.urandom(4)
        masked = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        return head + key + masked

    def send_frame(self, opcode: int, payload: bytes, **kw) -> None:
        self.sock.sendall(self.frame(opcode, payload, **kw))

    def send_text(self, text: str | bytes) -> None:
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def send_json(self, obj: Any) -> None:
        self.send_text(json.dumps(obj))

    def recv_frame(self, timeout: float = TIMEOUT) -> tuple[bool, int, bytes]:
        """(fin, opcode, payload) of the next server frame; server frames must be unmasked."""
        self.sock.settimeout(timeout)
        b0, b1 = self._read_exact(2)
        assert not b1 & 0x80, "server frames must not be masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_exact(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._read_exact(n)

    def recv_json(self, timeout: float = TIMEOUT, skip: tuple[str, ...] = NOISE) -> dict:
        """Next text frame as JSON, answering pings and skipping `skip` types."""
        deadline = time.monotonic() + timeout
        while True:
            fin, op, payload = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if op == OP_PING:
                self.send_frame(OP_PONG, payload)
                continue
            if op == OP_CLOSE:
                raise AssertionError(f"closed by server: {self._close_info(payload)}")
            assert op == OP_TEXT and fin, (op, payload)
            obj = json.loads(payload)
            if obj.get("type") in skip:
                continue
            return obj

    @staticmethod
    def _close_info(payload: bytes) -> tuple[int | None, str]:
        if len(payload) >= 2:
            return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8", "replace")
        return None, ""

    def recv_close(self, timeout: float = TIMEOUT) -> tuple[int | None, str]:
        """Reads until a close frame; returns its (code, reason). Fails on EOF without one."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no close frame")
            try:
                fin, op, payload = self.recv_frame(left)
            except (EOFError, ConnectionResetError) as e:
                raise AssertionError(f"connection ended without a close frame ({e!r})") from None
            if op == OP_CLOSE:
                info = self._close_info(payload)
                try:  # complete the closing handshake
                    self.send_frame(OP_CLOSE, payload[:2])
                except OSError:
                    pass
                return info

    def close(self) -> None:
        try:
            self.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def flood_past_a_stalled_viewer(server: Server, token: str, room: str, chars: int, messages: int) -> None:
    """The slow-viewer rule, end to end: `messages` messages of `chars` characters go to
    `room` in bursts of 10 (the sender waits for each burst's acks) while one viewer
    reads them all and another, with a 4 KiB receive window, reads nothing. Asserts that
    the reading viewer got every message in order, and that the stalled one, once it
    reads, finds whole frames, a prefix of the messages in order, then a 4008 close."""
    text = "x" * (chars - 10)
    with ChatClient(server, token, room, v=2) as sender, ChatClient(server, None, room, v=2) as viewer, \
            RawWs(server, room=room, v=2, rcvbuf=4096) as stalled:
        sender.wait_welcome()
        viewer.wait_welcome()
        got = []
        for start in range(0, messages, 10):
            for i in range(start, start + 10):
                sender.send_message(f"{i} {text}", cid=f"c{i}")
            for i in range(start, start + 10):
                sender.recv_type("ack", cid=f"c{i}")
            got += [viewer.recv_message()["content"] for _ in range(10)]
        assert got == [f"{i} {text}" for i in range(messages)]

        contents = []
        while True:
            fin, op, payload = stalled.recv_frame(timeout=5)
            if op == OP_CLOSE:
                code, reason = stalled._close_info(payload)
                break
            assert op == OP_TEXT and fin
            obj = json.loads(payload)
            if obj.get("type") == "message":
                contents.append(obj["content"])
        assert code == 4008, (code, reason)
        assert 0 < len(contents) < messages, len(contents)
        assert contents == [f"{i} {text}" for i in range(len(contents))], "a prefix, in order"
