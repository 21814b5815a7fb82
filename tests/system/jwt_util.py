"""Minimal JWT helpers for tests: decode without verifying, and forge tokens."""
import base64
import hashlib
import hmac
import json


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def claims(token: str) -> dict:
    return json.loads(b64url_decode(token.split(".")[1]))


def header(token: str) -> dict:
    return json.loads(b64url_decode(token.split(".")[0]))


def forge(header_obj: dict, payload: dict, secret: bytes | None) -> str:
    h = b64url(json.dumps(header_obj).encode())
    p = b64url(json.dumps(payload).encode())
    if secret is None:
        return f"{h}.{p}."
    sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url(sig)}"
