"""System-test harness: starts the real chatorbit binary on a free port with its own
data directory, and gives tests a small HTTP client bound to it."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import closing
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("CHATORBIT_BIN", ROOT / "build" / "chatorbit"))
SANITIZED = os.environ.get("CHATORBIT_SANITIZED") == "1"
START_TIMEOUT = 30.0 if SANITIZED else 10.0
# The whole suite on the MongoDB store: CHATORBIT_TEST_STORE=mongodb starts one FerretDB
# for the session (CHATORBIT_TEST_MONGO_URL names a server already running instead), and
# every server the suite starts keeps its data there, in a database of its own, instead
# of SQLite under its data directory.
STORE = os.environ.get("CHATORBIT_TEST_STORE", "sqlite")
_session_mongo: list = []


def store_mongo_url() -> str:
    given = os.environ.get("CHATORBIT_TEST_MONGO_URL", "")
    if given or STORE != "mongodb":
        return given
    if not _session_mongo:
        _session_mongo.append(test_servers.start_ferretdb(tempfile.mkdtemp(prefix="chatorbit-ferretdb-")))
    return _session_mongo[0].url
_databases: dict[str, str] = {}


def _database_for(data_dir: str) -> str:
    """One database per data directory: a server restarted on its data finds it again."""
    if data_dir not in _databases:
        _databases[data_dir] = f"system_{os.getpid()}_{len(_databases)}_{secrets.token_hex(4)}"
    return _databases[data_dir]


class Server:
    """One chatorbit process. Its stderr (JSON log lines) is collected in `logs`."""

    def __init__(self, env: dict[str, str] | None = None, args: list[str] | None = None,
                 data_dir: str | None = None):
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="chatorbit-test-")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("CHATORBIT_") and k not in ("PORT", "JWT_SECRET", "LOG_LEVEL",
                                                                   "MONGO_URL", "REDIS_ADDR")}
        self.env.update({"PORT": "0", "CHATORBIT_DATA_DIR": self.data_dir, "CHATORBIT_THREADS": "2",
                         "CHATORBIT_BIND": "127.0.0.1"})
        mongo = store_mongo_url()
        if mongo and "MONGO_URL" not in (env or {}):
            where = (env or {}).get("CHATORBIT_DATA_DIR", self.data_dir)
            self.env["MONGO_URL"] = mongo.rstrip("/") + "/" + _database_for(where)
        self.env.update(env or {})
        self.args = args or []
        self.logs: list[str] = []
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._listening = threading.Event()

    def start(self) -> "Server":
        self.proc = subprocess.Popen([str(BINARY), *self.args], env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._pump, daemon=True).start()
        if not self._listening.wait(START_TIMEOUT):
            self.stop()
            raise RuntimeError("chatorbit did not start:\n" + "\n".join(self.logs[-50:]))
        return self

    def _pump(self) -> None:
        assert self.proc and self.proc.stderr
        for line in self.proc.stderr:
            self.logs.append(line.rstrip("\n"))
            if self.port is None and '"event":"listening"' in line:
                self.port = json.loads(line)["port"]
                self._listening.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def events(self, name: str) -> list[dict]:
        out = []
        for line in list(self.logs):
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if obj.get("event") == name:
                    out.append(obj)
        return out

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        code = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
        elif self.proc:
            code = self.proc.returncode
        return code

    def cleanup(self) -> None:
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class StoredUsers:
    """The users table or collection of a server's store, read and written behind its back
    (as an operator, or the original service, would): SQLite under its data directory, or
    the MongoDB database its MONGO_URL names."""

    def __init__(self, server: Server):
        self.mongo_url = server.env.get("MONGO_URL", "")
        self.sqlite_path = Path(server.data_dir) / "chatorbit.db"

    def _collection(self):
        import pymongo  # only the MongoDB runs need it
        client = pymongo.MongoClient(self.mongo_url, serverSelectionTimeoutMS=5000)
        return client, client.get_default_database(default="chatorbit")["users"]

    def password_hash(self, email: str) -> str:
        if self.mongo_url:
            client, users = self._collection()
            with client:
                return users.find_one({"email_lower": email.lower()})["password_hash"]
        import sqlite3
        with closing(sqlite3.connect(self.sqlite_path)) as db:
            return db.execute("SELECT password_hash FROM users WHERE email_lower = ?", (email.lower(),)).fetchone()[0]

    def set_password_hash(self, email: str, value: str) -> None:
        if self.mongo_url:
            client, users = self._collection()
            with client:
                users.update_one({"email_lower": email.lower()}, {"$set": {"password_hash": value}})
            return
        import sqlite3
        with closing(sqlite3.connect(self.sqlite_path)) as db:
            db.execute("UPDATE users SET password_hash = ? WHERE email_lower = ?", (value, email.lower()))
            db.commit()


@pytest.fixture(scope="session")
def binary() -> Path:
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run ./dev build")
    return BINARY


@pytest.fixture
def start_server(binary):
    """Factory: start_server(env={...}, args=[...]) -> Server, stopped after the test."""
    started: list[Server] = []

    def start(env=None, args=None, data_dir=None) -> Server:
        s = Server(env, args, data_dir).start()
        started.append(s)
        return s

    yield start
    for s in started:
        code = s.stop()
        s.cleanup()
        # A clean shutdown is part of every test: a crash or sanitizer report fails it.
        assert code in (0, None), f"chatorbit exited with {code}:\n" + "\n".join(s.logs[-40:])


@pytest.fixture(scope="module")
def server(binary):
    """A shared server for tests that do not need special settings."""
    s = Server({"CHATORBIT_ADMINS": "admin@example.com", "CHATORBIT_LOGIN_IP_MAX_FAILURES": "1000"}).start()
    yield s
    code = s.stop()
    s.cleanup()
    assert code == 0, f"chatorbit exited with {code}:\n" + "\n".join(s.logs[-40:])


class Api:
    """requests, bound to a server, with helpers for accounts."""

    def __init__(self, server: Server):
        self.server = server
        self.http = requests.Session()

    def url(self, path: str) -> str:
        return self.server.url + path

    def get(self, path, **kw):
        return requests.get(self.url(path), timeout=10, **kw)

    def post(self, path, **kw):
        return requests.post(self.url(path), timeout=10, **kw)

    def put(self, path, **kw):
        return requests.put(self.url(path), timeout=10, **kw)

    def register(self, email=None, username=None, password="secret123"):
        email = email or f"u{uuid.uuid4().hex[:12]}@example.com"
        username = username or "user" + uuid.uuid4().hex[:6]
        r = self.post("/register", json={"email": email, "username": username, "password": password})
        assert r.status_code == 200, r.text
        return email, username, password

    def login(self, email, password="secret123") -> str:
        r = self.post("/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["token"]

    def new_user(self, **kw):
        """Registers and logs in; returns (token, profile from /users/me)."""
        email, username, password = self.register(**kw)
        token = self.login(email, password)
        me = self.get("/users/me", headers=auth(token)).json()
        return token, me


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def api(server) -> Api:
    return Api(server)


def wait_until(predicate, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --- Redis: real servers from tools/test_servers.py ------------------------------------


def _load_test_servers():
    """tools/test_servers.py, imported by path (tools/ is not a package)."""
    import importlib.util
    import sys

    path = ROOT / "tools" / "test_servers.py"
    spec = importlib.util.spec_from_file_location("test_servers", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


test_servers = _load_test_servers()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A standalone redis-server shared by the whole session (test_servers.RedisServer).
    Use keys of your own and leave it running: tests that kill, restart, pause or flush
    it take `fresh_redis` instead."""
    server = test_servers.start_standalone(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A 3-master Redis Cluster shared by the whole session (test_servers.RedisCluster;
    .seeds is CHATORBIT_REDIS_CLUSTER's form). Ready: cluster_state:ok on every node."""
    cluster = test_servers.start_cluster(tmp_path_factory.mktemp("redis-cluster"), masters=3)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def ferretdb_server(tmp_path_factory):
    """A FerretDB shared by the whole session (test_servers.FerretDB): use a database of
    your own. Tests that kill or pause it start their own."""
    server = test_servers.start_ferretdb(tmp_path_factory.mktemp("ferretdb"))
    yield server
    server.stop()


@pytest.fixture
def fresh_redis(tmp_path):
    """A standalone redis-server of this test's own, stopped after it: for tests that
    kill, restart or pause Redis."""
    server = test_servers.start_standalone(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def nodes_factory(binary, tmp_path):
    """start(backend, env=None, count=3) -> [Server, ...]: chat nodes on one Redis and one
    SQLite file under tmp_path, stopped after the test (each must exit with 0)."""
    from nodes import add_node, start_nodes, stop_nodes  # nodes.py imports this module
    started = []

    def start(backend_env, env=None, count=3):
        return start_nodes(backend_env, str(tmp_path / "data"), count, env, started)

    start.add = lambda like: add_node(like, started)
    yield start
    bad = stop_nodes(started)
    assert not bad, "\n\n".join(bad)
