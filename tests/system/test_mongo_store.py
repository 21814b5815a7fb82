"""The MongoDB store end to end: chatorbit on a FerretDB of the test's own (the MongoDB
wire protocol on SQLite, tools/test_servers.py), the chat node killed under load, the
database killed under it, and a database written by the original Go service."""
from __future__ import annotations

import datetime
import os
import signal
import subprocess
import time

import pytest
from bson import ObjectId
from pymongo import MongoClient
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import BINARY, SANITIZED, Api, Server, test_servers, wait_until
from nodes import Poster, all_history
from test_vectors import GO_BCRYPT_HASH, GO_BCRYPT_PASSWORD
from wsclient import ChatClient, refused, unique_room

TIMEOUT = 30.0 if SANITIZED else 15.0


@pytest.fixture
def ferretdb(tmp_path):
    db = test_servers.start_ferretdb(tmp_path / "ferretdb")
    yield db
    db.stop()


def mongo_env(db, name: str) -> dict[str, str]:
    # A short timeout: a sender hears `unavailable` soon after the server goes.
    return {"MONGO_URL": db.url.rstrip("/") + "/" + name, "CHATORBIT_MONGO_TIMEOUT_MS": "500",
            "CHATORBIT_MONGO_SOCKET_TIMEOUT_MS": "3000", "CHATORBIT_RATE_LIMIT": "100000/1s"}


def start(env: dict[str, str], data_dir: str) -> Server:
    return Server(env, data_dir=data_dir).start()


def each_acked_once(api: Api, room: str, posters: list[Poster], node_killed: bool = False) -> list[str]:
    """Checks that history holds every acknowledged message once and nothing twice;
    returns the contents, oldest first."""
    contents = [m["content"] for m in all_history(api, room)]
    assert len(contents) == len(set(contents)), "a message is in history twice"
    for p in posters:
        if not (node_killed and isinstance(p.failure, ConnectionClosed)):
            assert p.failure is None, p.failure
        missing = [cid for cid in p.acked() if cid not in contents]
        assert not missing, f"acknowledged but not in history: {missing[:5]}"
    return contents


def test_acknowledged_messages_survive_a_sigkill_of_the_node_exactly_once(ferretdb, tmp_path):
    env = mongo_env(ferretdb, "kill_node")
    node = start(env, str(tmp_path / "node"))
    try:
        api = Api(node)
        token, _ = api.new_user()
        room = unique_room("kill")
        poster = Poster(node, token, room, "k", pace=0.002, reply_wait=2.0, deadline=TIMEOUT)
        poster.start()
        assert wait_until(lambda: len(poster.acked()) >= 100, TIMEOUT), "no acks"
        node.stop(signal.SIGKILL)
        poster.stop()
        poster.join(TIMEOUT)
    finally:
        node.stop(signal.SIGKILL)
    again = start(env, str(tmp_path / "node"))
    try:
        contents = each_acked_once(Api(again), room, [poster], node_killed=True)
        assert len(contents) >= 100
    finally:
        assert again.stop() == 0


def test_the_database_killed_mid_stream_loses_and_repeats_nothing_and_chat_resumes(ferretdb, tmp_path):
    node = start(mongo_env(ferretdb, "kill_db"), str(tmp_path / "node"))
    try:
        api = Api(node)
        token, _ = api.new_user()
        room = unique_room("dbfault")
        poster = Poster(node, token, room, "d", pace=0.01, reply_wait=4.0, retry=0.2, deadline=TIMEOUT * 3)
        poster.start()
        assert wait_until(lambda: len(poster.acked()) >= 30, TIMEOUT), "no acks before the fault"
        ferretdb.kill()
        killed_at = time.monotonic()
        assert wait_until(lambda: any(f.get("code") == "unavailable" for _, f in poster.refusals), TIMEOUT), \
            f"senders are told unavailable while the database is gone: {poster.refusals[-3:]}"
        acked_during = len(poster.acked())
        time.sleep(max(0.0, 2.0 - (time.monotonic() - killed_at)))
        ferretdb.restart()
        assert wait_until(lambda: len(poster.acked()) >= acked_during + 30, TIMEOUT), \
            "chat resumes by itself once the database is back"
        poster.stop()
        poster.join(TIMEOUT)
        contents = each_acked_once(api, room, [poster])
        assert all(f.get("code") in ("unavailable",) for _, f in poster.refusals), poster.refusals[:3]
        assert len(contents) >= acked_during + 30
    finally:
        assert node.stop() == 0, "\n".join(node.logs[-30:])


