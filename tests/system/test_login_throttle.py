"""Failed logins from one address lock that address out of that account, not the
account for everyone: the account alone gets short, growing delays.
(Issue: hardening, defect 5.)"""
import http.client
import json
import time

from conftest import Api


def login_from(server, source_ip: str, email: str, password: str) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(source_ip, 0))
    try:
        conn.request("POST", "/login", body=json.dumps({"email": email, "password": password}),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}"), dict(r.getheaders())
    finally:
        conn.close()


def test_failures_from_one_address_do_not_lock_the_account_for_others(start_server):
    s = start_server({"CHATORBIT_ADMINS": "admin@example.com"})
    api = Api(s)
    email, _, password = api.register(email="admin@example.com")
    for _ in range(5):
        assert login_from(s, "127.0.0.2", email, "wrong-password")[0] == 401
    # The attacking address is locked out of the account, right password or not.
    status, body, headers = login_from(s, "127.0.0.2", email, password)
    assert status == 429 and int(headers["Retry-After"]) > 60, (status, body)
    # From elsewhere, the account only asks for a short wait, then lets its owner in.
    status, body, headers = login_from(s, "127.0.0.1", email, password)
    if status == 429:
        wait = int(headers["Retry-After"])
        assert wait <= 2, body
        time.sleep(wait)
        status, body, headers = login_from(s, "127.0.0.1", email, password)
    assert status == 200, body
    assert login_from(s, "127.0.0.2", email, password)[0] == 429, "the owner's login does not unlock the attacker"


def test_spread_failures_slow_the_account_with_growing_delays(start_server):
    s = start_server({"CHATORBIT_LOGIN_MAX_FAILURES": "2", "CHATORBIT_LOGIN_MAX_DELAY": "4s"})
    email, _, password = Api(s).register()
    waits = []
    for i in range(5):
        ip = f"127.0.1.{i + 1}"  # a fresh address each time: only the account's own count applies
        status, body, headers = login_from(s, ip, email, "wrong-password")
        while status == 429:
            waits.append(int(headers["Retry-After"]))
            assert waits[-1] <= 4, f"a delay of at most CHATORBIT_LOGIN_MAX_DELAY, not a lock: {waits}"
            time.sleep(waits[-1])
            status, body, headers = login_from(s, ip, email, "wrong-password")
        assert status == 401, body
    assert waits and max(waits) <= 4, waits
    assert waits == sorted(waits), f"delays grow: {waits}"
