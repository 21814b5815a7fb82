"""HTTP edge: routing errors, bad bodies, limits, CORS, ops routes, request ids."""
import json
import re
import socket

import requests

from conftest import Api


def raw_request(server, data: bytes, read_timeout=5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=read_timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        except (socket.timeout, ConnectionResetError):
            pass
        return b"".join(chunks)


def test_unknown_route_is_json_404(api: Api):
    r = api.get("/no/such/route")
    assert r.status_code == 404 and r.json() == {"error": "not found"}


def test_wrong_method_is_405_with_allow(api: Api):
    r = api.get("/login")
    assert r.status_code == 405
    assert r.json() == {"error": "method not allowed"}
    assert r.headers["Allow"] == "POST"
    r = requests.request("BREW", api.url("/login"), timeout=5)
    assert r.status_code == 405


def test_malformed_json(api: Api):
    for body in (b"{", b"not json", b"", b"[1,2]", b'"string"', b"null", b'{"email": "a@b.c",}'):
        r = api.post("/register", data=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, body
        assert r.json()["error"] == "Invalid input"
        assert r.json()["detail"]


def test_invalid_utf8_body(api: Api):
    body = b'{"email": "a\xff@example.com", "username": "ab", "password": "secret1"}'
    r = api.post("/register", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "Invalid input"


def test_deeply_nested_json_is_rejected(api: Api):
    r = api.post("/login", data=b"[" * 10000 + b"]" * 10000)
    assert r.status_code == 400


def test_oversized_body_is_413(api: Api):
    r = api.post("/register", data=b'{"email":"' + b"a" * 70000 + b'"}',
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert "too large" in r.json()["error"]


def test_oversized_header_is_431(server):
    resp = raw_request(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 431"), resp[:100]
    assert b'"error"' in resp


def test_garbage_request_is_400(server):
    resp = raw_request(server, b"\x00\x01\x02 nonsense\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 400"), resp[:100]


def test_expect_100_continue(server):
    body = json.dumps({"email": "x@example.com", "password": "secret1"}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(body)
        assert s.recv(4096).startswith(b"HTTP/1.1 401")


def test_keep_alive_serves_several_requests(server):
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    resp = raw_request(server, req * 3 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert resp.count(b"HTTP/1.1 200 OK") == 4


def test_request_id_is_echoed_or_generated(api: Api):
    assert api.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    generated = api.get("/healthz", headers={"X-Request-Id": "bad id with spaces"}).headers["X-Request-Id"]
    assert generated and " " not in generated


def test_health_ready_metrics(api: Api):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}
    api.get("/user/000000000000000000000000")
    m = api.get("/metrics")
    assert m.status_code == 200
    assert m.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = m.text
    assert 'chatorbit_http_requests_total{route="/user/{id}",method="GET",status="404"}' in text
    assert "chatorbit_http_request_duration_seconds_bucket" in text
    assert "chatorbit_http_open_connections" in text


def test_a_request_is_counted_before_its_client_has_the_response(api: Api):
    """A client that has read a response and then asks for /metrics, on a new connection
    that another loop may serve, finds the request already counted."""
    line = re.compile(r'^chatorbit_http_requests_total\{route="/user/{id}",method="GET",status="404"\} (\d+)$', re.M)

    def counted() -> int:
        match = line.search(api.get("/metrics").text)
        return int(match.group(1)) if match else 0

    for _ in range(200):
        before = counted()
        assert api.get("/user/000000000000000000000000").status_code == 404
        assert counted() == before + 1


def test_cors_by_default_lets_loopback_pages_in_with_credentials_and_no_others(api: Api):
    """Without CHATORBIT_CORS_ORIGINS, the original's front end on its Vite dev server
    (http://localhost:8080, credentials included) can log in: the credentialed preflight
    and the request are answered for its exact origin. Other sites get nothing."""
    for origin in ("http://localhost:8080", "http://127.0.0.1:5173", "http://[::1]:3000", "https://localhost"):
        pre = requests.options(api.url("/login"), timeout=5, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert pre.status_code == 204, origin
        assert pre.headers["Access-Control-Allow-Origin"] == origin
        assert pre.headers["Access-Control-Allow-Credentials"] == "true"
        assert "POST" in pre.headers["Access-Control-Allow-Methods"]
        assert "content-type" in pre.headers["Access-Control-Allow-Headers"].lower()
    email, _, password = api.register()
    r = requests.post(api.url("/login"), json={"email": email, "password": password}, timeout=5,
                      headers={"Origin": "http://localhost:8080"})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:8080"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in r.headers["Vary"]
    # Its logout: a bodyless POST riding on the cookie, from the dev server's origin.
    out = requests.post(api.url("/logout"), cookies={"token": r.json()["token"]}, timeout=5,
                        headers={"Origin": "http://localhost:8080"})
    assert out.status_code == 200, out.text
    for origin in ("http://evil.example", "http://localhost.evil.example", "http://localhost@evil.example",
                   "http://127.0.0.1.evil.example:80", "null"):
        r = api.get("/healthz", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in r.headers, origin
        pre = requests.options(api.url("/login"), timeout=5, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        assert "Access-Control-Allow-Origin" not in pre.headers, origin
        assert "Access-Control-Allow-Methods" not in pre.headers, origin


def test_cors_allowlist_with_credentials(start_server):
    s = start_server({"CHATORBIT_CORS_ORIGINS": "http://localhost:8080"})
    api = Api(s)
    r = api.get("/healthz", headers={"Origin": "http://localhost:8080"})
    assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:8080"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in r.headers["Vary"]
    r = api.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    pre = requests.options(api.url("/login"), timeout=5, headers={
        "Origin": "http://localhost:8080", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 204
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert pre.headers["Access-Control-Allow-Origin"] == "http://localhost:8080"
    pre = requests.options(api.url("/login"), timeout=5, headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in pre.headers
    # With a list, it is exact: a loopback origin that is not listed is refused too.
    r = api.get("/healthz", headers={"Origin": "http://localhost:5173"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_query_token_never_logged(server, api: Api):
    api.get("/users/me?token=SECRET-TOKEN-VALUE")
    assert not any("SECRET-TOKEN-VALUE" in line for line in server.logs)
    assert server.events("http_request"), "requests are logged as structured events"
