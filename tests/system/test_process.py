"""The binary as an operator meets it: flags, secrets, restarts, shutdown."""
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from conftest import BINARY, Api, auth


def run_binary(args, env_extra=None, timeout=20):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATORBIT_") and k not in ("PORT", "JWT_SECRET")}
    env.update(env_extra or {})
    return subprocess.run([str(BINARY), *args], env=env, capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help_lists_every_setting():
    r = run_binary(["--help"])
    assert r.returncode == 0
    for name in ("PORT", "JWT_SECRET", "LOG_LEVEL", "CHATORBIT_ROLE", "CHATORBIT_DATA_DIR", "CHATORBIT_ADMINS",
                 "CHATORBIT_CORS_ORIGINS"):
        assert name in r.stdout, name


def test_bad_configuration_fails_fast_naming_the_variable(tmp_path):
    r = run_binary([], {"PORT": "eighty", "CHATORBIT_DATA_DIR": str(tmp_path)})
    assert r.returncode == 2 and "PORT" in r.stderr
    r = run_binary(["--bogus"], {"CHATORBIT_DATA_DIR": str(tmp_path)})
    assert r.returncode == 2 and "--bogus" in r.stderr


def test_role_without_secret_refuses_to_start(tmp_path):
    r = run_binary([], {"CHATORBIT_ROLE": "auth", "PORT": "0", "CHATORBIT_DATA_DIR": str(tmp_path)})
    assert r.returncode == 2
    assert "JWT_SECRET" in r.stderr


def test_generated_secret_persists_across_restarts(start_server, tmp_path):
    s = start_server(data_dir=str(tmp_path))
    assert any(e.get("event") == "jwt_secret_generated" for e in s.events("jwt_secret_generated"))
    secret_file = tmp_path / "jwt_secret"
    assert secret_file.exists() and oct(secret_file.stat().st_mode)[-3:] == "600"
    api = Api(s)
    token, me = api.new_user()
    s.stop()
    s2 = start_server(data_dir=str(tmp_path))
    assert not s2.events("jwt_secret_generated")
    r = Api(s2).get("/users/me", headers=auth(token))
    assert r.status_code == 200 and r.json()["id"] == me["id"], "token and data survive a restart"


def test_revocation_survives_restart(start_server, tmp_path):
    s = start_server(data_dir=str(tmp_path))
    api = Api(s)
    token, _ = api.new_user()
    assert api.post("/logout", headers=auth(token)).status_code == 200
    s.stop()
    s2 = start_server(data_dir=str(tmp_path))
    assert Api(s2).get("/users/me", headers=auth(token)).status_code == 401


def test_split_roles_serve_only_their_routes(start_server):
    secret = "x" * 40
    auth_only = start_server({"CHATORBIT_ROLE": "auth", "JWT_SECRET": secret})
    a = Api(auth_only)
    email, _, pw = a.register()
    token = a.login(email, pw)
    assert a.get("/users/me", headers=auth(token)).status_code == 404
    user_only = start_server({"CHATORBIT_ROLE": "user", "JWT_SECRET": secret, "CHATORBIT_DATA_DIR": auth_only.data_dir})
    u = Api(user_only)
    assert u.get("/users/me", headers=auth(token)).status_code == 200, "tokens from auth are valid at user"
    assert u.post("/login", json={"email": email, "password": pw}).status_code == 404


def test_sigterm_finishes_in_flight_request_then_exits_cleanly(start_server):
    s = start_server()
    api = Api(s)
    email, _, pw = api.register()
    # A login is in flight (argon2 takes tens of ms) when SIGTERM arrives.
    result = {}

    def login():
        result["r"] = api.post("/login", json={"email": email, "password": pw})

    t = threading.Thread(target=login)
    t.start()
    time.sleep(0.005)
    s.proc.send_signal(signal.SIGTERM)
    t.join(10)
    assert result["r"].status_code == 200
    assert s.proc.wait(15) == 0
    assert s.events("stopped")


def test_idle_keepalive_connection_does_not_block_shutdown(start_server):
    s = start_server()
    sock = socket.create_connection(("127.0.0.1", s.port))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    s.proc.send_signal(signal.SIGINT)
    assert s.proc.wait(10) == 0
    assert time.monotonic() - started < 5
    sock.close()


def test_slow_client_is_timed_out(start_server):
    s = start_server({"CHATORBIT_HTTP_READ_TIMEOUT": "1"})
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes the header
    started = time.monotonic()
    data = sock.recv(4096)
    assert data == b"" and time.monotonic() - started < 5
    sock.close()


def test_readme_documents_every_setting():
    """The README's settings table is kept in step with --help."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    help_text = run_binary(["--help"]).stdout
    names = [line.split("(")[1].split(",")[0] for line in help_text.splitlines() if line.startswith("  --")]
    assert len(names) > 20
    for name in names:
        assert f"`{name}`" in readme, f"{name} is missing from the README's settings table"


def test_a_redis_that_cannot_be_reached_at_start_is_reported(tmp_path):
    # Port 1 refuses at once: the node does not start half-working, it says what it could not reach.
    r = run_binary([], {"REDIS_ADDR": "redis://:pw-7c1b9@127.0.0.1:1", "PORT": "0", "CHATORBIT_DATA_DIR": str(tmp_path)})
    assert r.returncode == 1, r.stderr
    assert "redis" in r.stderr and "127.0.0.1:1" in r.stderr, r.stderr
    assert "pw-7c1b9" not in r.stderr, "a password is never echoed"


def test_an_unreachable_mongo_url_fails_start_up_with_the_reason(tmp_path):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    r = run_binary([], {"MONGO_URL": f"mongodb://chat:hunter2@127.0.0.1:{port}/chat", "PORT": "0",
                        "CHATORBIT_MONGO_TIMEOUT_MS": "500", "CHATORBIT_DATA_DIR": str(tmp_path)})
    assert r.returncode == 1, r.stderr
    assert "cannot open the store" in r.stderr and f"127.0.0.1:{port}" in r.stderr, r.stderr
    assert "hunter2" not in r.stderr, "a password is never echoed"
    assert time.monotonic() - started < 10, "the timeout setting bounds how long start-up waits"
    assert not (tmp_path / "chatorbit.db").exists(), "no SQLite file beside a MongoDB store"


def test_malformed_backend_settings_say_malformed_not_missing(tmp_path):
    for env in ({"REDIS_ADDR": "localhost"}, {"REDIS_ADDR": "redis://:secret@host:port"},
                {"MONGO_URL": "localhost:27017"}):
        r = run_binary([], {**env, "PORT": "0", "CHATORBIT_DATA_DIR": str(tmp_path)})
        name = next(iter(env))
        assert r.returncode == 2, r.stderr
        assert f"{name}: malformed" in r.stderr, r.stderr
        assert "secret" not in r.stderr, "a password is never echoed"
