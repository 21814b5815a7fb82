"""Behind a reverse proxy: CHATORBIT_TRUSTED_PROXIES says whose X-Forwarded-For names the
client; per-address limits then count per client, not per proxy. The tests' own socket
(127.0.0.1) plays the proxy."""
from conftest import Api, wait_until
from wsclient import ChatClient, refused, unique_room

THROTTLE = {"CHATORBIT_LOGIN_IP_MAX_FAILURES": "3", "CHATORBIT_LOGIN_MAX_FAILURES": "100"}


def fail_login(api: Api, forwarded_for: str | None, i: int) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    return api.post("/login", json={"email": f"x{i}@example.com", "password": "wrong-pass"},
                    headers=headers).status_code


def test_trusted_proxy_failed_logins_are_throttled_per_forwarded_address(start_server):
    s = start_server({**THROTTLE, "CHATORBIT_TRUSTED_PROXIES": "127.0.0.1"})
    api = Api(s)
    for i in range(3):
        assert fail_login(api, "198.51.100.1", i) == 401
    assert fail_login(api, "198.51.100.1", 9) == 429
    for i in range(3):
        assert fail_login(api, "198.51.100.2", i) == 401, "another client behind the proxy has its own count"
    assert fail_login(api, "198.51.100.2", 9) == 429
    # What the client wrote to the left of the proxy's entry does not pick its bucket.
    assert fail_login(api, "6.6.6.6, 198.51.100.1", 10) == 429
    assert fail_login(api, "198.51.100.3, 198.51.100.1", 11) == 429
    # The request log names both the client and the proxy it came through.
    assert wait_until(lambda: any(e.get("client") == "198.51.100.2" and e.get("peer") == "127.0.0.1"
                                  for e in s.events("http_request")))


def test_untrusted_peer_x_forwarded_for_is_ignored(start_server):
    s = start_server(THROTTLE)
    api = Api(s)
    for i in range(3):
        assert fail_login(api, f"198.51.100.{i + 1}", i) == 401
    assert fail_login(api, "198.51.100.99", 9) == 429, "every attempt counted against the socket's address"
    assert all(e.get("client") == "127.0.0.1" for e in s.events("http_request"))


def test_trusted_proxy_websocket_cap_counts_per_forwarded_address(start_server):
    s = start_server({"CHATORBIT_TRUSTED_PROXIES": "127.0.0.0/8, ::1", "CHATORBIT_MAX_CONNECTIONS_PER_IP": "2"})
    room = unique_room()
    a = {"X-Forwarded-For": "203.0.113.10"}
    b = {"X-Forwarded-For": "203.0.113.20"}
    clients = [ChatClient(s, None, room, v=2, headers=a) for _ in range(2)]
    try:
        for c in clients:
            c.wait_welcome()
        status, body, _ = refused(s, token=None, room=room, headers=a)
        assert (status, body["error"]) == (429, "too many connections")
        for _ in range(2):
            clients.append(ChatClient(s, None, room, v=2, headers=b))
            clients[-1].wait_welcome()
        status, _, _ = refused(s, token=None, room=room, headers=b)
        assert status == 429
    finally:
        for c in clients:
            c.close()


def test_bad_trusted_proxy_entry_fails_start_naming_it(tmp_path):
    from test_process import run_binary
    r = run_binary([], {"CHATORBIT_TRUSTED_PROXIES": "10.0.0.0/8,10.0.0.0/40", "PORT": "0",
                        "CHATORBIT_DATA_DIR": str(tmp_path)})
    assert r.returncode == 2
    assert "CHATORBIT_TRUSTED_PROXIES" in r.stderr and "10.0.0.0/40" in r.stderr, r.stderr
