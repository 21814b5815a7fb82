#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (fuzz/README.md).

Seeds are small, hand-meant inputs in each target's input format: one of each thing the
parser must accept and one of each way it must refuse. The fuzzer mutates from there.
Re-running rewrites the generated seeds (named seed-*) and leaves every other file alone:
crash reproducers (crash-*, named after the bug) and hand-added inputs stay.

    python3 fuzz/make_corpus.py
"""

import base64
import hashlib
import hmac
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# Must match fuzz/jwt_common.hpp.
JWT_SECRET = b"fuzz-secret-0123456789abcdef-0123456789"
JWT_NOW = 1_700_000_000


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# --- WebSocket frames (client -> server: masked) ------------------------------------

MASK = b"\x37\xfa\x21\x3d"


def frame(op, payload=b"", fin=True, mask=MASK, rsv=0):
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    n = len(payload)
    mbit = 0x80 if mask is not None else 0
    if n <= 125:
        head = bytes([b0, mbit | n])
    elif n <= 0xFFFF:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def close(code=None, reason=b""):
    return frame(0x8, b"" if code is None else struct.pack(">H", code) + reason)


WS_STREAMS = {
    "text": frame(0x1, "hello"),
    "binary": frame(0x2, b"\x00\x01\xfe\xff"),
    "ping": frame(0x9, "are you there"),
    "pong": frame(0xA, ""),
    "close-normal": close(1000, b"bye"),
    "close-empty": close(),
    "close-4003": close(4003, "banned \u00e9".encode()),
    "close-1005-invalid": close(1005),
    "close-1byte": frame(0x8, b"\x03"),
    "close-bad-utf8": close(1000, b"\xc3"),
    "fragmented-text": frame(0x1, "frag", fin=False) + frame(0x0, "men", fin=False) + frame(0x0, "ted"),
    "fragments-with-ping": frame(0x1, "a", fin=False) + frame(0x9, "p") + frame(0x0, "b"),
    "utf8-split-across-fragments": frame(0x1, b"\xe2\x82", fin=False) + frame(0x0, b"\xac!"),
    "text-len16": frame(0x1, "x" * 200),
    "binary-len64-too-big": frame(0x2, b"\xab" * 70000)[:20],
    "unmasked": frame(0x1, "hi", mask=None),
    "rsv-bits": frame(0x1, "hi", rsv=4),
    "reserved-opcode": frame(0x3, "hi"),
    "fragmented-ping": frame(0x9, "p", fin=False),
    "continuation-first": frame(0x0, "x"),
    "new-message-inside-fragmented": frame(0x1, "a", fin=False) + frame(0x1, "b"),
    "invalid-utf8": frame(0x1, b"ok \xed\xa0\x80"),
    "ends-mid-sequence": frame(0x1, b"\xf0\x9f\x98"),
    "control-too-long": frame(0x9, b"p" * 126)[:10],
    "many-frames": frame(0x1, "one") + frame(0x9, "") + frame(0x2, b"two") + frame(0x1, "three") + close(1001),
    "after-close": close(1000) + frame(0x1, "ignored"),
}


def ws_frame():
    # Byte 0: limit selector (low 2 bits: 64 KiB, 16, 125, 1024) and chunking seed.
    for name, stream in WS_STREAMS.items():
        write("ws_frame", name, bytes([0x00]) + stream)
    write("ws_frame", "limit16-too-big", bytes([0x01]) + frame(0x1, "x" * 17))
    write("ws_frame", "limit125-fragments", bytes([0x06]) + frame(0x1, "a" * 100, fin=False) + frame(0x0, "b" * 30))
    write("ws_frame", "limit1024-chunked", bytes([0xFF]) + WS_STREAMS["many-frames"])


def ws_encode():
    # Byte 0: opcode index (0 text, 1 binary, 2 ping, 3 pong, 4 close, 5 continuation);
    # bytes 1-2: length to stretch the payload to, or the close code; then payload/reason.
    def seed(name, op, word, rest):
        write("ws_encode", name, bytes([op]) + struct.pack(">H", word) + rest)
    seed("text", 0, 0, "h\u00e9llo".encode())
    seed("text-125", 0, 125, b"abc")
    seed("text-126", 0, 126, b"abc")
    seed("binary-65535", 1, 65535, b"\x00\xff")
    seed("binary-64k", 1, 65535, b"\x01" * 70)
    seed("ping", 2, 0, b"ping")
    seed("pong-too-long", 3, 126, b"p")
    seed("close-normal", 4, 1000, b"bye")
    seed("close-no-status", 4, 1005, b"ignored")
    seed("close-invalid-code", 4, 1006, b"")
    seed("close-long-reason-cut-in-sequence", 4, 4003, b"a" * 122 + "\u20ac".encode() + b"tail")
    seed("close-bad-utf8", 4, 3000, b"\xff")
    seed("continuation", 5, 0, b"x")


def ws_connection():
    for name in ["text", "binary", "ping", "close-normal", "close-empty", "fragments-with-ping",
                 "invalid-utf8", "unmasked", "many-frames", "after-close"]:
        write("ws_connection", name, WS_STREAMS[name])
    write("ws_connection", "pings-then-text", frame(0x9, "1") + frame(0x9, "2") + frame(0x1, "{\"type\":\"send\"}"))


# --- UTF-8 --------------------------------------------------------------------------

def utf8():
    samples = {
        "ascii": b"hello, world",
        "ascii-long": b"the quick brown fox jumps over the lazy dog " * 3,
        "two-byte": "caf\u00e9 \u00fc".encode(),
        "three-byte": "\u20ac \u4e2d\u6587 \uffff \ufffe".encode(),
        "four-byte": "\U0001F600 \U0010FFFF".encode(),
        "overlong-c0": b"\xc0\x80",
        "overlong-e0": b"\xe0\x80\x80",
        "overlong-f0": b"\xf0\x80\x80\x80",
        "surrogate": b"\xed\xa0\x80",
        "above-10ffff": b"\xf4\x90\x80\x80",
        "f5": b"\xf5\x80\x80\x80",
        "stray-continuation": b"abc\x80def",
        "truncated": b"abc\xe2\x82",
        "bad-after-8-ascii": b"abcdefgh\xff",
        "mixed": "a\u00e9\u20ac\U0001F600z".encode() * 4,
    }
    for i, (name, s) in enumerate(samples.items()):
        write("utf8", name, bytes([i * 17 % 256]) + s)


# --- JWT ----------------------------------------------------------------------------

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(header, payload, secret=JWT_SECRET):
    h = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    p = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    signing = b64url(h.encode()) + "." + b64url(p.encode())
    sig = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


HS256 = {"alg": "HS256", "typ": "JWT"}


def claims(**over):
    c = {"user_id": "u-1", "email": "a@example.com", "username": "alice", "role": "viewer", "sub": "u-1",
         "iss": "chatorbit", "aud": "chatorbit", "iat": JWT_NOW, "nbf": JWT_NOW, "exp": JWT_NOW + 3600,
         "jti": "00112233445566778899aabbccddeeff"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def jwt_verify():
    raw = {
        "valid": token(HS256, claims()),
        "expired": token(HS256, claims(exp=JWT_NOW - 3600)),
        "not-yet-valid": token(HS256, claims(nbf=JWT_NOW + 3600)),
        "alg-none": b64url(b'{"alg":"none","typ":"JWT"}') + "." + b64url(json.dumps(claims()).encode()) + ".",
        "alg-hs512": token({"alg": "HS512"}, claims()),
        "crit": token({"alg": "HS256", "crit": ["exp"]}, claims()),
        "wrong-key": token(HS256, claims(), secret=b"another-secret"),
        "wrong-iss": token(HS256, claims(iss="someone")),
        "aud-array": token(HS256, claims(aud=["x", "chatorbit"])),
        "no-exp": token(HS256, claims(exp=None)),
        "padded": token(HS256, claims()) + "==",
        "two-dots": "a.b",
        "four-dots": "a.b.c.d",
    }
    for name, t in raw.items():
        write("jwt_verify", name, b"\x00" + t.encode())
    # Mode 1: header and payload JSON, signed by the target.
    signed = {
        "signed-valid": (HS256, claims()),
        "signed-float-dates": (HS256, claims(iat=JWT_NOW + 0.5, exp=JWT_NOW + 99.9)),
        "signed-huge-exp": (HS256, claims(exp=1e400)),
        "signed-negative-exp": (HS256, claims(exp=-1)),
        "signed-max-exp": (HS256, claims(exp=253402300799)),
        "signed-uint64-exp": (HS256, claims(exp=18446744073709551615)),
        "signed-aud-bad-item": (HS256, claims(aud=["chatorbit", 7])),
        "signed-user-id-number": (HS256, claims(user_id=5)),
        "signed-empty-user-id": (HS256, claims(user_id="")),
        "signed-payload-array": (HS256, "[1,2,3]"),
        "signed-nested": (HS256, claims(role={"a": [1, {"b": None}]})),
        "signed-duplicate-keys": (HS256, '{"user_id":"a","user_id":"b","iss":"chatorbit","aud":"chatorbit",'
                                         '"exp":1700003600}'),
    }
    for name, (h, p) in signed.items():
        hs = json.dumps(h, separators=(",", ":"))
        ps = p if isinstance(p, str) else json.dumps(p, separators=(",", ":"))
        write("jwt_verify", name, b"\x01" + hs.encode() + b"\n" + ps.encode())
    # Modes 2 and 3: the same, verified by a codec that accepts the original's tokens
    # (user_id, email and exp only).
    go = {"email": "a@example.com", "exp": JWT_NOW + 3600, "user_id": "507f1f77bcf86cd799439011"}
    write("jwt_verify", "legacy-valid", b"\x02" + token(HS256, go).encode())
    write("jwt_verify", "legacy-refused-by-default", b"\x00" + token(HS256, go).encode())
    write("jwt_verify", "legacy-alg-none",
          b"\x02" + (b64url(b'{"alg":"none","typ":"JWT"}') + "." + b64url(json.dumps(go).encode()) + ".").encode())
    legacy_signed = {
        "legacy-signed-valid": go,
        "legacy-signed-upper-id": dict(go, user_id="507F1F77BCF86CD799439011"),
        "legacy-signed-short-id": dict(go, user_id="42"),
        "legacy-signed-no-exp": {"email": "a@example.com", "user_id": "507f1f77bcf86cd799439011"},
        "legacy-signed-with-iss": dict(go, iss="chatorbit"),
        "legacy-signed-with-jti": dict(go, jti="legacy-0"),
    }
    for name, p in legacy_signed.items():
        write("jwt_verify", name, b"\x03" + json.dumps(HS256, separators=(",", ":")).encode() + b"\n" +
              json.dumps(p, separators=(",", ":")).encode())


def jwt_roundtrip():
    ids = {
        "plain": b"u-1\0a@example.com\0alice\0viewer\0",
        "unicode": "u-\u00e9\0\u00fc@example.com\0\u4e2d\u6587\U0001F600\0admin\0".encode(),
        "quotes": b'u"1\0a\\b@x\0line\nbreak\0mod\0',
        "empty-user": b"\0a@b\0c\0d\0",
        "invalid-utf8": b"u\xff\0a@b\0c\0d\0",
        "mutate-flip": b"u-1\0a@b\0alice\0viewer\0\x04\x01\x50\x02",
        "mutate-insert": b"u-1\0a@b\0alice\0viewer\0\x05=",
        "mutate-delete": b"u-1\0a@b\0alice\0viewer\0\x06\x00",
        "mutate-truncate": b"u-1\0a@b\0alice\0viewer\0\x83\x00",
    }
    for name, data in ids.items():
        write("jwt_roundtrip", name, data)


# --- configuration --------------------------------------------------------------------

def config():
    samples = {
        "defaults": "",
        "env": "PORT=9090\nCHATORBIT_THREADS=4\nCHATORBIT_RATE_LIMIT=20/30s\nLOG_LEVEL=debug\n--",
        "args": "--\n--port\n8081\n--rate-limit=5/1m\n--token-ttl=2h\n--anonymous-viewers=false",
        "env-and-args": "CHATORBIT_ROLE=auth,chat\nCHATORBIT_ADMINS= A@x.com , b@y \n--\n--role=gateway\n--help",
        "durations": "CHATORBIT_PING_INTERVAL=500ms\nCHATORBIT_IDLE_DROP=1h\nCHATORBIT_LOGIN_WINDOW=15m\n"
                     "CHATORBIT_PRESENCE_TTL= 30s \n--",
        "rates": "20/s\n100/1m\n5/1h\n20/30\n0/1s\n1/0\n/\n20/\n-1/1s\n1000001/1s\n  7 / 2m ",
        "bad-values": "PORT=65536\nCHATORBIT_THREADS=-1\nCHATORBIT_IO_URING=maybe\n--\n--nope\n--port",
        "limits": "CHATORBIT_WS_MAX_FRAME_BYTES=128\nCHATORBIT_WS_MAX_QUEUE_BYTES=1073741824\n"
                  "CHATORBIT_MAX_BODY_BYTES=67108864\nCHATORBIT_FANOUT_FLUSH_MS=1000\n--",
        "big-numbers": "10000000h\n99999999999999999999\n9223372036854775807s\n10000000ms\n--\n--token-ttl=10000000h",
        "positional": "--\nserve\n-h",
    }
    for name, s in samples.items():
        write("config", name, s)


# --- router ---------------------------------------------------------------------------

def router():
    # Byte 0: method (0 GET, 1 POST, 2 PUT, 3 DELETE, 4 HEAD, 5 OPTIONS); then lines:
    # target, Cookie, Authorization, query name, cookie name, extra patterns...
    samples = {
        "user": (0, ["/user/42", "", "", "", ""]),
        "role": (2, ["/users/u%2D1/role", "", "Bearer abc.def.ghi", "", ""]),
        "history-query": (0, ["/chat/history/lobby?limit=50&before=10&room=a+b%21", "", "", "limit", ""]),
        "ws-cookie": (0, ["/ws/chat?room=main", "a=1; token=\"xyz\"; b=2", "bearer   tok", "room", "token"]),
        "bad-escape": (0, ["/user/%zz", "", "", "", ""]),
        "truncated-escape": (0, ["/chat/history/ab%4", "", "", "", ""]),
        "rest": (0, ["/files/a/b%2Fc/d", "", "", "", ""]),
        "method-not-allowed": (1, ["/users/me", "", "", "", ""]),
        "empty-segments": (0, ["//user//", ";;;", "Bearer", "", ""]),
        "extra-patterns": (0, ["/x/1/y", "", "", "", "", "/x/{a}/y", "/x/{*all}", "{}", "/{*}", "/a/{*r}/{b}"]),
    }
    for name, (method, lines) in samples.items():
        write("router", name, bytes([method]) + "\n".join(lines).encode())


# --- ws_handshake ---------------------------------------------------------------------

def ws_handshake():
    # Byte 0: bits 0-1 method (GET, POST, HEAD, OPTIONS), bit 2 HTTP/1.0, bit 3 set empty
    # headers too; then lines: Upgrade, Connection, Sec-WebSocket-Version, Sec-WebSocket-Key,
    # query string, parameter name.
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    samples = {
        "rfc-sample": (0, ["websocket", "Upgrade", "13", key, "token=abc&room_id=music&v=2", "room_id"]),
        "connection-list": (0, ["WebSocket", "keep-alive, Upgrade", "13", key, "room_id=", "room_id"]),
        "no-connection": (0, ["websocket", "", "13", key, "room_id=%ZZ", "room_id"]),
        "version-8": (0, ["websocket", "Upgrade", "8", key, "last_seq=12", "last_seq"]),
        "short-key": (0, ["websocket", "Upgrade", "13", "c2hvcnQ=", "roomId=a+b", "roomId"]),
        "noncanonical-key": (0, ["websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZR==", "a=1&a=2", "a"]),
        "post": (1, ["websocket", "Upgrade", "13", key, "", ""]),
        "http10-empty": (4 | 8, ["", "", "", "", "&&=&", ""]),
    }
    for name, (flags, lines) in samples.items():
        write("ws_handshake", name, bytes([flags]) + "\n".join(lines).encode())


# --- client_frame ---------------------------------------------------------------------

def client_frame():
    samples = {
        "original": '{"room_id":"music","content":"Hello!"}',
        "v2-cid": '{"type":"message","content":"hi","cid":"c-1"}',
        "join": '{"type":"join","room_id":"r"}',
        "history": '{"type":"history","before":42,"limit":20}',
        "history-huge": '{"type":"history","before":18446744073709551615,"limit":1e3}',
        "history-string-limit": '{"type":"history","limit":"5"}',
        "ping": '{"type":"ping"}',
        "nulls": '{"type":null,"room_id":null,"content":"x","cid":null}',
        "wrong-types": '{"cid":"c","content":7,"room_id":["a"]}',
        "escapes": '{"content":"\\u00e9\\ud83d\\ude00\\n","cid":"\\u0000"}',
        "deep": "[" * 40 + "]" * 40,
        "not-object": '"just a string"',
    }
    for name, text in samples.items():
        write("client_frame", name, text)


# --- publication ----------------------------------------------------------------------

def publication():
    msg = '{"id":"6b04c1b456dfa13e547b756d","room_id":"r","user_id":"u","content":"hi","seq":9}'
    samples = {
        "message": "M 9 v=1\n" + msg,
        "message-first-release": "M 9\n" + msg,
        "message-extra-field": "M 9 v=1 origin=n1\n" + msg,
        "moderation": 'D v=1\n{"type":"moderation","action":"timeout","user_id":"u","room_id":"r","duration_seconds":60}',
        "presence": 'P v=1\n{"type":"presence","room_id":"r","online":3,"event":"count"}',
        "role": 'U v=1\n{"action":"role","user_id":"u","role":"moderator"}',
        "revoke": 'U v=1\n{"action":"revoke","user_id":"u","jti":"","expires_at":1800000000,"not_before":1700000000}',
        "logout": 'U v=1\n{"action":"revoke","user_id":"u","jti":"ab12","expires_at":1800000000,"not_before":0}',
        "newer": "M 9 v=2\n{}",
        "unknown-kind": "Z\n{}",
    }
    for name, text in samples.items():
        write("publication", name, text)


if __name__ == "__main__":
    ws_frame()
    ws_encode()
    ws_connection()
    utf8()
    jwt_verify()
    jwt_roundtrip()
    config()
    router()
    ws_handshake()
    client_frame()
    publication()