def test_a_viewer_who_signs_in_while_the_database_is_gone_is_told_503_not_dropped(ferretdb, tmp_path):
    # The handshake reads the account (its current role) from the store. When that read
    # fails, the viewer gets a 503 with a retry hint, as any refusal, and not a
    # connection that drops without an answer.
    node = start(mongo_env(ferretdb, "db_gone_join"), str(tmp_path / "node"))
    try:
        api = Api(node)
        token, _ = api.new_user()
        ferretdb.kill()
        status, body, headers = refused(node, token=token, room=unique_room("gone"))
        assert (status, body.get("error"), headers.get("Retry-After")) == (503, "unavailable", "1"), body
        assert any("ws_handshake_failed" in line for line in node.logs), "the failure is logged"
        ferretdb.restart()
        # And once it is back, the same viewer gets in.
        assert wait_until(lambda: _joins(node, token), TIMEOUT), "no way in after the database came back"
    finally:
        assert node.stop() == 0, "\n".join(node.logs[-30:])


def _joins(node: Server, token: str) -> bool:
    try:
        with ChatClient(node, token, unique_room("back"), v=2) as c:
            c.wait_welcome()
        return True
    except InvalidStatus:
        return False


def test_a_database_written_by_the_original_logs_in_shows_history_and_migrates(ferretdb, tmp_path):
    env = mongo_env(ferretdb, "original")
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    user_id = ObjectId()
    with MongoClient(env["MONGO_URL"], serverSelectionTimeoutMS=5000) as client:
        db = client.get_default_database()
        # Shaped as the original's Go code writes them (../shared/CONTRACT.md).
        db.users.insert_one({"_id": user_id, "username": "gopher", "email": "Gopher@Example.com",
                             "password_hash": GO_BCRYPT_HASH, "created_at": now, "login_time": now,
                             "login_ip": "192.0.2.7", "update_time": now})
        db.rooms.insert_one({"room_id": "lobby", "created_at": now})
        db.messages.insert_many([
            {"room_id": "lobby", "user_id": str(user_id), "content": f"old {i}",
             "timestamp": now + datetime.timedelta(seconds=i)} for i in range(5)])

    node = start(env, str(tmp_path / "node"))
    try:
        api = Api(node)
        r = api.post("/login", json={"email": "gopher@example.com", "password": GO_BCRYPT_PASSWORD})
        assert r.status_code == 200, r.text
        before = api.get("/chat/history/lobby").json()
        assert [m["content"] for m in before] == [f"old {i}" for i in reversed(range(5))]
    finally:
        assert node.stop() == 0

    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHATORBIT_") and k != "MONGO_URL"}
    run = subprocess.run([str(BINARY), "migrate"], env={**clean, **env}, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert "5 message(s) numbered" in run.stderr, run.stderr
    again = subprocess.run([str(BINARY), "migrate"], env={**clean, **env}, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0 and "0 message(s) numbered" in again.stderr, again.stderr

    node = start(env, str(tmp_path / "node"))
    try:
        rows = all_history(Api(node), "lobby")
        assert [(m["seq"], m["content"]) for m in rows] == [(i + 1, f"old {i}") for i in range(5)]
        assert {m.get("username") for m in rows} == {"gopher"}
        with MongoClient(env["MONGO_URL"], serverSelectionTimeoutMS=5000) as client:
            stored = client.get_default_database().users.find_one({"_id": user_id})["password_hash"]
        assert stored.startswith("$argon2id$"), "the original's bcrypt hash is upgraded on login"
    finally:
        assert node.stop() == 0
