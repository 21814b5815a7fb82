"""One address cannot exhaust the server's descriptors, and monitoring answers even
when the server is full. (Issue: hardening, defect 4.)"""
import resource
import socket
import time

import requests

from conftest import Api


def raise_own_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))


def open_idle(server, source_ip: str, count: int) -> list[socket.socket]:
    out = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source_ip, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", server.port))
        out.append(s)
    return out


def read_to_end(sock: socket.socket) -> bytes:
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


def refusal_of(sock: socket.socket) -> bytes:
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    except OSError:
        pass
    return read_to_end(sock)


def test_idle_flood_from_one_address_does_not_starve_others(start_server):
    # The server inherits the usual soft limit of 1,024 descriptors, as from a shell.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        s = start_server()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    raise_own_fd_limit(4096)
    flood = open_idle(s, "127.0.0.2", 1100)
    try:
        time.sleep(0.2)  # let the server take (or refuse) all of them
        started = time.monotonic()
        r = requests.get(s.url + "/healthz", timeout=5)
        assert r.status_code == 200
        assert time.monotonic() - started < 2
        assert Api(s).get("/chat/rooms").status_code == 200
        # Past the per-address cap (256) the flood was refused at once, with a JSON 429.
        answer = refusal_of(flood[-1])
        assert answer.startswith(b"HTTP/1.1 429"), answer[:200]
        assert b'"too many connections"' in answer
    finally:
        for sock in flood:
            sock.close()
    limits = s.events("connection_limits")[0]
    assert limits["open_files_soft"] == limits["open_files_hard"], limits


def test_full_server_refuses_cleanly_and_keeps_answering_health_and_metrics(start_server):
    raise_own_fd_limit(4096)
    s = start_server({"CHATORBIT_MAX_CONNECTIONS": "40", "CHATORBIT_MAX_HTTP_CONNECTIONS_PER_IP": "1000"})
    flood = open_idle(s, "127.0.0.3", 40)
    try:
        time.sleep(0.2)  # let the server admit all of them
        r = requests.get(s.url + "/chat/rooms", timeout=5)
        assert r.status_code == 503 and r.json() == {"error": "server at capacity"}
        for path in ("/healthz", "/metrics"):
            r = requests.get(s.url + path, timeout=5)
            assert r.status_code == 200, (path, r.text[:200])
        # Beyond the 32 monitoring slots, a refusal written at accept. Which of these 40
        # get the slots depends on which event loop accepts first, so count: at least 8
        # were refused at once, and a slot answers /healthz.
        more = open_idle(s, "127.0.0.4", 40)
        try:
            time.sleep(0.3)  # let the server accept (and decide on) all of them
            answers = [refusal_of(sock) for sock in more]
        finally:
            for sock in more:
                sock.close()
        refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
        assert len(refused) >= 40 - 32, [a[:40] for a in answers]
        assert all(b'"server at capacity"' in a for a in refused)
        assert all(a.startswith((b"HTTP/1.1 503", b"HTTP/1.1 200")) or a == b"" for a in answers)
    finally:
        for sock in flood:
            sock.close()
    # Once the flood is gone, the server takes ordinary requests again.
    deadline = time.monotonic() + 5
    while requests.get(s.url + "/chat/rooms", timeout=5).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_max_connections_above_the_descriptor_limit_fails_at_start(start_server):
    import pytest
    with pytest.raises(RuntimeError):
        start_server({"CHATORBIT_MAX_CONNECTIONS": "100000000"})


def answer_of(sock: socket.socket) -> bytes:
    """The answer to one request that asks the server to close afterwards."""
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    except OSError:
        pass  # refused and closed already: its answer may still be there to read
    return read_to_end(sock)


def test_a_trusted_proxy_is_not_held_to_the_per_address_cap(start_server):
    # A gateway carries many clients over its connections to a service: the cap is for
    # the clients it names in X-Forwarded-For, not for it.
    env = {"CHATORBIT_MAX_HTTP_CONNECTIONS_PER_IP": "3", "CHATORBIT_TRUSTED_PROXIES": "127.0.0.3"}
    s = start_server(env)
    proxy = open_idle(s, "127.0.0.3", 6)
    other = open_idle(s, "127.0.0.4", 4)
    try:
        time.sleep(0.2)
        # The loops accept in their own order: which of the four is refused is theirs.
        answers = [answer_of(sock)[:12] for sock in other]
        assert sorted(answers) == [b"HTTP/1.1 200"] * 3 + [b"HTTP/1.1 429"], answers
        assert [answer_of(sock)[:12] for sock in proxy] == [b"HTTP/1.1 200"] * 6
    finally:
        for sock in proxy + other:
            sock.close()
